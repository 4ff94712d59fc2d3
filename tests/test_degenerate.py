"""Fits that end degenerate say so (issue 23, item 2): a fit without
held-out rows that ends no better than its PCA start, a hidden layer whose
ReLU units all died."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from skae import Autoencoder, DenoisingAutoencoder

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

WORSE_THAN_START = "than its PCA start"


@pytest.fixture(scope="module")
def digits():
    return load_digits().data


def _said(est, X):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est.fit(X)
    return [str(w.message) for w in record]


def _error(est, X):
    return ((est.inverse_transform(est.transform(X)) - X) ** 2).sum(1).mean()


def test_a_fit_without_held_out_rows_worse_than_its_pca_start_says_so(digits):
    # masking 99 % of the inputs, training pulls the clean reconstruction far
    # from PCA's; without early stopping nothing had compared the two
    params = dict(n_components=8, noise="masking", noise_level=0.99, max_iter=30)
    est = DenoisingAutoencoder(early_stopping=False, random_state=0, device="cpu", **params)
    said = [m for m in _said(est, digits) if WORSE_THAN_START in m]
    assert len(said) == 1 and "worse than its PCA start did" in said[0]
    assert "early_stopping=True" in said[0]
    pca = PCA(n_components=8).fit(digits)
    assert _error(est, digits) > 1.5 * _error(pca, digits)  # what it said
    # early stopping keeps the start instead, and says that, not this
    kept = DenoisingAutoencoder(random_state=0, device="cpu", **params)
    assert not [m for m in _said(kept, digits) if WORSE_THAN_START in m]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_fit_without_held_out_rows_that_beats_its_pca_start_is_quiet(digits, seed):
    est = Autoencoder(n_components=8, early_stopping=False, max_iter=20, random_state=seed)
    assert not [m for m in _said(est, digits) if WORSE_THAN_START in m]
    assert _error(est, digits) < _error(PCA(n_components=8).fit(digits), digits)


def _hidden(est, X):
    """The encoder's first hidden layer on the rows of X."""
    with torch.no_grad():
        return est.module_.encoder[:2](est.module_.scaled(torch.as_tensor(X).float()))


def test_a_hidden_layer_whose_relu_units_all_died_says_so(digits):
    # at learning_rate=0.1 the encoder's 100 units die in the first epochs
    # (from random weights in each of 8 seeds); nothing was said
    est = Autoencoder(n_components=8, learning_rate=0.1, init="random", random_state=0)
    said = [m for m in _said(est.set_params(device="cpu"), digits) if "ReLU units" in m]
    assert len(said) == 1 and "module_.encoder.1" in said[0], said
    assert "learning_rate=0.1" in said[0]
    assert not (_hidden(est, digits) > 0).any()  # what it said, on every row


def test_a_dead_encoder_layer_names_the_encoders_path(digits):
    from skae._engine import History
    from skae._progress import warn_if_a_layer_died
    from skae._rows import as_rows

    est = Autoencoder(n_components=8, max_iter=3, random_state=0, device="cpu").fit(digits)
    with torch.no_grad():
        est.module_.encoder[0].bias.fill_(-1e6)  # below zero on every row
    rows = as_rows(torch.as_tensor(digits).float())
    # the decoder's path still acts on the code: the model is not linear
    with pytest.warns(UserWarning, match=r"encoder\.1 is zero.*the encoder's non-linear path adds"):
        warn_if_a_layer_died(est, est.module_, rows, History())


def test_units_dead_in_part_are_not_judged(digits):
    est = Autoencoder(n_components=8, random_state=0, device="cpu")
    assert not [m for m in _said(est, digits) if "ReLU units" in m]
    hidden = _hidden(est, digits)
    assert 0 < (~(hidden > 0).any(0)).sum() < hidden.shape[1]


