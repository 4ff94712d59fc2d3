"""Input validation and array namespaces: the one module of skae that imports
scikit-learn's private helpers (``_fit_context``, ``sklearn.utils._array_api``,
``sklearn.utils._param_validation``), so that a change in them is mended here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from numbers import Integral
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn import get_config
from sklearn.utils import _safe_indexing
from sklearn.utils._array_api import (
    _is_numpy_namespace,
    _is_xp_namespace,
    get_namespace,
    get_namespace_and_device,
    move_to,
)
from sklearn.utils._mask import _get_mask
from sklearn.utils._missing import is_scalar_nan
from sklearn.utils._param_validation import HasMethods, InvalidParameterError, StrOptions
from sklearn.utils._param_validation import Interval as _Interval
from sklearn.utils.validation import _check_feature_names_in, validate_data

from ._losses import UNIT_INTERVAL_LOSSES
from ._warnings import user_stacklevel

if TYPE_CHECKING:
    _F = TypeVar("_F", bound=Callable[..., Any])

    # scikit-learn ships no type information: declared here so that type
    # checkers see that the decorated fit methods keep their signatures
    def _fit_context(*, prefer_skip_nested_validation: bool) -> Callable[[_F], _F]: ...

else:
    from sklearn.base import _fit_context

__all__ = [
    "FLOAT_DTYPES",
    "Interval",
    "SizeInterval",
    "InvalidParameterError",
    "StrOptions",
    "_check_feature_names_in",
    "_fit_context",
    "_get_mask",
    "_safe_indexing",
    "array_namespace",
    "canonical_csr",
    "check_float32_not_zero",
    "check_finite_output",
    "check_float32_range",
    "check_loss_range",
    "check_same_namespace",
    "NETWORK_PARAMS",
    "check_unchanged_params",
    "changed_params",
    "check_params_as_fitted",
    "detached_input",
    "float_dtypes",
    "is_scalar_nan",
    "namespace_mean",
    "namespace_name",
    "plain_rows",
    "positive_ints",
    "to_namespace",
    "to_torch",
    "validate_aside",
    "value_range",
]

FLOAT_DTYPES = (np.float64, np.float32)


#: Where torch's int64 sizes end.
INT64_END = 2**63


class Interval(_Interval):
    """scikit-learn's parameter interval, but refusing bools, which are
    numbers to Python (``n_components=True`` passed as 1 and failed inside
    torch; ``noise_level=True`` masked every value)."""

    def is_satisfied_by(self, val):
        if isinstance(val, bool):
            return False
        return super().is_satisfied_by(val)


class SizeInterval(Interval):
    """An :class:`Interval` of ints that size tensors, which torch holds in
    int64: a larger one is refused (``n_components=10**30`` failed inside
    torch with "Overflow when unpacking long long")."""

    def is_satisfied_by(self, val):
        if isinstance(val, Integral) and abs(val) >= INT64_END:
            return False
        return super().is_satisfied_by(val)

    def __str__(self):
        return super().__str__().replace(", inf)", ", 2**63)")


class InstancesOf(HasMethods):
    """Instances of ``cls``, named ``name`` in scikit-learn's message: its
    own constraint for a type names the module it lives in, which for a
    private base class (``skae._base.BaseAutoencoder``) tells a user
    nothing. A subclass of :class:`HasMethods` because scikit-learn takes
    no other kind of custom constraint."""

    def __init__(self, cls, name):
        super().__init__([])
        self.cls, self.name = cls, name

    def is_satisfied_by(self, val):
        return isinstance(val, self.cls)

    def __str__(self):
        return self.name


def value_range(X):
    """(smallest, largest) value of a validated X (numpy, scipy.sparse, where
    the implicit zeros count, or a torch tensor) as Python floats; NaN
    (the imputer's missing entries) left out."""
    if isinstance(X, np.ndarray):
        return float(np.fmin.reduce(X, axis=None)), float(np.fmax.reduce(X, axis=None))
    return float(X.min()), float(X.max())


#: How far beyond [0, 1] the bounded losses take values as rounding.
UNIT_INTERVAL_SLACK = 1e-6


def check_loss_range(loss, X):
    """Refuse a validated X (numpy, scipy.sparse or a tensor) with values
    outside [0, 1] for the losses that model values in it."""
    if loss not in UNIT_INTERVAL_LOSSES:
        return
    low, high = value_range(X)
    # a rounding's worth beyond (MinMaxScaler gives 1.0000000000000002),
    # which training's float32 does not hold
    if low < -UNIT_INTERVAL_SLACK or high > 1 + UNIT_INTERVAL_SLACK:
        raise ValueError(
            f"loss={loss!r} needs X in [0, 1], but X ranges over "
            f"[{low:.10g}, {high:.10g}]. Scale X (for example with "
            "sklearn.preprocessing.MinMaxScaler) or use a Gaussian loss."
        )


#: The parameters that shape the network (those an estimator has): a warm
#: start or ``partial_fit`` continues the network, so it refuses any changed.
NETWORK_PARAMS = (
    *("n_components", "hidden_layer_sizes", "activation", "tied_weights", "init", "loss"),
    *("channels", "image_shape", "kernel_size", "sparsity", "sample_posterior"),
)


def _same_setting(was, now):
    """Whether two values of a parameter say the same: NaN as NaN, and a
    sequence (tuple, list or array) as any other spelling of it, an int as
    the sequence of that one int (``8``, ``[8]``, ``(8,)``)."""

    def spelled(value):
        if isinstance(value, (list, tuple, np.ndarray)):
            return tuple(np.asarray(value).ravel().tolist())
        return value

    was, now = spelled(was), spelled(now)
    if isinstance(was, tuple) != isinstance(now, tuple):  # one int, one sequence
        was, now = spelled(np.atleast_1d(was)), spelled(np.atleast_1d(now))
    return bool(was == now) or (is_scalar_nan(was) and is_scalar_nan(now))


#: The imputer's parameters that its column statistics follow, and the
#: hiding its column groups (``transform``'s passes, the variance head's
#: calibration) follow: a continued fit keeps them.
COLUMN_PARAMS = ("missing_values", "keep_empty_features", "hide_fraction")


def changed_params(estimator, names):
    """``(name, value at fit, value now)`` for each of the parameters
    ``names`` that a fitted ``estimator`` built from and that was set since
    to a value that says otherwise (an estimator's ``_same_built_setting``
    may say two spellings build the same)."""
    built = estimator._build_params_
    same = getattr(estimator, "_same_built_setting", lambda name, was, now: None)
    return [
        (name, built[name], getattr(estimator, name))
        for name in names
        if name in built
        and not (
            same(name, built[name], getattr(estimator, name))
            or _same_setting(built[name], getattr(estimator, name))
        )
    ]


def check_params_as_fitted(estimator, *, saving, edited=True):
    """Refuse a model (or a detector's inner model) whose parameters that
    shape what its fit built now say otherwise: set since the fit, on saving
    (the file would say what its weights are not); on loading, a file so
    ``edited`` (it had loaded, reported 9 components and returned 8 columns);
    one of format 1 or 2, which saved such models, loads with a warning."""
    for model in (estimator, getattr(estimator, "estimator_", None)):
        if not hasattr(model, "_build_params_"):  # the detector itself, or no inner model
            continue
        changed = changed_params(model, (*NETWORK_PARAMS, *COLUMN_PARAMS))
        described = ", ".join(f"{name}={now!r} (the fit's: {was!r})" for name, was, now in changed)
        if getattr(model, "add_indicator", False) and not hasattr(model, "indicator_"):
            described = described or "add_indicator=True (no indicator fitted)"
        if not described:
            continue
        if saving:
            raise ValueError(
                f"skae.save: {type(model).__name__} has {described}, set after the fit, which "
                "built its network and columns from the values it had then. Refit, or set "
                "the fit's values back, before saving."
            )
        if not edited:
            warnings.warn(
                f"The file's {type(model).__name__} has {described}, set after the fit (an "
                "older skae saved it so): the network is the fit's; the next fit uses them.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            continue
        raise ValueError(
            f"The file's {type(model).__name__} has {described}: parameters that disagree "
            "with the fit its weights come from; refusing to load it."
        )


def check_unchanged_params(estimator, names):
    """A warm start or ``partial_fit`` continues what the fit built from the
    parameters ``names`` (the network for its ``loss``, the imputer's column
    statistics for its marker): refuse any of them changed since."""
    changed = changed_params(estimator, names)
    if changed:
        name, was, now = changed[0]
        raise ValueError(
            f"{type(estimator).__name__}: {name}={now!r} was set after the fit with "
            f"{name}={was!r}; a warm start or partial_fit continues what that fit "
            "built. Fit with warm_start=False to use the new value."
        )


def check_float32_range(X):
    """Training runs in float32: refuse finite values it cannot hold rather
    than turn them into inf."""
    limit = float(np.finfo(np.float32).max)
    if X.dtype not in (np.float64, torch.float64):
        return
    low, high = value_range(X)
    if high > limit or low < -limit:
        largest = max(abs(high), abs(low))
        raise ValueError(
            f"Input X contains values too large for float32 (largest magnitude "
            f"{largest:.3g}; float32 holds up to {limit:.3g}), which skae trains in. "
            "Scale X, for example with sklearn.preprocessing.StandardScaler."
        )


def check_float32_not_zero(X, *, fresh):
    """Refuse training data for a fit from scratch (``fresh``) that is not
    all zero but whose every value rounds to zero in float32, where the
    network trains (below about 7e-46): such a fit had returned a model
    worse than the column means, saying it was PCA's. Subnormal values (down
    to 1.4e-45) train; a fitted model's scale reads such rows as zeros."""
    if not fresh:
        return
    low, high = value_range(X)
    largest = max(abs(low), abs(high))
    if largest > 0 and float(np.float32(largest)) == 0:
        raise ValueError(
            f"Input X holds only values too small for float32 (largest magnitude "
            f"{largest:.3g}), which skae trains in: every value rounds to 0 there. "
            "Scale X, for example with sklearn.preprocessing.StandardScaler."
        )


def canonical_csr(X):
    """A validated CSR matrix without duplicate entries and with sorted
    indices: X itself when it is so, else a copy (the caller's is untouched)."""
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def detached_input(X, undispatched=None):
    """A torch tensor detached from autograd (sharing its memory); without
    array API dispatch, as numpy of its dtype: an array-like, which
    ``np.asarray`` could not make of one that requires grad, and which
    scikit-learn would turn from float32 into float64. A float dtype numpy
    lacks (bfloat16, float8) is widened to float64 first, exactly, as
    scikit-learn widens float16 (and as array API dispatch does). A complex
    tensor is refused as scikit-learn refuses complex numpy (under dispatch
    its check does not see a tensor, and torch dropped the imaginary part).
    ``undispatched``: an estimator that takes tensors without dispatch only,
    which refuses one under it with a TypeError that says so (it failed
    inside torch's ``asarray``)."""
    if not isinstance(X, torch.Tensor):
        return X
    if X.is_complex():
        raise ValueError(f"Complex data not supported: a tensor of dtype {X.dtype}.")
    if get_config()["array_api_dispatch"]:
        if undispatched is not None:
            raise TypeError(
                f"{type(undispatched).__name__} takes torch tensors without array API "
                "dispatch only, as IsolationForest and KNNImputer do: call it outside "
                "array_api_dispatch=True, or pass X.numpy(force=True)."
            )
        return X.detach()
    if X.is_floating_point() and X.dtype not in (torch.float16, torch.float32, torch.float64):
        X = X.detach().double()
    return X.numpy(force=True)


#: The dtypes of :func:`plain_rows` (native byte order).
PLAIN_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

#: Up to this many values, :func:`plain_rows` checks each for finiteness
#: (quicker there than a sum, and it allocates little).
SMALL_ARRAY = 4096


def plain_rows(X, n_features):
    """X itself when scikit-learn's ``validate_data`` (``reset=False``,
    float dtypes) would hand it back unchanged and silently, else None
    (validate it then): a numpy array, not a subclass, of float64 or float32
    in native byte order, with ``n_features`` columns and at least one row,
    finite, array API dispatch off. The caller checks that no feature names
    are expected. Saves a small call most of its time."""
    if (
        type(X) is not np.ndarray
        or X.ndim != 2
        or X.dtype not in PLAIN_DTYPES
        or X.shape[0] < 1
        or X.shape[1] != n_features
        or get_config()["array_api_dispatch"]
    ):
        return None
    if X.size <= SMALL_ARRAY:
        return X if np.isfinite(X).all() else None
    # a sum is finite only if every value is (one that overflows goes the long way)
    return X if np.isfinite(X.sum()) else None


def array_namespace(X):
    """``(xp, device)`` of X when array API dispatch is on and X is an array
    of another namespace than numpy (a torch tensor, ...), else None."""
    if sp.issparse(X):
        return None
    xp, is_array_api, device = get_namespace_and_device(X)
    if not is_array_api or _is_numpy_namespace(xp):
        return None
    return xp, device


def namespace_name(namespace):
    """Plain data naming ``array_namespace``'s result (None for numpy)."""
    if namespace is None:
        return None
    xp, device = namespace
    return (xp.__name__.rsplit(".", 1)[-1], str(device))


def to_torch(X, namespace, device):
    """A validated array of another namespace as a torch tensor (a tensor
    itself, row-major as validation makes numpy: a transposed one had trained
    another model than its copy; through DLPack where it can, without a copy)."""
    if namespace is None or _is_xp_namespace(namespace[0], "torch"):
        return X.contiguous() if isinstance(X, torch.Tensor) else X
    xp_torch, _ = get_namespace(torch.empty(0))
    return move_to(X, xp=xp_torch, device=device)


def positive_ints(value, name):
    """``value`` (an int or a sequence of them) as a list of positive ints."""
    sizes = [value] if isinstance(value, Integral) else list(value)
    if not all(
        isinstance(s, Integral) and not isinstance(s, bool) and 1 <= s < INT64_END for s in sizes
    ):
        raise ValueError(f"{name} must hold positive integers below 2**63, got {value!r}.")
    return [int(s) for s in sizes]


def float_dtypes(namespace):
    """The float dtypes validation keeps, in X's array namespace."""
    if namespace is None:
        return FLOAT_DTYPES
    xp = namespace[0]
    return [xp.float64, xp.float32]


def to_namespace(out, namespace):
    """A result computed in torch, moved back to the namespace and device
    that ``array_namespace`` found X in (itself for numpy and torch)."""
    if namespace is None or _is_xp_namespace(namespace[0], "torch"):
        return out
    return move_to(out, xp=namespace[0], device=namespace[1])


def namespace_mean(scores):
    """The mean of an array of any namespace, as a Python float."""
    xp, _ = get_namespace(scores)
    return float(xp.mean(scores))


def check_same_namespace(estimator, namespace, method):
    """Under array API dispatch, as scikit-learn's ``check_same_namespace``:
    inference takes arrays of the namespace and device that fit saw."""
    if not get_config()["array_api_dispatch"]:
        return
    fitted = getattr(estimator, "_array_namespace_", None)
    seen = namespace_name(namespace)
    if seen != (None if fitted is None else tuple(fitted)):

        def describe(name):
            return "numpy arrays" if name is None else f"{name[0]} arrays on {name[1]}"

        raise ValueError(
            f"Inputs passed to {type(estimator).__name__}.{method}() must use the same "
            f"namespace and the same device as those passed to fit(): fit saw "
            f"{describe(fitted)}, {method} got {describe(seen)}. Pass X as fit did, "
            "or fit on X's kind of array."
        )


#: The attributes scikit-learn's ``validate_data(reset=True)`` sets.
FEATURE_ATTRIBUTES = ("n_features_in_", "feature_names_in_")


def validate_aside(estimator, X, *, reset, **check_params):
    """``validate_data`` run on a shallow copy of ``estimator``: ``(X checked,
    the feature attributes it defines)``, the second empty unless ``reset``.
    Nothing is set on ``estimator``, so a fit that fails later leaves it as
    it was; the caller sets them with the rest of the fitted state."""
    probe = object.__new__(type(estimator))
    probe.__dict__.update(estimator.__dict__)
    X = validate_data(probe, X, reset=reset, **check_params)
    names = FEATURE_ATTRIBUTES if reset else ()
    return X, {name: getattr(probe, name) for name in names if hasattr(probe, name)}


def check_finite_output(name, block, start):
    """Never hand back NaN or inf: huge inputs can overflow the arithmetic.
    ``block``: rows from ``start`` of the output of the estimator of class
    ``name``, a tensor or a numpy array (checked in numpy, quicker)."""
    if isinstance(block, np.ndarray):
        if np.isfinite(block).all():
            return
        block = torch.from_numpy(block)
    finite = torch.isfinite(block).reshape(len(block), -1).all(dim=1)
    if not finite.all():
        row = start + int(torch.argmin(finite.to(torch.uint8)))
        dtype = str(block.dtype).removeprefix("torch.")
        hint = " (or pass float64 input)" if block.dtype == torch.float32 else ""
        raise ValueError(
            f"{name} computed non-finite values (NaN or inf) from row "
            f"{row} of the input: its values overflow the model's {dtype} arithmetic "
            "(scale the input the way the training data was scaled"
            f"{hint}), or it holds NaN or inf (unchecked under scikit-learn's "
            "assume_finite=True)."
        )
