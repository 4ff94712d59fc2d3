"""Properties of the estimators and of their pure torch pieces, checked with hypothesis.

- every method's output shape and dtype, for random shapes, architectures and input dtypes;
- row independence of ``transform``, ``score_samples`` and ``inverse_transform``;
- determinism under an int ``random_state``;
- the global random states (numpy, torch, ``random``) are never used nor changed, by
  any estimator or method, nor by the variants (tied weights, greedy pretraining,
  every noise) (``skae.load``'s own check is in test_persistence.py);
- tied weights and greedy layer-wise pretraining on the MLP autoencoders;
- the noise functions of ``skae._noise``, the losses and penalties of ``skae._losses``
  (sparsity, the contractive Jacobian norms);
- the torch modules of ``skae.nn``: the convolutional module restores every input
  size, tied decoders share their encoder's weights.

Networks are tiny and train for a few epochs: these tests check contracts, not quality.
"""

import copy
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _family import ESTIMATORS
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from skae import (
    Autoencoder,
    ContractiveAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    VariationalAutoencoder,
)
from skae._activations import with_derivative
from skae._losses import (
    SPARSITY_PENALTIES,
    binary_cross_entropy,
    gaussian_kl,
    gaussian_nll,
    jacobian_norm,
    kl_sparsity,
    l1_sparsity,
    one_hidden_layer_jacobian_norm,
    sigmoid_jacobian_norm,
    squared_error,
)
from skae._noise import NOISES
from skae.nn import ACTIVATIONS, AutoencoderModule, ConvolutionalModule, make_activation, mlp

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # torch's forward-mode autodiff (jacfwd) scripts its decompositions on first use
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
]

ESTIMATOR_IDS = [cls.__name__ for cls in ESTIMATORS]
#: the MLP autoencoders, with tied weights and greedy layer-wise pretraining
MLP_ESTIMATORS = [Autoencoder, DenoisingAutoencoder, SparseAutoencoder, ContractiveAutoencoder]
MLP_IDS = [cls.__name__ for cls in MLP_ESTIMATORS]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny networks run fastest on one thread (and do not fight other processes
    for the cores); the previous setting comes back after this module."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


#: per-sample tolerance of row-independence checks, by input dtype
ROW_RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


def make(cls, **params):
    """A tiny, seeded, CPU estimator that runs all its epochs on every row
    (without early stopping: the drawn data may have one row)."""
    defaults = dict(
        hidden_layer_sizes=(8,), max_iter=3, early_stopping=False, device="cpu", random_state=0
    )
    defaults.update(params)
    return cls(**defaults)


def expected_dtype(X):
    """Output dtype follows input dtype: float32 stays float32, the rest gives float64."""
    return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)


def assert_rows_equal(actual, expected, dtype):
    """Equal up to rounding in ``dtype``: ``rtol`` per entry, relative to the
    largest magnitude for entries near zero."""
    rtol = ROW_RTOL[np.dtype(dtype)]
    atol = rtol * max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# ----------------------------------------------------------------- strategies

FLOAT32_TINY = float(np.finfo(np.float32).tiny)

hidden_layer_sizes_st = st.one_of(
    st.just(()),
    st.integers(1, 8),
    st.lists(st.integers(1, 8), min_size=1, max_size=2).map(tuple),
)


@st.composite
def data_matrices(draw, dtypes=("float32", "float64", "int64"), min_samples=1):
    """A matrix of 1..40 rows and 1..12 columns in float32, float64 or int."""
    n_samples = draw(st.integers(min_samples, 40))
    n_features = draw(st.integers(1, 12))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    if dtype.kind == "i":
        elements = st.integers(-10, 10)
    else:
        # float64 values below float32's smallest normal number read as 0:
        # data of nothing else is refused at fit (a test of its own)
        elements = st.floats(
            -10, 10, width=dtype.itemsize * 8, allow_nan=False, allow_subnormal=False
        ).map(lambda v: v if abs(v) >= FLOAT32_TINY else 0.0)
    return draw(hnp.arrays(dtype, (n_samples, n_features), elements=elements))


# ------------------------------------------------------- shapes and dtypes


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
@settings(max_examples=25, deadline=None)
@given(
    X=data_matrices(),
    n_components=st.integers(1, 15),
    hidden_layer_sizes=hidden_layer_sizes_st,
    n_draws=st.integers(1, 5),
)
def test_methods_shapes_dtypes_and_finite(cls, X, n_components, hidden_layer_sizes, n_draws):
    n_samples, n_features = X.shape
    dtype = expected_dtype(X)
    X_before = X.copy()
    est = make(cls, n_components=n_components, hidden_layer_sizes=hidden_layer_sizes)

    assert est.fit(X) is est
    assert est.n_features_in_ == n_features
    assert est.n_iter_ == 3
    assert len(est.loss_curve_) == 3
    assert np.all(np.isfinite(est.loss_curve_))

    Z = est.transform(X)
    assert Z.shape == (n_samples, n_components)
    assert Z.dtype == dtype
    assert np.all(np.isfinite(Z))

    # same seed, same data: fit_transform is fit followed by transform, bit for bit
    Z_ft = make(
        cls, n_components=n_components, hidden_layer_sizes=hidden_layer_sizes
    ).fit_transform(X)
    assert Z_ft.dtype == dtype
    np.testing.assert_array_equal(Z_ft, Z)

    X_rec = est.inverse_transform(Z)
    assert X_rec.shape == (n_samples, n_features)
    assert X_rec.dtype == dtype
    assert np.all(np.isfinite(X_rec))

    # integer codes give float64 reconstructions
    X_rec_int = est.inverse_transform(np.round(Z).astype(np.int64))
    assert X_rec_int.shape == (n_samples, n_features)
    assert X_rec_int.dtype == np.float64

    scores = est.score_samples(X)
    assert scores.shape == (n_samples,)
    assert scores.dtype == dtype
    assert np.all(np.isfinite(scores))

    score = est.score(X)
    assert isinstance(score, float)
    assert np.isfinite(score)
    assert score == pytest.approx(float(np.mean(scores)), rel=1e-6, abs=1e-6)

    names = est.get_feature_names_out()
    assert names.shape == (n_components,)
    assert names.dtype == object
    assert list(names) == [f"{cls.__name__.lower()}{i}" for i in range(n_components)]

    if cls is VariationalAutoencoder:
        samples = est.sample(n_draws, random_state=0)
        assert samples.shape == (n_draws, n_features)
        assert samples.dtype == np.float64
        assert np.all(np.isfinite(samples))

    assert est.partial_fit(X) is est
    assert est.n_iter_ == 4
    assert len(est.loss_curve_) == 4
    Z_after = est.transform(X)
    assert Z_after.shape == (n_samples, n_components)
    assert Z_after.dtype == dtype
    assert np.all(np.isfinite(Z_after))

    # nothing above wrote to the caller's array
    np.testing.assert_array_equal(X, X_before)
    assert X.dtype == X_before.dtype


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
@settings(max_examples=15, deadline=None)
@given(X=data_matrices(dtypes=("float32", "float64", "int64")), n_components=st.integers(1, 15))
def test_partial_fit_from_scratch_shapes_and_dtypes(cls, X, n_components):
    est = make(cls, n_components=n_components)
    assert est.partial_fit(X) is est
    assert est.n_iter_ == 1
    assert est.n_features_in_ == X.shape[1]
    Z = est.transform(X)
    assert Z.shape == (X.shape[0], n_components)
    assert Z.dtype == expected_dtype(X)
    assert np.all(np.isfinite(Z))


