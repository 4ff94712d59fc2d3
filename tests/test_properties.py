"""Properties of the estimators and of their pure torch pieces, checked with hypothesis.

- every method's output shape and dtype, for random shapes, architectures and input dtypes;
- row independence of ``transform``, ``score_samples`` and ``inverse_transform``;
- determinism under an int ``random_state``;
- the global random states (numpy, torch, ``random``) are never used nor changed;
- the noise functions of ``skae._noise`` and the losses of ``skae._losses``.

Networks are tiny and train for a few epochs: these tests check contracts, not quality.
"""

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skae import Autoencoder, DenoisingAutoencoder, VariationalAutoencoder
from skae._losses import binary_cross_entropy, gaussian_kl, gaussian_nll, squared_error
from skae._noise import NOISES

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = [Autoencoder, DenoisingAutoencoder, VariationalAutoencoder]
ESTIMATOR_IDS = [cls.__name__ for cls in ESTIMATORS]


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
    """A tiny, seeded, CPU estimator."""
    defaults = dict(hidden_layer_sizes=(8,), max_iter=3, device="cpu", random_state=0)
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
        elements = st.floats(
            -10, 10, width=dtype.itemsize * 8, allow_nan=False, allow_subnormal=False
        )
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
]

AFTER_FIT = {
    "partial_fit": lambda est, X: est.partial_fit(X),
    "transform": lambda est, X: est.transform(X),
    "inverse_transform": lambda est, X: est.inverse_transform(est.transform(X)),
    "score_samples": lambda est, X: est.score_samples(X),
    "sample": lambda est, X: est.sample(4),
    "sample_seeded": lambda est, X: est.sample(4, random_state=0),
}


# sample is VariationalAutoencoder's only
RNG_CASES = [
    pytest.param(cls, name, id=f"{cls.__name__}-{name}")
    for cls in ESTIMATORS
    for name, _ in OPERATIONS
    if cls is VariationalAutoencoder or not name.startswith("sample")
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
