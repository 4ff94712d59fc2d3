"""Progress of a fit, by ``verbose`` level: 0 nothing, 1 a tqdm bar over the
epochs with the training and validation loss in its postfix, 2 also one
``logging`` record per epoch on the ``"skae"`` logger.

Records go through whatever logging the application configured. When nothing
is configured for the ``"skae"`` logger (no handler on it or its ancestors),
``verbose=2`` shows them on stderr for the duration of the fit, written through
the bar so that the two do not garble each other.
"""

import logging
import math
import sys
import warnings
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from numbers import Real
from typing import NamedTuple

import torch
from sklearn.exceptions import ConvergenceWarning

from ._engine import StopReason, improves
from ._rows import root_mean_square
from ._settings import SharedSetting
from ._warnings import user_stacklevel
from .exceptions import KeptStartWarning

logger = logging.getLogger("skae")


class _TqdmHandler(logging.Handler):
    """Writes records above the progress bar instead of through it."""

    def emit(self, record):
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging's own contract: never raise from emit
            self.handleError(record)


def _show_records():
    """Show INFO records on stderr when the application configured no logging."""
    if logger.hasHandlers():
        return None
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler, previous_level


def _hide_records(added):
    if added is not None:
        handler, previous_level = added
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


#: shared by overlapping fits in several threads: added by the first, removed by the last
_visible_records = SharedSetting(_show_records, _hide_records)


def stop_message(stop_reason, n_iter_no_change):
    """Why a fit ended before its last epoch, in words; None when it ran them
    all. The engine stops once more than ``n_iter_no_change`` epochs in a row
    brought no improvement, so that is the count said."""
    if stop_reason is StopReason.CONVERGED:
        return f"stopped early: no improvement in {n_iter_no_change + 1} epochs"
    if stop_reason is StopReason.MIN_LEARNING_RATE:
        return "stopped early: the learning rate fell below its minimum"
    if stop_reason is StopReason.INTERRUPTED:
        return "interrupted"
    if stop_reason in (StopReason.NON_FINITE, StopReason.NON_FINITE_SCORE):
        return "stopped: the loss became non-finite"
    if stop_reason is StopReason.NON_FINITE_WEIGHTS:
        return "stopped: the weights became non-finite"
    return None


class _Silent:
    """The reporter of ``verbose=0``: does nothing."""

    def __call__(self, loss, score, learning_rate=None):
        pass

    def finish(self, stop_reason, n_iter_no_change):
        pass


class _Reporter:
    """One bar update (and, at ``verbose >= 2``, one log record) per epoch."""

    def __init__(self, bar, verbose, desc, first_epoch):
        self.bar, self.verbose, self.desc, self.epoch = bar, verbose, desc, first_epoch

    def __call__(self, loss, score, learning_rate=None):
        self.epoch += 1
        postfix = {"loss": f"{loss:.4g}"}
        if score is not None:
            # the validation score is a negative loss (higher is better)
            postfix["val_loss"] = f"{-score:.4g}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)
        if self.verbose >= 2:
            line = f"{self.desc}: epoch {self.epoch}, loss {loss:.6g}"
            if score is not None:
                line += f", validation loss {-score:.6g}"
            if learning_rate is not None:
                line += f", learning rate {learning_rate:.6g}"
            logger.info(line)

    def finish(self, stop_reason, n_iter_no_change):
        """End a bar stopped before ``total`` at the epochs run, saying why
        (so that it does not look interrupted at "30 % 60/200")."""
        message = stop_message(stop_reason, n_iter_no_change)
        if message is None:
            return
        self.bar.total = self.bar.n
        self.bar.set_description(f"{self.desc} ({message})", refresh=False)
        self.bar.refresh()


@contextmanager
def epoch_reporter(verbose, *, desc, total, first_epoch=0):
    """A reporter to call once per epoch, ``report(loss, validation_score,
    learning_rate=None)`` with the rate that epoch ran at, and once at the
    end, ``report.finish(stop_reason, n_iter_no_change)`` with the engine's
    reason to stop.

    Parameters
    ----------
    verbose : int
        0 silent, 1 progress bar, 2 bar and one log record per epoch.
    desc : str
        What is being trained, shown left of the bar and in each record.
    total : int
        Epochs at most (the bar's length; early stopping ends it sooner, and
        ``finish`` then shortens the bar to the epochs run).
    first_epoch : int
        Epochs completed before this call, so records count on from there.
    """
    if not verbose:
        yield _Silent()
        return
    # imported here: tqdm.auto warns at import in a notebook without ipywidgets
    from tqdm.auto import tqdm

    with _visible_records() if verbose >= 2 else nullcontext():
        bar = tqdm(total=total, desc=desc, unit="epoch", file=sys.stderr, dynamic_ncols=True)
        try:
            yield _Reporter(bar, verbose, desc, first_epoch)
        finally:
            bar.close()