# ------------------------------------------------------- row independence

ROW_METHODS = ["transform", "score_samples", "inverse_transform"]


@pytest.mark.parametrize("method", ROW_METHODS)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
@settings(max_examples=20, deadline=None)
@given(
    X=data_matrices(dtypes=("float32", "float64"), min_samples=2),
    n_components=st.integers(1, 15),
    hidden_layer_sizes=hidden_layer_sizes_st,
    data=st.data(),
)
def test_methods_row_order_and_subset_invariant(
    cls, method, X, n_components, hidden_layer_sizes, data
):
    est = make(cls, n_components=n_components, hidden_layer_sizes=hidden_layer_sizes).fit(X)
    inputs = est.transform(X) if method == "inverse_transform" else X
    assert inputs.dtype == X.dtype
    fn = getattr(est, method)
    full = fn(inputs)

    n_samples = X.shape[0]
    perm = np.asarray(data.draw(st.permutations(range(n_samples))), dtype=np.intp)
    n_subset = data.draw(st.integers(1, n_samples))

    # order invariance: permuting rows permutes the outputs
    assert_rows_equal(fn(inputs[perm]), full[perm], X.dtype)
    # subset invariance: a subset's outputs are the rows of the full output
    subset = perm[:n_subset]
    assert_rows_equal(fn(inputs[subset]), full[subset], X.dtype)
    # one row at a time
    row = int(perm[0])
    assert_rows_equal(fn(inputs[row : row + 1]), full[row : row + 1], X.dtype)


# ------------------------------------------------------------ determinism


def _state(est):
    return {k: v.detach().cpu().clone() for k, v in est.module_.state_dict().items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_fit_same_seed_bit_identical(cls, dtype):
    X = np.random.default_rng(1).normal(size=(30, 6)).astype(dtype)
    a = make(cls, n_components=3, random_state=42).fit(X)
    b = make(cls, n_components=3, random_state=42).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    assert a.loss_curve_ == b.loss_curve_
    state_a, state_b = _state(a), _state(b)
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    # partial_fit continues identically too
    a.partial_fit(X)
    b.partial_fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_fit_same_random_state_instance_seed_bit_identical(cls):
    X = np.random.default_rng(1).normal(size=(30, 6))
    a = make(cls, random_state=np.random.RandomState(7)).fit(X)
    b = make(cls, random_state=np.random.RandomState(7)).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ESTIMATOR_IDS)
def test_fit_different_seed_different_weights(cls):
    X = np.random.default_rng(1).normal(size=(30, 6))
    a = make(cls, random_state=0).fit(X)
    b = make(cls, random_state=1).fit(X)
    state_a, state_b = _state(a), _state(b)
    weights = [k for k in state_a if k.endswith("weight")]
    assert weights
    for key in weights:
        assert not torch.equal(state_a[key], state_b[key]), key
    assert not np.array_equal(a.transform(X), b.transform(X))


def test_sample_same_seed_same_draws_different_seed_different_draws():
    X = np.random.default_rng(1).normal(size=(30, 6))
    vae = make(VariationalAutoencoder).fit(X)
    np.testing.assert_array_equal(vae.sample(5, random_state=3), vae.sample(5, random_state=3))
    assert not np.array_equal(vae.sample(5, random_state=3), vae.sample(5, random_state=4))


# ------------------------------------------------------------ global RNG


def _global_rng_snapshot():
    return np.random.get_state(), torch.random.get_rng_state().clone(), random.getstate()  # noqa: NPY002


def _assert_global_rng_unchanged(before):
    np_before, torch_before, py_before = before
    np_after, torch_after, py_after = _global_rng_snapshot()
    assert np_after[0] == np_before[0]
    np.testing.assert_array_equal(np_after[1], np_before[1])
    assert np_after[2:] == np_before[2:]
    assert torch.equal(torch_after, torch_before)
    assert py_after == py_before


