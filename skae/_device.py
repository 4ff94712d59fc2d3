"""Devices and tensors: the ``device`` parameter resolved, a saved device
mapped to one that exists here, and numpy rows as tensors. Torch and numpy
only (no scikit-learn)."""

import warnings

import numpy as np
import torch

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
            stacklevel=4,
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
