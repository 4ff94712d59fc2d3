"""The one training loop. It knows torch and nothing else: no model, no
scikit-learn. The caller hands it a module, a batch loss and the training rows
(a tensor, or a row source of :mod:`skae._rows`); it returns a
:class:`History` and never raises to stop.

Stopping follows scikit-learn's MLPRegressor: with a validation score, stop when
it has not improved for more than ``n_iter_no_change`` epochs and restore the
best weights; without one, stop alike on the training loss and keep the last
epoch's weights. Unlike
MLPRegressor's, ``tol`` is relative: an epoch improves when it beats the best
so far by ``tol`` times the best's magnitude, whatever the units of the loss.
With ``score_start`` the starting weights are scored first and count as a
candidate: if no epoch beats them, they are what the call returns. A
``ReduceLROnPlateau`` scheduler replaces that stop with its own reductions of
the learning rate, and training stops when the rate falls below a floor
(MLPRegressor's ``learning_rate="adaptive"``).

Data-parallel training: given a :class:`Shard`, the loop runs the batch loss
through :class:`torch.nn.parallel.DistributedDataParallel`, each rank trains on
its slice of every global batch, and the epoch's loss and validation score are
the same number on every rank, so every rank takes the same decisions.
"""

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._rows import as_rows
from ._settings import cpu_threads_for, step_flops


class StopReason(enum.Enum):
    """Why :func:`train_epochs` stopped."""

    #: no improvement by ``tol`` for more than ``n_iter_no_change`` epochs
    CONVERGED = "converged"
    #: ran the ``max_iter`` epochs it was given
    MAX_ITER = "max_iter"
    #: the epoch's loss was NaN or inf (that epoch is not in the history)
    NON_FINITE = "non_finite"
    #: the epoch's validation score was NaN or inf (nor is that epoch)
    NON_FINITE_SCORE = "non_finite_score"
    #: the last epoch's steps left NaN or inf weights that no loss or score
    #: read after them (nor is that epoch in the history)
    NON_FINITE_WEIGHTS = "non_finite_weights"
    #: KeyboardInterrupt during an epoch
    INTERRUPTED = "interrupted"
    #: the learning rate fell below ``min_learning_rate``
    MIN_LEARNING_RATE = "min_learning_rate"


@dataclass
class History:
    """What one call of :func:`train` did."""

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    stop_reason: StopReason = StopReason.MAX_ITER
    #: the validation score of the starting weights (``score_start``), else None
    start_score: float | None = None
    #: the epoch whose weights were kept with a validation score (0: the start)
    best_epoch: int | None = None

    @property
    def n_iter(self):
        return len(self.loss_curve)


# ------------------------------------------------------- data parallelism


@dataclass(frozen=True)
class Shard:
    """This process's part in data-parallel training: rank ``rank`` of
    ``world_size`` processes in the default ``torch.distributed`` group.

    Every rank holds the same rows and draws the same permutation; a global
    batch is ``world_size`` times the per-rank batch size, and each rank
    trains on its slice of it.
    """

    rank: int
    world_size: int

    def bounds(self, n_rows):
        """``(start, stop)`` of this rank's slice of a global batch of
        ``n_rows`` rows: consecutive slices whose sizes differ by at most one."""
        size, extra = divmod(n_rows, self.world_size)
        start = self.rank * size + min(self.rank, extra)
        return start, start + size + (self.rank < extra)


@dataclass(frozen=True)
class TrainingSetup:
    """What one fit call hands to every training run it makes (the end-to-end
    training, and each layer of greedy pretraining with
    :func:`dataclasses.replace` changing what differs).

    Attributes
    ----------
    batch_size : int
        Rows per batch (per rank, data-parallel).
    generator : torch.Generator
        Draws the order of the rows in each epoch.
    loss_generator : torch.Generator
        Draws what a batch loss draws (corruption, sampling): a stream of its
        own, so it does not change which rows go into which batch.
    device : torch.device
        Where the batches are trained.
    validation_score : callable or None
        ``validation_score() -> float`` on held-out rows (higher is better),
        None without early stopping on held-out rows.
    previous_epochs : int
        Epochs run before this run (progress reports count on from there).
    shard : Shard or None
        This process's part in data-parallel training.
    scheduler : torch.optim.lr_scheduler.LRScheduler, ReduceLROnPlateau or None
        The learning-rate schedule, None for a constant rate.
    desc : str or None
        The progress bar's label (the estimator's class name when None).
    score_start : bool
        Score the starting weights first and keep them unless an epoch beats them.
    learning_rate : float or None
        The rate this call starts at (``learning_rate``, "auto" resolved).
    """

    batch_size: int
    generator: torch.Generator
    loss_generator: torch.Generator
    device: torch.device
    validation_score: Callable[[], float] | None = None
    previous_epochs: int = 0
    shard: Shard | None = None
    scheduler: object | None = None
    desc: str | None = None
    score_start: bool = False
    learning_rate: float | None = None


