"""Behaviour of the estimators, with stated tolerances and references."""

import copy
import re
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from _family import ESTIMATORS
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skae._variational
from skae import Autoencoder, DenoisingAutoencoder, VariationalAutoencoder
from skae.nn import ACTIVATIONS

TINY = dict(hidden_layer_sizes=(16,), max_iter=5, device="cpu", random_state=0)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data / 16.0, data.target


def reconstruction_error(est, X):
    """Squared error per sample summed over features, averaged."""
    return float(((est.inverse_transform(est.transform(X)) - X) ** 2).sum(axis=1).mean())


def test_autoencoder_linear_matches_pca(digits):
    # a linear autoencoder trained from a random start spans PCA's subspace,
    # so its reconstruction error converges to PCA's (Baldi & Hornik, 1989):
    # 1.012-1.018x after 100 epochs (seeds 0-3). (From the default PCA start
    # it has nothing to learn and keeps PCA's error.)
    X, _ = digits
    pca_error = reconstruction_error(PCA(n_components=8).fit(X), X)
    ae = Autoencoder(
        n_components=8,
        hidden_layer_sizes=(),
        activation="identity",
        init="random",
        learning_rate=1e-2,
        max_iter=100,
        tol=0.0,
        n_iter_no_change=100,
        random_state=0,
        device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X)
    ae_error = reconstruction_error(ae, X)
    assert ae_error == pytest.approx(pca_error, rel=0.03)
    assert ae_error >= pca_error * (1 - 1e-4)  # PCA is optimal among linear maps


def test_autoencoder_nonlinear_beats_pca_on_held_out_digits(digits):
    X, _ = digits
    X_train, X_test = train_test_split(X, random_state=0)
    pca_error = reconstruction_error(PCA(n_components=4).fit(X_train), X_test)
    ae = Autoencoder(n_components=4, hidden_layer_sizes=(128,), max_iter=150, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X_train)
    assert reconstruction_error(ae, X_test) < 0.9 * pca_error


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_score_is_mean_of_score_samples(Estimator, digits):
    X, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # 10 epochs from the PCA start: noise scores -12.6 to -13.7 against
        # the digits' -2.4 to -2.9 (VAE: -101 against 5.2), seed 0; so at 30
        est = Estimator(**{**TINY, "max_iter": 10}).fit(X)
    scores = est.score_samples(X)
    assert scores.shape == (X.shape[0],)
    assert est.score(X) == pytest.approx(scores.mean())
    # rows of uniform noise are outliers: they score lower than the digits
    noise = np.random.default_rng(0).uniform(size=(200, X.shape[1]))
    assert est.score_samples(noise).mean() < scores.mean()


def test_autoencoder_score_is_negative_reconstruction_error(digits):
    X, _ = digits
    ae = Autoencoder(**TINY).fit(X)
    np.testing.assert_allclose(-ae.score(X), reconstruction_error(ae, X), rtol=1e-10)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_set_output_pandas(Estimator, digits):
    X, _ = digits
    index = pd.Index([f"row{i}" for i in range(X.shape[0])][::-1], name="sample")
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(X.shape[1])], index=index)
    est = Estimator(n_components=3, **TINY).set_output(transform="pandas")
    out = est.fit_transform(frame)
    prefix = Estimator.__name__.lower()
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [f"{prefix}{i}" for i in range(3)]
    assert list(out.columns) == list(est.get_feature_names_out())
    assert out.index.equals(frame.index)
    assert list(est.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(
        out.to_numpy(), est.set_output(transform="default").transform(frame)
    )


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_set_output_polars(Estimator, digits):
    X, _ = digits
    frame = pl.DataFrame(X, schema=[f"pixel{i}" for i in range(X.shape[1])])
    est = Estimator(n_components=3, **TINY).set_output(transform="polars")
    out = est.fit_transform(frame)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == list(est.get_feature_names_out())
    assert out.columns == [f"{Estimator.__name__.lower()}{i}" for i in range(3)]
    assert out.height == X.shape[0]
    assert list(est.feature_names_in_) == frame.columns
    np.testing.assert_array_equal(
        out.to_numpy(), est.set_output(transform="default").transform(frame)
    )


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_fitted_on_frame_warns_on_numpy(Estimator, digits):
    X, _ = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(X.shape[1])])
    est = Estimator(n_components=3, **TINY).fit(frame)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        codes = est.transform(X)
    np.testing.assert_array_equal(codes, est.transform(frame))


