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


# ------------------------------------------------- the fold of the scale


def unfolded(cls):
    """``cls`` training through the module's data-unit entry points (the
    scale divided in and multiplied out at every step), as before the fold."""
    return type(f"Unfolded{cls.__name__}", (cls,), {"_fold_input_scale": False})


FOLD_CASES = {
    "pca": (Autoencoder, {}),
    "random": (Autoencoder, {"init": "random"}),
    "tied": (Autoencoder, {"tied_weights": True}),
    "greedy": (
        Autoencoder,
        {"hidden_layer_sizes": (16,), "pretraining": "greedy", "learning_rate": 3e-3},
    ),
    "gaussian_noise": (skae.DenoisingAutoencoder, {"noise": "gaussian", "noise_level": 3.0}),
    "masking_noise": (skae.DenoisingAutoencoder, {"noise": "masking"}),
    "sparse": (skae.SparseAutoencoder, {}),
    "contractive": (skae.ContractiveAutoencoder, {}),
    "convolutional": (ConvolutionalAutoencoder, {"image_shape": (1, 5, 8)}),
}


@pytest.mark.parametrize("case", list(FOLD_CASES))
def test_folded_training_is_the_unfolded_one_up_to_rounding(case):
    """Training in the layers' units (the scale folded out of every step,
    the loss multiplied by its square) gives the losses, codes and
    reconstructions of training in the data's units, to float32 rounding
    (rtol 1e-5), while the loss moved by far more than that.

    SGD, not Adam: from the PCA start the linear path sits at PCA's optimum,
    where its gradient is rounding noise, and Adam divides each gradient by
    its own magnitude, which turns that noise into full steps; any other
    kernel (a thread count, a block shape) moves such fits apart by about 1 %
    after a few epochs as well. From a random start Adam keeps the two
    together (the next test)."""
    cls, params = FOLD_CASES[case]
    X = 5.0 * low_rank(n=200)
    settings = {"n_components": 3, **FIXED, "optimizer": "sgd", "learning_rate": 7.5e-3, **params}
    folded = fit(cls(**settings), X)
    plain = fit(unfolded(cls)(**settings), X)
    assert float(folded.module_.input_scale) > 4  # the fold has a scale to fold
    curve = np.asarray(folded.loss_curve_)
    # training moved the loss by far more than the comparison's rtol (from the
    # PCA start about 7e-4 in these epochs: the linear path takes shortened steps)
    assert abs(curve[-1] / curve[0] - 1) > 2e-4
    np.testing.assert_allclose(curve, plain.loss_curve_, rtol=1e-5)
    codes = folded.transform(X)
    atol = 1e-5 * np.abs(codes).max()
    np.testing.assert_allclose(codes, plain.transform(X), rtol=1e-5, atol=atol)
    rec = folded.inverse_transform(codes)
    atol = 1e-5 * np.abs(rec).max()
    np.testing.assert_allclose(rec, plain.inverse_transform(codes), rtol=1e-5, atol=atol)


@pytest.mark.parametrize("cls", [Autoencoder, ConvolutionalAutoencoder])
def test_folded_adam_training_from_a_random_start(cls):
    """The default optimiser from a random start: the same fit, folded or not
    (rtol 1e-5 on the losses, 1e-4 of the largest code)."""
    X = 37.0 * low_rank(n=200)
    params = {"image_shape": (1, 5, 8)} if cls is ConvolutionalAutoencoder else {}
    settings = {"n_components": 3, "init": "random", **FIXED, **params}
    folded = fit(cls(**settings), X)
    plain = fit(unfolded(cls)(**settings), X)
    np.testing.assert_allclose(folded.loss_curve_, plain.loss_curve_, rtol=1e-5)
    codes = folded.transform(X)
    atol = 1e-4 * np.abs(codes).max()
    np.testing.assert_allclose(codes, plain.transform(X), rtol=1e-4, atol=atol)


def test_folded_loss_is_the_data_unit_loss_and_gradient():
    """One batch: the folded loss and its gradients equal the loss through
    the module's own entry points (float64, to 1e-12)."""
    import torch

    from skae._losses import squared_error, squared_error_total

    X = 37.0 * low_rank(n=64)
    model = fit(Autoencoder(n_components=3, hidden_layer_sizes=(8,), **FIXED), X)
    module = model.module_.double()
    with torch.no_grad():  # open the gates: every path counts
        module.encoder_gate.fill_(0.7)
        module.decoder_gate.fill_(-0.4)
    x = torch.from_numpy(X.astype(np.float64))
    folded = module.folded_loss(squared_error)
    losses, grads = [], []

    def data_units():
        return squared_error_total(module(x), x) / len(x)

    # the folded loss is in the layers' units: times loss_scale, X's
    for loss_of in (lambda: folded(x)[0] * module.loss_scale, data_units):
        module.zero_grad()
        loss = loss_of()
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in module.parameters()]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12 * grads[1].abs().max())


