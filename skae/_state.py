"""The fitted state as plain data, and the one way back.

:data:`SCHEMA` says, for each fitted attribute that is not plain data already,
how it is exported, checked and imported. Pickling, ``copy.deepcopy``,
``skops``, ``skae.save``/``skae.load`` and the converter of format 1 files all
go through :func:`export_state` and :func:`import_state`, so every load path
runs the same checks: among them, that the saved weights fit the network the
saved build parameters and ``n_features_in_`` describe. :func:`warn_on_version_change`
is the one policy for states written under other versions. Torch and numpy
only (no scikit-learn).
"""

import functools
import importlib.metadata
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from ._device import available_device, to_numpy
from ._optim import PLATEAU_PROGRESS, optimizer_state, restored_optimizer
from ._random import rng_from_state
from ._warnings import user_stacklevel

#: Bumped whenever the exported fitted state changes shape; ``_import_state``
#: and ``skae.load`` refuse states of other versions with a message.
STATE_VERSION = 3

#: Versions :func:`import_state` reads: before 3 the optimiser stepped on the
#: loss in X's units, and its moments are dropped where the module scales X.
READABLE_STATE_VERSIONS = (2, STATE_VERSION)

#: The packages whose versions change results; a state written under other
#: versions loads with a warning.
CHECKED_VERSIONS = ("skae", "torch", "scikit-learn")


def is_fitted_name(name):
    """scikit-learn's rule: fitted attributes end in "_" (and are not dunder).
    skae's private fitted state follows it too (``_rng_``, ``_optimizer_``,
    ``_build_params_``), so this one rule says what is fitted."""
    return name.endswith("_") and not name.startswith("__")


def module_weights(module):
    """``{"weights": {name: array}, "aliases": {name: name kept}}``: the state
    dict with tensors that are the same tensor as an earlier entry (tied
    weights) kept once."""
    weights, aliases, seen = {}, {}, {}
    for key, tensor in module.state_dict().items():
        identity = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
            tensor.dtype,
        )
        kept = seen.setdefault(identity, key)
        if kept != key:
            aliases[key] = kept
        else:
            weights[key] = to_numpy(tensor)
    return {"weights": weights, "aliases": aliases}


def check_weight_shapes(module, saved):
    """A ValueError when the saved weights are not those ``module`` (on any
    device, the meta one included) holds: other names, or other shapes. On
    the meta module it refuses a file before its network is built (a build
    record edited to describe a huge one, without its weights, had the
    network allocated first)."""
    shapes = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    held = set(saved["weights"]) | set(saved["aliases"])
    # "input_scale": saved before modules had one (load_module_weights adds it)
    missing, unexpected = sorted(set(shapes) - held - {"input_scale"}), sorted(held - set(shapes))
    if missing or unexpected:
        raise ValueError(
            f"The saved weights do not fit the module: missing {missing}, unexpected {unexpected}."
        )
    for key, array in saved["weights"].items():
        if key in shapes and np.shape(array) != shapes[key]:
            raise ValueError(
                f"Weight {key!r} has shape {np.shape(array)} in the saved state; the module "
                f"expects {shapes[key]}."
            )


def load_module_weights(module, saved):
    """Copy saved weights into ``module``; a clear ValueError when they do not
    fit it (other tied weights, shapes or dtypes). Their names were compared
    by :func:`check_weight_shapes`, on the meta module, before ``module`` was
    built."""
    expected = module_weights(module)
    if saved["aliases"] != expected["aliases"]:
        raise ValueError(
            f"The saved tied weights {saved['aliases']} do not match the module's "
            f"{expected['aliases']}."
        )
    weights, shapes = saved["weights"], expected["weights"]
    if "input_scale" in shapes and "input_scale" not in weights:
        # saved before modules had an input scale: they worked at scale 1
        weights = {**weights, "input_scale": np.ones((), dtype=shapes["input_scale"].dtype)}
    for key, array in weights.items():
        array = np.asarray(array)
        if array.shape != shapes[key].shape or array.dtype != shapes[key].dtype:
            raise ValueError(
                f"Weight {key!r} has shape {array.shape} and dtype {array.dtype} in the saved "
                f"state; the module expects {shapes[key].shape} and {shapes[key].dtype}."
            )
    full = {key: torch.tensor(np.asarray(array)) for key, array in weights.items()}
    full.update({alias: full[kept] for alias, kept in saved["aliases"].items()})
    module.load_state_dict(full, strict=True)