def test_a_partial_fit_chunk_does_not_judge_the_units(digits):
    # a unit silent on one chunk may fire on the others: the chunk of zero
    # rows below leaves every unit at its negative bias, and it had warned
    # that all 100 were dead
    est = Autoencoder(n_components=8, max_iter=3, random_state=0, device="cpu").fit(digits)
    with torch.no_grad():
        est.module_.encoder[0].bias.fill_(-1.0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est.partial_fit(np.zeros((64, 64)))
    assert not [w for w in record if "ReLU units" in str(w.message)]
    assert not (_hidden(est, np.zeros((1, 64))) > 0).any() and (_hidden(est, digits) > 0).any()


def test_a_dead_convolution_layer_says_so():
    # its units are channels: zero at every position of every row
    from skae import ConvolutionalAutoencoder
    from skae._engine import History
    from skae._progress import warn_if_a_layer_died
    from skae._rows import as_rows

    images = np.random.default_rng(0).uniform(size=(60, 64))
    est = ConvolutionalAutoencoder(
        n_components=4, image_shape=(8, 8), max_iter=2, random_state=0, device="cpu"
    )
    est.fit(images)
    rows = as_rows(torch.as_tensor(images).float())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_a_layer_died(est, est.module_, rows, History())  # alive: quiet
    with torch.no_grad():
        est.module_.encoder[0].bias.fill_(-1e6)  # every channel below zero everywhere
    with pytest.warns(UserWarning, match=r"module_\.encoder\.1 is zero"):
        warn_if_a_layer_died(est, est.module_, rows, History())


@pytest.mark.parametrize(("share", "warns"), [(0.994, True), (0.98, False)])
def test_a_network_without_a_linear_path_must_beat_the_means_by_a_margin(share, warns):
    # a network reconstructing mean + a (x - mean) errs (1 - a)**2 times the
    # spread; a collapsed code ends within about 1 % of it either way, and
    # 0.6 % under it had passed as better than the means
    from skae._engine import History
    from skae._progress import NO_BETTER_THAN_MEAN, warn_if_no_better_than_mean
    from skae._rows import as_rows
    from skae.nn import Shallow

    x = torch.as_tensor(np.random.default_rng(0).normal(size=(200, 5)))
    mean, a = x.mean(0), 1 - np.sqrt(share)
    encoder, decoder = torch.nn.Linear(5, 5).double(), torch.nn.Linear(5, 5).double()
    with torch.no_grad():
        encoder.weight.copy_(a * torch.eye(5))
        encoder.bias.copy_(-a * mean)
        decoder.weight.copy_(torch.eye(5))
        decoder.bias.copy_(mean)
    module = Shallow(encoder, decoder, torch.nn.Identity(), torch.ones((), dtype=x.dtype))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warn_if_no_better_than_mean("Autoencoder", module, as_rows(x), History())
    said = [str(w.message) for w in record if NO_BETTER_THAN_MEAN in str(w.message)]
    assert len(said) == warns, said
    with torch.no_grad():
        error = (module.decode(module.encode(x)) - x).square().sum(1).mean()
    assert float(error / (x - mean).square().sum(1).mean()) == pytest.approx(share, rel=1e-9)


def test_a_kept_start_names_the_penalty_weight_to_lower(digits):
    # beta=100 keeps PCA on digits, where more epochs would not help
    from skae import VariationalAutoencoder

    est = VariationalAutoencoder(n_components=8, beta=100.0, random_state=0)
    said = [m for m in _said(est, digits) if "best_epoch_ is 0" in m]
    assert est.best_epoch_ == 0 and len(said) == 1
    assert "a lower beta (now 100)" in said[0]
    # no penalty to name (30 rows of noise, where PCA is kept on seeds 0-3)
    plain = Autoencoder(n_components=2, max_iter=3, random_state=0, device="cpu")
    noise = np.random.default_rng(0).normal(size=(30, 6))
    said = [m for m in _said(plain, noise) if "best_epoch_ is 0" in m]
    assert len(said) == 1 and "(n_iter_no_change), or other settings" in said[0]


@pytest.mark.parametrize(("learning_rate", "warns"), [(None, False), (0.1, True)])
def test_an_end_worse_than_an_exact_pca_start_by_a_negligible_share_is_quiet(learning_rate, warns):
    # rank 3 at n_components=3: PCA is exact, and training adds a few
    # millionths of the rows' spread (1.6e-6 at the default rate); it had
    # warned that the fit ended worse. At learning_rate=0.1, 2.8e-5: judged
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 10))
    est = Autoencoder(n_components=3, early_stopping=False, max_iter=20, random_state=0)
    est.set_params(device="cpu", learning_rate=learning_rate or "auto")
    said = [m for m in _said(est, X) if WORSE_THAN_START in m]
    assert len(said) == warns, said
    error = ((est.inverse_transform(est.transform(X)) - X) ** 2).sum(1).mean()
    share = error / ((X - X.mean(0)) ** 2).sum(1).mean()
    assert (share > 1e-5) == warns


def test_a_gain_below_tol_is_named_as_such(digits):
    # the end beat the start, by less than a large tol: not "worse"
    est = Autoencoder(n_components=8, early_stopping=False, max_iter=5, tol=0.9, random_state=0)
    said = [m for m in _said(est.set_params(device="cpu"), digits) if WORSE_THAN_START in m]
    assert len(said) == 1 and "better than its PCA start by less than tol (0.9" in said[0]
    assert _error(est, digits) < _error(PCA(n_components=8).fit(digits), digits)


def test_ctrl_c_while_a_fitted_model_is_checked_keeps_the_model(digits, monkeypatch):
    import skae._progress

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(skae._progress, "warn_if_no_better_than_mean", interrupted)
    est = Autoencoder(n_components=8, max_iter=3, random_state=0, device="cpu")
    with pytest.warns(UserWarning, match="interrupted by the user while the fitted model"):
        est.fit(digits)
    assert est.transform(digits).shape == (len(digits), 8)


def test_a_kept_start_where_pca_is_exact_says_nothing_can_beat_it():
    # rank 3 at n_components=3: "more epochs may still beat it" was no advice
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 10))
    est = Autoencoder(n_components=3, max_iter=10, random_state=0, device="cpu")
    said = [m for m in _said(est, X) if "best_epoch_ is 0" in m]
    assert est.best_epoch_ == 0 and len(said) == 1
    assert "PCA is exact here" in said[0] and "more epochs" not in said[0]