def test_set_output_in_a_pipeline_keeps_the_frame(digits):
    X, _ = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(X.shape[1])])
    pipe = make_pipeline(StandardScaler(), Autoencoder(n_components=4, **TINY))
    out = pipe.set_output(transform="pandas").fit_transform(frame)
    assert list(out.columns) == [f"autoencoder{i}" for i in range(4)]
    assert list(pipe.get_feature_names_out()) == list(out.columns)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_partial_fit_over_chunks(Estimator, digits):
    X, _ = digits
    est = Estimator(hidden_layer_sizes=(32,), device="cpu", random_state=0)
    chunks = np.array_split(X, 6)
    first_pass_losses = []
    for chunk in chunks:
        est.partial_fit(chunk)
        first_pass_losses.append(est.loss_curve_[-1])
    for _ in range(4):
        for chunk in chunks:
            est.partial_fit(chunk)
    assert est.n_iter_ == 5 * len(chunks)
    assert len(est.loss_curve_) == est.n_iter_
    # the same chunk's loss, first pass against last (chunks differ by more
    # than the later passes gain on some models)
    assert est.loss_curve_[-len(chunks)] < first_pass_losses[0]
    assert est.transform(X).shape == (X.shape[0], est.n_components)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_warm_start_continues_training(Estimator, digits):
    X, _ = digits
    est = Estimator(warm_start=True, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
        weights = [p.detach().clone() for p in est.module_.parameters()]
        module = est.module_
        est.fit(X)
    # the call trained a copy (a failure would have left module_ as it was)
    assert all(torch.equal(w, p) for w, p in zip(weights, module.parameters(), strict=True))
    assert est.n_iter_ == 2 * TINY["max_iter"]
    assert len(est.loss_curve_) == est.n_iter_
    assert any(
        not torch.equal(w, p) for w, p in zip(weights, est.module_.parameters(), strict=True)
    )


def test_warm_start_with_an_int_seed_holds_out_the_same_rows(digits):
    # as MLPRegressor: each warm fit drew a new split, so rows trained on
    # became "held out", and best_validation_score_ mixed splits
    X, _ = digits
    est = Autoencoder(warm_start=True, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X[:400])
        kept = est.best_validation_score_
        est.fit(X[:400])
        assert est.init_validation_score_ == kept  # the same weights on the same rows
        assert est.best_validation_score_ == max(est.validation_scores_ + [kept])
        unseeded = Autoencoder(warm_start=True, **{**TINY, "random_state": None}).fit(X[:400])
        kept = unseeded.best_validation_score_
        unseeded.fit(X[:400])
    assert unseeded.init_validation_score_ != kept  # a new split: None draws afresh


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_refit_without_warm_start_starts_afresh(Estimator, digits):
    # every row: on fewer, five of the six keep their PCA start, and a refit
    # that wrongly continued from module_ would give the same bits
    X, _ = digits
    est = Estimator(**TINY).fit(X)
    assert est.best_epoch_ > 0  # trained past the start: equal bits mean a fresh start
    first = est.transform(X)
    est.fit(X)
    assert est.n_iter_ == TINY["max_iter"]
    np.testing.assert_array_equal(est.transform(X), first)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_early_stopping_attributes(Estimator, digits):
    X, _ = digits
    est = Estimator(
        early_stopping=True,
        n_iter_no_change=2,
        tol=0.05,
        hidden_layer_sizes=(16,),
        max_iter=100,
        random_state=0,
        device="cpu",
    ).fit(X)
    assert est.best_loss_ is None
    assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_)
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.n_iter_ < 100