OPERATIONS = [
    ("fit", lambda est, X: est.fit(X)),
    ("fit_early_stopping", lambda est, X: est.set_params(early_stopping=True).fit(X)),
    ("fit_transform", lambda est, X: est.fit_transform(X)),
    ("partial_fit_fresh", lambda est, X: est.partial_fit(X)),
    ("partial_fit", None),
    ("transform", None),
    ("inverse_transform", None),
    ("score_samples", None),
    ("sample", None),
    ("sample_seeded", None),
    ("log_likelihood", None),
    ("log_likelihood_seeded", None),
]

AFTER_FIT = {
    "partial_fit": lambda est, X: est.partial_fit(X),
    "transform": lambda est, X: est.transform(X),
    "inverse_transform": lambda est, X: est.inverse_transform(est.transform(X)),
    "score_samples": lambda est, X: est.score_samples(X),
    "sample": lambda est, X: est.sample(4),
    "sample_seeded": lambda est, X: est.sample(4, random_state=0),
    "log_likelihood": lambda est, X: est.log_likelihood(X, n_importance_samples=3),
    "log_likelihood_seeded": lambda est, X: est.log_likelihood(
        X, n_importance_samples=3, random_state=0
    ),
}

#: the methods only VariationalAutoencoder has
VARIATIONAL_ONLY = ("sample", "log_likelihood")


RNG_CASES = [
    pytest.param(cls, name, id=f"{cls.__name__}-{name}")
    for cls in ESTIMATORS
    for name, _ in OPERATIONS
    if cls is VariationalAutoencoder or not name.startswith(VARIATIONAL_ONLY)
]


@pytest.mark.parametrize("random_state", [0, None], ids=["seed0", "None"])
@pytest.mark.parametrize("cls, operation", RNG_CASES)
def test_global_rng_untouched(cls, operation, random_state):
    X = np.random.default_rng(2).normal(size=(25, 5))
    est = make(cls, random_state=random_state)
    if operation in AFTER_FIT:
        est.fit(X)
        run = AFTER_FIT[operation]
    else:
        run = dict(OPERATIONS)[operation]
    # put the global generators in an arbitrary known state
    np.random.seed(1234)  # noqa: NPY002
    torch.manual_seed(1234)
    random.seed(1234)
    before = _global_rng_snapshot()
    run(est, X)
    _assert_global_rng_unchanged(before)


#: the variants test_global_rng_untouched leaves out: tied weights with greedy
#: pretraining (and early stopping), every noise, the Bernoulli VAE
VARIANT_RNG_CASES = [
    *[
        pytest.param(
            cls,
            dict(
                tied_weights=True,
                pretraining="greedy",
                hidden_layer_sizes=(6, 3),
                early_stopping=True,
            ),
            id=f"{cls.__name__}-tied-greedy",
        )
        for cls in MLP_ESTIMATORS
    ],
    *[
        pytest.param(DenoisingAutoencoder, dict(noise=noise, noise_level=0.2), id=f"noise-{noise}")
        for noise in sorted(NOISES)
    ],
    pytest.param(VariationalAutoencoder, dict(loss="bernoulli", early_stopping=True), id="vae-bce"),
]


@pytest.mark.parametrize("random_state", [0, None], ids=["seed0", "None"])
@pytest.mark.parametrize("cls, params", VARIANT_RNG_CASES)
def test_global_rng_untouched_by_variants(cls, params, random_state):
    X = np.random.default_rng(3).random((40, 8))
    np.random.seed(7)  # noqa: NPY002
    torch.manual_seed(7)
    random.seed(7)
    before = _global_rng_snapshot()
    est = make(cls, random_state=random_state, **params).fit(X)
    est.partial_fit(X)
    est.inverse_transform(est.transform(X))
    est.score_samples(X)
    if hasattr(est, "sample"):
        est.sample(3)
    _assert_global_rng_unchanged(before)


# ------------------------------------- tied weights and greedy pretraining


def _linear_pairs(module):
    """(encoder layer, its mirror in the decoder) for each layer, from the code out."""
    encoder = [m for m in module.encoder if isinstance(m, nn.Linear)]
    decoder = [m for m in module.decoder if hasattr(m, "weight")]
    assert len(encoder) == len(decoder)
    return list(zip(reversed(encoder), decoder, strict=True))


