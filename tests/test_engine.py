"""The training engine alone: torch modules and losses, no estimator."""

import math

import pytest
import torch

from skae import _engine, _optim, _settings
from skae._engine import StopReason


def make_problem(n_samples=64, n_features=5, seed=0):
    torch.manual_seed(seed)
    module = torch.nn.Linear(n_features, n_features)
    X = torch.randn(n_samples, n_features)
    return module, X


def mse_loss(module):
    return lambda x: ((module(x) - x) ** 2).sum(1).mean()


def run(module, batch_loss, X, **kwargs):
    settings = dict(
        optimizer=torch.optim.Adam(module.parameters(), lr=1e-2),
        batch_size=16,
        max_iter=20,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )
    settings.update(kwargs)
    return _engine.train(module, batch_loss, X, **settings)


def test_engine_every_row_once_per_epoch():
    module, X = make_problem(n_samples=50)
    X[:, 0] = torch.arange(50, dtype=torch.float32)
    seen = []

    def batch_loss(x):
        seen.append(x[:, 0].tolist())
        return mse_loss(module)(x)

    history = run(module, batch_loss, X, max_iter=3, stop_early=False)
    assert history.n_iter == 3
    per_epoch = [sum(seen[i * 4 : (i + 1) * 4], []) for i in range(3)]  # 16+16+16+2
    assert all(sorted(rows) == list(range(50)) for rows in per_epoch)
    assert [len(b) for b in seen[:4]] == [16, 16, 16, 2]
    assert per_epoch[0] != per_epoch[1]  # reshuffled


def test_engine_without_shuffle_keeps_row_order():
    module, X = make_problem(n_samples=20)
    X[:, 0] = torch.arange(20, dtype=torch.float32)
    seen = []

    def batch_loss(x):
        seen.extend(x[:, 0].tolist())
        return mse_loss(module)(x)

    run(module, batch_loss, X, max_iter=2, shuffle=False, stop_early=False)
    assert seen == list(range(20)) * 2


def test_engine_epoch_loss_is_sample_weighted_mean():
    module, X = make_problem(n_samples=40)
    per_batch = []

    def batch_loss(x):
        loss = mse_loss(module)(x)
        per_batch.append((loss.item(), len(x)))
        return loss

    # lr=0 keeps the weights fixed, so every batch loss is exact
    history = run(
        module,
        batch_loss,
        X,
        max_iter=1,
        optimizer=torch.optim.SGD(module.parameters(), lr=0.0),
        batch_size=15,
    )
    expected = sum(loss * n for loss, n in per_batch) / 40
    assert history.loss_curve[0] == pytest.approx(expected, rel=1e-6)
    with torch.no_grad():
        full = mse_loss(module)(X).item()
    assert history.loss_curve[0] == pytest.approx(full, rel=1e-5)


def test_engine_stops_after_n_iter_no_change_like_mlp():
    module, X = make_problem()
    # lr=0: the loss never improves; MLPRegressor stops once the count of
    # epochs without improvement exceeds n_iter_no_change
    history = run(
        module,
        mse_loss(module),
        X,
        max_iter=50,
        n_iter_no_change=3,
        optimizer=torch.optim.SGD(module.parameters(), lr=0.0),
    )
    assert history.stop_reason is StopReason.CONVERGED
    assert history.n_iter == 5  # the first epoch sets the best loss, then 4 without change


def test_engine_runs_to_max_iter_when_improving():
    module, X = make_problem()
    history = run(module, mse_loss(module), X, max_iter=7, tol=0.0)
    assert history.stop_reason is StopReason.MAX_ITER
    assert history.n_iter == 7
    assert history.best_loss == min(history.loss_curve)


def test_engine_restores_best_validation_weights():
    module, X = make_problem()
    X_val = torch.randn(30, 5)
    # a validation score that peaks early and then falls as training goes on
    epoch = {"n": 0}

    def validation_score():
        epoch["n"] += 1
        with torch.no_grad():
            return -float(((module(X_val) - X_val) ** 2).sum(1).mean()) - (epoch["n"] - 3) ** 2

    snapshots = []

    def recording_score():
        snapshots.append({k: v.clone() for k, v in module.state_dict().items()})
        return validation_score()

    history = run(
        module,
        mse_loss(module),
        X,
        max_iter=30,
        n_iter_no_change=2,
        validation_score=recording_score,
    )
    best = max(range(len(history.validation_scores)), key=history.validation_scores.__getitem__)
    assert history.best_validation_score == history.validation_scores[best]
    assert history.n_iter < 30
    for name, value in module.state_dict().items():
        torch.testing.assert_close(value, snapshots[best][name], rtol=0, atol=0)