def test_validation_scores_keep_one_entry_per_end_to_end_epoch(digits):
    # an epoch trained without a validation score (partial_fit, or a warm
    # start with early stopping off) holds NaN, so entry i is always epoch i
    # after the pretraining epochs
    X, _ = digits
    params = dict(TINY, hidden_layer_sizes=(16, 8), pretraining="greedy", max_iter=3)
    est = Autoencoder(early_stopping=False, warm_start=True, **params)
    with pytest.warns(ConvergenceWarning):
        est.fit(X)
    assert est.validation_scores_ is None  # nothing scored yet
    pretrained = sum(map(len, est.pretraining_loss_curves_))
    est.set_params(early_stopping=True).fit(X)  # 3 unscored epochs, then 3 scored
    est.partial_fit(X)
    est.set_params(early_stopping=False)
    with pytest.warns(ConvergenceWarning):
        est.fit(X)
    est.set_params(early_stopping=True).fit(X)
    scored = ~np.isnan(est.validation_scores_)
    assert len(est.validation_scores_) == est.n_iter_ - pretrained == 3 + 3 + 1 + 3 + 3
    assert_array_equal(np.flatnonzero(scored), [3, 4, 5, 10, 11, 12])
    assert est.best_validation_score_ == max(np.asarray(est.validation_scores_)[scored])


@pytest.mark.parametrize(
    "call",
    [
        lambda est, X: est.fit_transform(X),
        lambda est, X: make_pipeline(StandardScaler(), est).fit(X),
        lambda est, X: GridSearchCV(est, {"n_components": [2]}, cv=2).fit(X),
    ],
    ids=["fit_transform", "pipeline", "grid_search"],
)
def test_warnings_name_the_callers_line_through_scikit_learn(call, digits):
    """However fit is reached, a warning from deep inside it names the
    user's line, not one of scikit-learn's (a fixed stacklevel did)."""
    X, _ = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations") as record:
        call(Autoencoder(early_stopping=False, **TINY), X[:200])
    said = [w.filename for w in record if issubclass(w.category, ConvergenceWarning)]
    assert said and set(said) == {__file__}


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_without_early_stopping_attributes(Estimator, digits):
    X, _ = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations") as record:
        est = Estimator(early_stopping=False, **TINY).fit(X)
    assert record[0].filename == __file__  # points at the caller's fit
    assert est.validation_scores_ is None
    assert est.best_validation_score_ is None
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.n_iter_ == TINY["max_iter"]
    assert est.device_ == torch.device("cpu")
    assert est.n_features_in_ == X.shape[1]
    assert est.batch_size_ == 64  # "auto": min(64, n_samples)


def test_autoencoder_stops_when_loss_stops_improving(digits):
    X, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ae = Autoencoder(
            tol=10.0,
            n_iter_no_change=3,
            max_iter=50,
            **{k: v for k, v in TINY.items() if k != "max_iter"},
        ).fit(X)
    # a huge (relative) tol: no epoch improves on the first trained one (the
    # PCA start, scored first, counts for the best weights, not for the
    # patience), so the fit stops after 1 + 3 + 1 epochs
    assert ae.n_iter_ == 5


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_overcomplete_code(Estimator, digits):
    X, _ = digits
    est = Estimator(n_components=100, **TINY).fit(X[:, :10])
    assert est.transform(X[:, :10]).shape == (X.shape[0], 100)
    assert est.inverse_transform(est.transform(X[:, :10])).shape == (X.shape[0], 10)


def test_autoencoder_empty_hidden_layers_is_one_linear_map_each_way(digits):
    X, _ = digits
    ae = Autoencoder(
        hidden_layer_sizes=(),
        n_components=5,
        **{k: v for k, v in TINY.items() if k != "hidden_layer_sizes"},
    ).fit(X)
    encoder_linears = [m for m in ae.module_.encoder if isinstance(m, torch.nn.Linear)]
    decoder_linears = [m for m in ae.module_.decoder if isinstance(m, torch.nn.Linear)]
    assert [lin.weight.shape for lin in encoder_linears] == [(5, 64)]
    assert [lin.weight.shape for lin in decoder_linears] == [(64, 5)]
    assert len(ae.module_.encoder) == len(ae.module_.decoder) == 1