@pytest.mark.parametrize("cls", MLP_ESTIMATORS, ids=MLP_IDS)
@settings(max_examples=12, deadline=None)
@given(
    X=data_matrices(dtypes=("float32", "float64"), min_samples=2),
    n_components=st.integers(1, 8),
    hidden_layer_sizes=hidden_layer_sizes_st,
    tied_weights=st.booleans(),
    pretraining=st.sampled_from([None, "greedy"]),
    shuffle=st.booleans(),
    early_stopping=st.booleans(),
    sparsity=st.sampled_from(sorted(SPARSITY_PENALTIES)),
)
def test_tied_and_pretrained_variants_fit(
    cls,
    X,
    n_components,
    hidden_layer_sizes,
    tied_weights,
    pretraining,
    shuffle,
    early_stopping,
    sparsity,
):
    params = dict(
        n_components=n_components,
        hidden_layer_sizes=hidden_layer_sizes,
        tied_weights=tied_weights,
        pretraining=pretraining,
        shuffle=shuffle,
        early_stopping=early_stopping,
    )
    if cls is SparseAutoencoder:
        params["sparsity"] = sparsity
    X_before = X.copy()
    n_samples, n_features = X.shape
    hidden = [hidden_layer_sizes] if isinstance(hidden_layer_sizes, int) else hidden_layer_sizes
    n_layers = len(hidden) + 1

    est = make(cls, **params)
    assert est.fit(X) is est

    # greedy pretraining: one shallow autoencoder per layer, max_iter epochs each,
    # counted in n_iter_ and loss_curve_ before the end-to-end epochs
    n_pretrained = n_layers if pretraining == "greedy" else 0
    assert len(est.pretraining_loss_curves_) == n_pretrained
    assert all(len(curve) == 3 for curve in est.pretraining_loss_curves_)
    assert est.n_iter_ == 3 * n_pretrained + 3
    assert len(est.loss_curve_) == est.n_iter_
    assert np.all(np.isfinite(est.loss_curve_))
    if early_stopping:
        assert len(est.validation_scores_) == 3

    pairs = _linear_pairs(est.module_)
    assert len(pairs) == n_layers
    for enc, dec in pairs:
        shared = dec.weight is enc.weight
        assert shared == tied_weights
        assert (dec.weight.data_ptr() == enc.weight.data_ptr()) == tied_weights

    Z = est.transform(X)
    assert Z.shape == (n_samples, n_components)
    assert Z.dtype == expected_dtype(X)
    assert np.all(np.isfinite(Z))
    X_rec = est.inverse_transform(Z)
    assert X_rec.shape == (n_samples, n_features)
    assert np.all(np.isfinite(X_rec))
    assert np.isfinite(est.score(X))

    # deterministic under a seed, pretraining included
    np.testing.assert_array_equal(make(cls, **params).fit_transform(X), Z)
    # the tying survives partial_fit (its optimiser steps update one tensor)
    est.partial_fit(X)
    for enc, dec in _linear_pairs(est.module_):
        assert (dec.weight is enc.weight) == tied_weights
    np.testing.assert_array_equal(X, X_before)


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("cls", MLP_ESTIMATORS, ids=MLP_IDS)
def test_greedy_pretraining_of_a_deep_network_without_shuffle(cls, early_stopping):
    """The inner layers are pretrained on the outer layers' codes, in order
    (shuffle=False slices the rows rather than indexing them)."""
    X = np.random.default_rng(5).uniform(size=(20, 6))
    est = make(
        cls,
        n_components=2,
        hidden_layer_sizes=(5, 3),
        pretraining="greedy",
        shuffle=False,
        early_stopping=early_stopping,
    )
    est.fit(X)
    assert [len(curve) for curve in est.pretraining_loss_curves_] == [3, 3, 3]
    assert est.n_iter_ == 12
    assert np.all(np.isfinite(est.transform(X)))


# ------------------------------------------------------------ noise functions

NOISE_NAMES = sorted(NOISES)
TORCH_FLOATS = {"float32": torch.float32, "float64": torch.float64}


@st.composite
def tensors(draw, max_rows=30, max_cols=10):
    shape = (draw(st.integers(1, max_rows)), draw(st.integers(1, max_cols)))
    dtype = draw(st.sampled_from(sorted(TORCH_FLOATS)))
    seed = draw(st.integers(0, 2**32 - 1))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (3 * x).to(TORCH_FLOATS[dtype])


levels = st.floats(0, 1, allow_nan=False)
seeds = st.integers(0, 2**63 - 1)


@pytest.mark.parametrize("name", NOISE_NAMES)
@settings(max_examples=25, deadline=None)
@given(x=tensors(), level=levels, seed=seeds)
def test_noise_shape_dtype_input_untouched_and_seeded(name, x, level, seed):
    noise = NOISES[name]
    x_before = x.clone()
    out = noise(x, level, torch.Generator().manual_seed(seed))
    assert out.shape == x.shape
    assert out.dtype == x.dtype
    assert out.device == x.device
    assert torch.isfinite(out).all()
    assert out.data_ptr() != x.data_ptr()
    torch.testing.assert_close(x, x_before, rtol=0, atol=0)
    again = noise(x, level, torch.Generator().manual_seed(seed))
    torch.testing.assert_close(again, out, rtol=0, atol=0)


@pytest.mark.parametrize("name", NOISE_NAMES)
def test_noise_different_seed_different_output(name):
    x = torch.randn(50, 20, generator=torch.Generator().manual_seed(0))
    a = NOISES[name](x, 0.5, torch.Generator().manual_seed(1))
    b = NOISES[name](x, 0.5, torch.Generator().manual_seed(2))
    assert not torch.equal(a, b)


@settings(max_examples=20, deadline=None)
@given(x=tensors(), seed=seeds)
def test_masking_level_zero_identity_level_one_zeros(x, seed):
    masking = NOISES["masking"]
    torch.testing.assert_close(
        masking(x, 0.0, torch.Generator().manual_seed(seed)), x, rtol=0, atol=0
    )
    torch.testing.assert_close(
        masking(x, 1.0, torch.Generator().manual_seed(seed)), torch.zeros_like(x), rtol=0, atol=0
    )


def _large_tensor(seed, shape=(400, 250)):
    """Continuous values with no zeros and (almost surely) distinct entries."""
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return 1.0 + u


@settings(max_examples=15, deadline=None)
@given(level=levels, seed=st.integers(0, 2**32 - 1))
def test_masking_changed_fraction_near_level(level, seed):
    x = _large_tensor(seed)
    out = NOISES["masking"](x, level, torch.Generator().manual_seed(seed + 1))
    changed = out != x
    # a changed entry is zeroed; the fraction has std <= 0.0016 on 1e5 entries
    assert torch.all(out[changed] == 0)
    assert abs(changed.double().mean().item() - level) < 0.01


@settings(max_examples=15, deadline=None)
@given(level=levels, seed=st.integers(0, 2**32 - 1))
def test_salt_and_pepper_changed_fraction_near_level(level, seed):
    x = _large_tensor(seed)
    out = NOISES["salt_and_pepper"](x, level, torch.Generator().manual_seed(seed + 1))
    changed = (out != x).double().mean().item()
    # an entry drawn for corruption that already equals its column's extreme stays
    # the same: a 1 / n_rows effect
    assert abs(changed - level) < 0.01


