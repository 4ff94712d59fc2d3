"""A deep copy of a torch module made quickly: what ``copy.deepcopy`` gives,
without its generic walk through the dozen hook dictionaries of every
submodule, which dominates the copy of a small network (measured on digits'
default network, 64-100-8 with its linear path: 0.21 ms against 0.87 ms).
A warm start and ``partial_fit`` train such a copy on every call, and
``partial_fit`` a copy of the optimiser (:func:`copy_optimizer_state`: 0.17
ms against 1.5 ms through ``load_state_dict``). Torch only."""

import copy

import torch


def copy_module(module, device=None):
    """``copy.deepcopy(module)``: new submodules, parameters and buffers (a
    tensor shared between submodules, as tied weights are, stays shared in the
    copy), empty hook dictionaries made anew, every other attribute
    deep-copied; then moved to ``device`` unless all of it is there already."""
    new = _copy(module, {})
    tensors = [*new.parameters(), *new.buffers()]
    if device is not None and not all(_is_on(t, torch.device(device)) for t in tensors):
        new.to(device)
    return new


def _is_on(tensor, device):
    """Whether ``tensor`` is on ``device``; "cuda" (no index) means any CUDA
    device, as torch's current one is (``cuda != cuda:0`` to torch)."""
    return tensor.device.type == device.type and device.index in (None, tensor.device.index)


def _copy(module, memo):
    found = memo.get(id(module))
    if found is not None:
        return found
    new = object.__new__(type(module))
    memo[id(module)] = new
    new.__dict__.update({key: _copy_value(key, value, memo) for key, value in vars(module).items()})
    return new


def _copy_value(key, value, memo):
    if key in ("_parameters", "_buffers"):
        return type(value)((k, copy.deepcopy(t, memo)) for k, t in value.items())
    if key == "_modules":
        return type(value)((k, None if m is None else _copy(m, memo)) for k, m in value.items())
    if isinstance(value, (dict, set)) and not value:
        return type(value)()
    return copy.deepcopy(value, memo)


def copy_optimizer_state(optimizer, copied):
    """Give ``copied`` (a new optimiser of ``optimizer``'s kind over copies of
    its parameters, in the same order) a deep copy of ``optimizer``'s state
    and hyper-parameters, as ``load_state_dict(deepcopy(state_dict()))``
    would, in a tenth of its time: each state tensor cloned where it is.
    Returns False, changing nothing, when a parameter's copy has another
    device or dtype (``load_state_dict`` moves the state then)."""
    old = [p for group in optimizer.param_groups for p in group["params"]]
    new = [p for group in copied.param_groups for p in group["params"]]
    if len(old) != len(new) or len(optimizer.param_groups) != len(copied.param_groups):
        return False
    if any(a.device != b.device or a.dtype != b.dtype for a, b in zip(old, new, strict=True)):
        return False
    for a, b in zip(old, new, strict=True):
        state = optimizer.state.get(a)
        if state is not None:
            copied.state[b] = {k: _clone(v) for k, v in state.items()}
    for a, b in zip(optimizer.param_groups, copied.param_groups, strict=True):
        b.update({k: copy.deepcopy(v) for k, v in a.items() if k != "params"})
    return True


def _clone(value):
    return value.clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)
