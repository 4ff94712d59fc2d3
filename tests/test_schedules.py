"""``learning_rate_schedule``: the rate each epoch runs at, read from the
optimiser (by the engine's ``on_epoch`` callback, and by the estimators'
``verbose=2`` records, which report the optimiser's rate of each epoch), and
how "plateau" stops.
"""

import copy
import functools
import logging
import math
import os
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from _family import ESTIMATORS
from sklearn.exceptions import ConvergenceWarning

import skae
from skae import _engine
from skae._engine import StopReason

TINY = dict(n_components=2, hidden_layer_sizes=(6,), device="cpu", random_state=0)
X = np.random.default_rng(0).random((30, 8))
LR = 1e-2


def cosine(epoch, n_epochs, base=LR):
    """The rate of epoch ``epoch`` (from 0) of a cosine over ``n_epochs``."""
    return base * (1 + math.cos(math.pi * epoch / n_epochs)) / 2


def rates(caplog, desc=None):
    """The learning rate of each epoch in the ``verbose=2`` records."""
    return [
        float(re.search(r"learning rate ([-\d.e+]+)", r.getMessage()).group(1))
        for r in caplog.records
        if r.name == "skae" and (desc is None or r.getMessage().startswith(f"{desc}:"))
    ]


@pytest.fixture
def records(caplog):
    caplog.set_level(logging.INFO, logger="skae")
    return caplog


def fit_quietly(est, method="fit", data=X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(est, method)(data)


# ------------------------------------------------------------ the engine


def train_linear(make_scheduler, **kwargs):
    """Train a linear autoencoder of 4 values with SGD at ``LR`` under the
    scheduler ``make_scheduler(optimizer)``; (history, the rate each epoch
    ran at, the optimiser)."""
    torch.manual_seed(0)
    module = torch.nn.Linear(4, 4)
    optimizer = torch.optim.SGD(module.parameters(), lr=LR)
    seen = []
    history = _engine.train(
        module,
        lambda x: ((module(x) - x) ** 2).sum(1).mean(),
        torch.randn(32, 4),
        optimizer=optimizer,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        stop_early=False,
        scheduler=make_scheduler(optimizer),
        on_epoch=lambda loss, score: seen.append(optimizer.param_groups[0]["lr"]),
        **kwargs,
    )
    return history, seen, optimizer


def test_engine_steps_the_scheduler_once_per_epoch_after_reporting():
    cosine_schedule = functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=5)
    _, seen, optimizer = train_linear(cosine_schedule, batch_size=8, max_iter=5)
    assert seen == pytest.approx([cosine(e, 5) for e in range(5)], rel=1e-12)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0, abs=1e-15)


def test_engine_plateau_replaces_the_no_improvement_stop():
    module = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(module.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.1, patience=1, threshold=1e9, threshold_mode="abs", eps=0.0
    )
    history = _engine.train(
        module,
        lambda x: (module(x) * 0).sum() + 1.0,  # a loss that never improves
        torch.zeros(4, 2),
        optimizer=optimizer,
        batch_size=4,
        max_iter=100,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        tol=1e9,
        n_iter_no_change=1,
        scheduler=scheduler,
        min_learning_rate=0.5e-3,
    )
    # the first epoch improves on inf; a rate cut after every 2 bad epochs;
    # 1e-4 is below the floor after the fourth cut
    assert history.stop_reason is StopReason.MIN_LEARNING_RATE
    assert history.n_iter == 1 + 4 * 2
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


# ------------------------------------------------------------- the estimators


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_constant_schedule_keeps_the_rate(cls, records):
    fit_quietly(cls(**TINY, learning_rate=LR, max_iter=4, verbose=2))
    assert rates(records) == [LR] * 4


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_cosine_schedule_anneals_to_zero_over_max_iter(cls, records):
    est = fit_quietly(
        cls(**TINY, learning_rate=LR, learning_rate_schedule="cosine", max_iter=6, verbose=2)
    )
    assert rates(records) == pytest.approx([cosine(e, 6) for e in range(6)], rel=1e-5)
    assert est._optimizer_.param_groups[0]["lr"] == pytest.approx(0, abs=1e-12)


def test_cosine_schedule_restarts_on_a_warm_start(records):
    est = skae.Autoencoder(
        **TINY, learning_rate=LR, learning_rate_schedule="cosine", max_iter=4, verbose=2
    )
    fit_quietly(est)
    fit_quietly(est.set_params(warm_start=True, max_iter=3))
    expected = [cosine(e, 4) for e in range(4)] + [cosine(e, 3) for e in range(3)]
    assert rates(records) == pytest.approx(expected, rel=1e-5)
    assert est.n_iter_ == 7