def test_autoencoder_module_mirrors_hidden_layers(digits):
    X, _ = digits
    ae = Autoencoder(
        hidden_layer_sizes=(32, 16), n_components=4, max_iter=1, device="cpu", random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X)
    module = ae.module_
    widths = [
        m.out_features
        for part in (module.encoder, module.decoder)
        for m in part
        if isinstance(m, torch.nn.Linear)
    ]
    assert widths == [32, 16, 4, 16, 32, 64]
    # beside them, the linear path of the PCA start
    assert (module.linear_encoder.out_features, module.linear_decoder.out_features) == (4, 64)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_autoencoder_every_activation_trains(activation, digits):
    X, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae = Autoencoder(activation=activation, **TINY).fit(X)
    assert np.all(np.isfinite(ae.transform(X)))
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]


def test_autoencoder_bce_loss_reconstructs_in_unit_interval(digits):
    X, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae = Autoencoder(loss="bce", **TINY).fit(X)
    X_hat = ae.inverse_transform(ae.transform(X))
    assert X_hat.min() >= 0.0 and X_hat.max() <= 1.0
    assert isinstance(ae.module_.output_activation, torch.nn.Sigmoid)


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_and_pepper"])
def test_denoising_transform_does_not_corrupt_and_noise_changes_training(noise, digits):
    X, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dae = DenoisingAutoencoder(noise=noise, noise_level=0.3, **TINY).fit(X)
        plain = Autoencoder(**TINY).fit(X)
    # transform encodes the clean input: the encoder applied to X itself (in
    # float64, as transform runs on float64 input)
    encoder = copy.deepcopy(dae.module_).double()
    with torch.no_grad():
        clean_codes = encoder.encode(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(dae.transform(X), clean_codes, rtol=1e-12, atol=1e-12)
    # same seed, same batches: only the corruption differs
    assert all(d != p for d, p in zip(dae.loss_curve_, plain.loss_curve_, strict=True))


def test_denoising_zero_noise_equals_plain_autoencoder(digits):
    X, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dae = DenoisingAutoencoder(noise="gaussian", noise_level=0.0, **TINY).fit(X)
        plain = Autoencoder(**TINY).fit(X)
    np.testing.assert_array_equal(dae.loss_curve_, plain.loss_curve_)


def test_denoising_reconstructs_masked_digits_better_than_plain(digits):
    X, _ = digits
    X_train, X_test = train_test_split(X, random_state=0)
    corrupted = X_test * (np.random.default_rng(0).uniform(size=X_test.shape) > 0.3)
    # the networks alone (init="random"): with the PCA start both would begin
    # as the same projection, which already removes much of the masking
    params = dict(
        n_components=16,
        hidden_layer_sizes=(128,),
        max_iter=100,
        random_state=0,
        device="cpu",
        init="random",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dae = DenoisingAutoencoder(noise="masking", noise_level=0.3, **params).fit(X_train)
        plain = Autoencoder(**params).fit(X_train)

    def denoising_error(est):
        return ((est.inverse_transform(est.transform(corrupted)) - X_test) ** 2).sum(1).mean()

    assert denoising_error(dae) < 0.8 * denoising_error(plain)


@pytest.mark.parametrize("loss", ["gaussian", "bernoulli"])
def test_variational_codes_carry_information(loss, digits):
    # a collapsed posterior gives codes near 0 for every digit, and a classifier
    # on them near chance (0.1); informative codes classify digits well
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # 20 epochs: accuracy 0.90-0.91 with all 8 dimensions active, seeds
        # 0-2, both losses (at 60: 0.90-0.93)
        vae = VariationalAutoencoder(
            n_components=8, loss=loss, max_iter=20, random_state=0, device="cpu"
        ).fit(X_train)
    clf = LogisticRegression(max_iter=1000).fit(vae.transform(X_train), y_train)
    assert clf.score(vae.transform(X_test), y_test) > 0.8
    # most latent dimensions are active: posterior means vary across the data
    assert (vae.transform(X_train).std(axis=0) > 0.1).sum() >= 4


def test_a_variational_posterior_collapsed_to_the_prior_warns():
    # beta=10 from random weights: every unit's KL fell to 1e-4 nats (codes
    # the same for every row) and only the max_iter warning was said
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(200, 6))
    params = dict(hidden_layer_sizes=(16,), early_stopping=False, max_iter=150, device="cpu")
    with pytest.warns(ConvergenceWarning, match="posterior collapsed to the prior"):
        vae = VariationalAutoencoder(beta=10, init="random", random_state=0, **params).fit(X)
    assert vae.transform(X).std(axis=0).max() < 0.05
    # from the PCA start, early stopping keeps PCA's codes over the collapsing
    # epochs (without it the fit trains on to the same collapse, and says so)
    params.pop("early_stopping")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        vae = VariationalAutoencoder(beta=10, random_state=0, **params).fit(X)
    assert not [w for w in record if "collapsed" in str(w.message)]
    assert vae.transform(X).std(axis=0).min() > 0.5


def test_variational_unit_variance_would_collapse_learned_variance_does_not(digits):
    # the reason for the default: the learned noise variance is far below 1 on
    # data in [0, 1], so reconstruction is weighed enough to keep the code
    X, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = VariationalAutoencoder(n_components=8, max_iter=30, random_state=0, device="cpu").fit(
            X
        )
    variance = float(vae.module_.noise_variance)
    expected = ((vae.inverse_transform(vae.transform(X)) - X) ** 2).mean()
    assert 0 < variance < 0.1
    assert variance == pytest.approx(expected, rel=0.5)


def test_variational_sample_shape_and_seed(digits):
    X, _ = digits
    vae = VariationalAutoencoder(**TINY).fit(X)
    a = vae.sample(7, random_state=1)
    assert a.shape == (7, X.shape[1]) and a.dtype == np.float64
    np.testing.assert_array_equal(a, vae.sample(7, random_state=1))
    assert not np.array_equal(a, vae.sample(7, random_state=2))


@pytest.mark.parametrize("random_state", ["0", -1, 2**32, 1.5])
def test_variational_draws_refuse_a_bad_random_state_by_name(digits, random_state):
    X, _ = digits
    vae = VariationalAutoencoder(**TINY).fit(X)
    with pytest.raises(ValueError, match="random_state must be"):
        vae.sample(2, random_state=random_state)
    with pytest.raises(ValueError, match="random_state must be"):
        vae.log_likelihood(X[:2], random_state=random_state)
    assert vae.sample(2, random_state=0).shape == (2, X.shape[1])  # still usable


def test_variational_score_samples_is_elbo(digits):
    X, _ = digits
    vae = VariationalAutoencoder(loss="bernoulli", **TINY).fit(X)
    x = torch.as_tensor(X[:5])
    module = vae.module_.double()
    mu, log_var = module.encode_distribution(x)
    bce = torch.nn.functional.binary_cross_entropy(
        torch.sigmoid(module.decode_layers(mu)), x, reduction="none"
    ).sum(1)
    kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(1)
    np.testing.assert_allclose(vae.score_samples(X[:5]), -(bce + kl).detach().numpy(), rtol=1e-6)


def linear_gaussian_log_density(vae, X):
    """Exact log p(x) of a VAE whose decoder is affine: z ~ N(0, I) and
    x = A z + c + N(0, variance * I), so x ~ N(c, A A^T + variance * I)."""
    module = copy.deepcopy(vae.module_).double()
    k = vae.n_components
    with torch.no_grad():
        c = module.output(torch.zeros(1, k, dtype=torch.float64))[0].numpy()
        A = (module.output(torch.eye(k, dtype=torch.float64)).numpy() - c).T
        variance = float(module.noise_variance)
    cov = A @ A.T + variance * np.eye(X.shape[1])
    diff = X - c
    _, logdet = np.linalg.slogdet(cov)
    mahalanobis = np.einsum("ij,ij->i", diff @ np.linalg.inv(cov), diff)
    return -0.5 * (mahalanobis + logdet + X.shape[1] * np.log(2 * np.pi))


def test_variational_log_likelihood_tends_to_exact_density_from_below(monkeypatch):
    # with an affine decoder the marginal likelihood has a closed form; the
    # importance-weighted estimate is a lower bound on it in expectation (a
    # single estimate may land a hair above), the gap closing as draws are
    # added; one draw is the ELBO's level
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(400, 2))
    X = Z @ rng.normal(size=(2, 5)) + 0.3 * rng.normal(size=(400, 5)) + 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = VariationalAutoencoder(
            n_components=2, hidden_layer_sizes=(), max_iter=40, random_state=0, device="cpu"
        ).fit(X)
    rows = X[:50]
    exact = linear_gaussian_log_density(vae, rows)
    one = vae.log_likelihood(rows, n_importance_samples=1, random_state=0)
    many = vae.log_likelihood(rows, n_importance_samples=4000, random_state=0)
    assert many.dtype == np.float64 and many.shape == (50,)
    gap_one, gap_many = np.mean(exact - one), np.mean(exact - many)
    assert gap_one > 0.05  # a diagonal posterior misses the exact one
    assert abs(gap_many) < 0.02 and abs(gap_many) < gap_one / 5
    np.testing.assert_allclose(many, exact, atol=0.1)
    # the single draw averages to the reparameterised ELBO, whose reconstruction
    # term at z = mu (score_samples) is a little higher
    assert np.mean(one) < np.mean(vae.score_samples(rows))
    # draws decoded a few at a time (passes combined by logaddexp) estimate the same
    monkeypatch.setattr(skae._variational, "IMPORTANCE_BLOCK_VALUES", 7 * len(rows) * X.shape[1])
    chunked = vae.log_likelihood(rows, n_importance_samples=4000, random_state=1)
    assert abs(np.mean(exact - chunked)) < 0.02
    np.testing.assert_allclose(chunked, exact, atol=0.1)


