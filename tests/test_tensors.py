"""torch tensors as input.

Without array API dispatch a tensor is an array-like: numpy comes back, in the
tensor's float dtype (one that requires grad too). With
``sklearn.set_config(array_api_dispatch=True)`` a tensor comes back a tensor, on
the input's device and in its dtype, equal to the numpy path's result.
(scikit-learn's own array API checks run in test_common.py.)
"""

import io
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
import torch
from _family import ESTIMATORS

import skae

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

X = np.random.default_rng(0).random((30, 12))
METHODS = ["transform", "score_samples", "inverse_transform"]


def make(cls, **params):
    settings = dict(n_components=3, max_iter=2, device="cpu", random_state=0)
    if cls is not skae.ConvolutionalAutoencoder:
        settings["hidden_layer_sizes"] = (8,)
    return cls(**{**settings, **params})


def call(est, method, data):
    """``method`` on ``data`` (its codes for inverse_transform)."""
    if method == "inverse_transform":
        data = est.transform(data)
    return getattr(est, method)(data)


def dispatch():
    return sklearn.config_context(array_api_dispatch=True)


# ------------------------------------------------------- without dispatch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_tensor_is_an_array_like_without_dispatch(cls, dtype):
    t = torch.tensor(X, dtype=dtype)
    X_np = t.numpy()
    est, reference = make(cls).fit(t), make(cls).fit(X_np)
    for method in METHODS:
        out = call(est, method, t)
        assert type(out) is np.ndarray
        assert out.dtype == X_np.dtype  # float32 in, float32 out
        np.testing.assert_array_equal(out, call(reference, method, X_np))


def test_tensor_that_requires_grad_works_without_dispatch():
    t = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    est = make(skae.Autoencoder).fit(t)
    codes = est.transform(t)
    assert codes.dtype == np.float32
    np.testing.assert_array_equal(
        codes, make(skae.Autoencoder).fit(X.astype(np.float32)).transform(X.astype(np.float32))
    )
    assert t.grad is None


def test_the_imputer_and_the_detector_take_a_tensor_that_requires_grad():
    # they validated it themselves, through np.asarray: "Can't call numpy()
    # on Tensor that requires grad", where the autoencoders took it
    X32 = X.astype(np.float32)
    holes = X32.copy()
    holes[::3, 1] = np.nan
    small = dict(hidden_layer_sizes=(8,), max_iter=2, device="cpu", random_state=0)
    imputer = skae.AutoencoderImputer(**small).fit(torch.tensor(holes, requires_grad=True))
    np.testing.assert_array_equal(
        imputer.transform(torch.tensor(holes, requires_grad=True)),
        skae.AutoencoderImputer(**small).fit(holes).transform(holes),
    )
    inner = skae.Autoencoder(n_components=2, **small)
    t = torch.tensor(X32, requires_grad=True)
    detector = skae.AutoencoderOutlierDetector(inner, cv=2, random_state=0).fit(t)
    expected = skae.AutoencoderOutlierDetector(inner, cv=2, random_state=0).fit(X32)
    np.testing.assert_array_equal(detector.score_samples(t), expected.score_samples(X32))
    assert t.grad is None


# ---------------------------------------------------------- with dispatch


@pytest.mark.parametrize("cls", [skae.Autoencoder, skae.VariationalAutoencoder])
def test_a_transposed_tensor_fits_as_its_row_major_copy_under_dispatch(cls):
    # it trained another model (weights 8.6e-7 apart), where numpy's
    # Fortran-ordered arrays are copied to row-major by validation
    t = torch.tensor(X, dtype=torch.float32)
    transposed = t.T.contiguous().T
    assert not transposed.is_contiguous()
    with dispatch():
        a, b = make(cls).fit(t), make(cls).fit(transposed)
        for key, value in a.module_.state_dict().items():
            torch.testing.assert_close(b.module_.state_dict()[key], value, rtol=0, atol=0)
        torch.testing.assert_close(b.transform(transposed), a.transform(t), rtol=0, atol=0)


