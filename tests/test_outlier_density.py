"""AutoencoderOutlierDetector's score_by="density": the Gaussian on the code
and the residual, against the reconstruction error alone."""

import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.covariance import LedoitWolf
from sklearn.utils._param_validation import InvalidParameterError

from skae import Autoencoder, AutoencoderOutlierDetector
from skae._outlier_scores import far_out_rows

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SEEDED = dict(random_state=0, device="cpu")


def _plane(n_samples, rng):
    """Rows near a 2-d plane in 10-d: a 2-d Gaussian code with standard
    deviations 3 and 1 along two orthonormal directions, and isotropic noise
    of standard deviation 0.1 off the plane."""
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 2)))[0].T
    code = rng.normal(size=(n_samples, 2)) * [3.0, 1.0]
    return code @ basis + 0.1 * rng.normal(size=(n_samples, 10)), basis


def _linear_detector(score_by):
    # no hidden layer: the PCA start is the model, so the plane is its manifold
    estimator = Autoencoder(n_components=2, hidden_layer_sizes=(), max_iter=5, **SEEDED)
    return AutoencoderOutlierDetector(estimator, score_by=score_by, random_state=0)


@pytest.fixture(scope="module")
def plane():
    rng = np.random.default_rng(1)
    (X_train, basis), (X_new, _) = _plane(1000, rng), _plane(500, rng)
    # on the plane, 10 standard deviations out along its first direction
    far_along = 10 * 3.0 * basis[:1]
    return X_train, X_new, far_along


# Fitted once for the module and never changed by a test (a test that refits
# or sets parameters fits its own).
@pytest.fixture(scope="module")
def density(plane):
    return _linear_detector("density").fit(plane[0])


@pytest.fixture(scope="module")
def reconstruction(plane):
    return _linear_detector("reconstruction").fit(plane[0])


def test_density_flags_a_row_far_along_the_manifold(plane, density, reconstruction):
    _, X_new, far_along = plane
    # the density sees the row far out along the code: below every new inlier
    assert density.score_samples(far_along)[0] < density.score_samples(X_new).min()
    assert density.predict(far_along)[0] == -1
    # the reconstruction error does not: the row lies on the plane, so it
    # reconstructs better than the median new inlier and is not flagged
    inliers = reconstruction.score_samples(X_new)
    assert reconstruction.score_samples(far_along)[0] > np.median(inliers)
    assert reconstruction.predict(far_along)[0] == 1


def test_density_flags_a_row_off_the_manifold(plane, density):
    X_train, X_new, _ = plane
    detector = density
    off = np.zeros((1, 10))
    off[0] = np.linalg.svd(X_train - X_train.mean(axis=0))[2][-1]  # least variance
    assert detector.score_samples(off)[0] < detector.score_samples(X_new).min()


