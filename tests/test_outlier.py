"""AutoencoderOutlierDetector: the scikit-learn contract and the outlier API."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_inplace_ensure_writeable,
    check_param_validation,
    parametrize_with_checks,
)

from skae import (
    Autoencoder,
    AutoencoderOutlierDetector,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    VariationalAutoencoder,
)
from skae._outlier import DEFAULT_ESTIMATOR_PARAMS, default_estimator

# few epochs on purpose, here and in the checks: the tests need working models,
# not converged ones
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SEEDED = dict(random_state=0, device="cpu")
SMALL = dict(hidden_layer_sizes=(8,), max_iter=20, **SEEDED)


def _detectors():
    # seeded inner estimators: several checks refit and compare the results
    # (fit_predict against fit().predict(), fit twice, arrays against
    # DataFrames), and the detector's randomness is its inner estimator's.
    # Every check passes and none is marked as an expected failure.
    return [
        AutoencoderOutlierDetector(default_estimator(**SEEDED)),
        AutoencoderOutlierDetector(Autoencoder(**SMALL), contamination=0.25),
        AutoencoderOutlierDetector(VariationalAutoencoder(**SMALL), contamination=0.5),
    ]


@parametrize_with_checks(_detectors())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# Checks that scikit-learn's generator does not yield for third-party estimators.
EXTRA_CHECKS = [
    check_param_validation,
    check_dataframe_column_names_consistency,
    check_inplace_ensure_writeable,
]


@pytest.mark.parametrize("check", EXTRA_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("estimator", _detectors(), ids=repr)
def test_extra_sklearn_checks(estimator, check):
    check(type(estimator).__name__, estimator)


# ------------------------------------------------------------------ behaviour


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16, test_size=0.25, random_state=0, stratify=y)
    noise = np.random.default_rng(0).uniform(size=(50, 64))
    return X_train, X_test, noise


def _small_detector(contamination=0.1, **params):
    estimator = Autoencoder(
        n_components=8, hidden_layer_sizes=(32,), max_iter=15, batch_size=64, **SEEDED
    )
    return AutoencoderOutlierDetector(estimator.set_params(**params), contamination=contamination)


@pytest.fixture(scope="module")
def fitted(digits):
    return _small_detector().fit(digits[0])


def test_outlier_detector_api_semantics(fitted, digits):
    X_train, X_test, _ = digits
    for X in (X_train, X_test):
        labels = fitted.predict(X)
        assert labels.dtype.kind == "i"
        assert set(np.unique(labels)) <= {-1, 1}
        scores = fitted.score_samples(X)
        decision = fitted.decision_function(X)
        np.testing.assert_array_equal(scores, fitted.estimator_.score_samples(X))
        np.testing.assert_array_equal(decision, scores - fitted.offset_)
        # the sign of decision_function is the label: negative means outlier
        np.testing.assert_array_equal(labels == -1, decision < 0)
    assert fitted.offset_ == pytest.approx(
        np.percentile(fitted.estimator_.score_samples(X_train), 10)
    )
    assert fitted.n_features_in_ == 64
    assert not hasattr(fitted, "feature_names_in_")


@pytest.mark.parametrize("contamination", [0.01, 0.1, 0.25, 0.5])
def test_outlier_detector_flags_the_contamination_share(digits, contamination):
    X_train = digits[0]
    detector = _small_detector(contamination, max_iter=5).fit(X_train)
    share = np.mean(detector.predict(X_train) == -1)
    assert share == pytest.approx(contamination, abs=0.01)


def test_outlier_detector_fit_predict_equals_fit_then_predict(digits):
    X_train = digits[0]
    detector = _small_detector(max_iter=5)
    labels = detector.fit_predict(X_train)
    np.testing.assert_array_equal(labels, clone(detector).fit(X_train).predict(X_train))


def test_outlier_detector_scores_noise_below_digits(fitted, digits):
    _, X_test, noise = digits
    digit_scores, noise_scores = fitted.score_samples(X_test), fitted.score_samples(noise)
    assert noise_scores.max() < np.percentile(digit_scores, 1)
    assert np.all(fitted.predict(noise) == -1)
    # most held-out digits are inliers: they were not trained on, so a few
    # more than the contamination share fall below the threshold
    assert np.mean(fitted.predict(X_test) == 1) > 0.8


@pytest.mark.parametrize(
    "estimator",
    [
        Autoencoder(**SMALL),
        DenoisingAutoencoder(**SMALL),
        VariationalAutoencoder(**SMALL),
        ConvolutionalAutoencoder(
            image_shape=(8, 8), hidden_layer_sizes=(8,), n_components=8, max_iter=10, **SEEDED
        ),
        SparseAutoencoder(**SMALL),
        ContractiveAutoencoder(**SMALL),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outlier_detector_takes_every_skae_estimator(estimator, digits):
    X_train, X_test, noise = digits
    detector = AutoencoderOutlierDetector(estimator).fit(X_train)
    assert type(detector.estimator_) is type(estimator)
    assert detector.estimator_ is not estimator
    assert not hasattr(estimator, "module_")  # a clone is fitted, not the given one
    np.testing.assert_array_equal(
        detector.score_samples(X_test), detector.estimator_.score_samples(X_test)
    )
    both = np.vstack([X_test, noise])
    is_digit = np.r_[np.ones(len(X_test)), np.zeros(len(noise))]
    assert roc_auc_score(is_digit, detector.score_samples(both)) > 0.99


def test_outlier_detector_default_estimator(digits):
    detector = AutoencoderOutlierDetector().fit(digits[0])
    assert type(detector.estimator_) is Autoencoder
    params = detector.estimator_.get_params()
    assert {k: params[k] for k in DEFAULT_ESTIMATOR_PARAMS} == DEFAULT_ESTIMATOR_PARAMS
    assert params["random_state"] is None
    assert detector.estimator is None
    assert np.all(detector.predict(digits[2]) == -1)


@pytest.mark.parametrize(
    "contamination, match",
    [
        (0, r"'contamination' parameter .* must be a float in the range \(0(\.0)?, 0\.5\]"),
        (0.6, r"'contamination' parameter .* must be a float in the range \(0(\.0)?, 0\.5\]"),
        (-0.1, r"'contamination' .* Got -0\.1 instead"),
        ("auto", r"'contamination' .* Got 'auto' instead"),
    ],
)
def test_outlier_detector_refuses_bad_contamination(digits, contamination, match):
    detector = AutoencoderOutlierDetector(contamination=contamination)
    with pytest.raises(InvalidParameterError, match=match):
        detector.fit(digits[0])


@pytest.mark.parametrize("estimator", [PCA(8), "Autoencoder", Autoencoder], ids=repr)
def test_outlier_detector_refuses_a_non_skae_estimator(digits, estimator):
    detector = AutoencoderOutlierDetector(estimator)
    with pytest.raises(InvalidParameterError, match=r"'estimator' parameter .*BaseAutoencoder"):
        detector.fit(digits[0])


def test_outlier_detector_validates_the_inner_estimator(digits):
    with pytest.raises(InvalidParameterError, match="'n_components' parameter of Autoencoder"):
        AutoencoderOutlierDetector(Autoencoder(n_components=0)).fit(digits[0])


def test_outlier_detector_pickle_and_clone(fitted, digits):
    X_test = digits[1]
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X_test), fitted.predict(X_test))
    np.testing.assert_allclose(restored.decision_function(X_test), fitted.decision_function(X_test))
    assert restored.offset_ == fitted.offset_
    copy = clone(fitted)
    assert not hasattr(copy, "estimator_") and not hasattr(copy, "offset_")
    assert copy.get_params()["estimator__n_components"] == 8
    assert copy.set_params(estimator__n_components=4).estimator.n_components == 4
    assert fitted.estimator.n_components == 8


def test_outlier_detector_in_a_pipeline(digits):
    X = load_digits().data  # raw 0..16 pixels: the scaler maps them to [0, 1]
    pipe = make_pipeline(MinMaxScaler(), _small_detector(max_iter=5))
    labels = pipe.fit(X).predict(X)
    assert np.mean(labels == -1) == pytest.approx(0.1, abs=0.01)
    np.testing.assert_array_equal(pipe.decision_function(X) < 0, labels == -1)
    assert pipe.score_samples(digits[2] * 16).max() < np.percentile(pipe.score_samples(X), 1)


def test_outlier_detector_feature_names_and_dtype(digits):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(digits[0], columns=[f"pixel{i}" for i in range(64)])
    detector = _small_detector(max_iter=2).fit(X)
    np.testing.assert_array_equal(detector.feature_names_in_, X.columns)
    assert detector.score_samples(X.astype(np.float32)).dtype == np.float32
    assert detector.score_samples(X).dtype == np.float64
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        detector.predict(digits[0])