def test_variational_bernoulli_log_likelihood_matches_quadrature():
    # one latent dimension: log p(x) = log of the integral of p(x|z) N(z; 0, 1)
    # over z, computed on a fine grid, for binary rows
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 1))
    X = (rng.uniform(size=(300, 6)) < 1 / (1 + np.exp(-3 * z * np.linspace(-1, 1, 6)))).astype(
        float
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = VariationalAutoencoder(
            n_components=1,
            hidden_layer_sizes=(8,),
            loss="bernoulli",
            max_iter=40,
            random_state=0,
            device="cpu",
        ).fit(X)
    rows = X[:40]
    grid = np.linspace(-8, 8, 4001)
    module = copy.deepcopy(vae.module_).double()
    with torch.no_grad():
        logits = module.output(torch.as_tensor(grid[:, None]))  # (grid, features)
        x = torch.as_tensor(rows)[:, None, :]  # (rows, 1, features)
        log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits.expand(len(rows), -1, -1), x.expand(-1, len(grid), -1), reduction="none"
        ).sum(2)
        log_prior = torch.as_tensor(-0.5 * grid**2 - 0.5 * np.log(2 * np.pi))
        exact = (torch.logsumexp(log_px_z + log_prior, dim=1) + np.log(grid[1] - grid[0])).numpy()
    estimate = vae.log_likelihood(rows, n_importance_samples=4000, random_state=0)
    assert np.all(exact < 0)  # log-probabilities of binary rows
    assert abs(np.mean(exact - estimate)) < 0.02
    np.testing.assert_allclose(estimate, exact, atol=0.1)


