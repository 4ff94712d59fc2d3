"""skae._copying.copy_module: the deep copy a warm start and partial_fit train."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

from skae import Autoencoder, ConvolutionalAutoencoder, VariationalAutoencoder
from skae._copying import copy_module
from skae.nn import AutoencoderModule, ConvolutionalModule, VariationalModule

MODULES = {
    "mlp": lambda: AutoencoderModule(12, 3, (8,), linear_path=True),
    "tied": lambda: AutoencoderModule(12, 3, (8, 5), tied_weights=True, linear_path=True),
    "vae": lambda: VariationalModule(12, 3, (8,), linear_path=True),
    "conv": lambda: ConvolutionalModule((1, 3, 4), 3, channels=(4,), linear_path=True),
}


def tensors(module):
    return dict(module.named_parameters(remove_duplicate=False)) | dict(module.named_buffers())


@pytest.mark.parametrize("name", list(MODULES))
def test_copy_is_a_deep_copy(name):
    torch.manual_seed(0)
    module = MODULES[name]().set_input_scale(2.5)
    module.eval()
    copied = copy_module(module)
    expected = copy.deepcopy(module)
    assert type(copied) is type(module) and copied is not module
    assert [type(m) for m in copied.modules()] == [type(m) for m in expected.modules()]
    assert not any(a is b for a, b in zip(copied.modules(), module.modules(), strict=True))
    assert copied.training is False
    old, new = tensors(module), tensors(copied)
    assert new.keys() == old.keys()
    for key in old:
        torch.testing.assert_close(new[key], old[key], rtol=0, atol=0, equal_nan=True)
        assert new[key].data_ptr() != old[key].data_ptr(), key
        assert type(new[key]) is type(old[key]), key
    x = torch.randn(5, 12)
    assert torch.equal(copied.encode(x), module.encode(x))
    with torch.no_grad():  # changing the copy leaves the original alone
        next(copied.parameters()).add_(1.0)
    assert not torch.equal(next(copied.parameters()), next(module.parameters()))


def test_tied_weights_stay_tied_in_the_copy():
    module = MODULES["tied"]()
    copied = copy_module(module)
    assert copied.decoder[0].weight is copied.encoder[-1].weight
    assert copied.linear_decoder.weight is copied.linear_encoder.weight
    assert copied.decoder[0].weight is not module.decoder[0].weight


def test_hooks_are_copied_as_deepcopy_copies_them():
    module = MODULES["mlp"]()
    seen = []
    module.encoder.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    copied = copy_module(module)
    copied.encode(torch.randn(2, 12))
    assert seen == [torch.Size([2, 3])]
    pickle.dumps(copy_module(MODULES["mlp"]()))  # nothing unpicklable made


@pytest.mark.parametrize("cls", [Autoencoder, VariationalAutoencoder, ConvolutionalAutoencoder])
def test_warm_start_trains_a_copy(cls):
    """A warm start trains a copy: the fitted module before it is unchanged,
    and the second fit continues from it as from a deep copy."""
    rng = np.random.default_rng(0)
    X = rng.random((60, 12)).astype(np.float32)
    params = {"image_shape": (1, 3, 4)} if cls is ConvolutionalAutoencoder else {}
    fixed = {"max_iter": 2, "early_stopping": False, "random_state": 0}
    est = cls(n_components=2, warm_start=True, **fixed, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
        before = est.module_
        weights = {k: v.clone() for k, v in before.state_dict().items()}
        est.fit(X)
    assert est.module_ is not before
    for key, value in before.state_dict().items():
        assert_array_equal(value.numpy(), weights[key].numpy())


def stepped_optimizer(module, name="adam"):
    """An optimiser of ``make_optimizer`` over ``module`` after three steps
    under a cosine schedule (which adds ``initial_lr`` to its groups)."""
    from skae._optim import make_optimizer

    optimizer = make_optimizer(
        name, module.parameters(), learning_rate=0.01, weight_decay=0.1, device="cpu"
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    for _ in range(3):
        optimizer.zero_grad()
        module(torch.randn(4, 12)).square().sum().backward()
        optimizer.step()
        scheduler.step()
    return optimizer


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_optimizer_copy_is_load_state_dicts(name):
    """copy_optimizer's quick way gives what load_state_dict(deepcopy(...))
    gives: the same groups (rate, initial_lr, ...) and state, in tensors of
    its own; stepping the copy leaves the original alone."""
    from skae._copying import copy_optimizer_state
    from skae._optim import copy_optimizer, make_optimizer

    torch.manual_seed(0)
    module = MODULES["mlp"]()
    optimizer = stepped_optimizer(module, name)
    copied = copy_optimizer(optimizer, copy_module(module).parameters(), device="cpu")
    reference = make_optimizer(
        name, copy_module(module).parameters(), learning_rate=1.0, weight_decay=0.0, device="cpu"
    )
    reference.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    ours, theirs = copied.state_dict(), reference.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    assert "initial_lr" in ours["param_groups"][0]
    assert ours["state"].keys() == theirs["state"].keys() and ours["state"]
    for index, state in ours["state"].items():
        for key, value in state.items():
            expected = theirs["state"][index][key]
            assert torch.equal(value, expected) and value.dtype == expected.dtype, key
    before = {
        i: {k: v.clone() for k, v in s.items()} for i, s in optimizer.state_dict()["state"].items()
    }
    copied.step()  # grads are None on the copy's parameters: give it some
    params = [p for g in copied.param_groups for p in g["params"]]
    for p in params:
        p.grad = torch.ones_like(p)
    copied.step()
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            assert torch.equal(value, before[index][key]), key
    # another dtype: the quick way declines, load_state_dict moves the state
    doubled = copy_module(module).double()
    declined = make_optimizer(
        name, doubled.parameters(), learning_rate=1.0, weight_decay=0.0, device="cpu"
    )
    assert copy_optimizer_state(optimizer, declined) is False
    assert not declined.state