@settings(max_examples=25, deadline=None)
@given(x=tensors(), level=levels, seed=seeds)
def test_salt_and_pepper_values_within_column_range(x, level, seed):
    out = NOISES["salt_and_pepper"](x, level, torch.Generator().manual_seed(seed))
    low = x.amin(dim=0, keepdim=True)
    high = x.amax(dim=0, keepdim=True)
    assert torch.all(out >= low)
    assert torch.all(out <= high)
    changed = out != x
    at_extreme = (out == low.expand_as(x)) | (out == high.expand_as(x))
    assert torch.all(at_extreme[changed])


def test_salt_and_pepper_level_zero_identity_level_one_extremes():
    x = torch.randn(200, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sp = NOISES["salt_and_pepper"]
    torch.testing.assert_close(sp(x, 0.0, torch.Generator().manual_seed(1)), x, rtol=0, atol=0)
    out = sp(x, 1.0, torch.Generator().manual_seed(1))
    low, high = x.amin(dim=0), x.amax(dim=0)
    assert torch.all((out == low) | (out == high))
    # both salt and pepper occur, about half each
    frac_high = (out == high).double().mean().item()
    assert 0.4 < frac_high < 0.6


@settings(max_examples=20, deadline=None)
@given(x=tensors(), seed=seeds)
def test_gaussian_level_zero_identity(x, seed):
    out = NOISES["gaussian"](x, 0.0, torch.Generator().manual_seed(seed))
    torch.testing.assert_close(out, x, rtol=0, atol=0)


@settings(max_examples=15, deadline=None)
@given(level=st.floats(0.01, 10), seed=st.integers(0, 2**32 - 1))
def test_gaussian_noise_standard_deviation_is_level(level, seed):
    x = _large_tensor(seed)
    out = NOISES["gaussian"](x, level, torch.Generator().manual_seed(seed + 1))
    noise = out - x
    # 1e5 draws: the sample mean and std are within a few 1e-3 * level
    assert abs(noise.mean().item()) < 0.02 * level
    assert noise.std().item() == pytest.approx(level, rel=0.02)


# ------------------------------------------------------------------ losses


@st.composite
def matrix_pairs(draw, low=-10.0, high=10.0, integer_valued=False):
    n = draw(st.integers(1, 20))
    p = draw(st.integers(1, 10))
    if integer_valued:
        elements = st.integers(-5, 5).map(float)
    else:
        elements = st.floats(low, high, allow_nan=False, allow_subnormal=False)
    a = draw(hnp.arrays(np.float64, (n, p), elements=elements))
    b = draw(hnp.arrays(np.float64, (n, p), elements=elements))
    return a, b


def _t(a):
    return torch.from_numpy(np.array(a, dtype=np.float64))


@settings(max_examples=25, deadline=None)
@given(pair=matrix_pairs(), variance=st.floats(1e-3, 100))
def test_losses_are_per_sample(pair, variance):
    a, b = pair
    n = a.shape[0]
    logits, target01 = _t(a), _t(np.clip(np.abs(b) / 10, 0, 1))
    assert squared_error(_t(a), _t(b)).shape == (n,)
    assert binary_cross_entropy(logits, target01).shape == (n,)
    assert gaussian_kl(_t(a), _t(b)).shape == (n,)
    assert gaussian_nll(_t(a), _t(b), torch.tensor(variance, dtype=torch.float64)).shape == (n,)
    # per sample: the loss of row i depends only on row i
    for fn, args in [
        (squared_error, (_t(a), _t(b))),
        (binary_cross_entropy, (logits, target01)),
        (gaussian_kl, (_t(a), _t(b))),
    ]:
        full = fn(*args)
        first = fn(*(arg[:1] for arg in args))
        torch.testing.assert_close(first, full[:1], rtol=1e-12, atol=0)


@settings(max_examples=30, deadline=None)
@given(pair=matrix_pairs(integer_valued=True), data=st.data())
def test_squared_error_zero_iff_equal(pair, data):
    a, b = pair
    # make some rows equal
    equal_rows = data.draw(hnp.arrays(np.bool_, (a.shape[0],)))
    b[equal_rows] = a[equal_rows]
    loss = squared_error(_t(a), _t(b)).numpy()
    rows_equal = np.all(a == b, axis=1)
    np.testing.assert_array_equal(loss == 0, rows_equal)
    assert np.all(loss >= 0)
    np.testing.assert_array_equal(squared_error(_t(a), _t(a)).numpy(), np.zeros(a.shape[0]))


@settings(max_examples=30, deadline=None)
@given(pair=matrix_pairs())
def test_squared_error_matches_numpy(pair):
    a, b = pair
    expected = ((a - b) ** 2).sum(axis=1)
    np.testing.assert_allclose(
        squared_error(_t(a), _t(b)).numpy(), expected, rtol=1e-12, atol=1e-12
    )


@settings(max_examples=30, deadline=None)
@given(
    pair=matrix_pairs(),
    data=st.data(),
)
def test_binary_cross_entropy_matches_torch_on_probabilities(pair, data):
    logits, _ = pair
    target = data.draw(
        hnp.arrays(np.float64, logits.shape, elements=st.floats(0, 1, allow_subnormal=False))
    )
    logits_t, target_t = _t(logits), _t(target)
    expected = F.binary_cross_entropy(torch.sigmoid(logits_t), target_t, reduction="none").sum(1)
    torch.testing.assert_close(
        binary_cross_entropy(logits_t, target_t), expected, rtol=1e-9, atol=1e-9
    )


def test_gaussian_kl_zero_at_standard_normal():
    zeros = torch.zeros(5, 3, dtype=torch.float64)
    np.testing.assert_array_equal(gaussian_kl(zeros, zeros).numpy(), np.zeros(5))


@settings(max_examples=30, deadline=None)
@given(pair=matrix_pairs(low=-5.0, high=5.0))
def test_gaussian_kl_positive_and_closed_form(pair):
    mu, log_var = pair
    kl = gaussian_kl(_t(mu), _t(log_var)).numpy()
    closed_form = 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var).sum(axis=1)
    np.testing.assert_allclose(kl, closed_form, rtol=1e-12, atol=1e-12)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(_t(mu), torch.exp(0.5 * _t(log_var))),
        torch.distributions.Normal(0.0, 1.0),
    ).sum(1)
    np.testing.assert_allclose(kl, reference.numpy(), rtol=1e-9, atol=1e-9)
    # non-negative up to the rounding of exp(log_var) - 1 - log_var near log_var = 0
    assert np.all(kl >= -1e-12)
    # strictly positive where the posterior is visibly not N(0, I)
    away = np.any((np.abs(mu) > 1e-3) | (np.abs(log_var) > 1e-3), axis=1)
    assert np.all(kl[away] > 0)
    at_prior = np.all((mu == 0) & (log_var == 0), axis=1)
    np.testing.assert_array_equal(kl[at_prior], 0.0)


