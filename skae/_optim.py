"""Optimisers and learning-rate schedules: built by name, copied for a call
that continues from another, and converted to and from plain data for the
fitted state. Torch and numpy only (no scikit-learn)."""

import copy
import math
import warnings
from contextlib import contextmanager
from numbers import Real

import numpy as np
import torch

from ._copying import copy_optimizer_state
from ._device import to_numpy
from ._warnings import user_stacklevel

#: ``learning_rate_schedule="plateau"`` stops once the rate falls below this
#: fraction of ``learning_rate`` (MLPRegressor's "adaptive" stops at 1e-6).
MIN_LEARNING_RATE_FRACTION = 1e-6

#: ``batch_size="auto"``: this many rows (or all, if fewer) up to
#: ``AUTO_BATCH_SIZE * AUTO_BATCHES_PER_EPOCH`` training rows, then that
#: many batches an epoch, at most ``AUTO_MAX_BATCH_SIZE`` rows each.
AUTO_BATCH_SIZE, AUTO_BATCHES_PER_EPOCH, AUTO_MAX_BATCH_SIZE = 64, 32, 256
AUTO_BATCHES = (AUTO_BATCHES_PER_EPOCH, AUTO_MAX_BATCH_SIZE)

#: ``learning_rate="auto"`` at ``AUTO_BATCH_SIZE`` rows a batch.
AUTO_LEARNING_RATE = 5e-3

#: The counters of a ``ReduceLROnPlateau`` that ``partial_fit`` carries from
#: one call to the next (its settings come from the parameters of each call).
PLATEAU_PROGRESS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")


#: The fraction of each optimiser step that init="pca"'s linear path takes
#: (:func:`shortened_steps`): at PCA's solution the reconstruction's gradient
#: on it is noise, which Adam scales up to whole steps, and at the full rate
#: it drifted off PCA before the non-linear paths had learned anything.
LINEAR_PATH_STEP = 0.3