def test_variational_log_likelihood_is_seeded(digits):
    X, _ = digits
    vae = VariationalAutoencoder(loss="bernoulli", **TINY).fit(X)
    a = vae.log_likelihood(X[:30], n_importance_samples=20, random_state=1)
    np.testing.assert_array_equal(
        a, vae.log_likelihood(X[:30], n_importance_samples=20, random_state=1)
    )
    assert not np.array_equal(
        a, vae.log_likelihood(X[:30], n_importance_samples=20, random_state=2)
    )


def interrupt_in_epoch_4(est, monkeypatch):
    """Make ``est``'s training raise KeyboardInterrupt (Ctrl-C) in the 4th
    epoch of 9 batches (digits, ``batch_size=200``)."""
    original = est._training_loss
    calls = {"n": 0}

    def interrupting_loss(module, generator, **kwargs):
        batch_loss = original(module, generator, **kwargs)

        def wrapped(x):
            calls["n"] += 1
            if calls["n"] > 3 * 9:
                raise KeyboardInterrupt
            return batch_loss(x)

        return wrapped

    monkeypatch.setattr(est, "_training_loss", interrupting_loss)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_keyboard_interrupt_keeps_completed_epochs(Estimator, digits, monkeypatch):
    X, _ = digits
    est = Estimator(**{**TINY, "max_iter": 10, "batch_size": 200, "early_stopping": False})
    interrupt_in_epoch_4(est, monkeypatch)
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(X)
    assert est.n_iter_ == 3 == len(est.loss_curve_)
    assert np.all(np.isfinite(est.transform(X)))