def test_one_dominant_column_is_not_called_an_exact_pca():
    # unscaled wine: proline, a thousand times the other columns, leaves PCA
    # at k = 3 7.8e-5 of the spread; rank 13, so "PCA is exact here" was false
    from sklearn.datasets import load_wine

    from skae._engine import History
    from skae._progress import report_kept_start
    from skae._rows import as_rows

    X = load_wine().data
    pca = PCA(n_components=3).fit(X)
    error = ((pca.inverse_transform(pca.transform(X)) - X) ** 2).sum(1).mean()
    kept = History(start_score=-error, best_epoch=0)
    est = Autoencoder(n_components=3)
    with pytest.warns(UserWarning, match="best_epoch_ is 0") as said:
        report_kept_start(est, kept, True, as_rows(torch.as_tensor(X)))
    assert "exact" not in str(said[0].message) and np.linalg.matrix_rank(X) == 13
    rank_3 = X[:, :3] @ np.ones((3, 13))  # rank 3: PCA exact
    exact = History(start_score=-1e-20, best_epoch=0)
    with pytest.warns(UserWarning, match="PCA is exact here"):
        report_kept_start(est, exact, True, as_rows(torch.as_tensor(rank_3)))


def test_the_kept_start_warning_has_a_category_of_its_own():
    from skae.exceptions import KeptStartWarning

    noise = np.random.default_rng(0).normal(size=(30, 6))
    with pytest.warns(KeptStartWarning, match="best_epoch_ is 0"):
        Autoencoder(n_components=2, max_iter=3, random_state=0, device="cpu").fit(noise)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=KeptStartWarning)  # not UserWarning's
        Autoencoder(n_components=2, max_iter=3, random_state=0, device="cpu").fit(noise)
    assert not [w for w in record if "best_epoch_ is 0" in str(w.message)]


def test_a_kept_vae_start_says_its_codes_are_in_the_priors_units():
    from skae import VariationalAutoencoder

    noise = np.random.default_rng(0).normal(size=(30, 6)) * 50
    est = VariationalAutoencoder(n_components=2, max_iter=3, random_state=0, device="cpu")
    said = [m for m in _said(est, noise) if "best_epoch_ is 0" in m]
    assert est.best_epoch_ == 0 and "divided by module_.input_scale" in said[0]


@pytest.mark.parametrize("change", [+0.5, -0.5, +3.0, -3.0])
def test_the_negligible_share_counts_either_way(change):
    # an end a hair better than its start had warned "better by less than
    # tol" where one a hair worse was quiet; beyond the share both warn
    from skae._engine import History
    from skae._progress import ScoredStart, warn_if_worse_than_start

    start = ScoredStart(lambda: -10.0 + change * 1e-4, -10.0, 1e-4)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warn_if_worse_than_start("Autoencoder", start, History(), tol=1e-3)
    assert len(record) == (abs(change) > 1), [str(w.message) for w in record]
    if record:  # the two scores told apart in the message
        said = str(record[0].message)
        assert f"score {-10 + change * 1e-4:.7g} against -10," in said


def test_one_training_row_of_an_exact_pca_says_nothing_can_beat_it():
    # two rows, one held out: PCA (of both) is exact, but the training row
    # alone has no spread, and the advice had been "more epochs"
    X = np.array([[0.0, 1, 2], [1, 0, 3]])
    est = Autoencoder(n_components=2, max_iter=3, random_state=0, device="cpu")
    said = [m for m in _said(est, X) if "best_epoch_ is 0" in m]
    assert len(said) == 1 and "PCA is exact here" in said[0], said
    assert est.score(X) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize(
    "X", [np.tile([1.0, 2, 3, 4], (30, 1)), np.array([[0.0, 1, 2], [1, 0, 3]])], ids=["same", "2"]
)
def test_a_kept_sparse_start_does_not_blame_the_penalty(X):
    # the start's code units fire on about half of the rows: on none only
    # where the rows do not vary, which no L1 penalty caused
    from skae import SparseAutoencoder

    est = SparseAutoencoder(n_components=2, max_iter=3, random_state=0, device="cpu")
    said = _said(est, X)
    assert est.best_epoch_ == 0
    assert not [m for m in said if "L1 penalty" in m or "code units" in m], said


def test_dead_units_a_warm_start_kept_are_judged(digits):
    # best_epoch_ 0 on a warm start keeps the previous fit's units, which the
    # L1 penalty may have killed: only a fresh PCA start is not judged
    from sklearn.exceptions import ConvergenceWarning

    from skae import SparseAutoencoder

    X = digits[:300] / 16
    est = SparseAutoencoder(n_components=8, sparsity_weight=10.0, init="random", max_iter=30)
    est.set_params(random_state=0, device="cpu").fit(X)
    est.set_params(warm_start=True, max_iter=5)
    with pytest.warns(ConvergenceWarning, match="code units"):
        est.fit(X)