def test_cosine_schedule_anneals_each_pretrained_layer(records):
    est = skae.Autoencoder(
        **{**TINY, "hidden_layer_sizes": (6, 4)},
        learning_rate=LR,
        learning_rate_schedule="cosine",
        pretraining="greedy",
        max_iter=3,
        verbose=2,
    )
    fit_quietly(est)
    one_cycle = pytest.approx([cosine(e, 3) for e in range(3)], rel=1e-5)
    for layer in (1, 2, 3):
        assert rates(records, f"Autoencoder pretraining layer {layer}/3") == one_cycle
    assert rates(records, "Autoencoder fine-tuning") == one_cycle


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_partial_fit_runs_at_learning_rate_even_after_a_scheduled_fit(schedule, records):
    est = skae.Autoencoder(
        **TINY, learning_rate=LR, learning_rate_schedule="cosine", max_iter=3, verbose=2
    )
    fit_quietly(est)  # leaves the optimiser at a rate of zero
    est.set_params(learning_rate_schedule=schedule)
    records.clear()
    for _ in range(3):
        est.partial_fit(X)
    assert rates(records) == [LR] * 3


def plateau_estimator(cls=skae.Autoencoder, **params):
    """With ``tol`` this large (relative: a loss must fall to a millionth of
    the best) no epoch after the first counts as an improvement: the rate is
    cut after every ``n_iter_no_change + 1`` epochs."""
    settings = dict(
        init="random",  # a first epoch that improves (a PCA start scored first is the best)
        learning_rate=LR,
        learning_rate_schedule="plateau",
        tol=1 - 1e-6,
        n_iter_no_change=2,
        max_iter=100,
        verbose=2,
    )
    return cls(**{**TINY, **settings, **params})


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_plateau_divides_by_ten_and_stops_below_1e_6_of_the_rate(cls, early_stopping, records):
    est = plateau_estimator(cls, early_stopping=early_stopping)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a stop, not max_iter
        est.fit(X)
    # the first epoch improves on nothing; then each third epoch without
    # improvement cuts the rate; the seventh cut takes it below 1e-6 * LR
    expected = [LR] + [LR * 10.0**-cut for cut in range(7) for _ in range(3)]
    assert rates(records) == pytest.approx(expected, rel=1e-5)
    assert est.n_iter_ == 1 + 7 * 3
    assert est._optimizer_.param_groups[0]["lr"] == pytest.approx(LR * 1e-7)