@pytest.mark.parametrize("early_stopping", [True, False])
def test_keyboard_interrupt_in_greedy_pretraining_ends_the_fit(early_stopping, digits, monkeypatch):
    # the layer loop stopped, but fine-tuning then ran all max_iter epochs
    # and warned ConvergenceWarning
    X, _ = digits
    est = Autoencoder(**{**TINY, "hidden_layer_sizes": (16,), "max_iter": 10, "batch_size": 200})
    est.set_params(pretraining="greedy", early_stopping=early_stopping)
    interrupt_in_epoch_4(est, monkeypatch)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est.fit(X)
    assert [str(w.message) for w in record] == ["Training interrupted by user."]
    assert est.n_iter_ == 3 == len(est.loss_curve_) == len(est.pretraining_loss_curves_[0])
    assert len(est.pretraining_loss_curves_) == 1
    assert np.all(np.isfinite(est.transform(X)))
    if not early_stopping:
        assert est.best_loss_ == min(est.loss_curve_)
        return
    assert est.validation_scores_ == [] and est.best_epoch_ == 0
    assert est.best_validation_score_ == est.init_validation_score_
    assert np.isfinite(est.best_validation_score_)


def test_keyboard_interrupt_while_copying_a_best_epoch_leaves_it_out(digits, monkeypatch):
    """Ctrl-C during the copy of a new best epoch's weights: that epoch is left
    out whole (its score had been counted, and named the best, without its
    loss or its weights)."""
    from skae import _engine

    X, _ = digits
    copies, original = {"n": 0}, _engine.clone_state

    def interrupted_third_copy(module):
        copies["n"] += 1
        if copies["n"] == 3:
            raise KeyboardInterrupt
        return original(module)

    monkeypatch.setattr(_engine, "clone_state", interrupted_third_copy)
    est = Autoencoder(**{**TINY, "max_iter": 10, "init": "random", "learning_rate": 1e-2})
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(X)
    assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_) == 2
    assert est.best_epoch_ <= est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)


def test_keyboard_interrupt_between_pretrained_layers_keeps_the_done_ones(digits, monkeypatch):
    """Ctrl-C while the rows are encoded for the next layer pair: the fit ends
    with the layers done (it escaped fit, and the model stayed unfitted)."""
    X, _ = digits
    est = Autoencoder(**{**TINY, "hidden_layer_sizes": (16, 8), "early_stopping": False})
    est.set_params(pretraining="greedy", max_iter=2, init="random")  # no PCA start to score

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(est, "_map_rows", interrupted)  # its first call: the encoding
    with pytest.warns(UserWarning, match="interrupted"):
        try:
            est.fit(X)
        except KeyboardInterrupt:
            pytest.fail("Ctrl-C escaped fit")
    assert len(est.pretraining_loss_curves_) == 1 and est.n_iter_ == 2
    monkeypatch.undo()
    assert np.all(np.isfinite(est.transform(X)))