def test_no_fold_for_a_loss_that_is_not_homogeneous():
    """Binary cross-entropy does not scale with its arguments' square: a module
    with a scale other than 1 trains it through its own entry points."""
    from skae._losses import binary_cross_entropy
    from skae.nn import AutoencoderModule

    module = AutoencoderModule(4, 2).set_input_scale(3.0)
    assert module.folded_loss(binary_cross_entropy) is None
    assert module.set_input_scale(1.0).folded_loss(binary_cross_entropy) is not None


@pytest.mark.parametrize("init", ["pca", "random"])
def test_folded_score_is_the_reconstruction_error_in_the_data_units(init):
    """score_samples computes in the layers' units (the scale folded out):
    the negative squared error of inverse_transform(transform(X)) in X's units,
    to float64 rounding (rtol 1e-10)."""
    X = (37.0 * low_rank(n=100)).astype(np.float64)
    model = fit(Autoencoder(n_components=3, init=init, **FIXED), X)
    assert float(model.module_.input_scale) > 30
    error = ((model.inverse_transform(model.transform(X)) - X) ** 2).sum(axis=1)
    np.testing.assert_allclose(model.score_samples(X), -error, rtol=1e-10)


def test_greedy_pretraining_noise_follows_the_scale_of_X():
    """Gaussian noise of ``noise_level`` (X's units) on the inner layer pairs'
    hidden activations (the layers' units) is ``noise_level / input_scale``:
    added as it was, X at 1000 times the scale with 1000 times the noise put
    noise 85 times the activations' size into the inner pair."""
    model = skae.DenoisingAutoencoder(
        n_components=3, hidden_layer_sizes=(16, 8), pretraining="greedy", **FIXED
    )
    X = low_rank()
    small = fit(clone(model).set_params(noise_level=0.05), X)
    large = fit(clone(model).set_params(noise_level=50.0), 1000 * X)
    reconstruction = small.inverse_transform(small.transform(X))
    np.testing.assert_allclose(
        large.inverse_transform(large.transform(1000 * X)) / 1000,
        reconstruction,
        rtol=1e-3,
        atol=1e-3,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_denoising_model_trains_alike_on_tiny_data(dtype):
    # a masked batch of rows near 1e-20 is scored in double: in float32 the
    # squared differences fell below its normal numbers and the gradients
    # times 1 / s^2 past its largest (non-finite loss in epoch 1)
    from sklearn.datasets import load_digits

    X = load_digits().data[:300] / 16
    errors = []
    for unit in (1.0, 1e-20):
        Xu = (X * unit).astype(dtype)
        est = skae.DenoisingAutoencoder(
            n_components=4, noise="masking", max_iter=20, random_state=0, device="cpu"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(Xu)
        rec = est.inverse_transform(est.transform(Xu))
        errors.append(np.square(rec.astype(np.float64) - Xu).sum(1).mean() / unit**2)
    assert errors[1] == pytest.approx(errors[0], rel=0.02)


def test_absolute_noise_on_tiny_data_trains_in_the_data_units():
    """Gaussian noise of 0.1 on rows of 1.7e-21 is 6e19 times the input scale:
    squared in the layers' units it would overflow float32, so a corrupted
    step runs unfolded and the fit stays finite (found by hypothesis)."""
    X = np.full((2, 1), 1.6940659e-21, dtype=np.float32)
    for seed in range(3):
        est = skae.DenoisingAutoencoder(
            n_components=1,
            hidden_layer_sizes=(),
            max_iter=3,
            early_stopping=False,
            random_state=seed,
        ).fit(X)
        assert np.all(np.isfinite(est.loss_curve_))


# --------------------------------------------------------- Adam's epsilon


@pytest.mark.parametrize(
    "params",
    [dict(optimizer="sgd", learning_rate=1e-3), dict(weight_decay=1e-3)],
    ids=["sgd", "adam-weight-decay"],
)
def test_the_optimizer_steps_alike_at_every_data_scale(params):
    # the optimiser sees the loss in the layers' units: SGD's rate and weight
    # decay mean the same at every scale (SGD on raw digits, 0-16, diverged;
    # weight decay on data of RMS 0.005 gave 10x PCA's error)
    # init="random": from the PCA start Adam turns the gradients' rounding
    # noise into whole steps (about 1 %, test_folded_training_...), which
    # reached 0.88 of the tolerance under MKL_CBWR=COMPATIBLE
    X = low_rank()
    codes = {}
    for factor in (1e-3, 1.0, 1e3):
        ae = fit(Autoencoder(n_components=2, **FIXED, init="random", **params), X * factor)
        codes[factor] = ae.transform(X * factor)  # a random network's are in its units
        assert ae._optimizer_.param_groups[0].get("eps", 1e-8) == 1e-8
    # float32 rounding differs with the scale; the same steps otherwise
    np.testing.assert_allclose(
        codes[1e-3], codes[1.0], rtol=1e-3, atol=1e-3 * np.abs(codes[1.0]).max()
    )
    np.testing.assert_allclose(
        codes[1e3], codes[1.0], rtol=1e-3, atol=1e-3 * np.abs(codes[1.0]).max()
    )


@pytest.mark.parametrize("model", [Autoencoder, VariationalAutoencoder], ids=lambda c: c.__name__)
def test_small_and_large_data_train_as_data_at_unit_scale(model):
    # digits / 16 at 1e-3 stayed at PCA's start (best epoch 0) while Adam's
    # epsilon of 1e-8 swamped its gradients, 1e-6 of those at unit scale; the
    # VAE's at 1e-4, where its decoder variance's floor of 1e-8 held
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    X = (load_digits().data[:400] / 16).astype(np.float32)
    pca = PCA(4).fit(X)
    pca_error = np.square(pca.inverse_transform(pca.transform(X)) - X).sum(1).mean()  # 2.16
    errors = {}
    for factor in (1e-4, 1.0, 1e3):
        Xf = X * np.float32(factor)
        params = dict(n_components=4, hidden_layer_sizes=(32,), max_iter=300, random_state=0)
        est = fit(model(**params, device="cpu"), Xf)
        assert est.best_epoch_ > 10
        errors[factor] = np.square(est.inverse_transform(est.transform(Xf)) - Xf).sum(1).mean()
        errors[factor] /= factor**2
        assert errors[factor] < 0.75 * pca_error  # trained well past the start
    # float32 rounding differs with the scale, and so do the paths (best
    # epochs 33-71): over six CPU kernels and BLAS settings the Autoencoder's
    # errors at 1e-4 and 1e3 were 0.885-1.041 times those at unit scale
    assert errors[1e-4] == pytest.approx(errors[1.0], rel=0.25)
    assert errors[1e3] == pytest.approx(errors[1.0], rel=0.25)


def test_early_stopping_scores_data_far_beyond_float32s_square():
    # the held-out score is a squared error in X's units: in float32 it
    # overflowed on digits times 1e19 (a ValueError blaming the learning rate)
    # and was 0 in every epoch times 1e-23 (PCA kept, all training lost)
    from sklearn.datasets import load_digits

    X = load_digits().data[:300] / 16
    params = dict(n_components=2, max_iter=5, random_state=0, device="cpu")
    unit = fit(Autoencoder(**params), X)
    for factor in (1e19, 1e-23):
        est = fit(Autoencoder(**params), X * factor)
        # an epoch is kept (not the start); which one may differ where two
        # epochs' scores lie within rounding of each other
        assert est.best_epoch_ > 0 and unit.best_epoch_ > 0
        scores = np.array([est.init_validation_score_, *est.validation_scores_]) / factor**2
        unit_scores = [unit.init_validation_score_, *unit.validation_scores_]
        # float32 rounding of the layers differs with the scale: within 3e-3
        # (up to 0.37e-3 over six CPU kernels and BLAS settings)
        np.testing.assert_allclose(scores, unit_scores, rtol=3e-3)
    # the VAE's score of its start too (its training at 1e-23 takes another
    # path: its variance floor is float32's smallest normal number)
    unit = fit(VariationalAutoencoder(**params), X)
    tiny = fit(VariationalAutoencoder(**params), X * 1e-23)
    start = unit.init_validation_score_
    assert tiny.init_validation_score_ / 1e-46 == pytest.approx(start, rel=1e-3)


def test_the_vae_fits_data_at_1e_minus_20():
    # its variance floor, 1e-8 times the scale's square, would round to 0 in
    # float32: it is held at float32's smallest normal number
    X = low_rank() * np.float32(1e-20)
    vae = fit(VariationalAutoencoder(n_components=2, **FIXED), X)
    assert np.isfinite(vae.loss_curve_).all()
    assert np.isfinite(vae.score_samples(X)).all()


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_rows_far_from_zero_against_their_spread_warn(method):
    # divided by their root mean square, digits + 300 barely vary: the
    # non-linear layers (which see X uncentred) learned nothing beside PCA's
    # start (error 2.13 against 1.33 for the same digits at 0)
    from sklearn.datasets import load_digits

    X = load_digits().data[:200] / 16
    est = Autoencoder(n_components=2, **FIXED)
    with pytest.warns(UserWarning, match="far from zero against its spread") as record:
        getattr(est, method)(X + 300.0)
    assert [w.filename for w in record if "far from zero" in str(w.message)] == [__file__]
    # centred enough, one row (a stream of single rows) or constant rows:
    # nothing to warn about
    for rows in (X, X[:1] + 300.0, np.full((20, 64), 300.0)):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            getattr(Autoencoder(n_components=1, **FIXED), method)(rows)
        assert not [w for w in record if "far from zero" in str(w.message)]
