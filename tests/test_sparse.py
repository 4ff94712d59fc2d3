"""scipy.sparse input: every method of every estimator takes CSR, CSC and COO
matrices and the sparray types, densifies rows a minibatch (or an inference
block) at a time, returns dense output, and fits exactly as on the dense form.

Bad sparse input (NaN or inf in ``data``, the wrong width) is refused like dense
input, with no damage, in ``test_input_validation.py``.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _family import ESTIMATORS
from sklearn.exceptions import ConvergenceWarning

import skae
from skae._rows import (
    INFERENCE_BLOCK_SIZE,
    INFERENCE_BLOCK_VALUES,
    SparseRows,
    TensorRows,
    block_rows,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_SAMPLES, N_FEATURES = 30, 12
#: in [0, 1], so that every loss accepts it; a third of the entries stored
X_SPARSE = sp.random(
    N_SAMPLES, N_FEATURES, density=0.3, format="csr", random_state=0, dtype=np.float64
)
X_DENSE = X_SPARSE.toarray()

FORMATS = {
    "csr_matrix": sp.csr_matrix,
    "csc_matrix": sp.csc_matrix,
    "coo_matrix": sp.coo_matrix,
    "csr_array": sp.csr_array,
    "csc_array": sp.csc_array,
    "coo_array": sp.coo_array,
}


def make(cls, **params):
    settings = dict(n_components=3, max_iter=2, device="cpu", random_state=0)
    if cls is not skae.ConvolutionalAutoencoder:
        settings["hidden_layer_sizes"] = (8,)
    return cls(**{**settings, **params})


def assert_same(a, b):
    """Sparse and dense fits run the same float32 arithmetic on the same
    batches: the same to float tolerance (in practice to the bit)."""
    assert type(a) is type(b) is np.ndarray
    assert a.dtype == b.dtype
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_sparse_fit_equals_dense_fit(cls, fmt):
    X = FORMATS[fmt](X_SPARSE)
    before = X.copy()
    sparse, dense = make(cls).fit(X), make(cls).fit(X_DENSE)
    assert sparse.loss_curve_ == pytest.approx(dense.loss_curve_, rel=1e-6)
    codes = sparse.transform(X)
    assert_same(codes, dense.transform(X_DENSE))
    assert_same(sparse.score_samples(X), dense.score_samples(X_DENSE))
    assert sparse.score(X) == pytest.approx(dense.score(X_DENSE), rel=1e-6)
    # inverse_transform of sparse codes, too
    assert_same(sparse.inverse_transform(FORMATS[fmt](codes)), dense.inverse_transform(codes))
    # the caller's matrix is untouched
    assert type(X) is type(before)
    assert (X != before).nnz == 0


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_sparse_partial_fit_and_fit_transform_equal_dense(cls):
    sparse, dense = make(cls), make(cls)
    for start in (0, 15):
        sparse.partial_fit(X_SPARSE[start : start + 15])
        dense.partial_fit(X_DENSE[start : start + 15])
    assert_same(sparse.transform(X_SPARSE), dense.transform(X_DENSE))
    assert_same(make(cls).fit_transform(X_SPARSE), make(cls).fit_transform(X_DENSE))


SETTINGS = {
    "early_stopping": (skae.Autoencoder, dict(early_stopping=True, validation_fraction=0.3)),
    "greedy_pretraining": (
        skae.SparseAutoencoder,
        dict(hidden_layer_sizes=(8, 5), pretraining="greedy"),
    ),
    "vae_early_stopping": (skae.VariationalAutoencoder, dict(early_stopping=True)),
    "denoising_gaussian": (skae.DenoisingAutoencoder, dict(noise="gaussian")),
    "bce": (skae.Autoencoder, dict(loss="bce")),
    "bernoulli_vae": (skae.VariationalAutoencoder, dict(loss="bernoulli")),
    "image_shape": (skae.ConvolutionalAutoencoder, dict(image_shape=(3, 4), channels=(2,))),
    "batch_size_7_no_shuffle": (skae.ContractiveAutoencoder, dict(batch_size=7, shuffle=False)),
}


@pytest.mark.parametrize("setting", SETTINGS)
def test_sparse_fit_equals_dense_fit_with(setting):
    cls, params = SETTINGS[setting]
    sparse, dense = make(cls, **params).fit(X_SPARSE), make(cls, **params).fit(X_DENSE)
    assert_same(sparse.transform(X_SPARSE), dense.transform(X_DENSE))
    if params.get("early_stopping"):
        assert sparse.validation_scores_ == pytest.approx(dense.validation_scores_, rel=1e-6)
    if params.get("pretraining"):
        for a, b in zip(
            sparse.pretraining_loss_curves_, dense.pretraining_loss_curves_, strict=True
        ):
            assert a == pytest.approx(b, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_output_dtype_follows_input(dtype):
    X = X_SPARSE.astype(dtype)
    est = make(skae.Autoencoder).fit(X)
    assert est.transform(X).dtype == dtype
    assert est.score_samples(X).dtype == dtype
    assert est.inverse_transform(sp.csr_matrix(est.transform(X))).dtype == dtype


def test_integer_sparse_input_fits_like_float64():
    X = (X_SPARSE * 10).astype(np.int64)
    a, b = make(skae.Autoencoder).fit(X), make(skae.Autoencoder).fit(X.toarray())
    assert_same(a.transform(X), b.transform(X.toarray().astype(np.float64)))


def test_duplicate_entries_add_up_as_in_toarray_and_the_caller_keeps_them():
    # two entries of row 0, column 1, and unsorted columns: not canonical
    X = sp.csr_matrix(
        (np.array([0.25, 0.5, 0.75, 0.5]), np.array([1, 1, 0, 2]), np.array([0, 3, 4])),
        shape=(2, 3),
    )
    data, indices = X.data.copy(), X.indices.copy()
    a, b = make(skae.Autoencoder).fit(X), make(skae.Autoencoder).fit(X.toarray())
    assert_same(a.transform(X), b.transform(X.toarray()))
    np.testing.assert_array_equal(X.data, data)
    np.testing.assert_array_equal(X.indices, indices)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_read_only_csr_matrix_fits_quietly_like_a_writeable_one(dtype):
    """A memory-mapped CSR matrix (``joblib.load(..., mmap_mode="r")``) has
    read-only parts; torch warned of "undefined behavior" sharing them."""
    X = X_SPARSE.astype(dtype)
    read_only = X.copy()
    for part in (read_only.data, read_only.indices, read_only.indptr):
        part.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        Z = make(skae.Autoencoder, early_stopping=False).fit_transform(read_only)
    assert_same(Z, make(skae.Autoencoder, early_stopping=False).fit_transform(X))
    # torch warns once per process: that the parts are not shared is the check
    from skae._rows import training_rows

    rows = training_rows(read_only, "cpu")
    for tensor, part in zip(
        (rows.crow, rows.col, rows.values),
        (read_only.indptr, read_only.indices, read_only.data),
        strict=True,
    ):
        assert not np.shares_memory(tensor.numpy(), part)


def test_sparse_input_with_explicit_zeros_and_empty_rows():
    X = sp.csr_matrix(X_DENSE)
    X[3] = 0  # an empty row
    X.data[X.data < 0.3] = 0  # explicit zeros stay stored
    a, b = make(skae.Autoencoder).fit(X), make(skae.Autoencoder).fit(X.toarray())
    assert_same(a.transform(X), b.transform(X.toarray()))


@pytest.mark.parametrize("constant", [0.0, 1.0], ids=["all-zero", "one-constant-column"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_sparse_input_without_variance_fits_like_dense(constant, method):
    # ARPACK raised "starting vector is zero" on rows that do not vary (a
    # one-hot block where every row has the same category): the start is the
    # mean alone, and the model reconstructs the rows as the dense fit does
    dense = np.zeros((40, 8))
    dense[:, 3] = constant
    a, b = make(skae.Autoencoder), make(skae.Autoencoder)
    getattr(a, method)(sp.csr_matrix(dense))
    getattr(b, method)(dense)
    assert_same(a.inverse_transform(a.transform(dense)), b.inverse_transform(b.transform(dense)))
    np.testing.assert_allclose(a.inverse_transform(a.transform(dense)), dense, atol=1e-6)


def test_pipeline_with_sparse_one_hot_input():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    categories = np.random.default_rng(0).integers(0, 6, size=(40, 3))
    pipe = make_pipeline(OneHotEncoder(), make(skae.DenoisingAutoencoder))
    codes = pipe.fit_transform(categories)
    assert codes.shape == (40, 3)
    assert sp.issparse(pipe[0].transform(categories))


# ------------------------------------------- densified a batch at a time


def test_inference_blocks_hold_a_bounded_number_of_values():
    assert block_rows(784) == INFERENCE_BLOCK_SIZE
    assert block_rows(50_000) * 50_000 <= INFERENCE_BLOCK_VALUES
    assert block_rows(10**9) == 1


def test_sparse_rows_take_only_the_rows_asked_for():
    X = sp.random(50, 7, density=0.4, format="csr", random_state=1, dtype=np.float32)
    dense = TensorRows(torch.from_numpy(X.toarray()))
    rows = SparseRows(
        torch.from_numpy(X.indptr.astype(np.int64)),
        torch.from_numpy(X.indices.astype(np.int64)),
        torch.from_numpy(X.data),
        X.shape[1],
    )
    assert len(rows) == 50 and rows.n_features == 7
    index = torch.tensor([4, 0, 49, 4, 17])
    for key in (index, slice(10, 23), slice(45, 60), torch.tensor([], dtype=torch.int64)):
        torch.testing.assert_close(rows.take(key), dense.take(key), rtol=0, atol=0)
    subset = rows.subset(index)
    assert len(subset) == 5
    torch.testing.assert_close(subset.take(slice(None)), dense.take(index), rtol=0, atol=0)


def test_the_engine_densifies_one_batch_at_a_time():
    X = sp.random(40, 9, density=0.3, format="csr", random_state=2, dtype=np.float32)
    rows = SparseRows(
        torch.from_numpy(X.indptr.astype(np.int64)),
        torch.from_numpy(X.indices.astype(np.int64)),
        torch.from_numpy(X.data),
        X.shape[1],
    )
    module = torch.nn.Linear(9, 9)
    shapes = []

    def batch_loss(x):
        shapes.append(tuple(x.shape))
        return ((module(x) - x) ** 2).sum(1).mean()

    from skae import _engine

    _engine.train(
        module,
        batch_loss,
        rows,
        optimizer=torch.optim.SGD(module.parameters(), lr=1e-2),
        batch_size=16,
        max_iter=2,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        stop_early=False,
    )
    assert shapes == [(16, 9), (16, 9), (8, 9)] * 2


def test_sparse_fit_warns_and_clips_batch_size_like_dense():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make(skae.Autoencoder, batch_size=100).fit(X_SPARSE)
    assert any("clipped" in str(w.message) for w in caught if w.category is not ConvergenceWarning)
