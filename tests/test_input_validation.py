"""Bad input, bad parameters: scikit-learn's error types and messages, and no damage.

Every bad-input case also checks that the caller's array is unchanged and that an
estimator fitted before the failed call is still fitted, with the same attributes
and the same ``transform`` output. A failed ``fit`` on a fresh estimator leaves it
unfitted, and a later ``fit`` with good data works.

Input that scikit-learn's ``validate_data``/``check_array`` refuse (NaN, inf, wrong
shapes, empty, complex, strings, sparse, ragged lists, a wrong number of features,
pandas NA, changed feature names) gets scikit-learn's messages, through validation
code that all six estimators share: those messages are checked on ``Autoencoder``
alone. The no-damage checks, which are skae's own, run on every estimator, with one
refused input of each kind (see "no damage, on every estimator"). The checks skae
adds itself (float32 range, bounded losses, ``noise_level``, ``image_shape``, early
stopping, ``hidden_layer_sizes``, ``inverse_transform``'s width, devices,
parameters) run on the estimators they concern.
"""

import copy
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _family import ESTIMATORS
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_array, check_is_fitted

from skae import (
    Autoencoder,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    VariationalAutoencoder,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

ESTIMATOR_IDS = [cls.__name__ for cls in ESTIMATORS]
#: scikit-learn's own error messages, for the input its validation refuses, are
#: checked on one estimator: every estimator validates through the same base methods
SKLEARN_MESSAGES = pytest.mark.parametrize("cls", [Autoencoder], ids=["Autoencoder"])
#: the estimators whose no-damage checks are not already part of those message tests
OTHER_ESTIMATORS = [cls for cls in ESTIMATORS if cls is not Autoencoder]
OTHER_IDS = [cls.__name__ for cls in OTHER_ESTIMATORS]
#: the MLP autoencoders, with tied weights and greedy layer-wise pretraining
MLP_ESTIMATORS = [Autoencoder, DenoisingAutoencoder, SparseAutoencoder, ContractiveAutoencoder]

N_SAMPLES, N_FEATURES, N_COMPONENTS = 20, 4, 3
#: good training data, in [0, 1] so that every loss accepts it
X_GOOD = np.random.default_rng(0).uniform(size=(N_SAMPLES, N_FEATURES))
X_GOOD.setflags(write=False)


def family_cases(values, other_value, name=repr):
    """(cls, value) cases: every value on Autoencoder, ``other_value`` on each
    other estimator. For skae's own checks in the base that all six share: the
    message for every bad value once, the no-damage check on the whole family."""
    return [
        *[pytest.param(Autoencoder, v, id=f"Autoencoder-{name(v)}") for v in values],
        *[
            pytest.param(cls, other_value, id=f"{cls.__name__}-{name(other_value)}")
            for cls in OTHER_ESTIMATORS
        ],
    ]


def make(cls, **params):
    """A tiny, seeded, CPU estimator; without early stopping (the tests that
    are about it ask for it), so that every row of the tiny inputs trains."""
    defaults = dict(
        n_components=N_COMPONENTS,
        hidden_layer_sizes=(8,),
        max_iter=3,
        early_stopping=False,
        device="cpu",
        random_state=0,
    )
    defaults.update(params)
    return cls(**defaults)


def fitted(cls, **params):
    return make(cls, **params).fit(X_GOOD)


# ------------------------------------------------------------------ helpers


def snapshot_input(X):
    """A deep copy of whatever the caller passed."""
    if sp.issparse(X):
        return X.copy()
    return copy.deepcopy(X)


def assert_input_unchanged(X, X_before):
    if sp.issparse(X):
        # the stored arrays themselves (NaN equal to NaN): not even put in
        # canonical order in place
        assert type(X) is type(X_before) and X.shape == X_before.shape
        for name in ("data", "indices", "indptr", "row", "col"):
            if hasattr(X_before, name):
                np.testing.assert_array_equal(getattr(X, name), getattr(X_before, name))
        return
    if np.isscalar(X) or isinstance(X, np.generic) or isinstance(X, list):
        assert X == X_before
        return
    assert type(X) is type(X_before)
    X_arr, before_arr = np.asarray(X), np.asarray(X_before)
    assert X_arr.dtype == before_arr.dtype
    assert X_arr.shape == before_arr.shape
    if X_arr.dtype == object or X_arr.dtype.kind in "US":
        assert X_arr.tolist() == before_arr.tolist()
    else:
        # NaN compares equal to NaN here
        np.testing.assert_array_equal(X_arr, before_arr)


class FittedState:
    """What a fitted estimator looks like, to compare before and after a failed call."""

    def __init__(self, est):
        check_is_fitted(est)
        self.est = est
        self.transform = est.transform(X_GOOD)
        self.weights = {k: v.detach().clone() for k, v in est.module_.state_dict().items()}
        self.attributes = {
            name: copy.deepcopy(getattr(est, name))
            for name in ("n_features_in_", "n_iter_", "loss_curve_", "best_loss_", "batch_size_")
        }

    def assert_intact(self):
        est = self.est
        check_is_fitted(est)
        np.testing.assert_array_equal(est.transform(X_GOOD), self.transform)
        weights = est.module_.state_dict()
        assert weights.keys() == self.weights.keys()
        for key, value in self.weights.items():
            torch.testing.assert_close(weights[key], value, rtol=0, atol=0, equal_nan=True)
            # a Bernoulli VAE never sets its (unused) Gaussian noise_variance
            unused = key == "noise_variance" and est.get_params()["loss"] == "bernoulli"
            assert unused or torch.isfinite(weights[key]).all(), key
        for name, value in self.attributes.items():
            assert getattr(est, name) == value, name


def assert_unfitted_then_fits(est, **repair):
    """``est`` failed its first fit: it is unfitted, and good data (with the
    parameters in ``repair`` set) then fits it exactly as a fresh estimator would."""
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    assert not hasattr(est, "n_features_in_")
    est.set_params(**repair)
    reference = clone(est).fit(X_GOOD).transform(X_GOOD)
    est.fit(X_GOOD)
    check_is_fitted(est)
    np.testing.assert_array_equal(est.transform(X_GOOD), reference)


# Each method is called on an estimator fitted before (state "fitted"); fit and
# partial_fit are also called on a fresh one (state "fresh").
METHOD_STATES = [
    ("fit", "fresh"),
    ("fit", "fitted"),
    ("partial_fit", "fresh"),
    ("partial_fit", "fitted"),
    ("transform", "fitted"),
    ("inverse_transform", "fitted"),
    ("score_samples", "fitted"),
]
METHOD_STATE_IDS = [f"{m}-{s}" for m, s in METHOD_STATES]


def width(method):
    """The number of columns a method expects."""
    return N_COMPONENTS if method == "inverse_transform" else N_FEATURES


def check_bad_input(cls, method, state, X_bad, exception, match, params=None, bad_params=None):
    """Call ``method`` with ``X_bad``: it raises ``exception`` matching ``match``,
    the caller's input is unchanged and the estimator is not damaged.

    ``params`` are set from the start; ``bad_params`` only for the failing call
    (a fitted estimator is fitted without them; a fresh one drops them before
    its good fit).
    """
    params, bad_params = params or {}, bad_params or {}
    if state == "fresh":
        est = make(cls, **params)
    else:
        est = fitted(cls, **params)
        before = FittedState(est)
    good_params = {k: est.get_params()[k] for k in bad_params}
    est.set_params(**bad_params)
    X_before = snapshot_input(X_bad)
    with pytest.raises(exception, match=match):
        getattr(est, method)(X_bad)
    assert_input_unchanged(X_bad, X_before)
    if state == "fresh":
        assert_unfitted_then_fits(est, **good_params)
    else:
        before.assert_intact()
    return est


# ----------------------------------------------------- non-finite values


def _with_value(method, value):
    X = np.random.default_rng(1).uniform(size=(5, width(method)))
    X[2, 1] = value
    return X


NON_FINITE = [
    pytest.param(np.nan, "Input X contains NaN", id="nan"),
    pytest.param(np.inf, "Input X contains infinity", id="+inf"),
    pytest.param(-np.inf, "Input X contains infinity", id="-inf"),
]


@pytest.mark.parametrize("value, match", NON_FINITE)
@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@SKLEARN_MESSAGES
def test_non_finite_input_raises_value_error(cls, method, state, value, match):
    check_bad_input(cls, method, state, _with_value(method, value), ValueError, match)


@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@SKLEARN_MESSAGES
def test_non_finite_float32_input_raises_value_error(cls, method, state):
    X = _with_value(method, np.nan).astype(np.float32)
    check_bad_input(cls, method, state, X, ValueError, "Input X contains NaN")


# ----------------------------------------------------------- wrong shapes

SHAPES = {
    "1d": (lambda w: np.ones(w), r"Expected 2D array, got 1D array instead"),
    "scalar": (lambda w: np.float64(0.5), r"Expected 2D array, got scalar array instead"),
    "python_scalar": (lambda w: 0.5, r"Expected 2D array, got scalar array instead"),
    "3d": (lambda w: np.ones((2, 3, w)), r"Found array with dim 3"),
    "0_samples": (
        lambda w: np.empty((0, w)),
        None,  # filled in by the test, it names the shape
    ),
    "0_features": (lambda w: np.empty((3, 0)), None),
    "list_1d": (lambda w: [0.5] * w, r"Expected 2D array, got 1D array instead"),
}


@pytest.mark.parametrize("case", sorted(SHAPES))
@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@SKLEARN_MESSAGES
def test_wrong_shape_raises_value_error(cls, method, state, case):
    make_X, match = SHAPES[case]
    w = width(method)
    if case == "0_samples":
        match = re.escape(
            f"Found array with 0 sample(s) (shape=(0, {w})) while a minimum of 1 is required"
        )
    elif case == "0_features":
        match = re.escape(
            "Found array with 0 feature(s) (shape=(3, 0)) while a minimum of 1 is required"
        )
    check_bad_input(cls, method, state, make_X(w), ValueError, match)


@pytest.mark.parametrize("method", ["fit", "partial_fit", "transform", "score_samples"])
@SKLEARN_MESSAGES
def test_empty_input_error_names_estimator(cls, method):
    est = make(cls) if method in ("fit", "partial_fit") else fitted(cls)
    with pytest.raises(ValueError, match=f"is required by {cls.__name__}"):
        getattr(est, method)(np.empty((0, N_FEATURES)))


# ------------------------------------------------------------ wrong dtypes


def _complex(w):
    return np.ones((4, w)) + 1j


def _strings_object(w):
    X = np.full((4, w), 0.5, dtype=object)
    X[1, 0] = "a"
    return X


def _strings_unicode(w):
    return np.full((4, w), "a")


DTYPES = {
    "complex": (_complex, r"Complex data not supported"),
    "object_with_strings": (_strings_object, r"could not convert string to float"),
    "unicode_strings": (_strings_unicode, r"could not convert string to float"),
}


@pytest.mark.parametrize("case", sorted(DTYPES))
@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@SKLEARN_MESSAGES
def test_non_numeric_input_raises_value_error(cls, method, state, case):
    make_X, match = DTYPES[case]
    check_bad_input(cls, method, state, make_X(width(method)), ValueError, match)


@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score_samples"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_numeric_object_array_works_like_float64(cls, method):
    est = fitted(cls)
    X = est.transform(X_GOOD) if method == "inverse_transform" else np.array(X_GOOD)
    X_object = X.astype(object)
    X_before = X_object.copy()
    result = getattr(est, method)(X_object)
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, getattr(est, method)(X))
    assert X_object.dtype == object
    assert X_object.tolist() == X_before.tolist()


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_numeric_object_array_fits_like_float64(cls, method):
    X_object = np.array(X_GOOD).astype(object)
    a = getattr(make(cls), method)(X_object)
    b = getattr(make(cls), method)(np.array(X_GOOD))
    np.testing.assert_array_equal(a.transform(X_GOOD), b.transform(X_GOOD))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_integer_input_fits_like_float64(cls, method):
    X_int = (np.array(X_GOOD) * 10).astype(np.int64)
    a = getattr(make(cls), method)(X_int)
    b = getattr(make(cls), method)(X_int.astype(np.float64))
    Z = a.transform(X_int)
    assert Z.dtype == np.float64
    np.testing.assert_array_equal(Z, b.transform(X_int.astype(np.float64)))