def test_engine_non_finite_loss_returns_without_raising():
    module, X = make_problem()
    calls = {"n": 0}

    def batch_loss(x):
        calls["n"] += 1
        loss = mse_loss(module)(x)
        return loss * math.inf if calls["n"] > 6 else loss  # epoch 2 goes non-finite

    history = run(module, batch_loss, X, max_iter=10)
    assert history.stop_reason is StopReason.NON_FINITE
    assert history.n_iter == 1


def test_engine_keyboard_interrupt_keeps_completed_epochs():
    module, X = make_problem()
    calls = {"n": 0}

    def batch_loss(x):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return mse_loss(module)(x)

    history = run(module, batch_loss, X, max_iter=10)
    assert history.stop_reason is StopReason.INTERRUPTED
    assert history.n_iter == 2  # 4 batches per epoch: interrupted in epoch 3
    assert not module.training


@pytest.mark.parametrize("flops, expected", [(1e3, 1), (1e12, 3)])
def test_engine_cpu_threads_for_small_steps_restores_setting(flops, expected):
    previous = torch.get_num_threads()
    # not 1, whatever torch's default here: going to one thread and back shows
    torch.set_num_threads(3)
    try:
        with _settings.cpu_threads_for(flops, "cpu"):
            inside = torch.get_num_threads()
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
    assert inside == expected
    assert after == 3


def test_engine_make_optimizer_names():
    params = [torch.nn.Parameter(torch.zeros(3))]
    assert isinstance(
        _optim.make_optimizer("adam", params, learning_rate=0.1, weight_decay=0, device="cpu"),
        torch.optim.Adam,
    )
    assert isinstance(
        _optim.make_optimizer("adamw", params, learning_rate=0.1, weight_decay=0, device="cpu"),
        torch.optim.AdamW,
    )
    sgd = _optim.make_optimizer("sgd", params, learning_rate=0.1, weight_decay=0, device="cpu")
    assert sgd.defaults["momentum"] == 0.9 and sgd.defaults["nesterov"]
    with pytest.raises(ValueError, match="unknown optimizer"):
        _optim.make_optimizer("rmsprop", params, learning_rate=0.1, weight_decay=0, device="cpu")


def test_shared_setting_applies_once_and_restores_after_the_last_user():
    log = []
    setting = _settings.SharedSetting(lambda: log.append("apply") or "before", log.append)
    with setting() as first:
        with setting() as second:
            assert first == second == "before"
        assert log == ["apply"]  # the inner user leaving restores nothing
    assert log == ["apply", "before"]
    with setting():
        pass
    assert log == ["apply", "before", "apply", "before"]


def test_shared_setting_survives_an_apply_that_raises():
    calls = iter([RuntimeError("cannot apply"), "before"])

    def apply():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    restored = []
    setting = _settings.SharedSetting(apply, restored.append)
    with pytest.raises(RuntimeError, match="cannot apply"):
        with setting():
            pass
    assert restored == []
    with setting() as previous:
        assert previous == "before"
    assert restored == ["before"]


@pytest.mark.parametrize(
    ("scores", "best_epoch", "n_iter"),
    [
        # the first epochs fall below the start, keep improving, and beat it
        ([10, 5, 6, 7, 8, 11, 12, 12, 12, 12, 12, 12], 6, 9),
        # no epoch beats the start: the start is kept once training stalls
        ([10, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6], 0, 5),
    ],
)
def test_the_start_counts_for_the_best_weights_not_for_the_patience(scores, best_epoch, n_iter):
    """Epochs are counted against the best trained epoch, so a run from a
    good start (PCA's) is not stopped while training still improves; the
    weights restored are the best of the start and every epoch."""
    module, X = make_problem()
    calls, snapshots = iter(scores), []

    def validation_score():
        snapshots.append({k: v.clone() for k, v in module.state_dict().items()})
        return float(next(calls))

    history = run(
        module,
        mse_loss(module),
        X,
        max_iter=len(scores) - 1,
        n_iter_no_change=2,
        tol=1e-3,
        validation_score=validation_score,
        score_start=True,
    )
    assert history.stop_reason is StopReason.CONVERGED
    assert (history.best_epoch, history.n_iter) == (best_epoch, n_iter)
    assert history.best_validation_score == max(scores[: n_iter + 1])
    for name, value in module.state_dict().items():
        torch.testing.assert_close(value, snapshots[best_epoch][name], rtol=0, atol=0)