#: The warning of a fit that Ctrl-C stopped (the detector's fold fits, quiet
#: otherwise, let it through)
INTERRUPTED = "Training interrupted by user."


def fit_quietly(estimator, X):
    """``estimator.fit(X)`` keeping its warnings to itself but Ctrl-C's,
    said again here under the caller's own filters (the detector's fold fits:
    its final fit says the rest, once); returns the estimator and the
    messages of the warnings kept."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        estimator.fit(X)
    if any(str(w.message) == INTERRUPTED for w in said):
        warnings.warn(INTERRUPTED, stacklevel=user_stacklevel())
    return estimator, [str(w.message) for w in said]


#: The message of :func:`report_kept_start` (the detector's fold models
#: leave it to its final model).
KEPT_START = "no epoch improved on the starting point's"


def report_kept_start(estimator, history, fresh, rows=None):
    """Say when no epoch beat the starting point (a fresh fit's is PCA's: one
    from random weights never keeps its start), or, from PCA's, none by the
    relative ``tol`` that early stopping counts as improving (a gain of
    rounding kept an epoch and said nothing), unless Ctrl-C stopped the fit:
    a warning, and at ``verbose >= 1`` a line on stderr. The model, the start
    or next to it, is sound, but this fit's training bought nothing; the
    advice names the estimator's penalty weights (a VAE's ``beta`` of 100
    keeps PCA on digits, where more epochs would not help), or, where PCA's
    squared error is within ``EXACT_SHARE`` of the spread of ``rows`` (a row
    source: all those given to fit, held-out ones too, as PCA's were: one
    training row has no spread), says nothing can beat it."""
    name, verbose, tol = type(estimator).__name__, estimator.verbose, estimator.tol
    if history.best_epoch is None or history.stop_reason is StopReason.INTERRUPTED:
        return
    kept = history.best_epoch == 0
    barely = fresh and not kept and not improves(*_best_and_start(history), tol)
    if not (kept or barely):
        return
    start = "PCA's" if fresh else "the previous fit's"
    message = f"{name}: {KEPT_START} ({start}) held-out error; the fit keeps it"
    if not kept:
        message = (
            f"{name}: {KEPT_START} ({start}) held-out error by more than tol ({tol:g} of "
            f"it); the fit keeps epoch {history.best_epoch}, as good"
        )
    if verbose:
        print(f"{message}.", file=sys.stderr)
    hint = _kept_pca_hint(estimator, history, rows) if fresh and kept else "."
    warnings.warn(f"{message}{hint}", KeptStartWarning, stacklevel=user_stacklevel())


def _kept_pca_hint(estimator, history, rows):
    """The end of :func:`report_kept_start`'s message for a kept PCA start:
    what the model is (by the estimator's loss), and either that nothing can
    beat an exact PCA or what may still beat it."""
    loss = getattr(estimator, "loss", None)
    logistic = "its start: PCA's codes, and PCA's reconstruction to first order"
    model = {
        "bce": logistic,
        "bernoulli": logistic,
        "gaussian": "PCA's (its codes divided by module_.input_scale, the prior's units)",
    }.get(loss, "PCA's")
    exact = loss in SQUARED_LOSSES and rows is not None and len(rows) > 1
    if exact and -history.start_score <= EXACT_SHARE * _spread(rows):
        return (
            f" (best_epoch_ is 0), so the fitted model is {model}, whose error is within "
            f"{EXACT_SHARE:g} of the rows' spread: PCA is exact here (the rows' rank is at "
            "most n_components) and nothing can beat it."
        )
    penalties = [
        f"a lower {weight} (now {value:g})"
        for weight in PENALTY_WEIGHTS
        if isinstance(value := getattr(estimator, weight, 0), Real) and value > 0
    ]
    return (
        f" (best_epoch_ is 0), so the fitted model is {model}; more epochs, patience "
        f"(n_iter_no_change), {''.join(p + ', ' for p in penalties)}or other settings may "
        "still beat it."
    )


#: The weights of the estimators' penalties, by parameter name.
PENALTY_WEIGHTS = ("sparsity_weight", "contraction_weight", "beta")


def what_to_lower(estimator, rate):
    """The settings a non-finite loss may come from, as a phrase:
    ``learning_rate`` (at ``rate``), and ``weight_decay`` and the penalty
    weights the estimator has where they are not 0."""
    names = [f"learning_rate (now {rate:g})"]
    for name in ("weight_decay", *PENALTY_WEIGHTS):
        value = getattr(estimator, name, 0)
        if isinstance(value, Real) and value > 0:
            names.append(f"{name} (now {value:g})")
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _best_and_start(history):
    """The best held-out score and the start's (-inf where none was scored)."""
    start = history.start_score
    return history.best_validation_score, -math.inf if start is None else start


#: Training rows (at most) that :func:`warn_if_no_better_than_mean` reads, and
#: values (at most: fewer rows of wide data), as an inference block holds.
DEGENERATE_ROWS, DEGENERATE_VALUES = 256, 2**22

#: The message of :func:`warn_if_no_better_than_mean` (the detector's fold
#: models leave it to its final model).
NO_BETTER_THAN_MEAN = "no better than their column means"

#: The share of the column means' error a network without a linear path
#: must beat: one whose code collapsed ends near it (1.0006-1.011 times it
#: over ten seeds on digits, from random weights at learning_rate=0.1), and
#: a collapse that ended a little under it passed as better. A PCA start's
#: linear path is judged at 1: PCA's own error may lie that near.
MEAN_MARGIN = 0.99


def spaced_positions(n_total, n, device):
    """``n >= 2`` evenly spaced positions from 0 to ``n_total - 1``, in integer
    steps (a float32 ``linspace`` rounds past the last row above 2**24 rows)."""
    return torch.arange(n, device=device) * (n_total - 1) // (n - 1)


def spaced_rows(rows, n_max):
    """At most ``n_max`` evenly spaced rows of the row source ``rows`` (the
    first and the last among them: ordered rows may be sorted), as a tensor
    on the source's device."""
    n_rows = min(len(rows), n_max)
    if n_rows < 2:
        return rows.take(slice(0, n_rows))
    return rows.take(spaced_positions(len(rows), n_rows, rows.device))


class ScoredStart(NamedTuple):
    """A PCA start scored on training rows, by :func:`scored_start`."""

    #: ``score() -> float`` of the module on the rows (higher is better)
    score: Callable[[], float]
    #: its score of the start
    start: float
    #: a loss in squared error per row (the score's negation) for mse and
    #: gaussian, whose gains this small are negligible: ``NEGLIGIBLE_SHARE``
    #: of the rows' mean squared distance to their means (0 for other losses)
    negligible: float


#: The share of the rows' spread (0.3 % of it in RMS) that
#: :func:`warn_if_worse_than_start` leaves alone: where PCA is exact or
#: nearly so, training without held-out rows adds a few millionths of it
#: (up to 2e-6 in 20 epochs at rates up to 0.03, rank 3), and had warned.
NEGLIGIBLE_SHARE = 1e-5

#: What :func:`report_kept_start` counts as an exact PCA: an error within
#: this share of the rows' spread (1e-4 of it in RMS: float32's rounding; one
#: column a thousand times the others' scale had passed 1e-4 of it).
EXACT_SHARE = 1e-8

#: The losses whose scores are squared errors per row in X's units.
SQUARED_LOSSES = ("mse", "gaussian")


def scored_start(estimator, module, X_train, unscored):
    """For :func:`warn_if_worse_than_start`, where no held-out rows score
    ``module``'s PCA start (``unscored``), a :class:`ScoredStart` on at most
    ``DEGENERATE_ROWS`` evenly spaced training rows; else None."""
    if not unscored or estimator.init != "pca" or len(X_train) < 2:
        return None
    rows = spaced_rows(X_train, DEGENERATE_ROWS)
    score = estimator._validation_score(module, rows)
    module.eval()
    squared = getattr(estimator, "loss", None) in SQUARED_LOSSES
    with torch.no_grad():
        return ScoredStart(score, score(), NEGLIGIBLE_SHARE * _spread(rows) if squared else 0.0)


def _spread(rows):
    """The mean squared distance to their column means of ``rows`` (a tensor,
    or a row source: at most ``DEGENERATE_ROWS`` of them, evenly spaced)."""
    if not isinstance(rows, torch.Tensor):
        rows = spaced_rows(rows, DEGENERATE_ROWS)
    rows = rows.double()
    return float((rows - rows.mean(0)).square().sum(1).mean())


def report_end_of_fit(estimator, module, history, start, rows, fresh, incremental):
    """What a fit that ended degenerate says: :func:`report_kept_start`,
    :func:`warn_if_worse_than_start` (``start`` from :func:`scored_start`)
    and, but for ``partial_fit``'s chunk (its own mean is no fair baseline,
    and a unit silent on it may fire on other rows),
    :func:`warn_if_a_layer_died` and :func:`warn_if_no_better_than_mean`, on
    ``rows``: (training, all). Ctrl-C while they run skips them, with a
    warning: the trained model is kept."""
    name, tol = type(estimator).__name__, estimator.tol
    try:
        report_kept_start(estimator, history, fresh, rows[1])
        warn_if_worse_than_start(name, start, history, tol)
        if not incremental:
            warn_if_a_layer_died(estimator, module, rows[0], history)
            warn_if_no_better_than_mean(name, module, rows[0], history, rows[1])
    except KeyboardInterrupt:
        warnings.warn(
            f"{name}: interrupted by the user while the fitted model was checked; the checks "
            "were skipped, the model is kept.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def warn_if_worse_than_start(name, start, history, tol):
    """Warn when a fresh fit that held no rows out (``start``, a
    :class:`ScoredStart`, or None when held-out rows judged the start) ends
    on its training rows no better than its PCA start by the relative
    ``tol``: early stopping would have kept the start, and without it nothing
    said so (a denoising model at a high ``noise_level`` had ended worse than
    PCA, silently). Not judged: an end worse by a negligible share of the
    rows' spread either way (``NEGLIGIBLE_SHARE``; squared-error losses
    only), and a fit Ctrl-C stopped."""
    if start is None or history.stop_reason is StopReason.INTERRUPTED:
        return
    with torch.no_grad():
        end = start.score()
    negligible = abs(start.start - end) <= start.negligible  # the same, to a hair
    if not math.isfinite(start.start) or improves(end, start.start, tol) or negligible:
        return
    how = (
        "worse than its PCA start did"
        if end < start.start
        else f"better than its PCA start by less than tol ({tol:g} of the start's score)"
    )
    warnings.warn(
        f"{name}: the fitted network reconstructs its training rows {how} (score {end:.7g} "
        f"against {start.start:.7g}, higher is better). With early_stopping=True (the "
        "default), the fit keeps the start when no epoch beats it on held-out rows.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


@contextmanager
def units_alive(module):
    """Inside, each plain ReLU of ``module`` (its hidden layers') records
    which of its units (features; channels, for convolutions) were positive
    on any row passed; yields ``{layer name: bool tensor}``."""
    alive = {}

    def record(name):
        def hook(_, __, out):
            units = (out > 0).transpose(0, 1).reshape(out.shape[1], -1).any(1)
            alive[name] = units | alive[name] if name in alive else units

        return hook

    relus = [(n, m) for n, m in module.named_modules() if type(m) is torch.nn.ReLU]
    hooks = [m.register_forward_hook(record(n)) for n, m in relus]
    try:
        yield alive
    finally:
        for hook in hooks:
            hook.remove()


#: Training rows (at most) that :func:`warn_if_a_layer_died` reads: a unit
#: that fires on few rows is more likely among them than among 256.
DEAD_UNIT_ROWS = 2048


@torch.no_grad()
def warn_if_a_layer_died(estimator, module, rows, history):
    """Warn when every ReLU unit of a hidden layer of the fitted ``module``
    is zero on the training ``rows`` checked (at most ``DEAD_UNIT_ROWS``,
    evenly spaced): dead, no gradient reaches them again, and the non-linear
    path adds a constant at most. ``learning_rate=0.1`` killed the encoder's
    100 units on digits silently (from random weights in each of 8 seeds;
    beside the PCA start's linear path 98-100 of them, the model staying
    PCA-like). Units dead in part are common (41-90 % of the encoder's in
    default fits on digits) and are not judged. Not judged: a fit Ctrl-C
    stopped, and modules without a decoder (the imputer's)."""
    stopped = history.stop_reason is StopReason.INTERRUPTED
    if not hasattr(module, "decode") or len(rows) < 1 or stopped:
        return
    x = spaced_rows(rows, min(DEAD_UNIT_ROWS, max(1, DEGENERATE_VALUES // rows.n_features)))
    module.eval()
    with units_alive(module) as alive:
        module.decode(module.encode(x.to(next(module.parameters()).device)))
    dead = [(layer, len(units)) for layer, units in alive.items() if not units.any()]
    if dead:
        layer, n_units = dead[0]
        path = "decoder's" if layer.startswith("decoder") else "encoder's"
        warnings.warn(
            f"{type(estimator).__name__}: every one of the {n_units} ReLU units of the hidden "
            f"layer module_.{layer} is zero on every training row checked (dead: no gradient "
            f"reaches them again), so the {path} non-linear path adds a constant at most. "
            f"Causes seen: a learning rate too large (learning_rate={estimator.learning_rate!r}"
            "); a smaller one, or activation='leaky_relu' or 'elu', keeps units alive.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def warn_not_converged(max_iter):
    """scikit-learn's warning when ``fit`` ran all ``max_iter`` epochs."""
    warnings.warn(
        f"Stochastic Optimizer: Maximum iterations ({max_iter}) reached and "
        "the optimization hasn't converged yet.",
        ConvergenceWarning,
        stacklevel=user_stacklevel(),
    )


@torch.no_grad()
def warn_if_no_better_than_mean(name, module, rows, history, all_rows=None):
    """Warn when a fitted network reconstructs its training ``rows`` (a row
    source; at most ``DEGENERATE_ROWS`` of them, evenly spaced, as ordered
    rows may be sorted) no better than their column means: its code carries
    nothing. A learning rate that diverged without reaching inf, a penalty
    that outweighs the reconstruction, or a collapse to one code had all
    ended a fit silently. Where early stopping left one training row (no
    spread to beat), ``all_rows``, the held-out ones too, and the message
    says so. Not judged: a fit Ctrl-C stopped (``history``'s stop reason),
    and modules without a decoder (the imputer's)."""
    one_row = len(rows) < 2 and all_rows is not None
    rows = all_rows if one_row else rows
    stopped = history.stop_reason is StopReason.INTERRUPTED
    if not hasattr(module, "decode") or len(rows) < 2 or stopped:
        return
    n_rows = min(DEGENERATE_ROWS, max(2, DEGENERATE_VALUES // rows.n_features))
    x = spaced_rows(rows, n_rows).to(next(module.parameters()).device)
    error = float((module.decode(module.encode(x)) - x).double().square().sum(1).mean())
    spread = _spread(x)
    # rows all alike (spread 0): their mean is exact, and an error past a
    # millionth of their mean square (float32's rounding is far below) is none;
    # all zeros (their mean, 0, exact too): a millionth of the mean square of
    # every row given (one early stopping held out set the PCA start's mean)
    if spread == 0:
        square = float(x.double().square().sum(1).mean())
        if not square and all_rows is not None:
            square = root_mean_square(all_rows) ** 2 * all_rows.n_features
        spread = 1e-6 * square or float(torch.finfo().tiny)
    margin = 1.0 if module.has_linear_path else MEAN_MARGIN
    if spread > 0 and not error < margin * spread:
        warnings.warn(
            f"{name}: the fitted network reconstructs its training rows {NO_BETTER_THAN_MEAN} "
            f"(squared error {error:.4g} per row against {spread:.4g}"
            + ("" if margin == 1 else f"; under {margin:g} of it counts as better")
            + "). "
            + (
                f"Early stopping held out {len(rows) - 1} of the {len(rows)} rows and "
                "trained on one (early_stopping=False trains on every row)."
                if one_row
                else "Causes seen: a learning rate that diverged, a penalty that outweighs "
                "the reconstruction, too few epochs, or, with loss='bce' or 'bernoulli', "
                "a start that the logistic output makes worse than PCA's."
            ),
            UserWarning,
            stacklevel=user_stacklevel(),
        )