# ---------------------------------------------------------------- sparse


# Sparse input is accepted (tests/test_sparse.py); bad sparse input is refused
# like dense input: every format and value on one estimator, the whole family
# on CSR.

SPARSE_FORMATS = ["csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "coo_array"]


def _sparse_with_value(method, value, fmt):
    X = sp.random(5, width(method), density=0.5, format="csr", random_state=0)
    X.data[1] = value
    return getattr(sp, fmt)(X)


@pytest.mark.parametrize("value, match", NON_FINITE)
@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
def test_non_finite_sparse_input_raises_value_error(method, state, value, match):
    X = _sparse_with_value(method, value, "csr_matrix")
    check_bad_input(Autoencoder, method, state, X, ValueError, match)


# check_array looks at every format's data the same way: the other formats once
@pytest.mark.parametrize("fmt", SPARSE_FORMATS[1:])
@pytest.mark.parametrize("value, match", NON_FINITE)
def test_non_finite_in_every_sparse_format_raises_value_error(value, match, fmt):
    X = _sparse_with_value("fit", value, fmt)
    check_bad_input(Autoencoder, "fit", "fresh", X, ValueError, match)


@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@pytest.mark.parametrize("cls", OTHER_ESTIMATORS, ids=OTHER_IDS)
def test_nan_in_sparse_data_raises_value_error(cls, method, state):
    X = _sparse_with_value(method, np.nan, "csr_matrix")
    check_bad_input(cls, method, state, X, ValueError, "Input X contains NaN")


@pytest.mark.parametrize(
    "method", ["transform", "score_samples", "partial_fit", "inverse_transform"]
)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_sparse_input_of_the_wrong_width_raises_value_error(cls, method):
    n_wrong = width(method) + 2
    X = sp.random(5, n_wrong, density=0.5, format="csr", random_state=0)
    expected = N_COMPONENTS if method == "inverse_transform" else N_FEATURES
    match = rf"X has {n_wrong} features, but {cls.__name__}\S* is expecting {expected} features"
    check_bad_input(cls, method, "fitted", X, ValueError, match)


def test_sparse_input_beyond_float32_is_refused_at_fit():
    X = sp.csr_matrix(np.array(X_GOOD))
    X.data[0] = 1e300
    check_bad_input(Autoencoder, "fit", "fresh", X, ValueError, "too large for float32")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_sparse_input_outside_unit_interval_refused_by_bounded_losses(cls):
    loss = "bernoulli" if cls is VariationalAutoencoder else "bce"
    X = sp.csr_matrix(np.array(X_GOOD) - 0.5)
    check_bad_input(
        cls, "fit", "fresh", X, ValueError, r"needs X in \[0, 1\]", params={"loss": loss}
    )


# ------------------------------------------------------- wrong n_features


@pytest.mark.parametrize("n_wrong", [1, N_FEATURES + 1])
@pytest.mark.parametrize("method", ["transform", "score_samples", "partial_fit"])
@SKLEARN_MESSAGES
def test_wrong_n_features_raises_value_error(cls, method, n_wrong):
    X = np.full((5, n_wrong), 0.5)
    match = rf"X has {n_wrong} features, but {cls.__name__} is expecting {N_FEATURES} features"
    check_bad_input(cls, method, "fitted", X, ValueError, match)


@pytest.mark.parametrize("method", ["transform", "score_samples", "partial_fit"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_wrong_n_features_after_partial_fit_raises_value_error(cls, method):
    est = make(cls).partial_fit(X_GOOD)
    before = FittedState(est)
    X = np.full((5, N_FEATURES + 2), 0.5)
    X_before = X.copy()
    with pytest.raises(ValueError, match=rf"expecting {N_FEATURES} features"):
        getattr(est, method)(X)
    np.testing.assert_array_equal(X, X_before)
    before.assert_intact()


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_warm_start_fit_wrong_n_features_raises_value_error(cls):
    est = fitted(cls, warm_start=True)
    before = FittedState(est)
    X = np.full((5, N_FEATURES + 1), 0.5)
    with pytest.raises(ValueError, match=rf"expecting {N_FEATURES} features"):
        est.fit(X)
    before.assert_intact()


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_refit_without_warm_start_accepts_new_n_features(cls):
    est = fitted(cls)
    X_wide = np.random.default_rng(3).uniform(size=(10, N_FEATURES + 2))
    est.fit(X_wide)
    assert est.n_features_in_ == N_FEATURES + 2
    assert est.transform(X_wide).shape == (10, N_COMPONENTS)


@pytest.mark.parametrize("n_wrong", [1, N_FEATURES, N_COMPONENTS + 1])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_inverse_transform_wrong_width_raises_value_error(cls, n_wrong):
    Z = np.full((5, n_wrong), 0.5)
    match = (
        rf"X has {n_wrong} features, but {cls.__name__}.inverse_transform is expecting "
        rf"{N_COMPONENTS} features \(n_components\)"
    )
    check_bad_input(cls, "inverse_transform", "fitted", Z, ValueError, match)


# ----------------------------------------------------------- not fitted

NOT_FITTED_CALLS = {
    "transform": lambda est: est.transform(np.array(X_GOOD)),
    "inverse_transform": lambda est: est.inverse_transform(np.zeros((2, N_COMPONENTS))),
    "score_samples": lambda est: est.score_samples(np.array(X_GOOD)),
    "score": lambda est: est.score(np.array(X_GOOD)),
    "get_feature_names_out": lambda est: est.get_feature_names_out(),
    "sample": lambda est: est.sample(3),
    "log_likelihood": lambda est: est.log_likelihood(np.array(X_GOOD), n_importance_samples=2),
}


NOT_FITTED_CASES = [
    pytest.param(cls, method, id=f"{cls.__name__}-{method}")
    for cls in ESTIMATORS
    for method in sorted(NOT_FITTED_CALLS)
    if method not in ("sample", "log_likelihood") or cls is VariationalAutoencoder
]


@pytest.mark.parametrize("cls, method", NOT_FITTED_CASES)
def test_unfitted_estimator_raises_not_fitted_error(cls, method):
    est = make(cls)
    with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not fitted yet"):
        NOT_FITTED_CALLS[method](est)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)


# ----------------------------------------- data that does not fit the params

BOUNDED_LOSSES = [
    (cls, "bernoulli" if cls is VariationalAutoencoder else "bce") for cls in ESTIMATORS
]


@pytest.mark.parametrize("shift", ["above_one", "below_zero"])
@pytest.mark.parametrize(
    "method, state",
    [*METHOD_STATES[:4], METHOD_STATES[6]],
    ids=[*METHOD_STATE_IDS[:4], METHOD_STATE_IDS[6]],
)
@pytest.mark.parametrize(
    "cls, loss", BOUNDED_LOSSES, ids=[f"{c.__name__}-{loss}" for c, loss in BOUNDED_LOSSES]
)
def test_bounded_loss_with_data_outside_unit_interval_raises(cls, loss, method, state, shift):
    # score_samples too: a Bernoulli likelihood of values outside [0, 1]
    # rated them above every training row
    X = np.array(X_GOOD) * 2 if shift == "above_one" else np.array(X_GOOD) - 0.5
    match = rf"loss='{loss}' needs X in \[0, 1\]"
    check_bad_input(cls, method, state, X, ValueError, match, params=dict(loss=loss))


@pytest.mark.parametrize("cls, loss", BOUNDED_LOSSES[:1] + BOUNDED_LOSSES[2:3])
def test_bounded_loss_takes_min_max_scaler_rounding(cls, loss):
    # MinMaxScaler's output reaches 1.0000000000000002: rounding, not data
    X = np.array(X_GOOD)
    X[0, 0] = 1 + 2.220446049250313e-16
    est = make(cls, loss=loss).fit(X)
    assert np.all(np.isfinite(est.score_samples(X)))


def test_log_likelihood_of_data_outside_unit_interval_raises():
    est = fitted(VariationalAutoencoder, loss="bernoulli")
    with pytest.raises(ValueError, match=r"loss='bernoulli' needs X in \[0, 1\]"):
        est.log_likelihood(np.array(X_GOOD) * 2)


@pytest.mark.parametrize("cls, loss", BOUNDED_LOSSES, ids=[c.__name__ for c, _ in BOUNDED_LOSSES])
def test_loss_set_after_fit_acts_at_the_next_fit_only(cls, loss):
    # the network was built and trained for the loss of its fit: scores keep
    # it, and a warm start or partial_fit, which continue that network, refuse
    # another loss; a fit from scratch trains for the new one
    X = np.array(X_GOOD)
    est = fitted(cls)
    scores = est.score_samples(X)
    est.set_params(loss=loss)
    np.testing.assert_array_equal(est.score_samples(X), scores)
    before = FittedState(est)
    for call in (est.partial_fit, est.set_params(warm_start=True).fit):
        with pytest.raises(ValueError, match=f"loss='{loss}' was set after the fit"):
            call(X)
        before.assert_intact()
    est.set_params(warm_start=False).fit(X)
    assert est._build_params_["loss"] == loss
    assert not np.allclose(est.score_samples(X), scores)


NETWORK_CHANGES = [
    *[(cls, "n_components", 2) for cls in ESTIMATORS],
    *[(cls, "activation", "tanh") for cls in ESTIMATORS],
    *[(cls, "init", "random") for cls in ESTIMATORS],
    *[(cls, "hidden_layer_sizes", (5,)) for cls in MLP_ESTIMATORS],
    *[(cls, "tied_weights", True) for cls in MLP_ESTIMATORS],
    (SparseAutoencoder, "sparsity", "kl"),
    (ConvolutionalAutoencoder, "channels", (3,)),
    (ConvolutionalAutoencoder, "kernel_size", 1),
    (ConvolutionalAutoencoder, "image_shape", (4, 1)),
]


@pytest.mark.parametrize(
    "cls, name, value", NETWORK_CHANGES, ids=[f"{c.__name__}-{n}" for c, n, _ in NETWORK_CHANGES]
)
def test_warm_start_refuses_a_changed_network_parameter(cls, name, value):
    # a warm start or partial_fit continues the fitted network: it had kept
    # the old shape while the parameter (and get_feature_names_out) said another
    est = fitted(cls)
    assert est.get_params()[name] != value
    before = FittedState(est)
    est.set_params(**{name: value})
    for call in (est.partial_fit, est.set_params(warm_start=True).fit):
        with pytest.raises(ValueError, match=rf"{name}=.* was set after the fit"):
            call(X_GOOD)
        before.assert_intact()
    est.set_params(warm_start=False).fit(X_GOOD)
    assert est._build_params_[name] == value


def test_warm_start_takes_another_spelling_of_the_same_network():
    # an array parameter made the check raise "truth value of an array is
    # ambiguous", and [8] or 8 after (8,) was refused as a change
    est = fitted(Autoencoder, hidden_layer_sizes=np.array([8]))
    est.partial_fit(X_GOOD)
    module = est.module_
    for same in ([8], 8, (8,), np.array([8])):
        epochs = est.n_iter_
        est.set_params(hidden_layer_sizes=same).partial_fit(X_GOOD)
        est.set_params(warm_start=True).fit(X_GOOD)
        assert est.n_iter_ > epochs + 1  # both calls trained on
        assert type(est.module_) is type(module)
        assert [p.shape for p in est.module_.parameters()] == [p.shape for p in module.parameters()]
    conv = fitted(ConvolutionalAutoencoder, channels=np.array([3]), image_shape=np.array([2, 2]))
    conv.set_params(channels=[3], image_shape=(2, 2)).partial_fit(X_GOOD)


@pytest.mark.parametrize("cls, loss", BOUNDED_LOSSES, ids=[c.__name__ for c, _ in BOUNDED_LOSSES])
def test_bounded_loss_accepts_data_in_unit_interval(cls, loss):
    X = np.array(X_GOOD)
    X[0] = 0.0
    X[1] = 1.0
    est = make(cls, loss=loss).fit(X)
    assert np.all(np.isfinite(est.transform(X)))
    reconstruction = est.inverse_transform(est.transform(X))
    # the logistic output stays in [0, 1]
    assert reconstruction.min() >= 0.0
    assert reconstruction.max() <= 1.0


@pytest.mark.parametrize("noise_level", [1.0, 1.0001, 1.5, 10.0])
@pytest.mark.parametrize("noise", ["masking", "salt_and_pepper"])
@pytest.mark.parametrize("method, state", METHOD_STATES[:4], ids=METHOD_STATE_IDS[:4])
def test_noise_level_above_one_raises_for_fraction_noises(noise, noise_level, method, state):
    check_bad_input(
        DenoisingAutoencoder,
        method,
        state,
        np.array(X_GOOD),
        ValueError,
        rf"noise_level .*noise={noise!r} .*must be in \[0, 1\); got {noise_level}",
        params=dict(noise=noise),
        bad_params=dict(noise_level=noise_level),
    )


@pytest.mark.parametrize("noise_level", [0.0, 0.99])
@pytest.mark.parametrize("noise", ["masking", "salt_and_pepper"])
def test_noise_level_bounds_accepted_for_fraction_noises(noise, noise_level):
    est = make(DenoisingAutoencoder, noise=noise, noise_level=noise_level).fit(X_GOOD)
    assert np.all(np.isfinite(est.transform(X_GOOD)))


def test_gaussian_noise_level_above_one_accepted():
    est = make(DenoisingAutoencoder, noise="gaussian", noise_level=1.5).fit(X_GOOD)
    assert np.all(np.isfinite(est.transform(X_GOOD)))


# ------------------------------------------------------------- image_shape

FIT_METHOD_STATES, FIT_METHOD_STATE_IDS = METHOD_STATES[:4], METHOD_STATE_IDS[:4]

#: tuples of positive integers whose product is not N_FEATURES (= 4)
MISMATCHED_IMAGE_SHAPES = [(2, 3), (3, 1), (1, 5), [1, 2], (2, 2, 2), (3, 1, 1), (1, 1, 1)]


@pytest.mark.parametrize("image_shape", MISMATCHED_IMAGE_SHAPES, ids=str)
@pytest.mark.parametrize("method, state", FIT_METHOD_STATES, ids=FIT_METHOD_STATE_IDS)
def test_image_shape_product_not_n_features_raises(method, state, image_shape):
    product = int(np.prod(image_shape))
    match = (
        re.escape(f"image_shape={image_shape!r} holds {product} values")
        + rf".* X has {N_FEATURES} features"
    )
    check_bad_input(
        ConvolutionalAutoencoder,
        method,
        state,
        np.array(X_GOOD),
        ValueError,
        match,
        bad_params=dict(image_shape=image_shape),
    )


#: wrong length, zeros, negatives (also with a matching product), non-integers
BAD_IMAGE_SHAPES = [
    (4,),
    [4],
    (),
    (1, 1, 2, 2),
    (1, 1, 1, 2, 2),
    (0, 4),
    (4, 0),
    (0, 0),
    (0, 2, 2),
    (2, -2),
    (-2, -2),
    (-1, 2, -2),
    (-4, -1),
    (4, 1.0),
    (2.0, 2.0),
    (2, True),
    ("2", "2"),
    (2, None),
    [[2, 2]],
    np.array([0, 4]),
    np.array([[2, 2]]),
]


@pytest.mark.parametrize("image_shape", BAD_IMAGE_SHAPES, ids=repr)
@pytest.mark.parametrize("method, state", FIT_METHOD_STATES, ids=FIT_METHOD_STATE_IDS)
def test_image_shape_bad_length_or_entries_raises(method, state, image_shape):
    match = re.escape(
        "image_shape must be (height, width) or (channels, height, width) of positive "
        "integers, or None; got "
    ) + re.escape(repr(image_shape))
    check_bad_input(
        ConvolutionalAutoencoder,
        method,
        state,
        np.array(X_GOOD),
        ValueError,
        match,
        bad_params=dict(image_shape=image_shape),
    )


@pytest.mark.parametrize("n_wrong", [1, 6, 9])
@pytest.mark.parametrize(
    "method, state",
    [*FIT_METHOD_STATES, ("transform", "fitted"), ("score_samples", "fitted")],
    ids=[*FIT_METHOD_STATE_IDS, "transform-fitted", "score_samples-fitted"],
)
def test_data_not_matching_image_shape_raises(method, state, n_wrong):
    """image_shape=(2, 2): data with another number of features is refused; a
    fitted model checks n_features_in_ first, a new fit checks image_shape."""
    X = np.random.default_rng(4).uniform(size=(6, n_wrong))
    if state == "fitted" and method != "fit":
        match = rf"X has {n_wrong} features, but ConvolutionalAutoencoder is expecting 4"
    else:
        match = re.escape(f"image_shape=(2, 2) holds 4 values but X has {n_wrong} features")
    check_bad_input(
        ConvolutionalAutoencoder,
        method,
        state,
        X,
        ValueError,
        match,
        params=dict(image_shape=(2, 2)),
    )


#: (image_shape as given, the (channels, height, width) it means)
GOOD_IMAGE_SHAPES = [
    (None, (1, N_FEATURES)),
    ((2, 2), (1, 2, 2)),
    ([2, 2], (1, 2, 2)),
    (np.array([2, 2]), (1, 2, 2)),
    ((np.int64(4), np.int32(1)), (1, 4, 1)),
    ((1, 4), (1, 1, 4)),
    ((1, 2, 2), (1, 2, 2)),
    ((2, 1, 2), (2, 1, 2)),
    ((4, 1, 1), (4, 1, 1)),
]


@pytest.mark.parametrize(
    "image_shape, resolved", GOOD_IMAGE_SHAPES, ids=[repr(s) for s, _ in GOOD_IMAGE_SHAPES]
)
def test_image_shape_valid_forms_fit(image_shape, resolved):
    est = make(ConvolutionalAutoencoder, image_shape=image_shape, channels=(3,))
    X = np.array(X_GOOD)
    est.fit(X)
    # stored as given, resolved in a fitted attribute
    assert est.get_params()["image_shape"] is image_shape
    assert est.image_shape_ == resolved
    assert all(type(s) is int for s in est.image_shape_)
    Z = est.transform(X)
    assert Z.shape == (N_SAMPLES, N_COMPONENTS)
    assert est.inverse_transform(Z).shape == (N_SAMPLES, N_FEATURES)
    np.testing.assert_array_equal(X, X_GOOD)
    conv = (torch.nn.Conv1d, torch.nn.Conv2d)[image_shape is not None]
    assert any(isinstance(m, conv) for m in est.module_.modules())


def test_failed_image_shape_refit_keeps_old_image_shape():
    est = fitted(ConvolutionalAutoencoder, image_shape=(2, 2))
    before = FittedState(est)
    est.set_params(image_shape=(1, 2, 2, 1))
    with pytest.raises(ValueError, match="image_shape must be"):
        est.fit(X_GOOD)
    before.assert_intact()
    assert est.image_shape_ == (1, 2, 2)
    # a refit that works replaces it
    est.set_params(image_shape=(4, 1)).fit(X_GOOD)
    assert est.image_shape_ == (1, 4, 1)


@pytest.mark.parametrize("state", ["fresh", "fitted"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_early_stopping_with_one_sample_raises(cls, state):
    X = np.array(X_GOOD[:1])
    est = make(cls, early_stopping=True)
    if state == "fitted":
        est.fit(X_GOOD)
        before = FittedState(est)
    with pytest.raises(ValueError, match=r"early_stopping=True needs at least 2 samples"):
        est.fit(X)
    np.testing.assert_array_equal(X, X_GOOD[:1])
    if state == "fitted":
        before.assert_intact()
    else:
        assert_unfitted_then_fits(est)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_early_stopping_with_two_samples_fits(cls):
    est = make(cls, early_stopping=True).fit(X_GOOD[:2])
    assert len(est.validation_scores_) == est.n_iter_
    assert np.all(np.isfinite(est.transform(X_GOOD)))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_one_sample_fits_without_early_stopping(cls):
    est = make(cls).fit(X_GOOD[:1])
    assert est.batch_size_ == 1
    assert est.transform(X_GOOD[:1]).shape == (1, N_COMPONENTS)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_batch_size_larger_than_n_samples_warns_and_clips(cls, method):
    est = make(cls, batch_size=N_SAMPLES + 30)
    with pytest.warns(UserWarning, match=r"batch_size.*clipped") as record:
        getattr(est, method)(X_GOOD)
    assert record[0].filename == __file__  # points at the caller's line
    assert est.batch_size_ == N_SAMPLES
    Z = est.transform(X_GOOD)
    assert Z.shape == (N_SAMPLES, N_COMPONENTS)
    assert np.all(np.isfinite(Z))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_batch_size_within_n_samples_does_not_warn(cls):
    est = make(cls, batch_size=N_SAMPLES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X_GOOD)
    assert not [w for w in caught if "clipped" in str(w.message)]
    assert est.batch_size_ == N_SAMPLES


# ------------------------------------------------------------------ device


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("state", ["fresh", "fitted"])
@pytest.mark.parametrize(
    "cls, device", family_cases(["cuda", "cuda:0", torch.device("cuda")], "cuda", name=str)
)
def test_cuda_device_without_cuda_raises(cls, state, device):
    est = make(cls)
    if state == "fitted":
        est.fit(X_GOOD)
        before = FittedState(est)
    est.set_params(device=device)
    with pytest.raises(ValueError, match=r"CUDA is not available"):
        est.fit(X_GOOD)
    if state == "fitted":
        before.assert_intact()
    else:
        with pytest.raises(NotFittedError):
            check_is_fitted(est)
        est.set_params(device="cpu")
        assert_unfitted_then_fits(est)


@pytest.mark.parametrize("state", ["fresh", "fitted"])
@pytest.mark.parametrize("cls, device", family_cases(["cpux", "gpu", "cuda:x", "mps", ""], "gpu"))
def test_unknown_device_raises_value_error_naming_it(cls, state, device):
    est = make(cls)
    if state == "fitted":
        est.fit(X_GOOD)
        before = FittedState(est)
    est.set_params(device=device)
    with pytest.raises(
        ValueError, match=re.escape(f"device={device!r}") + "|" + re.escape(f"Got {device!r}")
    ):
        est.fit(X_GOOD)
    if state == "fitted":
        before.assert_intact()
    else:
        with pytest.raises(NotFittedError):
            check_is_fitted(est)


@pytest.mark.parametrize("device", ["cpu", "cpu:0", "auto", torch.device("cpu")], ids=str)
def test_cpu_devices_accepted(device):
    est = make(Autoencoder, device=device).fit(X_GOOD)
    expected = "cuda" if device == "auto" and torch.cuda.is_available() else "cpu"
    assert est.device_.type == expected
    assert est.transform(X_GOOD).shape == (N_SAMPLES, N_COMPONENTS)


# ------------------------------------------------------------------ sample


@pytest.mark.parametrize("n_samples", [0, -1, 1.5, True, None, "3", 2.0])
def test_sample_bad_n_samples_raises_value_error(n_samples):
    est = fitted(VariationalAutoencoder)
    before = FittedState(est)
    with pytest.raises(ValueError, match=r"n_samples"):
        est.sample(n_samples)
    before.assert_intact()


@pytest.mark.parametrize("n_samples", [1, 7, np.int64(3)])
def test_sample_good_n_samples(n_samples):
    est = fitted(VariationalAutoencoder)
    draws = est.sample(n_samples, random_state=0)
    assert draws.shape == (int(n_samples), N_FEATURES)
    assert draws.dtype == np.float64


# ---------------------------------------------------------- log_likelihood


@pytest.mark.parametrize("n_draws", [0, -1, 1.5, True, None, "3", 2.0])
def test_log_likelihood_bad_n_importance_samples_raises_value_error(n_draws):
    est = fitted(VariationalAutoencoder)
    before = FittedState(est)
    with pytest.raises(ValueError, match=r"n_importance_samples must be a positive integer"):
        est.log_likelihood(X_GOOD, n_importance_samples=n_draws)
    before.assert_intact()


@pytest.mark.parametrize("n_wrong", [N_FEATURES - 1, N_FEATURES + 1])
def test_log_likelihood_wrong_n_features_raises_value_error(n_wrong):
    est = fitted(VariationalAutoencoder)
    before = FittedState(est)
    X = np.random.default_rng(0).uniform(size=(5, n_wrong))
    match = rf"X has {n_wrong} features, but VariationalAutoencoder is expecting {N_FEATURES}"
    with pytest.raises(ValueError, match=match):
        est.log_likelihood(X, n_importance_samples=2)
    before.assert_intact()


def test_log_likelihood_good_input_keeps_caller_array_and_dtype():
    est = fitted(VariationalAutoencoder)
    X = np.array(X_GOOD, dtype=np.float32)
    copy = X.copy()
    out = est.log_likelihood(X, n_importance_samples=np.int64(3), random_state=0)
    assert out.shape == (N_SAMPLES,) and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(X, copy)


# ------------------------------------------------------- hidden_layer_sizes


#: (8, 10**30): past int64, it failed inside torch ("Overflow when unpacking long long")
BAD_HIDDEN_LAYER_SIZES = [(0,), (8, 0), (8, -2), [-1], (8, 1.5), (8, "a"), [[8]], (8, 10**30)]


@pytest.mark.parametrize("state", ["fresh", "fitted"])
@pytest.mark.parametrize(
    "cls, hidden_layer_sizes", family_cases(BAD_HIDDEN_LAYER_SIZES, (8, 0), name=str)
)
def test_hidden_layer_sizes_not_positive_integers_raises(cls, state, hidden_layer_sizes):
    est = make(cls)
    if state == "fitted":
        est.fit(X_GOOD)
        before = FittedState(est)
    est.set_params(hidden_layer_sizes=hidden_layer_sizes)
    with pytest.raises(ValueError, match=r"hidden_layer_sizes"):
        est.fit(X_GOOD)
    if state == "fitted":
        before.assert_intact()
    else:
        est.set_params(hidden_layer_sizes=(8,))
        assert_unfitted_then_fits(est)


@pytest.mark.parametrize("hidden_layer_sizes", [(), 5, (6, 4), [3], np.array([4, 2])], ids=str)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_hidden_layer_sizes_valid_forms_fit(cls, hidden_layer_sizes):
    est = make(cls, hidden_layer_sizes=hidden_layer_sizes).fit(X_GOOD)
    assert est.transform(X_GOOD).shape == (N_SAMPLES, N_COMPONENTS)


# -------------------------------------------------------- invalid params

#: (param, bad value) for every constructor parameter: wrong type, out of range,
#: unknown string
COMMON_BAD_PARAMS = [
    ("n_components", 0),
    ("n_components", -1),
    ("n_components", 1.5),
    ("n_components", "2"),
    ("n_components", None),
    ("n_components", True),
    ("n_components", 10**30),  # past int64: it failed inside torch
    ("hidden_layer_sizes", 0),
    ("hidden_layer_sizes", -3),
    ("hidden_layer_sizes", 1.5),
    ("hidden_layer_sizes", "abc"),
    ("hidden_layer_sizes", None),
    ("activation", "sigmoid"),
    ("activation", "RELU"),
    ("activation", 1),
    ("activation", None),
    ("loss", "l2"),
    ("loss", 1),
    ("loss", None),
    ("optimizer", "rmsprop"),
    ("optimizer", None),
    ("optimizer", 1),
    ("learning_rate", 0),
    ("learning_rate", -0.1),
    ("learning_rate", "0.1"),
    ("learning_rate", None),
    ("learning_rate", True),  # a bool is no rate (Python counts it a number)
    ("learning_rate_schedule", "adaptive"),
    ("learning_rate_schedule", "Cosine"),
    ("learning_rate_schedule", None),
    ("learning_rate_schedule", 1),
    ("weight_decay", -1e-3),
    ("weight_decay", "x"),
    ("weight_decay", None),
    ("batch_size", 0),
    ("batch_size", -5),
    ("batch_size", 1.5),
    ("batch_size", "big"),
    ("batch_size", None),
    ("max_iter", 0),
    ("max_iter", -1),
    ("max_iter", 1.5),
    ("max_iter", None),
    ("tol", -1.0),
    ("tol", "x"),
    ("tol", None),
    ("tol", True),
    ("n_iter_no_change", 0),
    ("n_iter_no_change", -2),
    ("n_iter_no_change", 1.5),
    ("n_iter_no_change", None),
    ("early_stopping", "yes"),
    ("early_stopping", None),
    ("early_stopping", 0.5),
    ("validation_fraction", 0.0),
    ("validation_fraction", 1.0),
    ("validation_fraction", 1.5),
    ("validation_fraction", -0.1),
    ("validation_fraction", "x"),
    ("validation_fraction", None),
    ("shuffle", "yes"),
    ("shuffle", None),
    ("random_state", "seed"),
    ("random_state", 1.5),
    ("random_state", -1),
    ("device", 1),
    ("device", None),
    ("device", 1.5),
    ("deterministic", "yes"),
    ("deterministic", None),
    ("deterministic", 2),
    ("distributed", "yes"),
    ("distributed", None),
    ("distributed", 2),
    ("verbose", "loud"),
    ("verbose", -1),
    ("verbose", 1.5),
    ("verbose", None),
    ("warm_start", "yes"),
    ("warm_start", None),
    ("warm_start", 0.5),
    ("distributed", "yes"),
    ("distributed", None),
    ("distributed", 0.5),
    ("init", "PCA"),
    ("init", "zeros"),
    ("init", None),
    ("init", 1),
]

#: the losses of the other likelihood family
MSE_FAMILY_BAD_LOSSES = [("loss", "gaussian"), ("loss", "bernoulli")]

TIED_AND_PRETRAINING_BAD_PARAMS = [
    ("tied_weights", "yes"),
    ("tied_weights", None),
    ("tied_weights", 0.5),
    ("pretraining", "layerwise"),
    ("pretraining", "Greedy"),
    ("pretraining", "none"),
    ("pretraining", True),
    ("pretraining", 1),
]

EXTRA_BAD_PARAMS = {
    Autoencoder: MSE_FAMILY_BAD_LOSSES + TIED_AND_PRETRAINING_BAD_PARAMS,
    DenoisingAutoencoder: [
        *MSE_FAMILY_BAD_LOSSES,
        *TIED_AND_PRETRAINING_BAD_PARAMS,
        ("noise", "poisson"),
        ("noise", "Masking"),
        ("noise", 1),
        ("noise", None),
        ("noise_level", -0.1),
        ("noise_level", "x"),
        ("noise_level", None),
        ("noise_level", True),  # it masked every value
    ],
    VariationalAutoencoder: [
        ("loss", "mse"),
        ("loss", "bce"),
        ("beta", -1.0),
        ("beta", "x"),
        ("beta", None),
        ("beta", True),
    ],
    SparseAutoencoder: [
        *MSE_FAMILY_BAD_LOSSES,
        *TIED_AND_PRETRAINING_BAD_PARAMS,
        ("sparsity", "l2"),
        ("sparsity", "KL"),
        ("sparsity", 1),
        ("sparsity", None),
        ("sparsity_weight", -0.1),
        ("sparsity_weight", "x"),
        ("sparsity_weight", None),
        ("sparsity_target", 0.0),
        ("sparsity_target", 1.0),
        ("sparsity_target", -0.1),
        ("sparsity_target", 1.5),
        ("sparsity_target", "x"),
        ("sparsity_target", None),
    ],
    ContractiveAutoencoder: [
        *MSE_FAMILY_BAD_LOSSES,
        *TIED_AND_PRETRAINING_BAD_PARAMS,
        ("contraction_weight", -1.0),
        ("contraction_weight", "x"),
        ("contraction_weight", None),
        ("contraction_weight", True),
    ],
    ConvolutionalAutoencoder: [
        *MSE_FAMILY_BAD_LOSSES,
        # of the wrong type; a tuple of the wrong length or with bad entries is a
        # ValueError at fit (see the image_shape tests)
        ("image_shape", 4),
        ("image_shape", 4.0),
        ("image_shape", "2x2"),
        ("image_shape", True),
        ("channels", 0),
        ("channels", -3),
        ("channels", 1.5),
        ("channels", "abc"),
        ("channels", None),
        ("channels", 10**30),  # past int64: it failed inside torch
        ("kernel_size", 0),
        ("kernel_size", -1),
        ("kernel_size", 1.5),
        ("kernel_size", "3"),
        ("kernel_size", None),
    ],
}

#: the common parameters on Autoencoder, each class's own on that class: the
#: family shares the base's constraints (checked below), and scikit-learn's
#: check_param_validation (tests/test_common.py) already refuses bad values of
#: every parameter of every configuration; the refit that keeps the old model
#: runs on every class with its own parameters
BAD_PARAMS = [
    pytest.param(cls, param, value, id=f"{cls.__name__}-{param}={value!r}")
    for cls in ESTIMATORS
    for param, value in (COMMON_BAD_PARAMS if cls is Autoencoder else []) + EXTRA_BAD_PARAMS[cls]
]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_bad_params_table_covers_every_constructor_parameter(cls):
    own = {param for param, _ in EXTRA_BAD_PARAMS[cls]}
    common = {param for param, _ in COMMON_BAD_PARAMS}
    assert own | common == set(cls().get_params())
    # a common parameter checked on Autoencoder alone has the same constraints here
    for param in common - own:
        expected = _described(Autoencoder._parameter_constraints[param])
        assert _described(cls._parameter_constraints[param]) == expected, param


def _described(constraints):
    """Constraints as comparable values (an Interval has no ``==``)."""
    return [(type(c), str(c)) for c in constraints]


@pytest.mark.parametrize("cls, param, value", BAD_PARAMS)
def test_invalid_param_raises_at_fit_not_before(cls, param, value):
    # __init__ and set_params store the value as given and never raise
    est = make(cls, **{param: value})
    assert est.get_params()[param] is value
    other = make(cls)
    assert other.set_params(**{param: value}) is other
    assert other.get_params()[param] is value

    message = rf"The '{param}' parameter of {cls.__name__} must be"
    for method in ("fit", "partial_fit", "fit_transform"):
        with pytest.raises(InvalidParameterError, match=message):
            getattr(est, method)(X_GOOD)
        with pytest.raises(NotFittedError):
            check_is_fitted(est)

    # a fitted model whose parameter is then set to a bad value keeps its old
    # model when the refit fails; partial_fit refuses it too, where
    # scikit-learn's _fit_context skips the check on a fitted estimator (a
    # negative rate had trained uphill, batch_size=-5 recorded an empty epoch)
    good = fitted(cls)
    before = FittedState(good)
    good.set_params(**{param: value})
    for method in ("fit", "partial_fit"):
        with pytest.raises(InvalidParameterError, match=message):
            getattr(good, method)(X_GOOD)
        before.assert_intact()


# ---------------------------------------------------- failed fits and refits


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_failed_refit_then_good_refit_works(cls):
    est = fitted(cls)
    before = FittedState(est)
    X_nan = np.array(X_GOOD)
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(X_nan)
    before.assert_intact()
    # a later refit with good data gives the same model as a first fit
    est.fit(X_GOOD)
    np.testing.assert_array_equal(est.transform(X_GOOD), before.transform)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_failed_refit_with_feature_names_keeps_old_names(cls):
    pd = pytest.importorskip("pandas")
    columns = [f"f{i}" for i in range(N_FEATURES)]
    est = make(cls).fit(pd.DataFrame(np.array(X_GOOD), columns=columns))
    Z = est.transform(pd.DataFrame(np.array(X_GOOD), columns=columns))
    bad = pd.DataFrame(np.full((5, N_FEATURES + 1), np.nan), columns=[*columns, "extra"])
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad)
    assert list(est.feature_names_in_) == columns
    assert est.n_features_in_ == N_FEATURES
    np.testing.assert_array_equal(est.transform(pd.DataFrame(np.array(X_GOOD), columns=columns)), Z)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_failed_partial_fit_does_not_change_later_training(cls):
    """A rejected chunk leaves the estimator as it was: the next partial_fit
    trains exactly as if the rejected call had never happened (optimiser
    moments included, as IncrementalPCA's state is)."""
    X_nan = np.array(X_GOOD)
    X_nan[0, 0] = np.nan
    reference = make(cls).partial_fit(X_GOOD).partial_fit(X_GOOD)
    est = make(cls).partial_fit(X_GOOD).partial_fit(X_GOOD)
    with pytest.raises(ValueError, match="NaN"):
        est.partial_fit(X_nan)
    np.testing.assert_array_equal(est.transform(X_GOOD), reference.transform(X_GOOD))
    reference.partial_fit(X_GOOD)
    est.partial_fit(X_GOOD)
    np.testing.assert_array_equal(est.transform(X_GOOD), reference.transform(X_GOOD))


# ------------------------------------------------------- non-finite loss

NON_FINITE_LOSS_CASES = {
    # from scratch, the layers see huge data at unit scale and its held-out
    # score is float64: only the VAE's loss, in X's units, overflows; a warm
    # start or partial_fit keeps the scale of the data it started on
    "huge_data": (dict(early_stopping=True), np.array(X_GOOD) * 1e30),
    "huge_learning_rate": (dict(learning_rate=1e30, max_iter=10), np.array(X_GOOD)),
}
FRESH_NON_FINITE_CASES = [
    *[pytest.param(cls, "huge_learning_rate", id=f"{cls.__name__}-rate") for cls in ESTIMATORS],
    pytest.param(VariationalAutoencoder, "huge_data", id="VariationalAutoencoder-data"),
]


@pytest.mark.parametrize("cls", [c for c in ESTIMATORS if c is not VariationalAutoencoder])
def test_huge_data_fits_from_scratch(cls):
    # its held-out score had summed float32 squared errors in X's units,
    # which overflowed and failed the fit
    params, X = NON_FINITE_LOSS_CASES["huge_data"]
    est = make(cls, **params).fit(X)
    assert np.isfinite([est.init_validation_score_, *est.validation_scores_]).all()
    assert np.isfinite(est.transform(X)).all()


@pytest.mark.parametrize("cls, case", FRESH_NON_FINITE_CASES)
def test_non_finite_training_loss_raises_value_error(cls, case):
    params, X = NON_FINITE_LOSS_CASES[case]
    X_before = X.copy()
    est = make(cls, **params)
    with pytest.raises(ValueError, match=r"non-finite") as info:
        est.fit(X)
    message = str(info.value)
    assert "Scale the data" in message
    assert "learning_rate" in message
    np.testing.assert_array_equal(X, X_before)
    est.set_params(learning_rate=1e-3)
    assert_unfitted_then_fits(est)


# partial_fit keeps its optimiser (and so its learning rate, as MLPRegressor's
# does): only huge data makes its loss non-finite
WARM_CASES = [("fit", "huge_data"), ("fit", "huge_learning_rate"), ("partial_fit", "huge_data")]


@pytest.mark.parametrize("method, case", WARM_CASES, ids=[f"{m}-{c}" for m, c in WARM_CASES])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_non_finite_training_loss_keeps_warm_started_model(cls, method, case):
    params, X = NON_FINITE_LOSS_CASES[case]
    est = fitted(cls, warm_start=True)
    before = FittedState(est)
    est.set_params(**params)
    with pytest.raises(ValueError, match=r"Scale the data.*learning_rate"):
        getattr(est, method)(X)
    before.assert_intact()
    for key, value in est.module_.state_dict().items():
        assert torch.isfinite(value).all(), key
    # and it trains on from there with sane settings
    est.set_params(learning_rate=1e-3, max_iter=3)
    est.fit(X_GOOD)
    assert est.n_iter_ == before.attributes["n_iter_"] + 3
    assert np.all(np.isfinite(est.transform(X_GOOD)))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_non_finite_weights_after_the_last_step_raise_and_keep_the_model(cls, method):
    """One batch per epoch: no later loss reads the weights the last step
    broke. Such a call had returned with NaN weights in place of the model."""
    est = getattr(make(cls, warm_start=True, batch_size=len(X_GOOD)), method)(X_GOOD)
    before = FittedState(est)
    epoch = est.n_iter_ + 1
    est.set_params(learning_rate=1e38, max_iter=1)
    with pytest.raises(ValueError, match=rf"weights became non-finite .* in epoch {epoch}\b"):
        getattr(est, method)(X_GOOD)
    before.assert_intact()
    # from scratch, early stopping off: refused, and nothing fitted
    fresh = make(cls, learning_rate=1e38, max_iter=1, batch_size=len(X_GOOD))
    with pytest.raises(ValueError, match=r"weights became non-finite .* in epoch 1\b"):
        fresh.fit(X_GOOD)
    assert_unfitted_then_fits(fresh, learning_rate=1e-3)


# ------------------------------------- tied weights and greedy pretraining

VARIANTS = {
    "tied": dict(tied_weights=True),
    "greedy": dict(pretraining="greedy"),
    "tied_greedy": dict(tied_weights=True, pretraining="greedy"),
}
VARIANT_CASES = [
    pytest.param(cls, name, id=f"{cls.__name__}-{name}")
    for cls in MLP_ESTIMATORS
    for name in VARIANTS
]


def assert_weights_tied(est):
    """Each decoder layer holds its mirror encoder layer's weight (same storage)."""
    encoder = [m for m in est.module_.encoder if isinstance(m, torch.nn.Linear)]
    decoder = [m for m in est.module_.decoder if hasattr(m, "weight")]
    assert len(encoder) == len(decoder)
    for enc, dec in zip(reversed(encoder), decoder, strict=True):
        assert dec.weight is enc.weight
        assert dec.weight.data_ptr() == enc.weight.data_ptr()


@pytest.mark.parametrize("cls, variant", VARIANT_CASES)
def test_variant_failed_refit_keeps_model(cls, variant):
    params = VARIANTS[variant]
    est = fitted(cls, **params)
    before = FittedState(est)
    X_nan = np.array(X_GOOD)
    X_nan[0, 0] = np.nan
    X_before = X_nan.copy()
    with pytest.raises(ValueError, match="NaN"):
        est.fit(X_nan)
    assert_input_unchanged(X_nan, X_before)
    before.assert_intact()
    if params.get("tied_weights"):
        assert_weights_tied(est)
    # a later refit with good data gives the same model as a first fit
    est.fit(X_GOOD)
    np.testing.assert_array_equal(est.transform(X_GOOD), before.transform)


@pytest.mark.parametrize("cls, variant", VARIANT_CASES)
def test_variant_non_finite_training_loss_raises_value_error(cls, variant):
    """A non-finite loss in a pretraining phase is refused like one in the
    end-to-end phase, and leaves the estimator unfitted."""
    params, X = NON_FINITE_LOSS_CASES["huge_learning_rate"]
    X_before = X.copy()
    est = make(cls, **VARIANTS[variant], **params)
    with pytest.raises(ValueError, match=r"non-finite.*Scale the data.*learning_rate"):
        est.fit(X)
    np.testing.assert_array_equal(X, X_before)
    est.set_params(learning_rate=1e-3)
    assert_unfitted_then_fits(est)


@pytest.mark.parametrize("cls, variant", VARIANT_CASES)
def test_variant_non_finite_loss_keeps_warm_started_model(cls, variant):
    params = VARIANTS[variant]
    est = fitted(cls, warm_start=True, **params)
    before = FittedState(est)
    est.set_params(learning_rate=1e30, max_iter=10)
    with pytest.raises(ValueError, match=r"Scale the data.*learning_rate"):
        est.fit(X_GOOD)
    before.assert_intact()
    if params.get("tied_weights"):
        assert_weights_tied(est)


@pytest.mark.parametrize(
    "cls, params, named",
    [
        (Autoencoder, {"learning_rate": 1e4}, r"lower learning_rate \(now 10000\)\.$"),
        (
            SparseAutoencoder,
            {"weight_decay": 1e3},
            r"learning_rate \(now 0\.005\), weight_decay \(now 1000\) or "
            r"sparsity_weight \(now 0\.01\)\.$",
        ),
    ],
    ids=["rate", "weight-decay"],
)
def test_a_non_finite_loss_names_the_settings_that_may_cause_it(cls, params, named):
    # "lower learning_rate" alone blamed the rate for a weight_decay of 1000;
    # settings at 0 (a weight_decay of 0 cannot be lowered) are left out
    est = cls(optimizer="sgd", learning_rate=5e-3, random_state=0, device="cpu")
    X = np.random.default_rng(0).normal(size=(60, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=named):
            est.set_params(**params).fit(X)


@pytest.mark.parametrize("bad", ["yes", "Greedy", 1], ids=repr)
@pytest.mark.parametrize("cls", MLP_ESTIMATORS, ids=[c.__name__ for c in MLP_ESTIMATORS])
def test_pretraining_error_names_allowed_values(cls, bad):
    message = (
        rf"The 'pretraining' parameter of {cls.__name__} must be a str among \{{'greedy'\}} "
        rf"or None\. Got {re.escape(repr(bad))} instead"
    )
    with pytest.raises(InvalidParameterError, match=message):
        make(cls, pretraining=bad).fit(X_GOOD)


# ================================================================
# Accepted dtypes and memory layouts: they work like a plain array
# ================================================================
#
# Each case builds, from float64 values, an array of an odd dtype or layout
# holding those values, and names the dtype scikit-learn's check_array (with
# dtype=(float64, float32)) turns it into. The result must equal, exactly, the
# result on a plain C-contiguous native-endian array of that dtype.


def _ints(values, dtype):
    """Small integers from the values (non-negative for unsigned dtypes)."""
    ints = np.round(values * 10)
    if np.dtype(dtype).kind == "u":
        ints = np.abs(ints)
    return ints.astype(dtype)


def _read_only(values, dtype):
    X = np.array(values, dtype=dtype)
    X.setflags(write=False)
    return X


def _memmap(values, tmp_path, dtype, order="C"):
    """A read-only np.memmap of a .npy file holding the values."""
    path = tmp_path / "X.npy"
    np.save(path, np.array(values, dtype=dtype, order=order))
    X = np.load(path, mmap_mode="r")
    assert isinstance(X, np.memmap)
    assert not X.flags.writeable
    return X


def _view(values, dtype, index):
    """A view ``base[index]`` holding the values (``index`` is its own inverse
    for reversals)."""
    base = np.array(values, dtype=dtype)[index].copy()
    X = base[index]
    assert X.base is base
    return X


#: name: (build(values, tmp_path) -> odd array, the dtype check_array gives)
ODD_INPUTS = {
    "float16": (lambda v, p: v.astype(np.float16), np.float64),
    "bool": (lambda v, p: v > np.median(v), np.float64),
    "uint8": (lambda v, p: _ints(v, np.uint8), np.float64),
    "int32": (lambda v, p: _ints(v, np.int32), np.float64),
    "int64": (lambda v, p: _ints(v, np.int64), np.float64),
    "big_endian_f8": (lambda v, p: v.astype(">f8"), np.float64),
    # check_array converts a non-native float32 to float64, not to native float32
    "big_endian_f4": (lambda v, p: v.astype(">f4"), np.float64),
    "fortran_f8": (lambda v, p: np.asfortranarray(v, dtype=np.float64), np.float64),
    "fortran_f4": (lambda v, p: np.asfortranarray(v, dtype=np.float32), np.float32),
    "reversed_rows_f8": (lambda v, p: _view(v, np.float64, np.s_[::-1]), np.float64),
    "reversed_columns_f8": (lambda v, p: _view(v, np.float64, np.s_[:, ::-1]), np.float64),
    "reversed_both_f4": (lambda v, p: _view(v, np.float32, np.s_[::-1, ::-1]), np.float32),
    "read_only_f8": (lambda v, p: _read_only(v, np.float64), np.float64),
    "read_only_f4": (lambda v, p: _read_only(v, np.float32), np.float32),
    "memmap_f8": (lambda v, p: _memmap(v, p, np.float64), np.float64),
    "memmap_f4": (lambda v, p: _memmap(v, p, np.float32), np.float32),
    "memmap_fortran_f8": (lambda v, p: _memmap(v, p, np.float64, order="F"), np.float64),
}


class ArraySnapshot:
    """An odd array's dtype (byte order included), layout, flags and values, and
    those of the array it is a view of."""

    def __init__(self, X):
        self.X = X
        self.state = self._state(X)
        self.base = X.base if isinstance(X.base, np.ndarray) else None
        self.base_state = None if self.base is None else self._state(self.base)

    @staticmethod
    def _state(X):
        return dict(
            type=type(X),
            dtype=X.dtype,
            shape=X.shape,
            strides=X.strides,
            writeable=X.flags.writeable,
            values=np.array(X, copy=True),
        )

    def assert_unchanged(self):
        for array, before in [(self.X, self.state), (self.base, self.base_state)]:
            if array is None:
                continue
            now = self._state(array)
            values = now.pop("values")
            expected = dict(before)
            np.testing.assert_array_equal(values, expected.pop("values"), strict=True)
            assert now == expected


def _method_input(method, est):
    """The float64 values a method is called with: X_GOOD, or for
    inverse_transform the codes ``est`` gives X_GOOD."""
    return est.transform(X_GOOD) if method == "inverse_transform" else np.array(X_GOOD)


#: every odd input on Autoencoder (check_array's conversions, shared by the
#: family); on the others the float32 ones skae could use without a copy, where
#: only skae's own code keeps the caller's array untouched: a writeable memmap
#: and a read-only array
ODD_CASES = [
    *[pytest.param(Autoencoder, case, id=f"Autoencoder-{case}") for case in sorted(ODD_INPUTS)],
    *[
        pytest.param(cls, case, id=f"{cls.__name__}-{case}")
        for cls in OTHER_ESTIMATORS
        for case in ("memmap_f4", "read_only_f4")
    ],
]


@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@pytest.mark.parametrize("cls, case", ODD_CASES)
def test_odd_dtype_or_layout_works_like_plain_array(cls, method, state, case, tmp_path):
    build, dtype = ODD_INPUTS[case]
    # two estimators in the same state: one gets the odd array, one the plain one
    est, reference = (make(cls), make(cls)) if state == "fresh" else (fitted(cls), fitted(cls))
    X = build(_method_input(method, reference), tmp_path)
    snapshot = ArraySnapshot(X)
    plain = np.ascontiguousarray(X, dtype=dtype)
    assert plain.dtype.isnative
    # check_array converts to the dtype this case names
    assert check_array(X, dtype=(np.float64, np.float32)).dtype == dtype
    if state == "fitted" and method not in ("fit", "partial_fit"):
        before = FittedState(est)

    result = getattr(est, method)(X)
    snapshot.assert_unchanged()

    if method in ("fit", "partial_fit"):
        assert result is est
        Z = est.transform(X_GOOD)
        getattr(reference, method)(plain)
        np.testing.assert_array_equal(Z, reference.transform(X_GOOD), strict=True)
        assert est.n_iter_ == reference.n_iter_
        assert est.loss_curve_ == reference.loss_curve_
    else:
        expected = getattr(reference, method)(plain)
        assert result.dtype == dtype
        assert result.flags.c_contiguous and result.flags.writeable
        assert not np.shares_memory(result, X)
        np.testing.assert_array_equal(result, expected, strict=True)
        assert np.all(np.isfinite(result))
        before.assert_intact()


# ================================================== ragged and degenerate X


def _ragged(kind, w):
    row = [0.5] * w
    if kind == "short_row":
        return [row, row[:-1], row]
    return [row, [0.5, [0.5] * (w - 1)], row]  # a nested row


@pytest.mark.parametrize("kind", ["short_row", "nested_row"])
@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@SKLEARN_MESSAGES
def test_ragged_nested_list_raises_value_error(cls, method, state, kind):
    X = _ragged(kind, width(method))
    X_before = copy.deepcopy(X)
    est = make(cls) if state == "fresh" else fitted(cls)
    if state == "fitted":
        before = FittedState(est)
    # numpy's message, which check_array passes on
    with pytest.raises(ValueError, match=r"setting an array element with a sequence"):
        getattr(est, method)(X)
    assert X == X_before
    if state == "fresh":
        assert_unfitted_then_fits(est)
    else:
        before.assert_intact()


#: (n_samples, n_features, n_components)
TINY_SHAPES = {
    "one_feature": (N_SAMPLES, 1, 1),
    "one_sample": (1, N_FEATURES, N_COMPONENTS),
    "one_sample_one_feature": (1, 1, 1),
}


def _check_all_methods_finite(est, X):
    """transform, inverse_transform and score_samples give finite output of the
    right shape and dtype."""
    n_samples, n_features = X.shape
    Z = est.transform(X)
    assert Z.shape == (n_samples, est.n_components)
    R = est.inverse_transform(Z)
    assert R.shape == (n_samples, n_features)
    scores = est.score_samples(X)
    assert scores.shape == (n_samples,)
    for out in (Z, R, scores):
        assert out.dtype == X.dtype
        assert np.all(np.isfinite(out))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("case", sorted(TINY_SHAPES))
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_one_feature_or_one_sample_fits(cls, case, method):
    n_samples, n_features, n_components = TINY_SHAPES[case]
    X = np.random.default_rng(5).uniform(size=(n_samples, n_features))
    X.setflags(write=False)
    est = getattr(make(cls, n_components=n_components), method)(X)
    assert est.n_features_in_ == n_features
    assert np.all(np.isfinite(est.loss_curve_))
    _check_all_methods_finite(est, X)
    # and it trains on
    est.partial_fit(X)
    _check_all_methods_finite(est, X)


def _constant_column(X):
    X[:, 1] = 0.7
    return X


def _zero_column(X):
    X[:, 2] = 0.0
    return X


DEGENERATE_X = {
    "constant_column": _constant_column,
    "zero_column": _zero_column,
    "all_zero": np.zeros_like,
    "all_constant": lambda X: np.full_like(X, 3.0),
}


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("case", sorted(DEGENERATE_X))
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_constant_and_zero_columns_fit(cls, case, method):
    X = DEGENERATE_X[case](np.array(X_GOOD))
    X_before = X.copy()
    est = getattr(make(cls), method)(X)
    np.testing.assert_array_equal(X, X_before)
    assert np.all(np.isfinite(est.loss_curve_))
    for key, value in est.module_.state_dict().items():
        unused = key == "noise_variance" and est.get_params()["loss"] == "bernoulli"
        assert unused or torch.isfinite(value).all(), key
    _check_all_methods_finite(est, X)
    _check_all_methods_finite(est, np.array(X_GOOD))


# ====================================================================== pandas

COLUMNS = [f"f{i}" for i in range(N_FEATURES)]
NULLABLE_DTYPES = ["Float64", "Int64", "Float32"]


def _frame(values, dtype="float64"):
    """A DataFrame of the values; columns f0..f3 for data, 0..2 for codes."""
    pd = pytest.importorskip("pandas")
    columns = COLUMNS if values.shape[1] == N_FEATURES else None
    if dtype == "Int64":
        values = np.round(values * 10)
    return pd.DataFrame(values, columns=columns).astype(dtype)


def _frame_fitted(cls):
    """Fitted on a float64 DataFrame with columns f0..f3."""
    return make(cls).fit(_frame(np.array(X_GOOD)))


def _frame_state(est):
    with warnings.catch_warnings():
        # FittedState transforms the ndarray X_GOOD
        warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
        return FittedState(est)


def _check_failed_frame_call(est, method, frame, match):
    """``method`` on ``frame`` raises a ValueError matching ``match``; the frame
    is unchanged and the estimator intact (or still unfitted, if it was)."""
    pd = pytest.importorskip("pandas")
    fresh = not hasattr(est, "module_")
    if not fresh:
        before = _frame_state(est)
        names = list(est.feature_names_in_)
    frame_before = frame.copy(deep=True)
    with pytest.raises(ValueError, match=match):
        getattr(est, method)(frame)
    pd.testing.assert_frame_equal(frame, frame_before, check_exact=True)
    if fresh:
        assert not hasattr(est, "feature_names_in_")
        assert_unfitted_then_fits(est)
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
            before.assert_intact()
        assert list(est.feature_names_in_) == names


@pytest.mark.parametrize("dtype", NULLABLE_DTYPES)
@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@SKLEARN_MESSAGES
def test_pandas_nullable_with_na_raises_value_error(cls, method, state, dtype):
    pd = pytest.importorskip("pandas")
    est = make(cls) if state == "fresh" else _frame_fitted(cls)
    values = _method_input(method, fitted(cls))
    frame = _frame(values, dtype)
    frame.iloc[2, 1] = pd.NA
    assert frame.isna().to_numpy().sum() == 1
    _check_failed_frame_call(est, method, frame, r"Input X contains NaN")


@pytest.mark.parametrize("dtype", NULLABLE_DTYPES)
@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@SKLEARN_MESSAGES
def test_pandas_nullable_without_na_works_like_float64(cls, method, state, dtype):
    pd = pytest.importorskip("pandas")
    est, reference = (
        (make(cls), make(cls)) if state == "fresh" else (_frame_fitted(cls), _frame_fitted(cls))
    )
    values = _method_input(method, fitted(cls))
    frame = _frame(values, dtype)
    assert str(frame.dtypes.iloc[0]) == dtype
    # the same values, in float64 (a nullable Float32 holds float32 values)
    plain = frame.astype(np.float32 if dtype == "Float32" else np.float64).astype(np.float64)
    frame_before = frame.copy(deep=True)
    result = getattr(est, method)(frame)
    pd.testing.assert_frame_equal(frame, frame_before, check_exact=True)
    if method in ("fit", "partial_fit"):
        getattr(reference, method)(plain)
        X = _frame(np.array(X_GOOD))
        np.testing.assert_array_equal(est.transform(X), reference.transform(X), strict=True)
        assert list(est.feature_names_in_) == COLUMNS
    else:
        # check_array turns every nullable dtype, Float32 too, into float64
        assert result.dtype == np.float64
        np.testing.assert_array_equal(result, getattr(reference, method)(plain), strict=True)


def _renamed(frame):
    return frame.rename(columns={COLUMNS[1]: "other"})


def _reordered(frame):
    return frame[COLUMNS[::-1]]


FEATURE_NAME_CHANGES = {"reordered": _reordered, "renamed": _renamed}
#: (method, params): a warm-started fit checks the names like partial_fit does
NAMES_CHECKED = [
    ("transform", {}),
    ("score_samples", {}),
    ("partial_fit", {}),
    ("fit", dict(warm_start=True)),
]


@pytest.mark.parametrize("change", sorted(FEATURE_NAME_CHANGES))
@pytest.mark.parametrize(
    "method, params",
    NAMES_CHECKED,
    ids=["transform", "score_samples", "partial_fit", "fit-warm_start"],
)
@SKLEARN_MESSAGES
def test_pandas_changed_feature_names_raise_value_error(cls, method, params, change):
    est = make(cls, **params).fit(_frame(np.array(X_GOOD)))
    frame = FEATURE_NAME_CHANGES[change](_frame(np.array(X_GOOD)))
    match = re.escape("The feature names should match those that were passed during fit.")
    _check_failed_frame_call(est, method, frame, match)


# ================================================ no damage, on every estimator
#
# The tests above check scikit-learn's messages on Autoencoder, and with them
# that Autoencoder is not damaged. Here every other estimator gets one refused
# input of each kind (an array with NaN, an object array of strings, a ragged
# list, a too wide array, a DataFrame with NA, renamed columns; a sparse matrix
# with NaN is in the sparse section)
# in every method and state: its exception type, an unchanged input, an intact
# fitted model or a still unfitted one. The message is not checked again.

#: name: (the refused input for a method, the exception)
REFUSED_INPUTS = {
    "nan": (lambda method: _with_value(method, np.nan), ValueError),
    "strings": (lambda method: _strings_object(width(method)), ValueError),
    "ragged_list": (lambda method: _ragged("short_row", width(method)), ValueError),
}


@pytest.mark.parametrize("case", sorted(REFUSED_INPUTS))
@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@pytest.mark.parametrize("cls", OTHER_ESTIMATORS, ids=OTHER_IDS)
def test_refused_input_does_no_damage(cls, method, state, case):
    build, exception = REFUSED_INPUTS[case]
    check_bad_input(cls, method, state, build(method), exception, match=None)


@pytest.mark.parametrize("method", ["transform", "score_samples", "partial_fit"])
@pytest.mark.parametrize("cls", OTHER_ESTIMATORS, ids=OTHER_IDS)
def test_wrong_n_features_does_no_damage(cls, method):
    X = np.full((5, N_FEATURES + 1), 0.5)
    check_bad_input(cls, method, "fitted", X, ValueError, match=None)


@pytest.mark.parametrize("method, state", METHOD_STATES, ids=METHOD_STATE_IDS)
@pytest.mark.parametrize("cls", OTHER_ESTIMATORS, ids=OTHER_IDS)
def test_pandas_frame_with_na_does_no_damage(cls, method, state):
    pd = pytest.importorskip("pandas")
    est = make(cls) if state == "fresh" else _frame_fitted(cls)
    frame = _frame(_method_input(method, fitted(cls)), "Float64")
    frame.iloc[2, 1] = pd.NA
    _check_failed_frame_call(est, method, frame, match=None)


@pytest.mark.parametrize(
    "method, params",
    NAMES_CHECKED,
    ids=["transform", "score_samples", "partial_fit", "fit-warm_start"],
)
@pytest.mark.parametrize("cls", OTHER_ESTIMATORS, ids=OTHER_IDS)
def test_pandas_renamed_column_does_no_damage(cls, method, params):
    est = make(cls, **params).fit(_frame(np.array(X_GOOD)))
    frame = _renamed(_frame(np.array(X_GOOD)))
    _check_failed_frame_call(est, method, frame, match=None)


# ======================================================= values too large

F32_MAX = float(np.finfo(np.float32).max)


@pytest.mark.parametrize("method, state", FIT_METHOD_STATES, ids=FIT_METHOD_STATE_IDS)
@pytest.mark.parametrize("cls, value", family_cases([1e39, -1e39, 1e300, -1e300, 3.5e38], -1e300))
def test_fit_float64_beyond_float32_range_raises(cls, method, state, value):
    """skae trains in float32: a finite float64 value it cannot hold is refused."""
    X = np.array(X_GOOD)
    X[3, 2] = value
    check_bad_input(cls, method, state, X, ValueError, r"float32")


@pytest.mark.parametrize("method, state", FIT_METHOD_STATES, ids=FIT_METHOD_STATE_IDS)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_fit_float64_at_float32_max_is_not_refused_as_too_large(cls, method, state):
    """The largest float32 is not beyond float32's range: no "too large"
    error. The networks train on it in the layers' units; the VAE's
    likelihood of it overflows, with the non-finite loss's error."""
    X = np.array(X_GOOD)
    X[3, 2] = F32_MAX
    check_trains_or_overflows(cls, method, state, X, params={"init": "random"})


def check_trains_or_overflows(cls, method, state, X, params=None):
    """The autoencoders with an input scale fit ``X`` (their loss is in the
    layers' units) to finite codes and reconstructions; the VAE, whose loss
    is a likelihood in X's units, and a partial_fit that keeps the scale of
    its first, ordinary chunk refuse it as a non-finite loss."""
    if cls is VariationalAutoencoder or (method, state) == ("partial_fit", "fitted"):
        check_bad_input(cls, method, state, X, ValueError, "non-finite", params=params)
        return
    est = make(cls, **(params or {})) if state == "fresh" else fitted(cls, **(params or {}))
    getattr(est, method)(X)
    assert np.all(np.isfinite(est.loss_curve_))
    codes = est.transform(X)
    assert np.all(np.isfinite(codes)) and np.all(np.isfinite(est.inverse_transform(codes)))


@pytest.mark.parametrize("state", ["fresh", "fitted"])
@pytest.mark.parametrize("pretraining", [None, "greedy"])
def test_non_finite_validation_score_raises(state, pretraining):
    """A value the model overflows on in a held-out row (early stopping's):
    a clear error, nothing fitted or changed, as for the training loss; also
    after greedy pretraining, whose epochs it counts."""
    X = np.random.default_rng(0).uniform(size=(20, N_FEATURES))
    X[3, 2] = F32_MAX  # row 3 is among the two held out at random_state=0
    check_bad_input(
        Autoencoder,
        "fit",
        state,
        X,
        ValueError,
        r"the validation score \(on the rows early stopping holds out\) became non-finite",
        params={"early_stopping": True, "pretraining": pretraining},
    )


HUGE_FLOAT32 = [np.float32(1e30), np.float32(-1e30), np.float32(3e38)]


@pytest.mark.parametrize("method, state", FIT_METHOD_STATES, ids=FIT_METHOD_STATE_IDS)
@pytest.mark.parametrize("cls, value", family_cases(HUGE_FLOAT32, HUGE_FLOAT32[0], name=str))
def test_fit_float32_huge_values_train_in_the_layers_units(cls, method, state, value):
    X = (np.array(X_GOOD) * value).astype(np.float32)
    assert np.all(np.isfinite(X))
    check_trains_or_overflows(cls, method, state, X)


TINY_VALUE_CASES = [
    pytest.param(1e-50, False, id="1e-50"),
    pytest.param(1e-300, False, id="1e-300"),
    pytest.param(1e-50, True, id="csr-1e-50"),
]
FRESH_FIT_STATES = [("fit", "fresh"), ("fit", "fitted"), ("partial_fit", "fresh")]


@pytest.mark.parametrize(
    "method, state", FRESH_FIT_STATES, ids=["-".join(c) for c in FRESH_FIT_STATES]
)
@pytest.mark.parametrize("scale, sparse", TINY_VALUE_CASES)
def test_data_that_rounds_to_zero_in_float32_is_refused_from_scratch(method, state, scale, sparse):
    # every value is 0 in float32: such a fit had returned a model worse than
    # the column means, saying it was PCA's
    X = np.array(X_GOOD) * scale
    X = sp.csr_matrix(X) if sparse else X
    check_bad_input(Autoencoder, method, state, X, ValueError, "too small for float32")


def test_data_near_float32_limits_fits_as_at_unit_scale_or_as_zeros_when_fitted():
    X = np.array(X_GOOD)
    unit = fitted(Autoencoder, early_stopping=True)
    for scale in (1e-30, 1e-40):  # normal and subnormal in float32
        small = fitted(Autoencoder, early_stopping=True).fit(X * scale)
        np.testing.assert_allclose(
            small.transform(X * scale) / scale, unit.transform(X), rtol=1e-2, atol=1e-3
        )
    # a fitted scale reads rows that round to zero as the zeros they become
    zeros = fitted(Autoencoder).partial_fit(np.zeros_like(X))
    tiny = fitted(Autoencoder).partial_fit(X * 1e-50)
    np.testing.assert_array_equal(tiny.transform(X), zeros.transform(X))


HUGE_INFERENCE_VALUES = [
    pytest.param(np.float32(3e38), id="float32_3e38"),
    pytest.param(np.float32(-3e38), id="float32_-3e38"),
    pytest.param(1e300, id="float64_1e300"),
    pytest.param(-1e300, id="float64_-1e300"),
    pytest.param(1e39, id="float64_1e39"),
    pytest.param(-1e39, id="float64_-1e39"),
]


@pytest.mark.parametrize("where", ["one_entry", "every_entry"])
@pytest.mark.parametrize("value", HUGE_INFERENCE_VALUES)
@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score_samples"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_huge_values_never_give_non_finite_output(cls, method, value, where):
    """Either finite output or a ValueError naming non-finite values; never a
    silent NaN or inf."""
    dtype = np.asarray(value).dtype
    X = np.random.default_rng(6).uniform(size=(5, width(method))).astype(dtype)
    if where == "one_entry":
        X[2, 1] = value
    else:
        X[:] = value
    X_before = X.copy()
    est = fitted(cls)
    before = FittedState(est)
    try:
        result = getattr(est, method)(X)
    except ValueError as exc:
        assert "non-finite" in str(exc)
    else:
        assert result.dtype == dtype
        assert np.all(np.isfinite(result))
    assert_input_unchanged(X, X_before)
    before.assert_intact()


def _assert_non_finite_error(est, method, X):
    X_before = X.copy()
    before = FittedState(est)
    with pytest.raises(ValueError, match=r"non-finite"):
        getattr(est, method)(X)
    assert_input_unchanged(X, X_before)
    before.assert_intact()


@pytest.mark.parametrize("cls", [Autoencoder, DenoisingAutoencoder], ids=lambda c: c.__name__)
def test_float32_transform_overflowing_first_layer_raises(cls):
    """A float32 row of +-3e38 along the signs of the first-layer weights of one
    hidden unit: that unit's pre-activation exceeds float32's range, so float32
    arithmetic must overflow, although the exact codes are finite. (3e38 in
    every column does not overflow this tiny model: its codes stay < 0.5 of
    float32's max. The sparse and contractive models' code activations, ReLU
    and logistic, saturate an infinite pre-activation to a finite code.)"""
    est = fitted(cls)
    first, last = est.module_.encoder[0], est.module_.encoder[-1]
    assert isinstance(first, torch.nn.Linear)
    # a linear code layer passes an overflow on
    assert isinstance(last, torch.nn.Linear)
    W = first.weight.detach().double().numpy()
    b = first.bias.detach().double().numpy()
    unit = int(np.argmax(np.abs(W).sum(axis=1)))
    X = (np.sign(W[unit]) * 3e38).astype(np.float32)[None]
    # proof that float32 cannot hold it (the ReLU passes it on)
    pre_activation = W[unit] @ X[0].astype(np.float64) + b[unit]
    assert pre_activation > 1.01 * F32_MAX
    assert np.any(last.weight.detach().numpy()[:, unit] != 0)
    # in float64 the same values encode to finite codes
    assert np.all(np.isfinite(est.transform(X.astype(np.float64))))
    _assert_non_finite_error(est, "transform", X)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_float32_score_samples_of_3e38_raises(cls):
    """3e38 in every entry: the reconstruction error's square is far beyond
    float32's range, so float32 score_samples must overflow."""
    est = fitted(cls)
    X = np.full((5, N_FEATURES), np.float32(3e38))
    # proof: the same values in float64 score far beyond float32's range (or
    # overflow even float64)
    try:
        scores64 = est.score_samples(X.astype(np.float64))
    except ValueError as exc:
        assert "non-finite" in str(exc)
    else:
        assert np.all(np.abs(scores64) > 2 * F32_MAX)
    _assert_non_finite_error(est, "score_samples", X)


# ------------------------------------------- log_likelihood, as the other methods


@pytest.mark.parametrize("value", HUGE_INFERENCE_VALUES)
def test_log_likelihood_huge_values_finite_or_non_finite_error(value):
    dtype = np.asarray(value).dtype
    X = np.random.default_rng(6).uniform(size=(5, N_FEATURES)).astype(dtype)
    X[2, 1] = value
    X_before = X.copy()
    est = fitted(VariationalAutoencoder)
    before = FittedState(est)
    try:
        result = est.log_likelihood(X, n_importance_samples=3, random_state=0)
    except ValueError as exc:
        assert "non-finite" in str(exc)
    else:
        assert result.dtype == dtype and np.all(np.isfinite(result))
    assert_input_unchanged(X, X_before)
    before.assert_intact()


@pytest.mark.parametrize("change", sorted(FEATURE_NAME_CHANGES))
def test_log_likelihood_changed_feature_names_raise_value_error(change):
    est = make(VariationalAutoencoder).fit(_frame(np.array(X_GOOD)))
    before = FittedState(est)
    frame = FEATURE_NAME_CHANGES[change](_frame(np.array(X_GOOD)))
    match = re.escape("The feature names should match those that were passed during fit.")
    with pytest.raises(ValueError, match=match):
        est.log_likelihood(frame, n_importance_samples=2)
    before.assert_intact()


def test_a_nan_row_unchecked_under_assume_finite_is_named_as_such():
    """With scikit-learn's ``assume_finite=True`` the input is not checked;
    a NaN row's non-finite output was blamed on overflow alone."""
    from sklearn import config_context

    X = np.random.default_rng(0).normal(size=(40, 4))
    est = Autoencoder(n_components=2, max_iter=1, early_stopping=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    rows = X[:3].copy()
    rows[1, 2] = np.nan
    with config_context(assume_finite=True), pytest.raises(ValueError, match="row 1 .*NaN or inf"):
        est.transform(rows)
    assert np.isnan(rows[1, 2])  # the caller's rows untouched
