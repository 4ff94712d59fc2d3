"""The input scale (``module_.input_scale``): the layers see the training data
at unit root mean square, so that its magnitude does not decide how it trains."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import skae
from skae import Autoencoder, ConvolutionalAutoencoder, VariationalAutoencoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIXED = dict(early_stopping=False, max_iter=4, random_state=0, device="cpu")


def low_rank(n=300, n_features=40, rank=4, seed=0):
    """Non-negative rows near a ``rank``-dimensional subspace, values ~1."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, rank)) @ rng.random((rank, n_features))
    return (X + 0.01 * rng.random((n, n_features))).astype(np.float32)


def fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


def test_scale_is_the_root_mean_square_of_the_training_rows():
    X = low_rank()
    model = fit(Autoencoder(n_components=2, **FIXED), X)
    assert float(model.module_.input_scale) == pytest.approx(np.sqrt(np.mean(X**2)), rel=1e-6)


def test_scale_of_sparse_rows_counts_their_zeros():
    X = sp.random(200, 50, density=0.05, format="csr", dtype=np.float32, random_state=0)
    model = fit(Autoencoder(n_components=2, **FIXED), X)
    expected = np.sqrt((X.data.astype(np.float64) ** 2).sum() / (200 * 50))
    assert float(model.module_.input_scale) == pytest.approx(expected, rel=1e-6)


def test_scale_leaves_out_the_rows_early_stopping_holds_out():
    """Four rows of distinct magnitudes, two held out: the scale is the RMS
    of one of the six possible pairs of training rows, not of all four."""
    X = np.arange(1.0, 5.0)[:, None] * np.ones((4, 3))
    params = {**FIXED, "early_stopping": True, "validation_fraction": 0.5, "batch_size": 2}
    model = fit(Autoencoder(n_components=1, **params), X)
    pairs = [np.sqrt(np.mean(X[[i, j]] ** 2)) for i in range(4) for j in range(i + 1, 4)]
    scale = float(model.module_.input_scale)
    assert min(abs(scale - p) / p for p in pairs) < 1e-6
    assert abs(scale - np.sqrt(np.mean(X**2))) > 1e-3


@pytest.mark.parametrize(
    "model",
    [
        Autoencoder(n_components=2, loss="bce"),
        VariationalAutoencoder(n_components=2, loss="bernoulli"),
    ],
    ids=["bce", "bernoulli"],
)
def test_a_logistic_output_keeps_the_data_as_it_is(model):
    model.set_params(**FIXED)
    fit(model, low_rank() / 10)
    assert float(model.module_.input_scale) == 1.0


def test_all_zero_data_keeps_scale_one():
    model = fit(Autoencoder(n_components=2, **FIXED), np.zeros((20, 5)))
    assert float(model.module_.input_scale) == 1.0


@pytest.mark.parametrize(
    "model",
    [
        Autoencoder(n_components=3, hidden_layer_sizes=(16,)),
        VariationalAutoencoder(n_components=3, hidden_layer_sizes=(16,), loss="gaussian"),
        ConvolutionalAutoencoder(n_components=3, image_shape=(5, 8), channels=(4,)),
    ],
    ids=["Autoencoder", "VariationalAutoencoder", "ConvolutionalAutoencoder"],
)
def test_codes_do_not_depend_on_the_scale_of_X(model):
    """Multiplying X by 255 (pixels in 0-255 instead of [0, 1]) gives the same
    codes and reconstructions 255 times as large, up to float rounding."""
    # init="random": from the PCA start, the gates' first updates follow
    # gradients near zero whose float rounding changes with the scale, so
    # two fits part by a few per cent (its start itself is scale-equivariant:
    # tests/test_pca_start.py); the network's own units are what is tested
    model.set_params(**FIXED, init="random")
    factor = 1
    X = low_rank()
    small = fit(clone(model), X)
    codes, reconstruction = small.transform(X), small.inverse_transform(small.transform(X))
    large = fit(clone(model), 255 * X)
    np.testing.assert_allclose(large.transform(255 * X) / factor, codes, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(
        large.inverse_transform(factor * codes) / 255, reconstruction, rtol=1e-3, atol=1e-3
    )


def test_small_values_are_learned_not_averaged_away():
    """Rows with values near 0.001 are still learned: with the layers seeing
    them unscaled the model ended worse than predicting the mean row
    (explained variance -0.42 on these rows; 0.71 with the scale)."""
    X = 1e-3 * low_rank(n=400, n_features=200)
    model = fit(Autoencoder(n_components=4, random_state=0, device="cpu"), X)
    residual = ((model.inverse_transform(model.transform(X)) - X) ** 2).sum()
    assert 1 - residual / ((X - X.mean(axis=0)) ** 2).sum() > 0.5


def test_scale_survives_pickle_save_and_warm_start(tmp_path):
    X = low_rank()
    model = fit(Autoencoder(n_components=2, warm_start=True, **FIXED), 255 * X)
    scale = float(model.module_.input_scale)
    assert scale == pytest.approx(255 * np.sqrt(np.mean(X**2)), rel=1e-5)
    assert float(pickle.loads(pickle.dumps(model)).module_.input_scale) == scale
    skae.save(model, tmp_path / "model")
    loaded = skae.load(tmp_path / "model")
    assert float(loaded.module_.input_scale) == scale
    np.testing.assert_allclose(loaded.transform(255 * X), model.transform(255 * X))
    fit(model, X)  # a warm start continues in the units it started in
    assert float(model.module_.input_scale) == scale


def test_scale_pass_reads_a_memory_map_in_small_blocks(tmp_path):
    """Learning the scale reads the rows block by block (a few MB each), so
    that a fit over a memory map does not hold a large float64 copy."""
    from skae._rows import SCALE_BLOCK_VALUES, ArrayRows, root_mean_square

    path = tmp_path / "rows.npy"
    np.save(path, low_rank(n=3000, n_features=200))
    X = np.load(path, mmap_mode="r")

    class Recording(ArrayRows):
        largest = 0

        def take(self, index):
            block = super().take(index)
            Recording.largest = max(Recording.largest, block.numel())
            return block

    rms = root_mean_square(Recording(X))
    assert rms == pytest.approx(np.sqrt(np.mean(np.asarray(X, dtype=np.float64) ** 2)), rel=1e-6)
    assert 0 < Recording.largest <= SCALE_BLOCK_VALUES