# ------------------------------------------------------------ the schema


@dataclass(frozen=True)
class Field:
    """How one fitted attribute is exported to plain data, checked, and
    imported (``restore(saved, restored, context)``, where ``restored`` holds
    the attributes imported before it, in :data:`SCHEMA` order)."""

    export: Callable[[Any], Any]
    check: Callable[[Any], str | None]
    restore: Callable[[Any, dict, "Context"], Any]


@dataclass(frozen=True)
class Context:
    """What importing needs from the estimator: its class name (for
    messages) and ``architecture(build_params, n_features)``, an untrained
    module shaped as ``fit`` builds it."""

    name: str
    architecture: Callable[[dict, int], torch.nn.Module]


def _positive_int(value):
    # below 2**62: a count past int64 overflowed torch's shapes, with its C++ stack
    if isinstance(value, Integral) and not isinstance(value, bool) and 1 <= value < 2**62:
        return None
    return f"must be a positive int below 2**62; got {value!r}"


def _mapping(value):
    return None if isinstance(value, dict) else f"must be a mapping; got {value!r}"


def _device_name(value):
    return None if isinstance(value, str) else f"must be a device name; got {value!r}"


def _saved_weights(value):
    if isinstance(value, dict) and set(value) == {"weights", "aliases"}:
        if all(isinstance(value[key], dict) for key in value):
            return None
    return "does not fit a module: it must map 'weights' and 'aliases' to mappings"


def _same(value):
    return value