def test_density_follows_its_documented_formula(plane, density):
    X_train, X_new, _ = plane
    detector = density
    inner = detector.estimator_
    codes = inner.transform(X_train)
    in_sample = ((inner.inverse_transform(codes) - X_train) ** 2).mean()
    assert isinstance(detector.noise_variance_, float)
    # the noise off the plane: 8 of 10 directions of variance 0.01 each; the
    # out-of-fold residuals' variance is not below the training rows' own
    assert detector.noise_variance_ == pytest.approx(0.008, rel=0.1)
    assert detector.noise_variance_ > in_sample
    shrunk = LedoitWolf().fit(codes)
    np.testing.assert_allclose(detector.code_location_, shrunk.location_, rtol=1e-10)
    np.testing.assert_allclose(detector.code_precision_, shrunk.precision_, rtol=1e-8)
    new_codes = inner.transform(X_new)
    residual = inner.inverse_transform(new_codes) - X_new
    centred = new_codes - detector.code_location_
    expected = -0.5 * (
        (residual**2).sum(axis=1) / detector.noise_variance_
        + np.einsum("ij,jk,ik->i", centred, detector.code_precision_, centred)
    )
    # one network pass against transform then inverse_transform, float64:
    # the same arithmetic up to rounding
    np.testing.assert_allclose(detector.score_samples(X_new), expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(
        detector.decision_function(X_new), detector.score_samples(X_new) - detector.offset_
    )


def test_density_attributes_only_for_the_density_score(plane, density, reconstruction):
    X_train = plane[0]
    assert isinstance(density.noise_variance_, float) and density.noise_variance_ > 0
    assert density.code_location_.shape == (2,)
    assert density.code_precision_.shape == (2, 2)
    for name in ("noise_variance_", "code_location_", "code_precision_"):
        assert not hasattr(reconstruction, name)
    np.testing.assert_array_equal(
        reconstruction.score_samples(X_train),
        reconstruction.estimator_.score_samples(X_train),
    )


def test_scores_follow_the_fit_not_a_later_set_params(plane):
    """offset_ is in the units of the score the detector was fitted with: a
    later set_params(score_by=...) changes nothing until the next fit, which
    then drops the density attributes."""
    X_train, X_new = plane[0], plane[1]
    detector = _linear_detector("density").fit(X_train)
    before = detector.decision_function(X_new)
    detector.set_params(score_by="reconstruction")
    np.testing.assert_array_equal(detector.decision_function(X_new), before)
    detector.fit(X_train)
    assert not hasattr(detector, "noise_variance_")
    np.testing.assert_array_equal(
        detector.score_samples(X_new), detector.estimator_.score_samples(X_new)
    )


def test_density_keeps_the_input_dtype(plane):
    X_train, X_new, _ = plane
    detector = _linear_detector("density").fit(X_train.astype(np.float32))
    scores32 = detector.score_samples(X_new.astype(np.float32))
    assert scores32.dtype == np.float32
    scores64 = detector.score_samples(X_new)
    assert scores64.dtype == np.float64
    # float32 against float64 arithmetic of the same model
    np.testing.assert_allclose(scores32, scores64, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("scale", [1e-35, 1e-25, 1e-20, 1e15])
def test_density_of_float32_rows_at_any_scale_matches_float64(plane, scale):
    # the code's precision goes as 1 / scale**2: at 1e-20 it was inf in float32,
    # fit refused float32 data as overflowing and a float64 fit flagged every
    # float32 row; scored in float64, float32 rows rank as float64 ones do.
    # At 1e-25 the squared errors (1e-50) read as 0 in float32: the noise
    # variance fell to its floor and every row was flagged; they are now
    # carried in the layers' units
    X_train, X_new, _ = (part * scale for part in plane)
    detector = _linear_detector("density").fit(X_train)
    scores64 = detector.score_samples(X_new)
    scores32 = detector.score_samples(X_new.astype(np.float32))
    assert np.isfinite(scores32).all()
    assert np.corrcoef(scores32, scores64)[0, 1] > 0.999
    fitted32 = _linear_detector("density").fit(X_train.astype(np.float32))
    # the noise floor is float64's: float32's tiny had floored it 1e4 times up
    assert fitted32.noise_variance_ == pytest.approx(detector.noise_variance_, rel=0.01, abs=0)
    flagged = np.mean(fitted32.predict(X_new.astype(np.float32)) == -1)
    assert 0.02 < flagged < 0.25  # contamination=0.1 of new rows like the training ones


def test_density_takes_sparse_input(plane, density):
    sparse = pytest.importorskip("scipy.sparse")
    X_train, X_new, _ = plane
    dense = density
    detector = _linear_detector("density").fit(sparse.csr_matrix(X_train))
    # the same rows densified a block at a time, same process and seed
    np.testing.assert_allclose(
        detector.score_samples(sparse.csr_matrix(X_new)), dense.score_samples(X_new), rtol=1e-12
    )


def test_score_by_is_validated(plane):
    detector = AutoencoderOutlierDetector(score_by="likelihood")
    match = r"'score_by' parameter .*'density'.* Got 'likelihood'"
    with pytest.raises(InvalidParameterError, match=match):
        detector.fit(plane[0])


@pytest.mark.parametrize(
    "name, value, match",
    [
        ("noise_variance_", np.ones(9), r"noise_variance_ has shape \(9,\); .* needs \(\)"),
        ("code_precision_", np.eye(3), r"code_precision_ has shape \(3, 3\); .* \(2, 2\)"),
        ("code_location_", np.zeros(1), r"code_location_ has shape \(1,\)"),
        ("noise_variance_", 0.0, "noise_variance_ is not positive"),
        ("noise_variance_", float("nan"), "noise_variance_ is not positive"),
    ],
)
def test_load_refuses_density_attributes_that_disagree(density, name, value, match):
    fitted = density
    state = fitted._export_state()
    state["attributes"][name] = value
    with pytest.raises(ValueError, match=match):
        clone(fitted)._import_state(state)
    state = fitted._export_state()
    del state["attributes"][name]
    with pytest.raises(ValueError, match=f"lacks \\['{name}'\\]"):
        clone(fitted)._import_state(state)


@pytest.mark.parametrize("value", [0.0, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_detector_of_identical_rows_flags_any_other_row(dtype, value):
    # the residuals' variance is 0: floored at the dtype's tiny (2.2e-308),
    # every row off the training rows overflowed with a ValueError
    X = np.full((60, 4), value, dtype=dtype)
    inner = Autoencoder(n_components=1, hidden_layer_sizes=(8,), max_iter=5, **SEEDED)
    with pytest.warns(UserWarning, match="all the same row"):
        detector = AutoencoderOutlierDetector(inner, cv=3, random_state=0).fit(X)
    # the square of X's rounding; rows of zeros have no scale: 1
    floor = np.finfo(dtype).eps ** 2 if value else 1.0
    assert detector.noise_variance_ == pytest.approx(floor, rel=1e-6)
    new = np.array([[value] * 4, [6, 6, 6, 6]], dtype=dtype)
    assert np.isfinite(detector.score_samples(new)).all()
    np.testing.assert_array_equal(detector.predict(new), [1, -1])


def test_a_variational_inner_model_scores_float32_rows_at_any_scale(plane):
    # its loss is not in the layers' units (loss_scale 1): the errors of
    # float32 rows near 1e-25 had still read as 0 and every row was flagged
    from skae import VariationalAutoencoder

    inner = VariationalAutoencoder(n_components=2, hidden_layer_sizes=(8,), max_iter=3, **SEEDED)
    X_train, X_new, _ = plane
    flagged = []
    for scale in (1.0, 1e-25):
        detector = AutoencoderOutlierDetector(inner, cv=2, random_state=0)
        detector.fit((X_train * scale).astype(np.float32))
        flagged.append(np.mean(detector.predict((X_new * scale).astype(np.float32)) == -1))
    assert 0.02 < flagged[0] < 0.25
    assert flagged[1] == pytest.approx(flagged[0], abs=0.02)


@pytest.mark.parametrize("sparse", [False, True])
def test_the_noise_floor_is_that_of_rounding_at_any_scale(sparse):
    # eps times the mean square (not eps squared) floored the noise of
    # float32 data near 300 at 0.0107, 150 times its real variance; summed in
    # float32, the mean square of values near 1e19 was inf
    from skae._outlier_scores import noise_floor

    rng = np.random.default_rng(0)
    for scale in (300.0, 1e19):
        X = (scale * (1 + 0.01 * rng.normal(size=(5000, 100)))).astype(np.float32)
        X = scipy.sparse.csr_matrix(X) if sparse else X
        expected = np.finfo(np.float32).eps ** 2 * scale**2
        assert noise_floor(X) == pytest.approx(expected, rel=0.01)
    # the sampled rows (every other one of 8,192) all zeros: X is not, and
    # its floor is not the 1 of an all-zero X
    X = np.zeros((8192, 10))
    X[1::2] = 1e-3
    X = scipy.sparse.csr_matrix(X) if sparse else X
    assert noise_floor(X) == pytest.approx(np.finfo(np.float64).eps ** 2 * 0.5e-6)


@pytest.mark.parametrize("score_by", ["density", "satterthwaite"])
def test_one_corrupted_training_row_does_not_set_the_noise_of_all(score_by):
    # a mean over every out-of-fold residual let one row of 101 at
    # (100, 100, -100, 0) raise noise_variance_ from 0.79 to 6e3: the residual
    # term vanished and 0.1 % of new inliers were flagged at contamination=0.1
    rng = np.random.default_rng(0)
    X, X_new = rng.normal(size=(101, 4)), rng.normal(size=(1000, 4))
    clean = AutoencoderOutlierDetector(random_state=0, score_by=score_by).fit(X[1:])
    X[0] = [100.0, 100.0, -100.0, 0.0]
    detector = AutoencoderOutlierDetector(random_state=0, score_by=score_by).fit(X)
    assert detector.noise_variance_ == pytest.approx(clean.noise_variance_, rel=0.2)
    # the fold models' code Gaussians leave the row out as the final one's
    # does: with it in them the threshold flagged 0.15-0.19 of new inliers
    assert 0.07 < np.mean(detector.predict(X_new) == -1) < 0.15
    far = np.array([[8.0, -8.0, 8.0, -8.0], [0.0, 30.0, 0.0, 0.0]])
    np.testing.assert_array_equal(detector.predict(far), [-1, -1])


@pytest.mark.parametrize(
    "errors, expected",
    [
        ([1.0, 1.1, 0.9, 1.05, 1e9], [False, False, False, False, True]),
        ([2.0] * 6 + [1e9], [False] * 7),  # no spread: no fence
        ([1.0, np.inf, np.inf, np.inf], [False] * 4),  # quartiles not finite
        ([0.0, 0.0, 1.0, 1.2, 0.8], [False] * 5),
    ],
)
def test_far_out_rows(errors, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning of inf - inf
        np.testing.assert_array_equal(far_out_rows(np.array(errors)), expected)


def test_a_far_out_row_does_not_set_the_noise_floor():
    # the floor (X's rounding) came from every row: one value of 1e18 among
    # standardised ones floored noise_variance_ at 32, the far-out row's
    # rounding, where the rows the noise is of give 2.4
    from skae._outlier_scores import noise_floor

    X = np.random.default_rng(0).normal(size=(120, 6))
    X[0, 3] = 1e18
    detector = AutoencoderOutlierDetector(random_state=0).fit(X)
    assert detector.noise_variance_ < noise_floor(X) / 10
    assert detector.noise_variance_ >= noise_floor(X[1:])


@pytest.mark.parametrize("score_by", ["density", "reconstruction"])
def test_a_float32_training_value_past_the_models_arithmetic(score_by):
    # a value the inner model trains on (float32 holds 1e20) gave an
    # out-of-fold error past float32, and the fit raised "non-finite values"
    X = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32)
    X[0, 3] = 1e20
    detector = AutoencoderOutlierDetector(random_state=0, score_by=score_by).fit(X)
    assert np.isfinite(detector.offset_)
    assert detector.calibration_scores_.argmin() == 0


def _copies(X, spelling):
    """X's rows, each three times, the copies spelled as ``spelling`` says."""
    rows = np.repeat(X, 3, axis=0)
    if spelling == "csr with explicit zeros":
        rows[rows < 0] = 0.0
        stored = rows != 0
        stored[1::3] |= rows[1::3] == 0  # the second copies store their zeros
        i, j = np.nonzero(stored)
        matrix = scipy.sparse.coo_matrix((rows[i, j], (i, j)), shape=rows.shape).tocsr()
        assert matrix.nnz > np.count_nonzero(rows)
        return matrix
    if spelling == "negative zeros":
        rows[rows < 0] = 0.0
        rows[1::3][rows[1::3] == 0] = -0.0
    return rows


@pytest.mark.parametrize("spelling", ["plain", "negative zeros", "csr with explicit zeros"])
def test_out_of_fold_splits_keep_the_copies_of_a_row_in_one_fold(spelling):
    from sklearn.model_selection import KFold

    from skae._outlier_scores import out_of_fold_splits, row_hashes

    X = np.random.default_rng(0).normal(size=(40, 5))
    rows = _copies(X, spelling)
    keys = row_hashes(rows)
    assert len(np.unique(keys)) == 40
    held = np.concatenate([h for _, h in out_of_fold_splits(rows, 5, 0)])
    np.testing.assert_array_equal(np.sort(held), np.arange(120))  # each row held out once
    for fitted_rows, held_out in out_of_fold_splits(rows, 5, 0):
        assert not set(keys[held_out]) & set(keys[fitted_rows])
    # distinct rows: KFold's own folds, as before copies were grouped
    theirs = KFold(5, shuffle=True, random_state=0).split(X)
    for ours, kfold in zip(out_of_fold_splits(X, 5, 0), theirs, strict=True):
        np.testing.assert_array_equal(ours[1], kfold[1])


@pytest.mark.parametrize("score_by", ["density", "reconstruction"])
def test_copies_of_a_training_row_are_scored_out_of_fold_alike(score_by):
    # split row by row, a copy of each held-out row sat among its fold's
    # fitted rows: scores in-sample, and training rows repeated three times
    # flagged 2-3 times contamination of new inliers (0.20-0.45 on breast
    # cancer's benign rows; 0.12-0.36 grouped, 0.09-0.22 without copies)
    X = np.random.default_rng(0).normal(size=(60, 5)) @ np.diag([3.0, 2.0, 1.0, 0.3, 0.1])
    detector = AutoencoderOutlierDetector(random_state=0, score_by=score_by).fit(
        np.repeat(X, 3, axis=0)
    )
    copies = detector.calibration_scores_.reshape(60, 3)
    np.testing.assert_array_equal(copies, np.repeat(copies[:, :1], 3, axis=1))


def test_row_hashes_tell_rows_of_few_distinct_values_apart():
    # a weighted sum of the values' raw bits collided where the low mantissa
    # bits are zero: 0/1 rows, integers, digits' k/16 (1797 rows, 1750 hashes),
    # which split digits' distinct rows as copies
    from sklearn.datasets import load_digits

    from skae._outlier_scores import row_hashes

    rng = np.random.default_rng(0)
    for X in (rng.integers(0, 2, size=(4000, 12)).astype(float), load_digits().data / 16):
        distinct = len(np.unique(X, axis=0))
        assert len(np.unique(row_hashes(X))) == distinct
        np.testing.assert_array_equal(row_hashes(scipy.sparse.csr_matrix(X)), row_hashes(X))
        np.testing.assert_array_equal(row_hashes(X.astype(np.float32)), row_hashes(X))
    # a CSR row with duplicate entries (summed) and its canonical form
    summed = scipy.sparse.csr_matrix(([1.0, 2.0, 3.0], [2, 0, 2], [0, 3]), shape=(1, 4))
    assert row_hashes(summed) == row_hashes(np.array([[2.0, 0.0, 4.0, 0.0]]))


@pytest.mark.parametrize("score_by", ["density", "reconstruction"])
@pytest.mark.parametrize("cv, value", [(5, 1e10), (2, 1e10), (3, 1e30)])
def test_a_sentinel_row_far_out_does_not_spoil_the_models(score_by, cv, value):
    # a whole row of 1e10 among standardised ones took the float32 precision
    # of the rows beside it in every model that trained on it: all new
    # inliers were flagged. The fold models are refitted without it, and the
    # final model fits the other rows; the fence is judged in X's units (the
    # reconstruction score's had been each fold model's, and at cv=2 the
    # sentinel stayed in) and within each fold too (1e30 inflated the errors
    # of the rows its models scored past the fence of all rows)
    rng = np.random.default_rng(0)
    X, new = rng.normal(size=(120, 6)), rng.normal(size=(400, 6))
    X[0] = value
    detector = AutoencoderOutlierDetector(random_state=0, score_by=score_by, cv=cv).fit(X)
    assert detector.predict(X[:1]) == -1
    assert (detector.predict(new) == -1).mean() < 0.25
    clean = AutoencoderOutlierDetector(random_state=0, score_by=score_by, cv=cv).fit(X[1:])
    np.testing.assert_allclose(
        detector.estimator_.transform(new), clean.estimator_.transform(new), rtol=1e-4, atol=1e-4
    )
