"""init="pca"'s linear path takes shortened optimiser steps (LINEAR_PATH_STEP
of the others'): encoder and decoder in the plain family, the encoder alone in
the VariationalAutoencoder."""

import pickle

import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits

from skae import Autoencoder, DenoisingAutoencoder, VariationalAutoencoder
from skae._optim import LINEAR_PATH_STEP, shortened_steps

pytestmark = pytest.mark.filterwarnings("ignore:Stochastic Optimizer")


def one_adam_step(shortened):
    """Two equal parameters after one Adam step on the same gradient, the
    second one's step shortened to 0.3 when ``shortened``."""
    free = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    slow = torch.nn.Parameter(free.detach().clone())
    optimizer = torch.optim.Adam([free, slow], lr=0.1)
    (
        (free * torch.tensor([1.0, -1.0, 2.0])).sum()
        + (slow * torch.tensor([1.0, -1.0, 2.0])).sum()
    ).backward()
    if shortened:
        with shortened_steps(optimizer, [slow], 0.3):
            optimizer.step()
    else:
        optimizer.step()
    return free.detach(), slow.detach(), optimizer


def test_shortened_steps_move_the_parameters_by_the_fraction_of_the_step():
    """Adam's first step is lr times the gradient's sign (up to eps): the
    shortened parameter moves 0.3 of that, the other the whole of it."""
    start = torch.tensor([1.0, -2.0, 3.0])
    free, slow, optimizer = one_adam_step(shortened=True)
    step = torch.tensor([-0.1, 0.1, -0.1])
    torch.testing.assert_close(free - start, step, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(slow - start, 0.3 * step, rtol=1e-5, atol=1e-6)
    # the hooks are gone after the block: the same optimiser's next step on
    # the same gradient (Adam's second step: lr times the gradient's sign,
    # up to eps) is a whole one for both
    assert not optimizer._optimizer_step_pre_hooks and not optimizer._optimizer_step_post_hooks
    free_before, slow_before = free.clone(), slow.clone()
    optimizer.step()
    torch.testing.assert_close(free - free_before, step, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(slow - slow_before, step, rtol=1e-4, atol=1e-6)


def test_shortened_steps_remove_their_hooks_when_the_block_raises():
    _, _, optimizer = one_adam_step(shortened=False)
    with pytest.raises(RuntimeError, match="inside"):
        with shortened_steps(optimizer, optimizer.param_groups[0]["params"][1:], 0.3):
            raise RuntimeError("raised inside the block")
    assert not optimizer._optimizer_step_pre_hooks and not optimizer._optimizer_step_post_hooks


def test_pca_started_fit_leaves_no_hook_and_pickles_and_continues():
    """A fit shortens the linear encoder's steps only while it trains: the
    fitted optimiser keeps no hook, pickles, and partial_fit continues."""
    X = load_digits().data[:200] / 16
    est = VariationalAutoencoder(n_components=3, max_iter=3, random_state=0, device="cpu")
    est.fit(X)
    optimizer = est._optimizer_
    assert not optimizer._optimizer_step_pre_hooks and not optimizer._optimizer_step_post_hooks
    copy = pickle.loads(pickle.dumps(est))
    assert_allclose(copy.transform(X), est.transform(X), rtol=0, atol=0)
    # partial_fit shortens the steps too: one full-batch pass is one step, and
    # no linear-encoder weight moves by more than LINEAR_PATH_STEP x the rate
    # (Adam's step is at most about the rate per weight)
    copy.set_params(batch_size=len(X))
    before = copy.module_.linear_encoder.weight.detach().clone()
    copy.partial_fit(X)
    moved = (copy.module_.linear_encoder.weight - before).abs().max().item()
    rate = copy._optimizer_.param_groups[0]["lr"]  # "auto" resolved
    assert 0 < moved <= LINEAR_PATH_STEP * rate * 1.01


def test_the_linear_encoder_moves_less_than_the_linear_decoder():
    """One full-batch Adam step from the PCA start: every weight of the
    linear encoder moves by at most LINEAR_PATH_STEP times the rate (Adam's
    first step is the rate times the gradient's sign), the linear decoder's by
    up to the whole rate."""
    X = load_digits().data[:128] / 16
    params = {"n_components": 4, "batch_size": 128, "shuffle": False, "device": "cpu"}
    start = VariationalAutoencoder(**params, learning_rate=1e-30, max_iter=1, random_state=0)
    start.set_params(early_stopping=False).fit(X)
    moved = VariationalAutoencoder(**params, max_iter=1, early_stopping=False, random_state=0)
    moved.fit(X)
    rate = moved._optimizer_.param_groups[0]["lr"]  # "auto" resolved
    linear = moved.module_.linear_encoder.weight - start.module_.linear_encoder.weight
    decoder = moved.module_.linear_decoder.weight - start.module_.linear_decoder.weight
    assert linear.abs().max() <= LINEAR_PATH_STEP * rate * (1 + 1e-3)
    assert linear.abs().max() >= 0.5 * LINEAR_PATH_STEP * rate
    assert decoder.abs().max() > 0.9 * rate


#: the rate of :func:`one_full_batch_step`'s step
RATE = 5e-3


def one_full_batch_step(cls, **params):
    """The module of ``cls`` at its PCA start and after one full-batch step."""
    X = load_digits().data[:128] / 16
    params = {"n_components": 4, "batch_size": 128, "shuffle": False, "device": "cpu", **params}
    params.update(max_iter=1, early_stopping=False, random_state=0)
    start = cls(**{**params, "learning_rate": 1e-30}).fit(X).module_
    return start, cls(**params, learning_rate=RATE).fit(X).module_


@pytest.mark.parametrize("cls", [Autoencoder, DenoisingAutoencoder])
def test_the_linear_path_moves_less_than_the_non_linear_layers(cls):
    """Adam's first step is the rate times the gradient's sign: the linear
    encoder's and decoder's weights move by at most LINEAR_PATH_STEP of it,
    the gates of the non-linear paths (closed at the start, so the layers
    behind them get no gradient yet) by the whole of it."""
    start, moved = one_full_batch_step(cls)
    rate = RATE
    for name in ("linear_encoder", "linear_decoder"):
        change = (getattr(moved, name).weight - getattr(start, name).weight).abs().max()
        assert 0.5 * LINEAR_PATH_STEP * rate <= change <= LINEAR_PATH_STEP * rate * (1 + 1e-3)
    gate = (moved.decoder_gate - start.decoder_gate).abs().max()
    assert gate > 0.9 * rate


def test_tied_linear_path_is_shortened_once():
    """With tied weights the decoder shares the encoder's weight: it is
    listed once, so its step is LINEAR_PATH_STEP of a step, not its square."""
    start, moved = one_full_batch_step(Autoencoder, tied_weights=True)
    assert len(moved.linear_path_parameters()) == 3  # the shared weight and two biases
    change = (moved.linear_encoder.weight - start.linear_encoder.weight).abs().max()
    assert 0.5 * LINEAR_PATH_STEP * RATE <= change


def test_random_start_has_no_linear_path_to_slow():
    start, moved = one_full_batch_step(Autoencoder, init="random")
    assert moved.linear_path_parameters() == []