def _is_real(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def _count(value):
    if isinstance(value, Integral) and not isinstance(value, bool) and value >= 0:
        return None
    return f"must be a non-negative int; got {value!r}"


def _optional(check):
    return lambda value: None if value is None else check(value)


def _real(value):
    return None if _is_real(value) else f"must be a number; got {value!r}"


def _reals(value):
    if isinstance(value, list) and all(map(_is_real, value)):
        return None
    return f"must be a list of numbers; got {type(value).__name__}"


def _curves(value):
    if isinstance(value, list) and not any(map(_reals, value)):
        return None
    return "must be a list of lists of numbers"


def _names(value):
    if isinstance(value, np.ndarray) and value.ndim == 1 and all(isinstance(v, str) for v in value):
        return None
    return "must be a 1-D array of column names"


def _restore_names(saved, restored, context):
    if len(saved) != restored["n_features_in_"]:
        raise ValueError(
            f"{context.name}: the saved feature_names_in_ names {len(saved)} columns, "
            f"but n_features_in_ is {restored['n_features_in_']}."
        )
    return saved


def _plateau_progress(value):
    """A ``ReduceLROnPlateau``'s progress (:func:`skae._optim.plateau_progress`)."""
    if isinstance(value, dict) and set(value) == set(PLATEAU_PROGRESS):
        if all(_is_real(v) and not math.isnan(v) for v in value.values()):
            return None
    return f"must map {list(PLATEAU_PROGRESS)} to numbers; got {value!r}"


def _plain(check):
    """A plain-data attribute: exported and imported as it is, checked."""
    return Field(_same, check, lambda saved, restored, context: saved)


def _restore_module(saved, restored, context):
    """The module ``architecture`` builds from the saved build parameters
    and width, with the saved weights, on the restored device."""
    build_params, n_features = restored["_build_params_"], restored["n_features_in_"]
    try:
        with torch.device("meta"):  # shapes alone, nothing allocated
            shaped = context.architecture(build_params, n_features)
    except ValueError as exc:
        raise ValueError(
            f"{context.name}: the saved n_features_in_={n_features} and build parameters "
            f"do not describe a network: {exc}"
        ) from None
    try:
        # a width or layer edited by hand is refused before its network is built
        check_weight_shapes(shaped, saved)
        module = context.architecture(build_params, n_features)
        load_module_weights(module, saved)
    except ValueError as exc:
        described = ", ".join(f"{k}={v!r}" for k, v in sorted(build_params.items()))
        raise ValueError(
            f"{context.name}: the saved weights do not fit the network that the saved "
            f"n_features_in_={n_features} and build parameters ({described}) describe: {exc}"
        ) from None
    return module.to(restored["device_"])


def _restore_optimizer(saved, restored, context):
    if saved is None:
        return None
    return restored_optimizer(saved, restored["module_"], restored["device_"])


#: fitted attribute -> how it is exported, checked and imported; imported in
#: this order (the module needs the build parameters, the width and the
#: device; the optimiser needs the module). :data:`REQUIRED` lists those a state must hold.
SCHEMA = {
    "n_features_in_": Field(_same, _positive_int, lambda saved, restored, context: saved),
    "_build_params_": Field(_same, _mapping, lambda saved, restored, context: dict(saved)),
    "device_": Field(
        str, _device_name, lambda saved, restored, context: available_device(saved, context.name)
    ),
    "module_": Field(module_weights, _saved_weights, _restore_module),
    "feature_names_in_": Field(_same, _names, _restore_names),
    "n_iter_": _plain(_count),
    "loss_curve_": _plain(_reals),
    "validation_scores_": _plain(_optional(_reals)),
    "pretraining_loss_curves_": _plain(_curves),
    "best_loss_": _plain(_optional(_real)),
    "best_validation_score_": _plain(_optional(_real)),
    "init_validation_score_": _plain(_optional(_real)),
    "best_epoch_": _plain(_optional(_count)),
    "batch_size_": _plain(_positive_int),
    "_rng_": Field(
        lambda rng: rng.bit_generator.state,
        _mapping,
        lambda saved, restored, context: rng_from_state(saved),
    ),
    "_optimizer_": Field(
        lambda optimizer: None if optimizer is None else optimizer_state(optimizer),
        _optional(_mapping),
        _restore_optimizer,
    ),
    "_plateau_progress_": _plain(_optional(_plateau_progress)),
}


def export_state(attributes):
    """The fitted ``attributes`` as plain data: str-keyed dicts, lists,
    tuples, numbers, strings, None and numpy arrays (CPU), nothing else."""
    exported = {
        name: SCHEMA[name].export(value) if name in SCHEMA else value
        for name, value in attributes.items()
    }
    return {"version": STATE_VERSION, "attributes": exported}


def check_state(state, name):
    """What :func:`import_state` relies on, checked with clear messages
    (ValueError): the version, fitted attribute names, the required
    attributes and the form of each one in :data:`SCHEMA`."""
    if not isinstance(state, dict) or state.get("version") not in READABLE_STATE_VERSIONS:
        found = state.get("version") if isinstance(state, dict) else None
        raise ValueError(
            f"{name}: the saved fitted state has version {found!r}; this skae "
            f"({skae_version()}) reads versions {list(READABLE_STATE_VERSIONS)}."
        )
    attributes = state.get("attributes")
    if not isinstance(attributes, dict) or not all(map(is_fitted_name, attributes)):
        raise ValueError(
            f"{name}: the saved fitted state must map fitted attribute names to values."
        )
    missing = [key for key in REQUIRED if key not in attributes]
    if missing:
        raise ValueError(f"{name}: the saved fitted state lacks {missing}.")
    for key, field in SCHEMA.items():
        problem = field.check(attributes[key]) if key in attributes else None
        if problem:
            raise ValueError(f"{name}: the saved {key} {problem}.")
    return attributes


def import_state(state, context):
    """The fitted attributes :func:`export_state` described, checked by
    :func:`check_state` and converted back (the module built by
    ``context.architecture`` with the weights loaded, the optimiser rebuilt
    with its moments, on the saved device when it exists here, else the CPU
    with a warning)."""
    restored = dict(check_state(state, context.name))
    for key, field in SCHEMA.items():
        if key in restored:
            restored[key] = field.restore(restored[key], restored, context)
    if state["version"] < 3 and getattr(restored["module_"], "loss_scale", 1.0) != 1.0:
        # moments of gradients in X's units, s^2 (and s^4) times those the
        # optimiser now takes: partial_fit starts a new one
        restored["_optimizer_"] = None
    return restored


# ------------------------------------------------------------- history


#: The history attributes each call continues from (the fresh values).
HISTORY = {
    "n_iter_": 0,
    "loss_curve_": [],
    "best_loss_": None,
    "validation_scores_": None,
    "best_validation_score_": None,
}


#: The attributes a saved state must hold: the model's, and what partial_fit
#: and a warm start continue from (a state without them loaded, then failed
#: there with an AttributeError).
REQUIRED = (
    "n_features_in_",
    "_build_params_",
    "device_",
    "module_",
    *HISTORY,
    "batch_size_",
    "_rng_",
)


def starting_history(estimator):
    """The history attributes a call continues from: ``estimator``'s, or
    the fresh ones for None (a fit from scratch)."""
    if estimator is None:
        return {**HISTORY, "loss_curve_": []}  # a list of its own
    return {name: getattr(estimator, name) for name in HISTORY}


def unscored_epochs(estimator):
    """The end-to-end epochs of ``estimator`` (None: a fit from scratch) that
    no entry of its ``validation_scores_`` covers."""
    if estimator is None:
        return 0
    pretrained = sum(map(len, getattr(estimator, "pretraining_loss_curves_", ())))
    scored = len(estimator.validation_scores_ or ())
    return estimator.n_iter_ - pretrained - scored


def merged_history(estimator, history, early_stopping):
    """The history attributes of ``estimator`` (None: a fit from scratch)
    extended by one engine run (a :class:`skae._engine.History`).

    ``validation_scores_`` keeps one entry per end-to-end epoch once any call
    has scored one, NaN for the epochs trained without a validation score (a
    ``partial_fit``, or a warm start with ``early_stopping`` off), so that entry
    ``i`` always belongs to the same epoch.
    """
    previous = starting_history(estimator)
    merged = dict(previous)
    merged["n_iter_"] += history.n_iter
    merged["loss_curve_"] = previous["loss_curve_"] + history.loss_curve
    merged["best_epoch_"] = history.best_epoch if early_stopping else None
    merged["init_validation_score_"] = history.start_score
    scores = previous["validation_scores_"]
    if scores is not None and not early_stopping:
        merged["validation_scores_"] = scores + [np.nan] * history.n_iter
    if early_stopping:
        best = previous["best_validation_score_"]
        merged["validation_scores_"] = (
            (scores or []) + [np.nan] * unscored_epochs(estimator) + history.validation_scores
        )
        # this call's: its weights are this call's best (a warm start scores
        # its start, the last model, among them); a maximum over the calls
        # had named a score that weights since moved by partial_fit lost
        this_call = history.best_validation_score
        merged["best_validation_score_"] = (
            this_call if math.isfinite(this_call) or best is None else best
        )
        merged["best_loss_"] = None
    else:  # no validation: no best score of this call's weights (nor best epoch)
        merged["best_validation_score_"] = None
        if history.n_iter:
            best = previous["best_loss_"]
            merged["best_loss_"] = min(np.inf if best is None else best, history.best_loss)
    return merged


# ------------------------------------------------------------ versions


@functools.cache
def _installed(package):
    return importlib.metadata.version(package)


def running_versions():
    """The versions of :data:`CHECKED_VERSIONS` running here."""
    return {
        "skae": skae_version(),
        "torch": torch.__version__,
        "scikit-learn": _installed("scikit-learn"),
    }


def warn_on_version_change(saved, name):
    """The one version policy, for pickles and files alike: a state written
    under another version of a package in :data:`CHECKED_VERSIONS` (``saved``
    maps those it knows to their versions) loads, with one warning per package
    naming both versions."""
    running = running_versions()
    for package in CHECKED_VERSIONS:
        if package in saved and saved[package] != running[package]:
            warnings.warn(
                f"This {name} was saved with {package} {saved[package]} and is loaded "
                f"with {package} {running[package]}; its results may differ.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )


def skae_version():
    import skae

    return skae.__version__