class _LossModule(torch.nn.Module):
    """``module`` with ``batch_loss`` as its forward.

    DistributedDataParallel averages the gradients of what runs through its
    forward call; the losses call several entry points of the module
    (``encode``, ``output``, ...), so the whole batch loss is the forward.
    """

    def __init__(self, module, batch_loss):
        super().__init__()
        self.module = module
        self.batch_loss = batch_loss

    def forward(self, x):
        return self.batch_loss(x)


def data_parallel(module, batch_loss, device):
    """``batch_loss`` run through DistributedDataParallel over ``module``'s
    parameters (in the default process group); ``module`` is unchanged."""
    from torch.nn.parallel import DistributedDataParallel

    device = torch.device(device)
    device_ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(_LossModule(module, batch_loss), device_ids=device_ids)


def _sum_over_ranks(value, shard):
    """``value`` (a 0-d tensor) summed over the ranks; itself without ``shard``."""
    if shard is not None:
        torch.distributed.all_reduce(value)
    return value


def _from_rank_zero(value, shard, device):
    """Rank 0's ``value`` (a float) on every rank: decisions taken from it agree."""
    if shard is None:
        return value
    value = torch.tensor(value, dtype=torch.float64, device=device)
    torch.distributed.broadcast(value, src=0)
    return value.item()


def _share_buffers(module, shard):
    """Rank 0's buffers (running statistics) on every rank."""
    if shard is not None:
        for buffer in module.buffers():
            torch.distributed.broadcast(buffer, src=0)


# ----------------------------------------------------------------- the loop


def learning_rate(optimizer):
    """The largest learning rate of the optimiser's parameter groups."""
    return max(group["lr"] for group in optimizer.param_groups)


