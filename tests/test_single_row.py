"""Inference's short way for plain numpy input (issue 23 item 3): a float
array that scikit-learn's validation would hand back unchanged skips it, with
the same results and the same errors and warnings as the long way."""

import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits

from skae import Autoencoder, AutoencoderOutlierDetector, VariationalAutoencoder
from skae._validation import plain_rows


class Subclass(np.ndarray):
    """Not a plain array: inference validates it (into an ndarray)."""


FAST = dict(max_iter=2, random_state=0, device="cpu", early_stopping=False)


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:300] / 16


@pytest.fixture(scope="module")
def models(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "mlp": Autoencoder(n_components=4, hidden_layer_sizes=(16,), **FAST).fit(X),
            "vae": VariationalAutoencoder(n_components=2, hidden_layer_sizes=(16,), **FAST).fit(X),
        }


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
def test_plain_rows_takes_only_what_validation_hands_back_unchanged():
    X = np.ones((3, 4))
    assert plain_rows(X, 4) is X
    assert plain_rows(np.asfortranarray(X), 4) is not None
    assert plain_rows(X.astype(np.float32), 4) is not None
    declined = [
        (X, 5),  # another width: validation's error
        (X[:0], 4),  # no rows
        (X[0], 4),  # 1-D
        (X.astype(np.int64), 4),  # converted by validation
        (X.astype(">f8"), 4),  # byte-swapped
        (np.asmatrix(X), 4),  # subclasses
        (X.view(Subclass), 4),
        (np.where(np.eye(3, 4) > 0, np.nan, X), 4),
        (np.where(np.eye(3, 4) > 0, np.inf, X), 4),
        (X.tolist(), 4),
    ]
    for value, n_features in declined:
        assert plain_rows(value, n_features) is None
    big = np.ones((2000, 4))
    assert plain_rows(big, 4) is big
    big[1999, 3] = np.nan  # past the per-value check's size: found by the sum
    assert plain_rows(big, 4) is None
    with sklearn.config_context(array_api_dispatch=True):
        assert plain_rows(X, 4) is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["transform", "score_samples", "inverse_transform"])
def test_short_way_equals_validated_way(models, X, dtype, method):
    """A subclass goes through validation and becomes the same array: the
    same process and blocks give the same bits."""
    est = models["mlp"]
    data = est.transform(X) if method == "inverse_transform" else X
    data = np.ascontiguousarray(data[:5], dtype=dtype)
    short = getattr(est, method)(data)
    validated = getattr(est, method)(data.view(Subclass))
    assert short.dtype == dtype and validated.dtype == dtype
    assert_array_equal(short, validated)
    assert not np.shares_memory(short, data)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_row_equals_its_row_of_a_batch(models, X, dtype):
    """Each row's output does not depend on its block: float64 to rounding
    (1e-12), float32 to the ulps kernels of other shapes round differently
    (rtol 1e-5 and as much of the block's largest magnitude: the VAE's ELBO
    is a sum of large terms whose float32 rounding, 4-7e-6, stays when the
    sum is small)."""
    rows = X[:20].astype(dtype)
    for est in models.values():
        for method in ("transform", "score_samples"):
            batch = getattr(est, method)(rows)
            single = np.concatenate([getattr(est, method)(rows[i : i + 1]) for i in range(20)])
            if dtype == np.float64:
                assert_allclose(single, batch, rtol=1e-12, atol=1e-12)
            else:
                assert_allclose(single, batch, rtol=1e-5, atol=1e-5 * np.abs(batch).max())


def test_short_way_keeps_the_errors_and_warnings(models, X):
    est = models["mlp"]
    bad = X[:2].copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.transform(bad)
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:2, :10])
    with pytest.raises(ValueError, match="overflow|non-finite"):
        est.score_samples(np.full((1, X.shape[1]), 1e300))
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(X.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        named = Autoencoder(n_components=2, hidden_layer_sizes=(8,), **FAST).fit(frame)
    with pytest.warns(UserWarning, match="feature names"):
        named.transform(X[:1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_detector_one_row_equals_its_row_of_a_batch(X):
    detector = AutoencoderOutlierDetector(
        estimator=Autoencoder(n_components=4, hidden_layer_sizes=(16,), **FAST),
        cv=2,
        random_state=0,
    ).fit(X)
    batch = detector.decision_function(X[:10])
    single = np.concatenate([detector.decision_function(X[i : i + 1]) for i in range(10)])
    assert_allclose(single, batch, rtol=1e-12, atol=1e-12)  # float64, as above
    with pytest.raises(ValueError, match="features"):
        detector.decision_function(X[:1, :5])