@settings(max_examples=30, deadline=None)
@given(pair=matrix_pairs(), variance=st.floats(1e-3, 100))
def test_gaussian_nll_matches_normal_log_prob(pair, variance):
    mean, target = pair
    var_t = torch.tensor(variance, dtype=torch.float64)
    nll = gaussian_nll(_t(mean), _t(target), var_t)
    expected = -torch.distributions.Normal(_t(mean), torch.sqrt(var_t)).log_prob(_t(target)).sum(1)
    torch.testing.assert_close(nll, expected, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------- sparsity penalties


def test_sparsity_registry_matches_the_estimator_options():
    assert set(SPARSITY_PENALTIES) == {"kl", "l1"}
    assert SPARSITY_PENALTIES["kl"] is kl_sparsity
    assert SPARSITY_PENALTIES["l1"] is l1_sparsity


@settings(max_examples=40, deadline=None)
@given(pair=matrix_pairs(), data=st.data())
def test_l1_sparsity_is_mean_l1_norm_zero_iff_all_zero(pair, data):
    code, _ = pair
    zero_rows = data.draw(hnp.arrays(np.bool_, (code.shape[0],)))
    code[zero_rows] = 0.0
    target = data.draw(st.floats(0.01, 0.99))
    penalty = l1_sparsity(_t(code), target)
    assert penalty.shape == ()
    expected = np.abs(code).sum(axis=1).mean()
    np.testing.assert_allclose(penalty.item(), expected, rtol=1e-12, atol=0)
    # the target does not matter; zero exactly when every unit is zero
    assert l1_sparsity(_t(code)).item() == penalty.item()
    assert (penalty.item() == 0) == bool(np.all(code == 0))


def _bernoulli_kl(rho, rho_hat):
    return rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))


unit_open = st.floats(1e-4, 1 - 1e-4)


@settings(max_examples=40, deadline=None)
@given(
    n_rows=st.integers(1, 20),
    n_units=st.integers(1, 10),
    target=unit_open,
    data=st.data(),
)
def test_kl_sparsity_zero_at_target_mean_activation(n_rows, n_units, target, data):
    """Codes whose every unit has mean activation ``target`` over the batch:
    rows spread symmetrically around it (each deviation paired with its
    negative), and a middle row at the target when the batch is odd."""
    half = n_rows // 2
    reach = min(target, 1 - target)
    spread = data.draw(hnp.arrays(np.float64, (half, n_units), elements=st.floats(0, 0.99))) * reach
    rows = [target + spread, target - spread]
    if n_rows % 2:
        rows.append(np.full((1, n_units), target))
    code = np.concatenate(rows)
    assert np.all((code > 0) & (code < 1))
    np.testing.assert_allclose(code.mean(axis=0), target, rtol=0, atol=1e-12)
    penalty = kl_sparsity(_t(code), target)
    assert penalty.shape == ()
    # zero up to the rounding of the batch mean
    assert abs(penalty.item()) < 1e-9
    # exactly zero when every entry is the target
    constant = torch.full((n_rows, n_units), target, dtype=torch.float64)
    assert abs(kl_sparsity(constant, target).item()) < 1e-12


@settings(max_examples=60, deadline=None)
@given(
    code=hnp.array_shapes(min_dims=2, max_dims=2, max_side=20).flatmap(
        lambda shape: hnp.arrays(np.float64, shape, elements=unit_open)
    ),
    target=unit_open,
)
def test_kl_sparsity_positive_away_from_target_and_closed_form(code, target):
    penalty = kl_sparsity(_t(code), target).item()
    rho_hat = code.mean(axis=0)
    expected = _bernoulli_kl(target, rho_hat).sum()
    assert penalty == pytest.approx(expected, rel=1e-9, abs=1e-12)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Bernoulli(probs=torch.tensor(target, dtype=torch.float64)),
        torch.distributions.Bernoulli(probs=_t(rho_hat)),
    ).sum()
    assert penalty == pytest.approx(reference.item(), rel=1e-7, abs=1e-10)
    # Gibbs: never negative (up to rounding), positive as soon as a unit's mean
    # activation is visibly off the target
    assert penalty >= -1e-12
    if np.any(np.abs(rho_hat - target) > 1e-4):
        assert penalty > 0


@settings(max_examples=30, deadline=None)
@given(
    n_rows=st.integers(1, 20),
    n_units=st.integers(1, 10),
    target=unit_open,
    unit=st.integers(0, 9),
    shift=st.floats(1e-3, 0.5),
)
def test_kl_sparsity_grows_as_one_unit_moves_off_target(n_rows, n_units, target, unit, shift):
    unit %= n_units
    code = torch.full((n_rows, n_units), target, dtype=torch.float64)
    moved = code.clone()
    direction = 1.0 if target < 0.5 else -1.0
    moved[:, unit] = target + direction * shift * min(target, 1 - target) * 1.9
    further = code.clone()
    further[:, unit] = target + direction * shift * min(target, 1 - target) * 1.95
    at, off, far = (kl_sparsity(c, target).item() for c in (code, moved, further))
    assert abs(at) < 1e-12
    assert off > 0
    assert far > off


