"""AutoencoderOutlierDetector's score_by="satterthwaite": the density score
with the residual's variance scaled for the correlation of its features."""

import os
import tempfile

import numpy as np
import pytest

import skae
from skae import Autoencoder, AutoencoderOutlierDetector
from skae._outlier_scores import satterthwaite_variance

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SEEDED = dict(random_state=0, device="cpu")

N_FEATURES = 10
#: The residual's one direction: the last 8 features move together.
NOISE_DIRECTION = np.r_[0.0, 0.0, np.ones(N_FEATURES - 2)] / np.sqrt(N_FEATURES - 2)
NOISE_SD = 0.5


def _rows(n_samples, rng):
    """A 2-d Gaussian code (standard deviations 3 and 1) on the first two
    features, and noise that is one factor of standard deviation 0.5 shared
    by the other eight features (plus a trace of isotropic noise): the
    residual off the plane is perfectly correlated across those eight."""
    code = rng.normal(size=(n_samples, 2)) * [3.0, 1.0]
    factor = NOISE_SD * rng.normal(size=(n_samples, 1))
    X = np.zeros((n_samples, N_FEATURES))
    X[:, :2] = code
    X += factor * NOISE_DIRECTION + 1e-3 * rng.normal(size=(n_samples, N_FEATURES))
    return X


def _detector(score_by):
    # no hidden layer: the PCA start is the model, the plane its manifold
    estimator = Autoencoder(n_components=2, hidden_layer_sizes=(), max_iter=5, **SEEDED)
    return AutoencoderOutlierDetector(estimator, score_by=score_by, random_state=0)


@pytest.fixture(scope="module")
def correlated():
    return _rows(1000, np.random.default_rng(1))


@pytest.mark.parametrize("shape", [(50, 7), (7, 50), (30, 30)])
def test_satterthwaite_variance_is_tr_c2_over_tr_c(shape):
    residuals = np.random.default_rng(0).normal(size=shape) @ np.diag(np.arange(1, shape[1] + 1))
    second_moment = residuals.T @ residuals / shape[0]
    expected = np.trace(second_moment @ second_moment) / np.trace(second_moment)
    # the Gram of the shorter side against the p-by-p product: rounding only
    np.testing.assert_allclose(satterthwaite_variance(residuals), expected, rtol=1e-12)
    # at least the mean squared residual per feature
    assert satterthwaite_variance(residuals) >= np.trace(second_moment) / shape[1]


def test_satterthwaite_variance_of_isotropic_and_zero_residuals():
    # C a multiple of the identity: tr(C^2) / tr(C) = tr(C) / p exactly
    residuals = np.vstack([np.eye(4), -np.eye(4)]) * 2.0
    assert satterthwaite_variance(residuals) == pytest.approx(1.0, rel=1e-15)
    assert satterthwaite_variance(np.zeros((5, 3))) == 0.0


def test_noise_variance_counts_correlated_features_once(correlated):
    density = _detector("density").fit(correlated)
    satterthwaite = _detector("satterthwaite").fit(correlated)
    # the residual is the one factor: variance 0.25 along one direction of
    # ten. "density" spreads it over the ten features; "satterthwaite" sees
    # one effective feature of variance 0.25
    assert density.noise_variance_ == pytest.approx(NOISE_SD**2 / N_FEATURES, rel=0.1)
    assert satterthwaite.noise_variance_ == pytest.approx(NOISE_SD**2, rel=0.1)
    # the same model, code Gaussian and folds: only the noise differs
    np.testing.assert_array_equal(density.code_precision_, satterthwaite.code_precision_)


def test_satterthwaite_ranks_rows_as_the_generating_model(correlated):
    """Under the model that made the rows, a row 4 code deviations out along
    the plane (log-likelihood -8) is less likely than one 3 noise deviations
    off it (-4.5). The density score, with the residual's variance spread
    over the ten features, ranks them the other way round (-8 against
    -4.5 * 10); Satterthwaite's scale gets the generating model's order."""
    far_along = np.zeros((1, N_FEATURES))
    far_along[0, 0] = 4 * 3.0
    off_plane = 3 * NOISE_SD * NOISE_DIRECTION[None, :]
    rows = np.vstack([far_along, off_plane])
    satterthwaite = _detector("satterthwaite").fit(correlated).score_samples(rows)
    density = _detector("density").fit(correlated).score_samples(rows)
    assert satterthwaite[0] < satterthwaite[1]
    assert density[0] > density[1]
    # near the generating model's log-likelihoods (the code Gaussian is
    # estimated, so is the noise): -8 and -4.5
    np.testing.assert_allclose(satterthwaite, [-8.0, -4.5], rtol=0.15)


def test_satterthwaite_flags_about_contamination_of_new_inliers(correlated):
    detector = _detector("satterthwaite").fit(correlated)
    new = _rows(2000, np.random.default_rng(2))
    share = float(np.mean(detector.predict(new) == -1))
    assert 0.05 < share < 0.15  # contamination=0.1; the cross-fitted threshold


def test_satterthwaite_save_and_load(correlated):
    detector = _detector("satterthwaite").fit(correlated)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "detector.skae")
        skae.save(detector, path)
        restored = skae.load(path)
    assert restored.score_by == "satterthwaite"
    assert restored.noise_variance_ == detector.noise_variance_
    # same process and library versions: the same bits
    np.testing.assert_array_equal(
        restored.decision_function(correlated), detector.decision_function(correlated)
    )
