"""What each family member adds: sparser codes, a smaller Jacobian, images,
greedy layer-wise pretraining and tied weights."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import (
    Autoencoder,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    _engine,
)
from skae._evaluation import evaluate, reconstruction_error
from skae._losses import squared_error
from skae._noise import NOISES
from skae._progress import KEPT_START
from skae.nn import AutoencoderModule


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, random_state=0, stratify=y)


def fit_quietly(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X)


def hoyer_sparsity(codes):
    """Mean over rows of Hoyer's sparsity: 0 for a flat vector, 1 for one-hot."""
    k = codes.shape[1]
    ratio = np.abs(codes).sum(1) / (np.sqrt((codes**2).sum(1)) + 1e-12)
    return float(((np.sqrt(k) - ratio) / (np.sqrt(k) - 1)).mean())


def code_accuracy(est, digits):
    """skae's evaluation protocol (skae._evaluation) on the fitted ``est``."""
    X_train, X_test, y_train, y_test = digits
    return evaluate(est, X_train, y_train, X_test, y_test, prefit=True)["accuracy"]


OVERCOMPLETE = dict(
    n_components=128,
    hidden_layer_sizes=(64,),
    max_iter=40,
    batch_size=64,
    # 40 full epochs at the rate the penalty weights were measured at
    # (benchmarks/bench_penalty_weights.py), not the early-stopped default
    learning_rate=1e-3,
    early_stopping=False,
    random_state=0,
    device="cpu",
)


#: half the epochs suffice for the comparison with the plain network: at 20
#: (seeds 0-2) the sparse codes are 0.19-0.65 more Hoyer-sparse (at 40:
#: 0.20-0.62) and classify at 0.93-0.97
SPARSE_VS_PLAIN = {**OVERCOMPLETE, "max_iter": 20}


@pytest.fixture(scope="module")
def plain_overcomplete(digits):
    """The plain network alone, fitted once (no test changes it): init="pca"'s
    over-complete code has 64 units that start at zero, Hoyer-sparse by
    construction (0.64 on these rows)."""
    return fit_quietly(Autoencoder(init="random", **SPARSE_VS_PLAIN), digits[0])


@pytest.mark.parametrize("sparsity", ["kl", "l1"])
def test_sparse_overcomplete_code_is_sparser_than_plain(sparsity, digits, plain_overcomplete):
    X_train, X_test, _, _ = digits
    plain = plain_overcomplete
    sparse = fit_quietly(
        SparseAutoencoder(sparsity=sparsity, sparsity_weight=0.1, init="random", **SPARSE_VS_PLAIN),
        X_train,
    )
    plain_sparsity = hoyer_sparsity(plain.transform(X_test))
    sparse_sparsity = hoyer_sparsity(sparse.transform(X_test))
    assert sparse_sparsity > plain_sparsity + 0.1
    # the penalty keeps the code, not only shrinks it
    assert code_accuracy(sparse, digits) > 0.85


def test_sparse_kl_mean_activation_near_target(digits):
    X_train, X_test, _, _ = digits
    sae = fit_quietly(
        SparseAutoencoder(
            sparsity="kl",
            sparsity_target=0.05,
            sparsity_weight=3.0,
            init="random",
            **OVERCOMPLETE,
        ),
        X_train,
    )
    codes = sae.transform(X_test)
    assert codes.min() >= 0 and codes.max() <= 1  # logistic code units
    assert 0.01 < codes.mean() < 0.15


def test_sparse_l1_codes_have_exact_zeros(digits):
    X_train, X_test, _, _ = digits
    sae = fit_quietly(SparseAutoencoder(sparsity="l1", init="random", **OVERCOMPLETE), X_train)
    codes = sae.transform(X_test)
    assert codes.min() >= 0
    assert (codes == 0).mean() > 0.5


def test_sparse_l1_warns_when_every_code_unit_is_off(digits):
    X_train, X_test, _, _ = digits
    # skae 0.2's default at k = 2 on this split (bench_defaults' digits,
    # accuracy 0.100) switched both ReLU units off; since the default's units
    # start centred with a leaky gradient at sparsity_weight 0.01, it takes
    # a penalty of 1.0 to do so
    sae = SparseAutoencoder(
        n_components=2, sparsity_weight=1.0, init="random", random_state=0, device="cpu"
    )
    with pytest.warns(ConvergenceWarning, match=r"Every one of the 2 code units is zero") as record:
        sae.fit(X_train)
    assert record[0].filename == __file__  # points at the caller's fit
    assert not sae.transform(X_test).any()  # the warning tells the truth
    # a heavy penalty does it on any data; the fitted model stays usable
    heavy = SparseAutoencoder(
        n_components=4, sparsity_weight=100.0, max_iter=5, init="random", device="cpu"
    )
    with pytest.warns(ConvergenceWarning, match="Lower sparsity_weight"):
        heavy.fit(X_train)
    assert heavy.inverse_transform(heavy.transform(X_test)).shape == X_test.shape


