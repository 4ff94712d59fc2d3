"""The fitted state as plain data: which attributes are fitted, the module's
weights to and from numpy arrays, and the version of the layout. Torch and
numpy only (no scikit-learn)."""

import numpy as np
import torch

from ._device import to_numpy

#: Bumped whenever the exported fitted state changes shape; ``_import_state``
#: and ``skae.load`` refuse states of other versions with a message.
STATE_VERSION = 2


def is_fitted_name(name):
    """scikit-learn's rule: fitted attributes end in "_" (and are not dunder).
    skae's private fitted state follows it too (``_rng_``, ``_optimizer_``,
    ``_build_params_``), so this one rule says what is fitted."""
    return name.endswith("_") and not name.startswith("__")


def module_weights(module):
    """``{"weights": {name: array}, "aliases": {name: name kept}}``: the state
    dict with tensors that are the same tensor as an earlier entry (tied
    weights) kept once."""
    weights, aliases, seen = {}, {}, {}
    for key, tensor in module.state_dict().items():
        identity = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
            tensor.dtype,
        )
        kept = seen.setdefault(identity, key)
        if kept != key:
            aliases[key] = kept
        else:
            weights[key] = to_numpy(tensor)
    return {"weights": weights, "aliases": aliases}


def load_module_weights(module, saved):
    """Copy saved weights into ``module``; a clear ValueError when they do not
    fit it (other layers, shapes, dtypes or tied weights)."""
    expected = module_weights(module)
    if saved["aliases"] != expected["aliases"]:
        raise ValueError(
            f"The saved tied weights {saved['aliases']} do not match the module's "
            f"{expected['aliases']}."
        )
    weights, shapes = saved["weights"], expected["weights"]
    if "input_scale" in shapes and "input_scale" not in weights:
        # saved before modules had an input scale: they worked at scale 1
        weights = {**weights, "input_scale": np.ones((), dtype=shapes["input_scale"].dtype)}
    missing, unexpected = sorted(set(shapes) - set(weights)), sorted(set(weights) - set(shapes))
    if missing or unexpected:
        raise ValueError(
            f"The saved weights do not fit the module: missing {missing}, unexpected {unexpected}."
        )
    for key, array in weights.items():
        array = np.asarray(array)
        if array.shape != shapes[key].shape or array.dtype != shapes[key].dtype:
            raise ValueError(
                f"Weight {key!r} has shape {array.shape} and dtype {array.dtype} in the saved "
                f"state; the module expects {shapes[key].shape} and {shapes[key].dtype}."
            )
    full = {key: torch.tensor(np.asarray(array)) for key, array in weights.items()}
    full.update({alias: full[kept] for alias, kept in saved["aliases"].items()})
    module.load_state_dict(full, strict=True)


def skae_version():
    import skae

    return skae.__version__