def step_scheduler(scheduler, monitored):
    """One epoch's step of a learning-rate scheduler; ``ReduceLROnPlateau``
    is given the monitored loss (lower is better), and with a
    ``relative_tol`` (:func:`skae._optim.new_scheduler`) counts an
    improvement by that share of the best loss's magnitude, as
    :func:`improves` does."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        relative = getattr(scheduler, "relative_tol", None)
        if relative is not None and math.isfinite(scheduler.best):
            scheduler.threshold = relative * abs(scheduler.best)
        scheduler.step(monitored)
    else:
        scheduler.step()


def train_step(batch_loss, xb, optimizer, weight=1.0):
    """One optimiser step on one batch, on its loss times ``weight``;
    returns the (detached, unweighted) batch loss."""
    optimizer.zero_grad(set_to_none=True)
    loss = batch_loss(xb)
    (loss if weight == 1.0 else loss * weight).backward()
    optimizer.step()
    return loss.detach()


def run_epoch(
    module, batch_loss, X, optimizer, *, batch_size, shuffle, generator, device, shard=None
):
    """One pass over the rows of ``X`` (a row source) in minibatches drawn by
    permuted index slicing.

    With a ``shard``, a global batch is ``world_size * batch_size`` rows of the
    permutation and this rank trains on its slice. The batch loss is a mean
    over the rows and DistributedDataParallel averages the ranks' gradients,
    so with equal slices the step is the one a single process takes on the
    global batch. The last global batch may be short: its slices differ by a
    row, and each rank's loss is weighted by ``world_size * rows / global
    rows`` so that the averaged gradient is still the global batch's; a rank
    whose slice is empty steps on one row with weight 0.

    Returns the mean loss per sample as a 0-d tensor on ``device`` (over all
    ranks): the loop synchronises with the device once per epoch, not once
    per batch.
    """
    module.train()
    n_samples = len(X)
    order = (
        torch.randperm(n_samples, generator=generator, device=generator.device) if shuffle else None
    )
    if order is not None and order.device != X.device:
        order = order.to(X.device)
    world_size = 1 if shard is None else shard.world_size
    global_batch = batch_size * world_size
    # the losses times their rows summed in place in one preallocated tensor:
    # a small tensor kept per step would pin fragments of the freed batch
    # memory in the heap, and a sum in place is one cheap operation a step
    total = torch.zeros((), device=device)
    move = X.device != torch.device(device)
    for start in range(0, n_samples, global_batch):
        rows = min(global_batch, n_samples - start)
        lo, hi = (0, rows) if shard is None else shard.bounds(rows)
        weight = world_size * (hi - lo) / rows
        if hi == lo:  # fewer rows than ranks: take part, on one row, with weight 0
            lo, hi, weight = 0, 1, 0.0
        index = slice(start + lo, start + hi)
        xb = X.take(index if order is None else order[index])
        if move:
            xb = xb.to(device, non_blocking=True)
        loss = train_step(batch_loss, xb, optimizer, weight)
        total.add_(loss, alpha=hi - lo if weight else 0)
    return _sum_over_ranks(total, shard) / n_samples


def clone_state(module):
    """A detached copy of ``module``'s state dict (weights and buffers)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def train(module, batch_loss, X, *, batch_size, device, shard=None, **kwargs):
    """Train ``module`` on the rows of ``X`` for at most ``max_iter`` epochs;
    returns the :class:`History` (the stopping rules are the module's
    docstring's). Small networks on the CPU run on one thread
    (:func:`cpu_threads_for`).

    Parameters
    ----------
    module : torch.nn.Module
        Trained in place; it stays a plain module, data-parallel too.
    batch_loss : callable
        ``batch_loss(xb) -> 0-d tensor``, the mean loss of a batch.
    X : tensor or row source
        A tensor, :class:`~skae._rows.TensorRows` on ``device`` or on the
        CPU, or another source of :mod:`skae._rows` (batches are then copied
        over one by one).
    batch_size, device : int, torch.device
        Rows per batch (per rank), and where batches are trained.
    shard : Shard or None
        This rank's part in data-parallel training in the default process
        group (:func:`data_parallel`): the epoch loss is summed over the
        ranks and the validation score is rank 0's, so that every rank stops,
        and restores its best weights, at the same epoch, and every rank ends
        with the same weights and buffers.
    **kwargs
        Passed to :func:`train_epochs`: ``optimizer``, ``max_iter``,
        ``generator`` (the batch order), ``shuffle``, ``tol``,
        ``n_iter_no_change``; ``validation_score`` (``() -> float``, higher
        is better: stopping and the restored weights follow it instead of
        the training loss); ``stop_early`` (False: exactly ``max_iter``
        epochs); ``on_epoch`` (``on_epoch(loss, score)`` after each epoch,
        before the scheduler's step); ``scheduler`` (stepped after each
        epoch; ``ReduceLROnPlateau`` is given the monitored loss and replaces
        the no-improvement stop); ``min_learning_rate`` (with
        ``stop_early``, stop below it); ``score_start`` (with
        ``validation_score``, the starting weights are the best until an
        epoch beats them); ``loss_scale`` (what ``batch_loss`` is multiplied
        by to be reported: :attr:`skae.nn.EncoderDecoder.loss_scale`).
    """
    X = as_rows(X)
    with cpu_threads_for(step_flops(module, batch_size), device):
        if shard is None:
            return train_epochs(
                module, batch_loss, X, batch_size=batch_size, device=device, **kwargs
            )
        parallel = data_parallel(module, batch_loss, device)
        history = train_epochs(
            module, parallel, X, batch_size=batch_size, device=device, shard=shard, **kwargs
        )
        _share_buffers(module, shard)
        return history


def improves(value, best, tol):
    """Whether ``value`` beats ``best`` (higher is better; -inf for none yet)
    by ``tol`` times ``best``'s magnitude, and at all: an equal value (a
    score that stays at 0) is no improvement."""
    return not math.isfinite(best) or value > best and value >= best + tol * abs(best)


def _score_start(module, validation_score, history, shard, device):
    """Score the starting weights into ``history``; their copy, the best state
    until an epoch beats them (None when the score is not finite)."""
    module.eval()
    score = _from_rank_zero(validation_score(), shard, device)
    if not math.isfinite(score):
        return None
    history.start_score = history.best_validation_score = score
    history.best_epoch = 0
    return clone_state(module)


def train_epochs(
    module,
    batch_loss,
    X,
    *,
    optimizer,
    batch_size,
    max_iter,
    generator,
    device,
    shuffle=True,
    tol=1e-4,
    n_iter_no_change=10,
    validation_score=None,
    stop_early=True,
    on_epoch=None,
    shard=None,
    scheduler=None,
    min_learning_rate=0.0,
    score_start=False,
    loss_scale=1.0,
):
    """The loop of :func:`train` (which documents the parameters), on a row
    source ``X``: epochs until a stop, then the best weights restored."""
    run = _Run()
    try:
        if score_start and validation_score is not None:
            run.best_state = _score_start(module, validation_score, run.history, shard, device)
        for epoch in range(1, max_iter + 1):
            loss = run_epoch(
                module,
                batch_loss,
                X,
                optimizer,
                batch_size=batch_size,
                shuffle=shuffle,
                generator=generator,
                device=device,
                shard=shard,
            )
            loss = loss.item() * loss_scale  # in double: X's units can pass float32's range
            reason = _record_epoch(run, module, epoch, loss, validation_score, tol, shard, device)
            if reason is not None:  # non-finite: the best weights are not restored
                run.history.stop_reason = reason
                return run.history
            _after_epoch(loss, run.score, on_epoch, scheduler)
            if stop_early and (reason := _stop(run, optimizer, scheduler, n_iter_no_change)):
                run.history.stop_reason = reason
                break
            if stop_early and learning_rate(optimizer) < min_learning_rate:
                run.history.stop_reason = StopReason.MIN_LEARNING_RATE
                break
    except KeyboardInterrupt:
        run.history.stop_reason = StopReason.INTERRUPTED
    finally:
        module.eval()
    return _finish(run, module)


