"""``verbose``: 0 is silent, 1 a tqdm bar with the losses, 2 also one log
record per epoch on the ``"skae"`` logger."""

import logging
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from _family import ESTIMATORS
from sklearn.exceptions import ConvergenceWarning

from skae import Autoencoder, DenoisingAutoencoder
from skae._progress import KEPT_START

X = np.random.default_rng(0).uniform(size=(40, 6))
TINY = dict(n_components=2, hidden_layer_sizes=(5,), max_iter=3, device="cpu", random_state=0)
IDS = [cls.__name__ for cls in ESTIMATORS]
#: every estimator, plus stacked pretraining (several training phases) and
#: early stopping (a validation loss)
SETTINGS = [(cls, {}) for cls in ESTIMATORS] + [
    (Autoencoder, {"pretraining": "greedy", "hidden_layer_sizes": (5, 4)}),
    (DenoisingAutoencoder, {"early_stopping": True}),
]
SETTING_IDS = IDS + ["Autoencoder-greedy", "DenoisingAutoencoder-early_stopping"]


def fit_quietly(est, method="fit"):
    """Fit, returning the warnings raised other than ConvergenceWarning and
    the kept start's (on uniform noise no epoch beats PCA)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(est, method)(X)
    return [
        w
        for w in caught
        if not issubclass(w.category, ConvergenceWarning) and KEPT_START not in str(w.message)
    ]


@pytest.mark.parametrize("cls, params", SETTINGS, ids=SETTING_IDS)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_verbose_0_prints_and_logs_nothing(cls, params, method, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    other_warnings = fit_quietly(cls(**{**TINY, **params}, verbose=0), method)
    assert [str(w.message) for w in other_warnings] == []
    assert capsys.readouterr() == ("", "")
    assert caplog.records == []


@pytest.mark.parametrize("cls, params", SETTINGS, ids=SETTING_IDS)
def test_verbose_1_shows_a_bar_with_the_losses(cls, params, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    est = cls(**{**TINY, **params}, verbose=1)
    fit_quietly(est)
    out, err = capsys.readouterr()
    assert out == ""
    assert caplog.records == []
    # the bar's final state: all epochs of each phase, and the last losses
    finals = re.findall(r"(\d+)/(\d+) \[[^\]]*, loss=([-\d.e+]+)(?:, val_loss=([-\d.e+]+))?\]", err)
    done = [f for f in finals if f[0] == f[1]]
    assert done, err
    assert float(done[-1][2]) == pytest.approx(est.loss_curve_[-1], rel=1e-3)
    if est.early_stopping:
        assert float(done[-1][3]) == pytest.approx(-est.validation_scores_[-1], rel=1e-3)
    else:
        assert "val_loss" not in err
    assert type(est).__name__ in err


def test_verbose_1_names_the_pretraining_phases(capsys):
    est = Autoencoder(**{**TINY, "hidden_layer_sizes": (5, 4)}, pretraining="greedy", verbose=1)
    fit_quietly(est)
    err = capsys.readouterr().err
    for layer in (1, 2, 3):
        assert f"Autoencoder pretraining layer {layer}/3" in err
    assert "Autoencoder fine-tuning" in err


@pytest.mark.parametrize("cls, params", SETTINGS, ids=SETTING_IDS)
def test_verbose_2_logs_one_record_per_epoch(cls, params, caplog):
    caplog.set_level(logging.INFO, logger="skae")
    est = cls(**{**TINY, **params}, verbose=2)
    fit_quietly(est)
    records = [r for r in caplog.records if r.name == "skae"]
    assert len(records) == est.n_iter_ == len(est.loss_curve_)
    assert all(r.levelno == logging.INFO for r in records)
    for epoch, (record, loss) in enumerate(zip(records, est.loss_curve_, strict=True), start=1):
        message = record.getMessage()
        assert f"epoch {epoch}, loss {loss:.6g}" in message
        assert type(est).__name__ in message
    if params.get("early_stopping"):
        last = records[-1].getMessage()
        assert f"validation loss {-est.validation_scores_[-1]:.6g}" in last


def test_verbose_2_partial_fit_counts_epochs_on(caplog):
    caplog.set_level(logging.INFO, logger="skae")
    est = Autoencoder(**TINY, verbose=2)
    for _ in range(3):
        est.partial_fit(X)
    messages = [r.getMessage() for r in caplog.records if r.name == "skae"]
    assert [re.search(r"epoch (\d+)", m).group(1) for m in messages] == ["1", "2", "3"]


@pytest.fixture
def unconfigured_logging(monkeypatch):
    """A "skae" logger with no handler on it or above it, as in a script that
    never configured logging. (pytest puts its capture handlers on the real
    loggers before each test phase, so a fresh, unregistered logger stands in.)"""
    import skae._progress

    fresh = logging.Logger("skae")
    monkeypatch.setattr(skae._progress, "logger", fresh)
    assert not fresh.hasHandlers()
    return fresh


def test_verbose_2_without_logging_shows_records_and_leaves_the_logger_as_it_was(
    unconfigured_logging, capsys
):
    logger = unconfigured_logging
    handlers, level = list(logger.handlers), logger.level
    est = Autoencoder(**TINY, verbose=2)
    fit_quietly(est)
    err = capsys.readouterr().err
    for epoch in range(1, est.n_iter_ + 1):
        assert f"skae: Autoencoder: epoch {epoch}, loss" in err
    assert logger.handlers == handlers
    assert logger.level == level


def test_overlapping_verbose_2_fits_share_the_temporary_handler(unconfigured_logging):
    """Two fits in threads: the handler the first added stays until the last
    one ends, then the logger is as before."""
    from skae._progress import _visible_records

    logger = unconfigured_logging
    level = logger.level
    first, second = _visible_records(), _visible_records()
    first.__enter__()
    assert len(logger.handlers) == 1 and logger.level == logging.INFO
    second.__enter__()
    assert len(logger.handlers) == 1
    first.__exit__(None, None, None)
    assert len(logger.handlers) == 1 and logger.level == logging.INFO
    second.__exit__(None, None, None)
    assert logger.handlers == [] and logger.level == level


def test_concurrent_verbose_2_fits_log_every_epoch_once(unconfigured_logging, capsys):
    from concurrent.futures import ThreadPoolExecutor

    def fit(seed):
        return fit_quietly(Autoencoder(**{**TINY, "random_state": seed}, verbose=2))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(fit, range(4)))
    err = capsys.readouterr().err
    lines = re.findall(r"skae: Autoencoder: epoch \d+, loss [\d.e+-]+", err)
    assert len(lines) == 4 * TINY["max_iter"], err
    assert unconfigured_logging.handlers == []


@pytest.mark.slow  # a fresh Python process, importing torch and skae
def test_verbose_2_without_logging_configured_shows_records_on_stderr():
    """A plain script that configured no logging still sees the records."""
    code = (
        "import numpy as np, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from skae import Autoencoder\n"
        "X = np.random.default_rng(0).uniform(size=(40, 6))\n"
        "Autoencoder(n_components=2, hidden_layer_sizes=(5,), max_iter=3, device='cpu',\n"
        "            random_state=0, verbose=2).fit(X)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout == ""
    for epoch in (1, 2, 3):
        assert f"skae: Autoencoder: epoch {epoch}, loss" in result.stderr


def test_verbose_2_respects_configured_logging_level(caplog):
    """An application that keeps skae at WARNING gets no per-epoch records."""
    caplog.set_level(logging.WARNING, logger="skae")
    fit_quietly(Autoencoder(**TINY, verbose=2))
    assert [r for r in caplog.records if r.name == "skae"] == []


def test_failed_fit_closes_the_bar_and_restores_the_logger(unconfigured_logging, monkeypatch):
    import tqdm.auto

    bars = []
    real_tqdm = tqdm.auto.tqdm

    def recording_tqdm(*args, **kwargs):
        bars.append(real_tqdm(*args, **kwargs))
        return bars[-1]

    monkeypatch.setattr(tqdm.auto, "tqdm", recording_tqdm)
    logger = unconfigured_logging
    handlers, level = list(logger.handlers), logger.level
    est = Autoencoder(**TINY, verbose=2, learning_rate=1e30)
    with pytest.raises(ValueError, match="non-finite"):
        fit_quietly(est)
    assert bars and all(bar.disable for bar in bars)  # tqdm marks a closed bar disabled
    assert logger.handlers == handlers
    assert logger.level == level


@pytest.mark.slow  # a fresh Python process, importing torch and skae
def test_importing_skae_does_not_import_tqdm_auto():
    """tqdm.auto warns at import in a notebook without ipywidgets: skae loads
    it only when a fit asks for a bar. (torch itself imports plain tqdm.)"""
    code = "import sys, skae; print('tqdm.auto' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


def test_verbose_1_early_stopped_bar_ends_at_its_last_epoch_with_the_reason(capsys):
    """A fit that stops early does not leave its bar at "30 % 60/200", which
    reads as interrupted: the bar ends full at the epochs run, saying why."""
    rng = np.random.default_rng(0)
    X_flat = rng.normal(size=(60, 4))
    est = Autoencoder(**{**TINY, "max_iter": 200}, n_iter_no_change=1, tol=1e6, verbose=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X_flat)
    err = capsys.readouterr().err
    assert est.n_iter_ < 200
    final = [line for line in err.replace("\r", "\n").splitlines() if "|" in line][-1]
    assert f"{est.n_iter_}/{est.n_iter_}" in final, final
    assert "/200" not in final
    assert "stopped early: no improvement in 2 epochs" in final, final


def test_stop_message_names_every_early_reason():
    from skae._engine import StopReason
    from skae._progress import stop_message

    assert stop_message(StopReason.MAX_ITER, 5) is None
    assert stop_message(StopReason.CONVERGED, 5) == "stopped early: no improvement in 6 epochs"
    for reason in set(StopReason) - {StopReason.MAX_ITER, StopReason.CONVERGED}:
        assert stop_message(reason, 5)


def test_a_default_fit_says_nothing_even_to_a_warn_always_torch():
    """torch says some warnings once per process ("Converting a tensor with
    requires_grad=True to a scalar"), so a check under simplefilter("error")
    passes whenever an earlier test set them off; warn-always says them every
    time, as a user's first fit would."""
    import torch
    from sklearn.datasets import load_digits

    previous = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Autoencoder(n_components=2, device="cpu", random_state=0).fit(
                load_digits().data[:300] / 16
            )
    finally:
        torch.set_warn_always(previous)