def auto_batch_size(n_rows, batches=AUTO_BATCHES_PER_EPOCH, largest=AUTO_MAX_BATCH_SIZE):
    """``batch_size="auto"`` for ``n_rows`` training rows: 64 on small data
    (all rows below 64), else ``batches`` batches an epoch, at most
    ``largest`` rows each: on large data sets fewer, larger steps cost less
    per epoch."""
    return min(n_rows, max(AUTO_BATCH_SIZE, min(largest, n_rows // batches)))


def resolved_batch_size(
    batch_size, n_rows, batches=AUTO_BATCHES_PER_EPOCH, largest=AUTO_MAX_BATCH_SIZE
):
    """The rows per batch for ``batch_size`` ("auto", as
    :func:`auto_batch_size`, or an int) on ``n_rows`` training rows: an int
    above ``n_rows`` is clipped to it with MLPRegressor's warning."""
    if batch_size == "auto":
        return auto_batch_size(n_rows, batches, largest)
    if batch_size > n_rows:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
            stacklevel=user_stacklevel(),
        )
        return n_rows
    return batch_size


def global_batch_size(batch_size, n_rows, shard, setting):
    """The rows of a global batch: the ranks' (``shard``, None alone)
    batches of ``batch_size`` rows (resolved), at most the ``n_rows``
    training rows, as one process clips its batch (with its warning where
    the user set the size: ``setting``, the ``batch_size`` parameter, not
    "auto"); the rate follows it. Ranks whose batches outnumbered the rows
    had trained at the rate of a batch they never formed."""
    if shard is None:
        return batch_size
    if setting != "auto":
        return resolved_batch_size(batch_size * shard.world_size, n_rows)
    return min(batch_size * shard.world_size, n_rows)


def auto_learning_rate(batch_size, largest=AUTO_MAX_BATCH_SIZE):
    """``learning_rate="auto"`` for batches of ``batch_size`` rows (the global
    batch in data-parallel training): ``AUTO_LEARNING_RATE`` up to 64 rows,
    times the square root of ``batch_size / 64`` up to ``largest`` rows, and
    as at ``largest`` above. The noise of Adam's gradient estimate shrinks
    with larger batches, which take larger steps; smaller ones keep the rate
    the defaults were chosen at, larger ones the largest rate measured."""
    rows = min(max(batch_size, AUTO_BATCH_SIZE), largest)
    return AUTO_LEARNING_RATE * math.sqrt(rows / AUTO_BATCH_SIZE)


@contextmanager
def shortened_steps(optimizer, parameters, fraction):
    """Within the block, each step of ``optimizer`` moves ``parameters`` by
    ``fraction`` of the step it computes for them: for adam, adamw and sgd
    (with or without momentum and weight decay) the same as a learning rate
    ``fraction`` times the others', their moments untouched. The hooks copy
    the parameters into buffers allocated once, and are removed on leaving."""
    parameters = list(parameters)
    if not parameters:
        yield
        return
    current = [p.detach() for p in parameters]  # views: they follow every step
    before = [p.clone() for p in current]

    def remember(*_):
        torch._foreach_copy_(before, current)

    def shorten(*_):
        with torch.no_grad():  # p <- before + fraction * (p - before)
            torch._foreach_lerp_(parameters, before, 1.0 - fraction)

    handles = [optimizer.register_step_pre_hook(remember)]
    handles.append(optimizer.register_step_post_hook(shorten))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


#: Adam's epsilon (torch's default): the training loss is in the layers'
#: units (:class:`skae.nn.FoldedLoss`), its gradients at unit scale.
ADAM_EPS = 1e-8


def make_optimizer(name, params, *, learning_rate, weight_decay, device, eps=ADAM_EPS):
    """Adam, AdamW (with epsilon ``eps``) or SGD with Nesterov momentum 0.9
    (MLPRegressor's default).

    Fused kernels on CPU and CUDA: one kernel per step instead of one per
    parameter tensor.
    """
    fused = torch.device(device).type in ("cpu", "cuda")
    adam = {"lr": learning_rate, "weight_decay": weight_decay, "eps": eps, "fused": fused}
    if name == "adam":
        return torch.optim.Adam(params, **adam)
    if name == "adamw":
        return torch.optim.AdamW(params, **adam)
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=learning_rate,
            momentum=0.9,
            nesterov=True,
            weight_decay=weight_decay,
            fused=fused,
        )
    raise ValueError(f"unknown optimizer {name!r}")


#: optimiser class -> the name :func:`make_optimizer` builds it from
OPTIMIZER_NAMES = {torch.optim.Adam: "adam", torch.optim.AdamW: "adamw", torch.optim.SGD: "sgd"}


def copy_optimizer(optimizer, params, *, device):
    """A new optimiser of ``optimizer``'s kind over ``params`` (a copy of the
    parameters it steps, in the same order), with a deep copy of its state:
    stepping the copy leaves ``optimizer`` untouched."""
    group = optimizer.param_groups[0]
    copied = make_optimizer(
        OPTIMIZER_NAMES[type(optimizer)],
        params,
        learning_rate=group["lr"],
        weight_decay=group["weight_decay"],
        device=device,
        eps=group.get("eps", ADAM_EPS),
    )
    # load_state_dict keeps the given tensors (moved to the parameters'
    # device), and the step updates them in place
    if not copy_optimizer_state(optimizer, copied):
        copied.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    return copied


def new_scheduler(schedule, optimizer, max_iter, *, patience, tol, relative=True):
    """The ``torch.optim.lr_scheduler`` that ``schedule`` (the
    ``learning_rate_schedule`` parameter) names, over ``max_iter`` epochs, or
    None for "constant"; "plateau" waits ``patience`` epochs without an
    improvement by ``tol`` (``relative``: times the best value, as early
    stopping counts one) before dividing the rate by 10."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_iter)
    if schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=0.1,
            patience=patience,
            threshold=0.0 if relative else tol,
            threshold_mode="abs",
            eps=0.0,  # torch's default 1e-8 would stop dividing small rates
        )
        # relative: the absolute threshold is set to tol times the best value's
        # magnitude before each step (:func:`skae._engine.step_scheduler`);
        # torch's own "rel" mode counts a worse value as better below zero
        scheduler.relative_tol = tol if relative else None
        return scheduler
    return None


def min_learning_rate(scheduler, learning_rate, fraction=MIN_LEARNING_RATE_FRACTION):
    """The rate below which training stops: ``fraction`` of ``learning_rate``
    under a ``ReduceLROnPlateau``, else 0."""
    if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return 0.0
    # less a rounding margin: a rate divided by 10 six times is at the
    # floor, not below it, however its last bits round
    return learning_rate * fraction * (1 - 1e-9)


def plateau_progress(scheduler, *, validated=False):
    """What :meth:`BaseAutoencoder._starting_scheduler` continues a
    ``ReduceLROnPlateau`` from (plain data), or None for other schedules.
    ``validated``: the scheduler followed a validation score, which the next
    ``partial_fit`` (on its training loss) cannot be compared with: its best
    and bad epochs start afresh, its rate and cooldown carry over."""
    if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return None
    state = scheduler.state_dict()
    progress = {key: state[key] for key in PLATEAU_PROGRESS}
    if validated:
        progress.update(best=scheduler.mode_worse, num_bad_epochs=0)
    return progress


def optimizer_state(optimizer):
    """An optimiser as plain data: its kind, and its state dict with arrays
    for tensors and str keys."""
    state = optimizer.state_dict()
    return {
        "kind": OPTIMIZER_NAMES[type(optimizer)],
        "param_groups": state["param_groups"],
        "state": {
            str(index): {key: to_numpy(v) if torch.is_tensor(v) else v for key, v in values.items()}
            for index, values in state["state"].items()
        },
    }


def restored_optimizer(saved, module, device):
    """The optimiser :func:`optimizer_state` described, over ``module``'s
    parameters, with its moments."""
    try:
        optimizer = make_optimizer(
            saved["kind"], module.parameters(), learning_rate=1.0, weight_decay=0.0, device=device
        )
        state = {
            int(index): {
                key: torch.tensor(np.asarray(v)) if isinstance(v, np.ndarray) else v
                for key, v in values.items()
            }
            for index, values in saved["state"].items()
        }
        groups = [dict(group) for group in saved["param_groups"]]
        check_optimizer_state(groups, state, list(module.parameters()))
        check_moments(state, MOMENTS[saved["kind"]])
        check_group_settings(groups, optimizer.defaults)
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"The saved optimiser state does not fit the module: {exc}") from exc
    return optimizer


def check_optimizer_state(groups, state, parameters):
    """Refuse (ValueError) a saved optimiser state that does not describe
    ``parameters``: the groups must list each parameter's index once, and
    each moment must have its parameter's shape. torch does not check
    either, and a fused step over a moment of another shape writes out of
    bounds (a crash, not an error)."""
    indices = [index for group in groups for index in group["params"]]
    if sorted(indices) != list(range(len(parameters))):
        raise ValueError(f"its parameter indices {indices} are not 0 to {len(parameters) - 1}")
    for index, values in state.items():
        if index not in range(len(parameters)):
            raise ValueError(f"it holds moments of parameter {index}, of {len(parameters)}")
        shape = tuple(parameters[index].shape)
        for key, value in values.items():
            if key == "step":
                count = value.reshape(-1)[:2].tolist() if torch.is_tensor(value) else [value]
                if len(count) != 1 or not _setting_number(count[0]):
                    raise ValueError(f"the step count of parameter {index} is not one count")
            elif value is not None and tuple(getattr(value, "shape", ())) != shape:
                raise ValueError(f"its {key} of parameter {index} is not of shape {shape}")


#: The moments a parameter's state holds once stepped, per optimiser name
#: (SGD's momentum buffer torch makes where it is missing; Adam's it reads).
MOMENTS = {"adam": {"step", "exp_avg", "exp_avg_sq"}, "sgd": set()}
MOMENTS["adamw"] = MOMENTS["adam"]


def check_moments(state, required):
    """Refuse a parameter's saved state that holds some of the ``required``
    moments but not all (none: never stepped): it loaded, and the next step
    failed with torch's KeyError."""
    for index, values in state.items():
        missing = sorted(required - set(values))
        if values and missing:
            raise ValueError(f"the moments of parameter {index} lack {missing}")


def _numeric_setting(value):
    """Whether a default setting is a number (not a bool) or a tuple."""
    return isinstance(value, (Real, tuple)) and not isinstance(value, bool)


def _setting_number(value):
    """A finite, non-negative real (not a bool): a rate, a decay, a count."""
    return isinstance(value, Real) and not isinstance(value, bool) and 0 <= value < math.inf


def check_group_settings(groups, defaults):
    """Refuse (ValueError) saved parameter-group settings that the optimiser
    ``defaults`` (a fresh one's) say cannot be: a rate, decay or epsilon
    that is no finite non-negative number, coefficients (``betas``) that are
    not as many numbers in [0, 1), a flag other than the fresh one's (but
    ``foreach`` and ``fused``, which torch and the device choose). Such states
    loaded and then failed in the first step with torch's or Python's own
    error. A setting the defaults do not name (another torch's) is left."""
    # the numbers torch does not fill in where a state lacks them (its flags,
    # bools, it does: another torch's states lack some)
    required = ["lr", *(key for key, value in defaults.items() if _numeric_setting(value))]
    for group in groups:
        for key in required:
            if key not in group:
                raise ValueError(f"its parameter group has no {key!r}")
        for key, value in group.items():
            default = defaults.get(key, 0.0 if key == "initial_lr" else None)
            if isinstance(default, bool) and key not in FLAGS_MAYBE_NONE:
                # skae sets each flag as make_optimizer does: amsgrad needs a
                # moment it never saves, differentiable fails the fused step
                fits = value is default
            elif isinstance(default, bool):
                fits = isinstance(value, bool) or value is None
            elif isinstance(default, Real):
                fits = _setting_number(value)
            elif isinstance(default, tuple):
                fits = isinstance(value, (tuple, list)) and len(value) == len(default)
                fits = fits and all(_setting_number(v) and v < 1 for v in value)
            else:  # None (foreach, and fused where torch chooses) or unknown here
                fits = key not in defaults or value is None or isinstance(value, bool)
            if not fits:
                raise ValueError(f"its {key} is {value!r}")


#: Flags torch saves as None where it chose for itself.
FLAGS_MAYBE_NONE = ("foreach", "fused")