def _finish(run, module):
    """The run's history, with its best weights loaded into ``module``;
    unless it kept no copy and the last steps left NaN or inf weights, which
    no loss or score read after them: that epoch then leaves the history, as
    an epoch whose loss is not finite does."""
    if run.best_state is None and run.history.loss_curve and not finite_weights(module):
        run.history.loss_curve.pop()
        run.history.stop_reason = StopReason.NON_FINITE_WEIGHTS
        return run.history
    _restore_best(run, module)
    return run.history


def finite_weights(module):
    """Whether every parameter of ``module`` is finite (one reduction over
    them all: a per-parameter check is a synchronisation each)."""
    flat = [p.detach().reshape(-1) for p in module.parameters()]
    return not flat or bool(torch.cat(flat).isfinite().all())


def _restore_best(run, module):
    """Load the run's best weights into ``module`` (if it kept a copy); Ctrl-C
    during the load finishes it, and stops the run as interrupted."""
    if run.best_state is None:
        return
    try:
        module.load_state_dict(run.best_state)
    except KeyboardInterrupt:
        module.load_state_dict(run.best_state)
        run.history.stop_reason = StopReason.INTERRUPTED


@dataclass
class _Run:
    """A training run between epochs: what it did, the best weights so far
    (None: keep the last), the last epoch's validation score, the best score
    of a trained epoch and the epochs since the last improvement on it.

    The starting weights' score counts for the best weights, not for the
    patience: from PCA's start the first epochs move the linear path before
    the non-linear paths have learned anything, and counting them against
    the start stopped some fits (digits at k = 32, seed 0) after
    ``n_iter_no_change`` epochs that later ones would have beaten by a third.
    """

    history: History = field(default_factory=History)
    best_state: dict | None = None
    score: float | None = None
    best_trained: float = -math.inf
    no_improvement: int = 0


def _record_epoch(run, module, epoch, loss, validation_score, tol, shard, device):
    """Record a finished epoch in ``run``: its loss and validation score,
    whether it improves by ``tol``, a copy of the weights when they are the
    best so far. Returns None, or the StopReason of a non-finite loss or
    score (the epoch is then not recorded)."""
    history = run.history
    if not math.isfinite(loss):
        return StopReason.NON_FINITE
    run.score = None
    if validation_score is None:
        improved = improves(-loss, -history.best_loss, tol)
    else:
        module.eval()
        score = _from_rank_zero(validation_score(), shard, device)
        if not math.isfinite(score):
            return StopReason.NON_FINITE_SCORE
        # the copy before anything is recorded: Ctrl-C during it leaves the
        # epoch out whole (it had left a best epoch the history did not count)
        best = clone_state(module) if score > history.best_validation_score else None
        run.score = score
        history.validation_scores.append(score)
        improved = improves(score, run.best_trained, tol)
        run.best_trained = max(run.best_trained, score)
        if best is not None:
            history.best_validation_score, history.best_epoch = score, epoch
            run.best_state = best
    history.loss_curve.append(loss)
    history.best_loss = min(history.best_loss, loss)
    run.no_improvement = 0 if improved else run.no_improvement + 1
    return None


def _after_epoch(loss, score, on_epoch, scheduler):
    """Report the epoch, then step the scheduler on the monitored loss (the
    negative validation score, else the training loss)."""
    if on_epoch is not None:
        on_epoch(loss, score)
    if scheduler is not None:
        step_scheduler(scheduler, loss if score is None else -score)


def _stop(run, optimizer, scheduler, n_iter_no_change):
    """CONVERGED after more than ``n_iter_no_change`` epochs without
    improvement, unless a ``ReduceLROnPlateau`` scheduler acts on them;
    else None."""
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if not plateau and run.no_improvement > n_iter_no_change:
        return StopReason.CONVERGED
    return None