def test_keyboard_interrupt_while_the_start_is_scored_keeps_the_pretrained_layers(
    digits, monkeypatch
):
    """Ctrl-C while fine-tuning's start is scored, after greedy pretraining:
    the fit ends with the pretrained network (it escaped fit, unfitted)."""
    X, _ = digits
    est = Autoencoder(**{**TINY, "hidden_layer_sizes": (16, 8), "max_iter": 2})
    est.set_params(pretraining="greedy")
    original = est._validation_score

    def interrupting(module, X_val):
        score = original(module, X_val)

        def first_call_interrupted():
            monkeypatch.setattr(est, "_validation_score", original)
            raise KeyboardInterrupt

        return None if score is None else first_call_interrupted

    monkeypatch.setattr(est, "_validation_score", interrupting)
    with pytest.warns(UserWarning, match="interrupted"):
        try:
            est.fit(X)
        except KeyboardInterrupt:
            pytest.fail("Ctrl-C escaped fit")
    assert len(est.pretraining_loss_curves_) == 3 and est.n_iter_ == 6  # 64-16-8-2
    assert np.all(np.isfinite(est.transform(X)))


def test_after_a_warm_start_the_best_score_is_the_kept_weights(digits):
    """best_validation_score_ is this call's best (its start, the model as it
    was, scored among its epochs): the maximum over calls had named the
    score of weights that partial_fit had since moved."""
    X, _ = digits
    est = Autoencoder(**{**TINY, "max_iter": 20})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
        first = est.best_validation_score_
        est.set_params(learning_rate=0.5)  # steps large enough to cost on any CPU
        est.partial_fit(X)
        est.partial_fit(X)
        # unvalidated calls: no best score of these weights (the fit's had
        # stayed, stale), and best_loss_ is theirs
        assert est.best_validation_score_ is None and est.best_epoch_ is None
        assert est.best_loss_ == min(est.loss_curve_[-2:])
        # steps too small to win it back (at "auto", on a CPU without AVX2,
        # two epochs had: the order held on this one's rounding only)
        est.set_params(warm_start=True, max_iter=2, learning_rate=1e-6).fit(X)
    this_call = [est.init_validation_score_, *est.validation_scores_[-2:]]
    assert est.best_validation_score_ == max(this_call)
    assert est.best_validation_score_ < first  # partial_fit's large steps cost


def test_estimator_device_auto_resolves(digits):
    X, _ = digits
    ae = Autoencoder(hidden_layer_sizes=(8,), max_iter=1, device="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert ae.device_.type == expected
    assert next(ae.module_.parameters()).device.type == expected


def test_estimator_fit_leaves_parameters_as_given(digits):
    # parameters are stored as given (the very objects) and fit never writes
    # them back: what it resolves goes into fitted attributes (batch_size_)
    X, _ = digits
    sizes, device = [4, 3], torch.device("cpu")
    est = DenoisingAutoencoder(
        hidden_layer_sizes=sizes, batch_size=64, device=device, max_iter=1, random_state=0
    )
    params = est.get_params()
    assert params["hidden_layer_sizes"] is sizes and params["device"] is device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match="clipped"):
            est.fit(X[:50])
    assert est.batch_size_ == 45  # the 50 rows less the 5 that early stopping holds out
    after = est.get_params()
    assert after == params
    assert after["hidden_layer_sizes"] is sizes and sizes == [4, 3]
    assert after["device"] is device


def test_estimator_pipeline_with_scaler_replaces_pca(digits):
    # the README's promise: take PCA out of a Pipeline, put an autoencoder in
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(
            StandardScaler(),
            Autoencoder(n_components=16, hidden_layer_sizes=(64,), max_iter=30, random_state=0),
            LogisticRegression(max_iter=1000),
        ).fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.85


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_html_repr_shows_only_the_parameter_set(Estimator):
    # the repr marks a parameter as set when it differs from the __init__
    # default: only n_components=3 does, so __init__ stores every argument unchanged
    html = Estimator(n_components=3)._repr_html_()
    assert f"<pre>{Estimator.__name__}(n_components=3)</pre>" in html
    rows = re.findall(
        r'<tr class="(user-set|default)">.*?<td class="param">(\w+)</td>\s*'
        r'<td class="value">([^<]*)</td>',
        html,
        flags=re.DOTALL,
    )
    assert {name for _, name, _ in rows} == set(Estimator().get_params())
    assert [(name, value) for kind, name, value in rows if kind == "user-set"] == [
        ("n_components", "3")
    ]