@pytest.mark.parametrize(
    "params",
    [
        {"sparsity": "l1", "sparsity_weight": 0.0},  # live units
        {"sparsity": "kl", "sparsity_weight": 100.0},  # logistic units are never exactly zero
    ],
)
def test_sparse_no_dead_code_warning_otherwise(params, digits):
    X_train = digits[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter
        warnings.filterwarnings("error", "Every one of", ConvergenceWarning)
        SparseAutoencoder(n_components=4, max_iter=5, random_state=0, device="cpu", **params).fit(
            X_train
        )
        # partial_fit's single epochs are not checked
        SparseAutoencoder(n_components=4, sparsity_weight=100.0, device="cpu").partial_fit(X_train)


@pytest.mark.parametrize("hidden", [(), (32,)], ids=["one_layer", "one_hidden_layer"])
def test_contractive_jacobian_smaller_than_unpenalised(hidden, digits):
    X_train, X_test, _, _ = digits
    # the networks alone (init="random"): from the PCA start, neither model
    # opens the gate of its non-linear path on these rows, so both are PCA
    # 30 epochs (seeds 0-2): Jacobian norm 0.16-0.31 of the plain model's,
    # accuracy within 0.02 of it (at 60: 0.10-0.25, within 0.011)
    params = dict(
        n_components=16,
        hidden_layer_sizes=hidden,
        max_iter=30,
        batch_size=64,
        random_state=0,
        device="cpu",
        init="random",
    )
    cae = fit_quietly(ContractiveAutoencoder(**params), X_train)
    plain = fit_quietly(ContractiveAutoencoder(contraction_weight=0.0, **params), X_train)
    x = torch.as_tensor(X_test, dtype=torch.float32)
    with torch.no_grad():
        cae_norm = cae.module_.encoder_jacobian_norm(x).mean().item()
        plain_norm = plain.module_.encoder_jacobian_norm(x).mean().item()
    assert cae_norm < 0.5 * plain_norm
    assert code_accuracy(cae, digits) > code_accuracy(plain, digits) - 0.05


def test_contractive_closed_form_matches_autodiff():
    torch.manual_seed(0)
    module = AutoencoderModule(7, 5, (), code_activation="logistic")
    layer = module.encoder
    assert [type(m) for m in layer] == [torch.nn.Linear, torch.nn.Sigmoid]
    x = torch.randn(11, 7)
    closed = module.encoder_jacobian_norm(x)
    exact = torch.stack(
        [torch.autograd.functional.jacobian(layer, row).square().sum() for row in x]
    )
    torch.testing.assert_close(closed, exact, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("hidden", [(8,), (8, 4)], ids=["closed_form", "autodiff"])
def test_contractive_penalty_trains_deep_encoder_parameters(hidden, digits):
    # the penalty, in closed form or by autodiff, must reach the first layer's weights
    X_train, _, _, _ = digits
    cae = ContractiveAutoencoder(
        n_components=4,
        hidden_layer_sizes=hidden,
        contraction_weight=1.0,
        device="cpu",
        random_state=0,
    )
    fit_quietly(cae.set_params(max_iter=1), X_train[:50])
    module = cae.module_
    x = torch.as_tensor(X_train[:20], dtype=torch.float32)
    penalty = module.encoder_jacobian_norm(x).mean()
    penalty.backward()
    assert module.encoder[0].weight.grad is not None
    assert module.encoder[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("image_shape", [(8, 8), (1, 8, 8), None])
def test_convolutional_shapes_round_trip(image_shape, digits):
    X_train, X_test, _, _ = digits
    conv = fit_quietly(
        ConvolutionalAutoencoder(
            n_components=6, image_shape=image_shape, max_iter=3, random_state=0, device="cpu"
        ),
        X_train,
    )
    codes = conv.transform(X_test)
    assert codes.shape == (len(X_test), 6)
    assert conv.inverse_transform(codes).shape == X_test.shape
    expected = {(8, 8): (1, 8, 8), (1, 8, 8): (1, 8, 8), None: (1, 64)}[image_shape]
    assert conv.image_shape_ == expected


def test_convolutional_multichannel_and_odd_sizes():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 3 * 7 * 5))
    conv = fit_quietly(
        ConvolutionalAutoencoder(
            n_components=4,
            image_shape=(3, 7, 5),
            channels=(4, 4, 4),
            max_iter=2,
            random_state=0,
            device="cpu",
        ),
        X,
    )
    assert conv.inverse_transform(conv.transform(X)).shape == X.shape
    convs = [m for m in conv.module_.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.in_channels for c in convs] == [3, 4, 4]


@pytest.mark.parametrize("respelled", [(1, 8, 8), [1, 8, 8], np.array([8, 8])])
def test_convolutional_warm_start_takes_another_spelling_of_the_same_image(respelled, digits):
    """(8, 8) and (1, 8, 8) view rows as the same image, the same network: a
    warm start continues it (it was refused as a changed image_shape), and
    skae.save writes it; another image is still refused."""
    import io

    import skae

    X = digits[0][:200]
    conv = ConvolutionalAutoencoder(
        n_components=4, image_shape=(8, 8), max_iter=2, warm_start=True, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv.fit(X)
        conv.set_params(image_shape=respelled).fit(X)
    assert conv.image_shape_ == (1, 8, 8)
    skae.save(conv, io.BytesIO())
    with pytest.raises(ValueError, match="image_shape=.* was set after the fit"):
        conv.set_params(image_shape=(2, 32)).fit(X)


@pytest.mark.parametrize("width", [1, 2, 3, 17])
def test_convolutional_any_width_without_image_shape(width):
    X = np.random.default_rng(0).normal(size=(20, width))
    conv = fit_quietly(
        ConvolutionalAutoencoder(n_components=3, max_iter=2, random_state=0, device="cpu"), X
    )
    assert conv.inverse_transform(conv.transform(X)).shape == (20, width)


@pytest.mark.parametrize("width, side", [(16, 4), (64, 8), (784, 28)])
def test_convolutional_warns_when_a_square_width_is_taken_as_1d(width, side):
    X = np.random.default_rng(0).random((6, width))
    small = dict(n_components=2, channels=(2,), max_iter=1, random_state=0, device="cpu")
    with pytest.warns(UserWarning, match=rf"pass image_shape=\({side}, {side}\)"):
        conv = fit_quietly(ConvolutionalAutoencoder(**small), X)
    assert conv.image_shape_ == (1, width)  # warned, not guessed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per fit from scratch, and never with a shape
        warnings.filterwarnings("ignore", f".*{KEPT_START}")  # 6 rows: no epoch helps
        fit_quietly(conv.set_params(warm_start=True), X)
        conv.partial_fit(X)
        fit_quietly(ConvolutionalAutoencoder(image_shape=(side, side), **small), X)
        fit_quietly(ConvolutionalAutoencoder(**small), X[:, : width - 1])


def test_convolutional_takes_numpy_integers():
    # GridSearchCV over np.arange gives np.int64: torch's Unflatten refused it
    X = np.random.default_rng(0).random((12, 16))
    params = dict(n_components=2, channels=(2,), max_iter=1, random_state=0, device="cpu")
    fitted = {}
    for kernel_size in (3, np.int64(3)):
        conv = ConvolutionalAutoencoder(image_shape=(4, 4), kernel_size=kernel_size, **params)
        fitted[type(kernel_size)] = fit_quietly(conv, X).transform(X)
    np.testing.assert_array_equal(*fitted.values())


def test_convolutional_beats_pca_on_held_out_digits(digits):
    from sklearn.decomposition import PCA

    X_train, X_test, _, _ = digits
    pca_error = reconstruction_error(PCA(n_components=8).fit(X_train), X_test)
    conv = fit_quietly(
        ConvolutionalAutoencoder(
            n_components=8,
            image_shape=(8, 8),
            # 30 epochs: 0.60-0.62 of PCA's error, seeds 0-2 (60: 0.57-0.61)
            max_iter=30,
            batch_size=64,
            random_state=0,
            device="cpu",
        ),
        X_train,
    )
    assert reconstruction_error(conv, X_test) < pca_error


@pytest.mark.parametrize(
    "Estimator", [Autoencoder, DenoisingAutoencoder, SparseAutoencoder, ContractiveAutoencoder]
)
def test_greedy_pretraining_runs_both_phases_and_changes_initial_weights(
    Estimator, digits, monkeypatch
):
    X_train, _, _, _ = digits
    starts, ends = [], []
    original_train = _engine.train

    def recording_train(module, *args, **kwargs):
        starts.append({k: v.detach().clone() for k, v in module.state_dict().items()})
        history = original_train(module, *args, **kwargs)
        ends.append({k: v.detach().clone() for k, v in module.state_dict().items()})
        return history

    monkeypatch.setattr(_engine, "train", recording_train)
    est = fit_quietly(
        Estimator(
            n_components=4,
            hidden_layer_sizes=(32, 16),
            pretraining="greedy",
            max_iter=4,
            random_state=0,
            device="cpu",
        ),
        X_train,
    )
    curves = est.pretraining_loss_curves_
    assert len(curves) == 3 and all(len(c) == 4 for c in curves)
    assert len(starts) == 4  # three layers, then the whole network
    assert est.loss_curve_[:12] == [loss for curve in curves for loss in curve]
    assert len(est.loss_curve_) == est.n_iter_ == 16
    # each layer's pretraining lowers its own loss
    assert all(c[-1] < c[0] for c in curves)
    # fine-tuning starts from the pretrained weights: the first layer as its
    # pretraining left it (the first pair shares that layer's parameters), which
    # differs from its initialisation
    first_encoder = starts[0]["encoder.0.weight"]
    pretrained = ends[0]["encoder.0.weight"]
    fine_tune_start = starts[-1]["encoder.0.weight"]
    assert not torch.equal(first_encoder, pretrained)
    assert torch.equal(fine_tune_start, pretrained)


def test_greedy_pretraining_is_deterministic_and_off_by_default(digits):
    X_train, X_test, _, _ = digits
    params = dict(
        n_components=4, hidden_layer_sizes=(16,), max_iter=3, random_state=0, device="cpu"
    )
    a = fit_quietly(Autoencoder(pretraining="greedy", **params), X_train)
    b = fit_quietly(Autoencoder(pretraining="greedy", **params), X_train)
    np.testing.assert_array_equal(a.transform(X_test), b.transform(X_test))
    plain = fit_quietly(Autoencoder(**params), X_train)
    assert plain.pretraining_loss_curves_ == []
    assert len(plain.loss_curve_) == 3


@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
def test_inner_pretraining_pairs_are_trained_on_what_they_decode(activation):
    """An inner pair's pretraining loss is the squared error of its decode,
    the hidden activation applied (as the network uses that layer), not of
    the linear layer's output before it."""
    X = torch.rand(64, 8, generator=torch.Generator().manual_seed(0))
    est = Autoencoder(n_components=3, hidden_layer_sizes=(6,), activation=activation, init="random")
    module = est._seeded_module(8, seed=0)
    outer, inner = module.layer_pairs()
    with torch.no_grad():
        h = outer.encode(X)
        batch_loss = est._training_loss(
            inner, torch.Generator(), reconstruction=squared_error, penalize=False
        )
        expected = (inner.decode(inner.encode(h)) - h).square().sum(1).mean()
        torch.testing.assert_close(batch_loss(h), expected, rtol=1e-6, atol=0)


def test_stacked_denoising_corrupts_every_layer(digits, monkeypatch):
    """Every batch of each pretraining phase, and of the fine-tuning, is
    corrupted. (Loss curves compared with a plain autoencoder's cannot show it:
    once the first layer differs, every later layer's input differs too.)"""
    X_train, _, _, _ = digits
    params = dict(
        n_components=4,
        hidden_layer_sizes=(16,),
        max_iter=3,
        batch_size=200,
        early_stopping=False,
        pretraining="greedy",
        random_state=0,
        device="cpu",
    )
    corrupted = []  # per call of the engine: the batches whose input noise changed
    train, masking = _engine.train, NOISES["masking"]

    def counting_train(*args, **kwargs):
        corrupted.append(0)
        return train(*args, **kwargs)

    def counting_masking(x, level, generator):
        out = masking(x, level, generator)
        corrupted[-1] += not torch.equal(out, x)
        return out

    monkeypatch.setattr(_engine, "train", counting_train)
    monkeypatch.setitem(NOISES, "masking", counting_masking)
    fit_quietly(DenoisingAutoencoder(noise="masking", noise_level=0.3, **params), X_train)
    batches = params["max_iter"] * math.ceil(len(X_train) / 200)
    assert corrupted == [batches] * 3  # two pretrained layers, then the whole network


@pytest.mark.parametrize(
    "Estimator", [Autoencoder, DenoisingAutoencoder, SparseAutoencoder, ContractiveAutoencoder]
)
def test_tied_weights_share_storage(Estimator, digits):
    X_train, _, _, _ = digits
    # the networks alone: the PCA start's linear path (tied too) is
    # tests/test_pca_start.py's
    params = dict(
        n_components=4,
        hidden_layer_sizes=(16,),
        max_iter=2,
        random_state=0,
        device="cpu",
        init="random",
    )
    tied = fit_quietly(Estimator(tied_weights=True, **params), X_train)
    untied = fit_quietly(Estimator(**params), X_train)

    def shared(module):
        encoders = [m for m in module.encoder if isinstance(m, torch.nn.Linear)]
        decoders = [m for m in module.decoder if hasattr(m, "weight")]
        return all(
            d.weight is e.weight and d.weight.data_ptr() == e.weight.data_ptr()
            for e, d in zip(encoders, reversed(decoders), strict=True)
        )

    assert shared(tied.module_)
    assert not shared(untied.module_)
    n_tied = sum(p.numel() for p in tied.module_.parameters())
    n_untied = sum(p.numel() for p in untied.module_.parameters())
    assert n_untied - n_tied == 64 * 16 + 16 * 4  # the decoder weights