# ------------------------------------------------ contractive Jacobian norms


def _exact_jacobian_norm(encode, x):
    """Per-row squared Frobenius norm of the Jacobian, one row at a time, with
    torch.autograd.functional.jacobian."""
    norms = []
    for row in x:
        jac = torch.autograd.functional.jacobian(lambda r: encode(r.unsqueeze(0)).squeeze(0), row)
        norms.append(jac.square().sum())
    return torch.stack(norms)


def _seeded(seed):
    torch.manual_seed(seed)


@st.composite
def batches(draw, max_rows=8, max_features=8):
    n_rows = draw(st.integers(1, max_rows))
    n_features = draw(st.integers(1, max_features))
    seed = draw(st.integers(0, 2**32 - 1))
    x = torch.randn(
        n_rows, n_features, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    return 2 * x


@settings(max_examples=40, deadline=None)
@given(x=batches(), n_components=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_sigmoid_jacobian_norm_equals_exact_jacobian_norm(x, n_components, seed):
    """Closed form against torch.func, on a single logistic layer, for codes both
    narrower than the input (reverse mode) and wider (forward mode); their
    gradients with respect to the layer's parameters agree too."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = nn.Linear(x.shape[1], n_components).double()

    def encode(inputs):
        return torch.sigmoid(layer(inputs))

    closed = sigmoid_jacobian_norm(encode(x), layer.weight)
    exact = jacobian_norm(encode, x)
    assert closed.shape == exact.shape == (x.shape[0],)
    torch.testing.assert_close(closed, exact, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(exact, _exact_jacobian_norm(encode, x), rtol=1e-10, atol=1e-14)
    assert torch.all(closed >= 0)

    grads_closed = torch.autograd.grad(closed.sum(), [layer.weight, layer.bias])
    grads_exact = torch.autograd.grad(jacobian_norm(encode, x).sum(), [layer.weight, layer.bias])
    for a, b in zip(grads_closed, grads_exact, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


#: relu and leaky_relu are not differentiable at 0, which random inputs do not hit
JACOBIAN_ACTIVATIONS = sorted(ACTIVATIONS)


@pytest.mark.parametrize("name", JACOBIAN_ACTIVATIONS)
@settings(max_examples=20, deadline=None)
@given(x=batches())
def test_activation_derivative_is_autograds(name, x):
    """skae's written-out derivative of each activation is the one autograd
    takes (at 0 too, where relu, leaky_relu and elu have kinks), and its own
    derivative is autograd's second derivative away from the kinks."""
    x = torch.cat([x.flatten(), torch.zeros(1, dtype=x.dtype)]).requires_grad_()
    activation = make_activation(name)
    out, derivative = with_derivative(activation, x)
    torch.testing.assert_close(out, activation(x), rtol=0, atol=0)
    (first,) = torch.autograd.grad(activation(x).sum(), x, create_graph=True)
    torch.testing.assert_close(derivative, first, rtol=1e-12, atol=1e-15)

    def second(d):  # zero where d is piecewise constant (relu, leaky_relu)
        if not d.requires_grad:
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(d.sum(), x, retain_graph=True, allow_unused=True)
        return torch.zeros_like(x) if grad is None else grad

    smooth = x != 0
    torch.testing.assert_close(
        second(derivative)[smooth], second(first)[smooth], rtol=1e-10, atol=1e-14
    )


@settings(max_examples=40, deadline=None)
@given(
    x=batches(),
    n_hidden=st.integers(1, 12),
    n_components=st.integers(1, 8),
    activation=st.sampled_from(JACOBIAN_ACTIVATIONS),
    code_activation=st.sampled_from(["identity", "logistic", "tanh", "relu"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_one_hidden_layer_closed_form_equals_autodiff(
    x, n_hidden, n_components, activation, code_activation, seed
):
    """The closed form for an encoder with one hidden layer against torch.func,
    with the hidden layer narrower and wider than the input (its two ways of
    forming the product): the same norms and the same gradients with respect
    to every parameter, to float64 rounding."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        first = nn.Linear(x.shape[1], n_hidden).double()
        second = nn.Linear(n_hidden, n_components).double()
    act, code_act = make_activation(activation), make_activation(code_activation)
    net = nn.Sequential(first, act, second, code_act)
    closed = one_hidden_layer_jacobian_norm(x, first, act, second, code_act)
    exact = jacobian_norm(net, x)
    assert closed.shape == (x.shape[0],)
    torch.testing.assert_close(closed, exact, rtol=1e-10, atol=1e-14)
    params = [*first.parameters(), *second.parameters()]
    grads = torch.autograd.grad(closed.sum(), params, allow_unused=True)
    grads_exact = torch.autograd.grad(exact.sum(), params, allow_unused=True)
    for a, b in zip(grads, grads_exact, strict=True):
        if a is None or b is None:  # a bias the norm does not depend on (identity code)
            assert (a is None or not a.any()) and (b is None or not b.any())
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    x=batches(),
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    n_components=st.integers(1, 8),
    activation=st.sampled_from(JACOBIAN_ACTIVATIONS),
    code_activation=st.sampled_from(["identity", "logistic", "relu"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_jacobian_norm_matches_autograd_on_random_mlp(
    x, hidden, n_components, activation, code_activation, seed
):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = mlp(
            [x.shape[1], *hidden, n_components], activation, last_activation=code_activation
        ).double()
    norms = jacobian_norm(net, x)
    assert norms.shape == (x.shape[0],)
    torch.testing.assert_close(norms, _exact_jacobian_norm(net, x), rtol=1e-10, atol=1e-14)
    # per sample: a row's norm does not depend on the rest of the batch
    torch.testing.assert_close(jacobian_norm(net, x[:1]), norms[:1], rtol=1e-12, atol=0)
    # differentiable with respect to the network's parameters
    assert norms.requires_grad == any(p.requires_grad for p in net.parameters())


@settings(max_examples=30, deadline=None)
@given(
    x=batches(),
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=2),
    n_components=st.integers(1, 8),
    tied_weights=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_contractive_encoder_jacobian_norm_is_exact(x, hidden, n_components, tied_weights, seed):
    """The contractive penalty's dispatch (closed forms for one logistic layer
    and for one hidden layer, autodiff otherwise) gives the exact Jacobian
    norm of the encoder."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = AutoencoderModule(
            x.shape[1],
            n_components,
            hidden,
            "tanh",
            code_activation="logistic",
            tied_weights=tied_weights,
        ).double()
    expected = _exact_jacobian_norm(module.encode, x)
    torch.testing.assert_close(module.encoder_jacobian_norm(x), expected, rtol=1e-10, atol=1e-14)
    code = module.encode(x)
    torch.testing.assert_close(
        module.encoder_jacobian_norm(x, code), expected, rtol=1e-10, atol=1e-14
    )


# ------------------------------------------------------------ torch modules


def _record_sizes(module, kinds):
    """Hooks that record the input and output shapes of every layer of ``kinds``."""
    seen = []

    def hook(layer, args, output):
        seen.append((tuple(args[0].shape[2:]), tuple(output.shape[2:])))

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, kinds)]
    return seen, handles


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dims=st.sampled_from([1, 2]),
    in_channels=st.integers(1, 3),
    kernel_size=st.integers(1, 5),
    channels=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    n_components=st.integers(1, 6),
    n_rows=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_convolutional_module_output_width_equals_input_width(
    data, dims, in_channels, kernel_size, channels, n_components, n_rows, seed
):
    if dims == 1:
        spatial = (data.draw(st.integers(1, 40), label="length"),)
    else:
        spatial = (
            data.draw(st.integers(1, 12), label="height"),
            data.draw(st.integers(1, 12), label="width"),
        )
    image_shape = (in_channels, *spatial)
    width = math.prod(image_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = ConvolutionalModule(image_shape, n_components, channels, kernel_size)
        x = torch.randn(n_rows, width)

    conv, deconv = (nn.Conv1d, nn.ConvTranspose1d) if dims == 1 else (nn.Conv2d, nn.ConvTranspose2d)
    assert sum(isinstance(m, conv) for m in module.modules()) == len(channels)
    encoded_sizes, handles = _record_sizes(module, conv)
    decoded_sizes, more = _record_sizes(module, deconv)
    out = module(x)
    for handle in handles + more:
        handle.remove()

    assert out.shape == (n_rows, width)
    code = module.encode(x)
    assert code.shape == (n_rows, n_components)
    assert module.decode(code).shape == (n_rows, width)
    torch.testing.assert_close(module.decoder(code), out, rtol=0, atol=0)
    # every transposed convolution gives back exactly the size its mirror took in
    assert len(decoded_sizes) == len(encoded_sizes) == len(channels)
    for (enc_in, enc_out), (dec_in, dec_out) in zip(
        encoded_sizes, reversed(decoded_sizes), strict=True
    ):
        assert dec_in == enc_out
        assert dec_out == enc_in
    assert encoded_sizes[0][0] == spatial
    assert module.feature_shape == (channels[-1], *encoded_sizes[-1][1])
    # the output of each row depends on that row only
    torch.testing.assert_close(module(x[:1]), out[:1], rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    n_features=st.integers(1, 10),
    n_components=st.integers(1, 10),
    hidden=st.lists(st.integers(1, 10), min_size=0, max_size=3),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    code_activation=st.sampled_from(["identity", "logistic", "relu"]),
    output_activation=st.sampled_from(["identity", "logistic"]),
    n_rows=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_tied_autoencoder_module_shares_encoder_weights(
    n_features, n_components, hidden, activation, code_activation, output_activation, n_rows, seed
):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = AutoencoderModule(
            n_features,
            n_components,
            hidden,
            activation,
            output_activation=output_activation,
            code_activation=code_activation,
            tied_weights=True,
        )
        x = torch.randn(n_rows, n_features)

    def check_tied(m):
        pairs = _linear_pairs(m)
        assert len(pairs) == len(hidden) + 1
        for enc, dec in pairs:
            assert dec.weight is enc.weight
            assert dec.weight.data_ptr() == enc.weight.data_ptr()
            # only the bias is the decoder layer's own
            assert dec.bias.shape == (enc.in_features,)
            assert dec.bias.data_ptr() != enc.bias.data_ptr()
        return pairs

    pairs = check_tied(module)
    # no weight counted twice: the encoder's parameters and the decoder's biases
    n_params = sum(p.numel() for p in module.parameters())
    assert n_params == sum(p.numel() for p in module.encoder.parameters()) + sum(
        dec.bias.numel() for _, dec in pairs
    )
    state = module.state_dict()
    pointers = {v.data_ptr() for k, v in state.items() if k.endswith("weight")}
    assert len(pointers) == len(pairs)

    # the decoder is the mirror of the encoder with transposed weights
    h = module.encoder(x)
    for i, (enc, dec) in enumerate(pairs):
        h = h @ enc.weight + dec.bias
        if i < len(pairs) - 1:
            h = make_activation(activation)(h)
    torch.testing.assert_close(module(x), h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        module.decode(module.encode(x)),
        make_activation(output_activation)(h),
        rtol=1e-5,
        atol=1e-6,
    )

    # the tying survives an optimiser step, a deep copy and a change of dtype
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    module(x).square().sum().backward()
    optimizer.step()
    check_tied(module)
    check_tied(copy.deepcopy(module).to(torch.float64))
