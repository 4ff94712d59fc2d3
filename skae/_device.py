"""Devices and tensors: the ``device`` parameter resolved, a saved device
mapped to one that exists here, and numpy rows as tensors. Torch and numpy
only (no scikit-learn)."""

import copy
import warnings
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from ._warnings import user_stacklevel

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def resolve_device(device):
    """Turn the ``device`` parameter into a ``torch.device`` that exists here."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"The 'device' parameter must be 'auto', 'cpu', 'cuda', 'cuda:<index>' "
            f"or a torch.device. Got {device!r} ({exc})."
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available "
                "(torch.cuda.is_available() is False). Use device='cpu' or 'auto'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) are present."
            )
    elif resolved.type != "cpu":
        raise ValueError(f"device={device!r} is not supported; use 'cpu', 'cuda' or 'auto'.")
    return resolved


def available_device(saved, name):
    """The device a fitted model was saved on, when it exists here, else the
    CPU with a warning."""
    try:
        return resolve_device(saved)
    except ValueError as exc:
        reason = " (CUDA is not available)" if "CUDA is not available" in str(exc) else ""
        warnings.warn(
            f"{name} was fitted on {saved!r}, which is not available here{reason}; it will "
            "run on the CPU.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return torch.device("cpu")


def as_tensor(X, device, dtype=torch.float32):
    """A tensor of ``X`` on ``device``; shares memory with ``X`` only when it can
    do so without a copy and ``X`` is writeable (it is never written to)."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    if not (X.flags.writeable and X.flags.c_contiguous and X.dtype == np_dtype):
        # numpy's cast and copy is much faster than torch.tensor's on arrays
        X = np.array(X, dtype=np_dtype, order="C")
    return torch.from_numpy(X).to(device)


def to_numpy(tensor):
    """A tensor's values as a numpy array on the CPU."""
    return tensor.detach().cpu().numpy()


@dataclass
class _Converted:
    """What inference keeps about one module: its tensors, their count of
    parameters and their dtype, and its copy in another dtype with the
    tensors' version counters when the copy was made."""

    tensors: list
    n_parameters: int
    dtype: torch.dtype
    versions: tuple | None = None
    copy: torch.nn.Module | None = None
    copy_dtype: torch.dtype | None = None


#: module -> :class:`_Converted`, weakly keyed: an entry goes with its module,
#: and nothing of it is pickled or deep-copied with an estimator.
_CONVERTED = weakref.WeakKeyDictionary()


def inference_module(module, dtype):
    """``(module in dtype, its number of parameters)`` for inference.

    ``module`` itself in its own dtype; in another, a copy converted once and
    reused while ``module``'s parameters and buffers are unchanged (their
    version counters say so: changed in place, they get a new copy). A
    parameter replaced by a new tensor is not seen; build a new module then.
    """
    entry = _CONVERTED.get(module)
    if entry is None:
        parameters = list(module.parameters())
        entry = _Converted(
            tensors=[*parameters, *module.buffers()],
            n_parameters=sum(p.numel() for p in parameters),
            dtype=parameters[0].dtype if parameters else torch.float32,
        )
        _CONVERTED[module] = entry
    if dtype == entry.dtype:
        return module, entry.n_parameters
    versions = tuple(t._version for t in entry.tensors)
    if entry.copy is None or entry.versions != versions or entry.copy_dtype != dtype:
        entry.copy, entry.versions = copy.deepcopy(module).to(dtype), versions
        entry.copy_dtype = dtype
    return entry.copy, entry.n_parameters