def test_the_imputers_plateau_stops_below_1e_3_of_the_rate():
    # the imputer's floor is a thousandth of the rate, not the autoencoders'
    # millionth: four groups of epochs (rates LR to LR / 1000), then the stop
    X_missing = X.copy()
    X_missing[::4, 0] = np.nan
    imputer = skae.AutoencoderImputer(
        hidden_layer_sizes=(6,), learning_rate=LR, tol=1e6, n_iter_no_change=2,
        max_iter=100, random_state=0, device="cpu",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a stop, not max_iter
        imputer.fit(X_missing)
    assert imputer.n_iter_ == 1 + 4 * 3
    assert imputer._optimizer_.param_groups[0]["lr"] == pytest.approx(LR * 1e-4)


def test_plateau_outlasts_the_no_improvement_stop_of_a_constant_rate():
    constant = fit_quietly(plateau_estimator(learning_rate_schedule="constant", verbose=0))
    plateau = fit_quietly(plateau_estimator(verbose=0))
    assert constant.n_iter_ == 1 + 3  # MLPRegressor's stop: n_iter_no_change + 1 bad epochs
    assert plateau.n_iter_ == 1 + 7 * 3


def first_plateau(losses, patience):
    """The epoch (from 0) after which ReduceLROnPlateau (tol 0) first cuts."""
    best, bad = math.inf, 0
    for epoch, loss in enumerate(losses):
        best, bad = (loss, 0) if loss < best else (best, bad + 1)
        if bad > patience:
            return epoch
    return None


def test_plateau_monitors_the_validation_loss_with_early_stopping(records):
    # every epoch's rate is ReduceLROnPlateau's on the validation loss
    est = plateau_estimator(early_stopping=True, tol=0.0, n_iter_no_change=1, learning_rate=0.5)
    fit_quietly(est)
    lr = rates(records)
    cuts = [epoch for epoch in range(len(lr) - 1) if lr[epoch + 1] < lr[epoch]]
    assert cuts and cuts[0] == first_plateau([-s for s in est.validation_scores_], patience=1)


def test_engine_cuts_the_rate_at_the_validation_plateau_not_the_training_loss():
    # a scripted validation loss that stalls after epoch 2, beside a training
    # loss that falls every epoch (gradient descent on a convex loss, one
    # batch): the rate is cut after epoch 4 (two epochs no lower), where the
    # training loss would never cut it (the curves of a real fit may coincide)
    plateau = functools.partial(
        torch.optim.lr_scheduler.ReduceLROnPlateau,
        factor=0.1,
        patience=1,
        threshold=0.0,
        threshold_mode="abs",
    )
    validation_losses = iter([3.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    history, seen, _ = train_linear(
        plateau, batch_size=32, max_iter=6, validation_score=lambda: -next(validation_losses)
    )
    assert all(b < a for a, b in zip(history.loss_curve, history.loss_curve[1:], strict=False))
    assert seen == pytest.approx([LR] * 4 + [LR / 10] * 2, rel=1e-12)


def test_plateau_partial_fit_carries_the_schedule_across_calls(records):
    est = plateau_estimator(n_iter_no_change=1)
    for _ in range(7):
        est.partial_fit(X)
    # call 1 improves; after every two calls without improvement the rate is cut
    assert rates(records) == pytest.approx([LR, LR, LR, LR / 10, LR / 10, LR / 100, LR / 100])
    assert est.n_iter_ == 7  # partial_fit never stops


def test_partial_fit_after_an_early_stopped_fit_compares_training_losses_afresh():
    """The plateau an early-stopped fit followed was its validation loss;
    partial_fit's is the training loss, which (on corrupted rows) may never
    come below it: carried over, the best cut the rate every other call."""
    est = plateau_estimator(early_stopping=True, n_iter_no_change=1)
    fit_quietly(est)
    rate = est._optimizer_.param_groups[0]["lr"]
    assert est._plateau_progress_["best"] == math.inf
    est.partial_fit(X)
    assert est._plateau_progress_["best"] == pytest.approx(est.loss_curve_[-1], rel=1e-12)
    assert est._plateau_progress_["num_bad_epochs"] == 0
    assert est._optimizer_.param_groups[0]["lr"] == rate  # the fit's rate carries over


@pytest.mark.parametrize("route", ["pickle", "deepcopy", "skae.save"])
def test_plateau_state_survives_persistence(route, records, tmp_path):
    est = plateau_estimator(n_iter_no_change=1)
    for _ in range(2):
        est.partial_fit(X)
    if route == "pickle":
        copied = pickle.loads(pickle.dumps(est))
    elif route == "deepcopy":
        copied = copy.deepcopy(est)
    else:
        path = os.path.join(tmp_path, "model.skae")
        skae.save(est, path)
        copied = skae.load(path)
    records.clear()
    for _ in range(3):
        copied.partial_fit(X)
    # calls 3 (the second without improvement, so cut after it), 4, 5
    assert rates(records) == pytest.approx([LR, LR / 10, LR / 10])
    records.clear()
    for _ in range(3):
        est.partial_fit(X)
    np.testing.assert_array_equal(copied.transform(X), est.transform(X))


def test_a_fit_starts_the_plateau_schedule_afresh(records):
    est = plateau_estimator(n_iter_no_change=1)
    for _ in range(5):
        est.partial_fit(X)
    records.clear()
    fit_quietly(est.set_params(max_iter=2, warm_start=True))
    assert rates(records) == [LR, LR]


def test_plateau_counts_improvements_relative_to_the_best_but_the_imputers_in_its_units():
    module = torch.nn.Linear(2, 2)

    def plateau(cls, tol):
        estimator = cls(learning_rate_schedule="plateau", tol=tol, n_iter_no_change=2)
        optimizer = torch.optim.SGD(module.parameters(), lr=1.0)
        return estimator._new_scheduler(optimizer, 100), optimizer

    scheduler, _ = plateau(skae.AutoencoderImputer, 1e-3)
    assert (scheduler.relative_tol, scheduler.threshold_mode, scheduler.threshold) == (
        None,
        "abs",
        1e-3,
    )
    # on either side of zero (a VAE's loss is often negative): a loss that
    # creeps up is no improvement, one that falls by 2 % an epoch is
    for sign in (-1.0, 1.0):
        scheduler, optimizer = plateau(skae.Autoencoder, 1e-4)
        for epoch in range(20):
            _engine.step_scheduler(scheduler, sign * 100.0 + 0.001 * epoch)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-6)  # cut every 3 epochs
        scheduler, optimizer = plateau(skae.Autoencoder, 1e-4)
        for epoch in range(20):
            _engine.step_scheduler(scheduler, sign * 100.0 * (1.0 - sign * 0.02) ** epoch)
        assert optimizer.param_groups[0]["lr"] == 1.0


def test_a_score_that_stays_at_zero_is_no_improvement():
    # PCA reconstructs constant rows exactly: every held-out score is 0
    ae = skae.Autoencoder(n_components=1, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # PCA's own, on constant data
        ae.fit(np.ones((50, 4)))
    assert set(ae.validation_scores_) == {0.0}
    # stopped as a fit whose real score stalls at PCA's start (7 epochs at the defaults)
    assert (ae.n_iter_, ae.best_epoch_) == (ae.n_iter_no_change + 2, 0)
    assert not _engine.improves(0.0, 0.0, 1e-4)
    assert _engine.improves(1e-9, 0.0, 1e-4)