def test_the_imputer_and_the_detector_refuse_a_tensor_under_dispatch_saying_so():
    """They take tensors without dispatch only (as IsolationForest and
    KNNImputer); under it every call failed inside torch's asarray."""
    holes = X.copy()
    holes[::3, 1] = np.nan
    small = dict(hidden_layer_sizes=(8,), max_iter=2, device="cpu", random_state=0)
    imputer = skae.AutoencoderImputer(**small).fit(holes)
    detector = skae.AutoencoderOutlierDetector(
        skae.Autoencoder(n_components=2, **small), cv=2, random_state=0
    ).fit(X)
    calls = [
        (skae.AutoencoderImputer(**small).fit, holes),
        (imputer.transform, holes),
        (skae.AutoencoderOutlierDetector(random_state=0).fit, X),
        (detector.score_samples, X),
        (detector.predict, X),
    ]
    with dispatch():
        for method, data in calls:
            name = type(method.__self__).__name__
            with pytest.raises(TypeError, match=f"{name} takes torch tensors without array API"):
                method(torch.tensor(data))
            method(data)  # numpy still goes under dispatch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_tensor_in_tensor_out_with_dispatch(cls, dtype):
    t = torch.tensor(X, dtype=dtype)
    X_np = t.numpy()
    reference = make(cls).fit(X_np)
    with dispatch():
        est = make(cls).fit(t)
        for method in METHODS:
            out = call(est, method, t)
            assert isinstance(out, torch.Tensor), method
            assert out.dtype == dtype and out.device == t.device, method
            assert not out.requires_grad
            # an ordinary tensor, not an inference one: usable in place and
            # as the input of a model that trains
            assert not out.is_inference(), method
            # equal to the numpy path
            np.testing.assert_array_equal(out.numpy(), call(reference, method, X_np))
        # the mean over rows, in the scores' dtype: float32 sums round differently
        assert est.score(t) == pytest.approx(reference.score(X_np), rel=1e-6)
        assert isinstance(est.fit_transform(t), torch.Tensor)


def test_tensor_that_requires_grad_works_with_dispatch():
    t = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    with dispatch():
        est = make(skae.Autoencoder).fit(t)
        codes = est.transform(t)
    assert isinstance(codes, torch.Tensor) and not codes.requires_grad
    assert t.grad is None
    codes += 1.0  # refused for an inference tensor
    head = torch.nn.Linear(codes.shape[1], 1)
    head(codes).sum().backward()  # a model downstream trains on the codes
    assert head.weight.grad is not None


SETTINGS = {
    "early_stopping": (skae.Autoencoder, dict(early_stopping=True)),
    "greedy_pretraining": (skae.Autoencoder, dict(hidden_layer_sizes=(8, 5), pretraining="greedy")),
    "vae_early_stopping": (skae.VariationalAutoencoder, dict(early_stopping=True)),
    "partial_fit": (skae.DenoisingAutoencoder, {}),
}


@pytest.mark.parametrize("setting", SETTINGS)
def test_tensor_fit_equals_numpy_fit_with(setting):
    cls, params = SETTINGS[setting]
    t = torch.tensor(X)
    method = "partial_fit" if setting == "partial_fit" else "fit"
    reference = getattr(make(cls, **params), method)(X)
    with dispatch():
        est = getattr(make(cls, **params), method)(t)
        codes = est.transform(t)
    np.testing.assert_array_equal(codes.numpy(), reference.transform(X))
    assert est.loss_curve_ == reference.loss_curve_


def test_a_model_fitted_on_tensors_refuses_numpy_under_dispatch_as_scikit_learn_does():
    with dispatch():
        est = make(skae.Autoencoder).fit(torch.tensor(X))
        with pytest.raises(ValueError, match=r"Autoencoder\.transform\(\) must use the same"):
            est.transform(X)
        with pytest.raises(ValueError, match="fit saw torch arrays on cpu"):
            est.score_samples(X)
    # without dispatch anything array-like goes, and numpy comes back
    assert type(est.transform(torch.tensor(X))) is np.ndarray


def test_a_model_fitted_on_numpy_refuses_tensors_under_dispatch():
    est = make(skae.Autoencoder).fit(X)
    with dispatch():
        with pytest.raises(ValueError, match="fit saw numpy arrays, inverse_transform got torch"):
            est.inverse_transform(torch.zeros((2, 3)))
        # numpy and sparse input keep working
        assert type(est.transform(X)) is np.ndarray
        assert type(est.transform(sp.csr_matrix(X))) is np.ndarray


def test_a_tensor_score_beyond_its_dtype_is_refused_with_dispatch():
    # the score is summed in float64 and cast to X's dtype: the check for
    # non-finite values ran before the cast, and -inf came back
    big = (np.random.default_rng(0).random((100, 6)) + [1, 0, 0, 0, 0, 0]) * 3e19
    big = big.astype(np.float32)
    with dispatch():
        est = make(skae.Autoencoder, n_components=1).fit(torch.tensor(big))
        probe = torch.tensor(big[:3])
        probe[:, 1], probe[:, 2] = 3e19, -9e19
        with pytest.raises(ValueError, match="non-finite values"):
            est.score_samples(probe)


def test_bad_tensors_are_refused_with_dispatch():
    t = torch.tensor(X)
    t[2, 3] = float("nan")
    with dispatch():
        with pytest.raises(ValueError, match="Input X contains NaN"):
            make(skae.Autoencoder).fit(t)
        est = make(skae.Autoencoder).fit(torch.tensor(X))
        with pytest.raises(ValueError, match="X has 5 features"):
            est.transform(torch.zeros((2, 5), dtype=torch.float64))
        with pytest.raises(ValueError, match="too large for float32"):
            make(skae.Autoencoder).fit(torch.full((4, 3), 1e300, dtype=torch.float64))
    assert torch.isnan(t[2, 3])  # the caller's tensor is unchanged
    assert torch.isnan(t).sum() == 1


@pytest.mark.parametrize("method", ["fit", *METHODS])
def test_complex_tensors_are_refused_with_dispatch(method):
    # scikit-learn's complex check sees numpy dtypes only: torch dropped the
    # imaginary part with a warning, and the model fitted on the real part
    C = torch.tensor(X) + 1j * torch.tensor(X)
    est = make(skae.Autoencoder).fit(X)
    with dispatch(), pytest.raises(ValueError, match="Complex data not supported"):
        make(skae.Autoencoder).fit(C) if method == "fit" else getattr(est, method)(C)


# ------------------------------------------------------- the caller's torch state


@pytest.fixture
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_a_float64_default_dtype_changes_nothing(cls, float64_default):
    # the layers were built float64 and float32 batches could not pass them;
    # a model fitted before failed to unpickle, copy or load
    with torch.random.fork_rng(devices=[]), sklearn.config_context():
        torch.set_default_dtype(torch.float32)
        reference = make(cls).fit(X)
        torch.set_default_dtype(torch.float64)
        est = make(cls).fit(X)
    np.testing.assert_array_equal(est.transform(X), reference.transform(X))
    buffer = io.BytesIO()
    skae.save(reference, buffer)
    buffer.seek(0)
    for copied in (pickle.loads(pickle.dumps(reference)), skae.load(buffer)):
        np.testing.assert_array_equal(copied.transform(X), reference.transform(X))
        if cls is skae.VariationalAutoencoder:  # its draws were float64 codes
            np.testing.assert_array_equal(copied.sample(3, 0), reference.sample(3, 0))
    assert torch.get_default_dtype() == torch.float64


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_fit_within_no_grad_or_inference_mode_trains(mode):
    reference = make(skae.Autoencoder).fit(X)
    continued = make(skae.Autoencoder).fit(X).partial_fit(X)
    with mode():
        est = make(skae.Autoencoder).fit(X)
        fitted = est.transform(X)
        est.partial_fit(X)
        assert not torch.is_grad_enabled()
    # the same training as outside the block, fit and partial_fit alike
    np.testing.assert_array_equal(fitted, reference.transform(X))
    np.testing.assert_array_equal(est.transform(X), continued.transform(X))
    assert est.n_iter_ == continued.n_iter_


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model_device", ["cuda", "cpu"])
def test_cuda_tensor_in_cuda_tensor_out_with_dispatch(model_device):
    t = torch.tensor(X, dtype=torch.float32, device="cuda")
    reference = make(skae.Autoencoder).fit(X.astype(np.float32))
    with dispatch():
        est = make(skae.Autoencoder, device=model_device).fit(t)
        for method in METHODS:
            out = call(est, method, t)
            assert isinstance(out, torch.Tensor)
            assert out.device == t.device and out.dtype == torch.float32
            np.testing.assert_allclose(
                out.cpu().numpy(),
                call(reference, method, X.astype(np.float32)),
                rtol=1e-4,
                atol=1e-5,
            )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_variational_log_likelihood_tensor_in_tensor_out_with_dispatch(dtype):
    t = torch.tensor(X, dtype=dtype)
    reference = make(skae.VariationalAutoencoder).fit(t.numpy())
    expected = reference.log_likelihood(t.numpy(), n_importance_samples=5, random_state=0)
    with dispatch():
        est = make(skae.VariationalAutoencoder).fit(t)
        out = est.log_likelihood(t, n_importance_samples=5, random_state=0)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == dtype and out.device == t.device and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), expected)
