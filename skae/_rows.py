"""Rows of training data for the engine. Every source answers the same
questions: how many rows (``len``), how wide (``n_features``), where its
batches are made (``device``), the dense rows at some positions as a tensor
(:meth:`take`), and the rows at some positions as a source of their own
(:meth:`subset`, for the validation split).

- :class:`TensorRows`: one tensor, converted once; a batch is one gather.
- :class:`ArrayRows`: a numpy array (a memory map larger than memory) read
  and converted one batch at a time.
- :class:`SparseRows`: a CSR matrix held as three tensors and densified one
  batch at a time.

:func:`training_rows` chooses the source for a fit's validated input;
:func:`block_rows` sizes the blocks of inference, :func:`input_scale` reads
the scale the layers see the data at. Torch, numpy and scipy only (no
scikit-learn).
"""

import mmap
import os
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from ._device import as_tensor
from ._warnings import user_stacklevel


class TensorRows:
    """Training rows held in one tensor: a batch is an index (or slice) of it.

    The engine's fast path: the data was converted once, and a batch costs
    one gather.
    """

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return self.data.shape[0]

    @property
    def n_features(self):
        return self.data.shape[1]

    @property
    def device(self):
        return self.data.device

    def take(self, index):
        """The rows at ``index`` (a slice, or a tensor of positions), as a tensor."""
        return self.data[index]

    def subset(self, index):
        """The rows at ``index`` as a row source of their own (a copy)."""
        return TensorRows(self.data[index])


class ArrayRows:
    """Training rows read from a numpy array one batch at a time, for data
    that must not be copied whole: a read-only ``np.memmap`` over a file
    larger than memory, or an array whose float32 copy would not fit.

    ``take`` gathers only the batch's rows and converts only them to
    ``dtype``; ``subset`` keeps positions, not rows. A batch holds the same
    values, in the same order, as :class:`TensorRows` over the converted
    array would give, so training does not depend on which source holds X.

    Parameters
    ----------
    data : ndarray of shape (n_rows, n_features)
        Any numpy array, memory-mapped or not; never written to.
    dtype : torch.dtype, default=torch.float32
        The dtype of the batches.
    index : torch.Tensor of int64, default=None
        The rows of ``data`` this source holds, in order (all of them when None).
    """

    device = torch.device("cpu")

    def __init__(self, data, dtype=torch.float32, index=None):
        self.data, self.dtype, self.index = data, dtype, index

    def __len__(self):
        return self.data.shape[0] if self.index is None else len(self.index)

    @property
    def n_features(self):
        return self.data.shape[1]

    def _positions(self, index):
        if isinstance(index, slice):
            index = torch.arange(*index.indices(len(self)))
        return index if self.index is None else self.index[index]

    def take(self, index):
        """The rows at ``index`` (a slice, or a tensor of positions), as a
        new CPU tensor of ``dtype``."""
        rows = self.data[self._positions(index).numpy()]  # numpy's gather: a new array
        return torch.from_numpy(rows).to(self.dtype)

    def subset(self, index):
        """The rows at ``index`` as a row source of their own (positions only)."""
        return ArrayRows(self.data, self.dtype, self._positions(index))


class SparseRows:
    """The rows of a CSR matrix, densified on request.

    Parameters
    ----------
    crow : torch.Tensor of shape (n_samples + 1,)
        Row pointers (``indptr``): row ``i`` holds entries
        ``crow[i]:crow[i + 1]``.
    col : torch.Tensor
        The column of each stored entry (``indices``), int32 or int64.
    values : torch.Tensor
        The value of each stored entry (``data``), in the dtype batches come in.
    n_features : int
        The number of columns.

    No two entries of a row may share a column (scipy's canonical format):
    densifying writes each entry once, it does not add them up.
    """

    def __init__(self, crow, col, values, n_features):
        self.crow, self.col, self.values = crow, col, values
        self.n_features = int(n_features)

    def __len__(self):
        return self.crow.shape[0] - 1

    @property
    def device(self):
        return self.values.device

    def _index(self, index):
        if isinstance(index, slice):
            return torch.arange(len(self), device=self.crow.device)[index]
        return index.to(self.crow.device)

    def _gather(self, index):
        """(row pointers, positions of the entries) of the rows at ``index``."""
        starts = self.crow[index]
        counts = self.crow[index + 1] - starts
        crow = torch.zeros(len(index) + 1, dtype=self.crow.dtype, device=self.crow.device)
        torch.cumsum(counts, 0, out=crow[1:])
        # entry k of gathered row r sits at starts[r] + k
        total = int(crow[-1])
        first = torch.repeat_interleave(starts - crow[:-1], counts, output_size=total)
        positions = first + torch.arange(total, dtype=first.dtype, device=first.device)
        return crow, positions

    def take(self, index):
        """The rows at ``index`` (a slice or a 1-D integer tensor), dense."""
        index = self._index(index)
        crow, positions = self._gather(index)
        rows = torch.repeat_interleave(
            torch.arange(len(index), device=crow.device),
            crow[1:] - crow[:-1],
            output_size=positions.shape[0],
        )
        dense = torch.zeros(
            (len(index), self.n_features), dtype=self.values.dtype, device=self.values.device
        )
        dense[rows, self.col[positions].long()] = self.values[positions]
        return dense

    def subset(self, index):
        crow, positions = self._gather(self._index(index))
        return SparseRows(crow, self.col[positions], self.values[positions], self.n_features)


def as_rows(X):
    """``X`` as a row source: tensors are wrapped, row sources pass through."""
    return TensorRows(X) if isinstance(X, torch.Tensor) else X


#: Rows per block in transform, inverse_transform and score_samples: memory
#: stays bounded for any number of rows...
INFERENCE_BLOCK_SIZE = 4096
#: ... and fewer for wide data (a sparse matrix is densified a block at a
#: time): at most this many values per block (64 MB in float32).
INFERENCE_BLOCK_VALUES = 2**24


def is_memory_mapped(X):
    """Whether ``X`` is, or is a view of, a memory map (``np.memmap``,
    ``np.load(..., mmap_mode=...)``)."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


def available_memory(root="/"):
    """Bytes of memory available to new allocations: Linux's MemAvailable, or
    less where this process's control group caps it (a container's memory
    limit, which MemAvailable does not see: a copy that fit the machine
    could exceed the container's limit); None where neither can be read.
    ``root``: the file system's root (tests give another)."""
    values = [v for v in (_mem_available(root), _cgroup_room(root)) if v is not None]
    return min(values) if values else None


def _read(root, path):
    """The stripped text of the file at ``path`` under ``root``, or None."""
    try:
        with open(os.path.join(root, path.lstrip("/"))) as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _mem_available(root):
    for line in (_read(root, "/proc/meminfo") or "").splitlines():
        if line.startswith("MemAvailable:") and len(line.split()) > 1:
            value = line.split()[1]
            return int(value) * 1024 if value.isdigit() else None
    return None


def _cgroup_room(root):
    """The bytes this process's control group may still allocate (its limit
    less its usage; cgroup v2, else v1's memory controller), or None without
    a limit. Its own group first (as ``/proc/self/cgroup`` names it), then
    the hierarchy's root (a container sees its group there)."""
    v2, v1 = [], []
    for line in (_read(root, "/proc/self/cgroup") or "").splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            v2.append(path)
        elif "memory" in controllers.split(","):
            v1.append(path)
    places = [(f"/sys/fs/cgroup{p}".rstrip("/"), "memory.max", "memory.current") for p in v2]
    places.append(("/sys/fs/cgroup", "memory.max", "memory.current"))
    v1_files = ("memory.limit_in_bytes", "memory.usage_in_bytes")
    places += [(f"/sys/fs/cgroup/memory{p}".rstrip("/"), *v1_files) for p in v1]
    places.append(("/sys/fs/cgroup/memory", *v1_files))
    for base, limit_file, usage_file in places:
        limit, usage = _read(root, f"{base}/{limit_file}"), _read(root, f"{base}/{usage_file}")
        # "max", or v1's page-rounded 2**63 for a group without a limit
        if limit and limit.isdigit() and int(limit) < 2**60 and usage and usage.isdigit():
            return max(int(limit) - int(usage), 0)
    return None


#: A float32 copy of the training data larger than this share of the
#: available memory is not made: the engine reads X batch by batch instead.
MAX_COPY_FRACTION = 0.5


def _owned_tensor(array, device):
    """``array`` as a tensor on ``device``, copied first when it is read-only
    (a memory-mapped CSR matrix's parts, as ``joblib.load(mmap_mode="r")``
    gives): torch warns of shared read-only memory, as the dense rows'
    :func:`~skae._device.as_tensor` copies them."""
    return torch.from_numpy(array if array.flags.writeable else array.copy()).to(device)


def training_rows(X, device):
    """The engine's row source (:mod:`skae._rows`) for the validated training
    data ``X``, in float32.

    A CSR matrix stays sparse (three tensors on ``device``), densified one
    batch at a time; a torch tensor is moved to ``device``. A numpy array is
    one float32 tensor when that costs no copy (float32, C-contiguous,
    writeable) or a copy that fits comfortably, and is read batch by batch
    (:class:`~skae._rows.ArrayRows`) when it is a memory map, which is never
    copied whole, or when its float32 copy would take more than
    ``MAX_COPY_FRACTION`` of the available memory. Dense sources give the
    same batches.
    """
    if sp.issparse(X):
        return SparseRows(
            _owned_tensor(X.indptr.astype(np.int64, copy=False), device),
            _owned_tensor(X.indices, device),  # int32 or int64, as scipy made it
            _owned_tensor(X.data.astype(np.float32, copy=False), device),
            X.shape[1],
        )
    if isinstance(X, torch.Tensor):
        return TensorRows(X.detach().to(device, torch.float32))
    return ArrayRows(X) if read_in_batches(X) else TensorRows(as_tensor(X, device))


def read_in_batches(X):
    """Whether training reads the numpy array ``X`` batch by batch
    (:func:`training_rows`): a memory map, or an array it cannot share (not
    float32, C-contiguous and writeable) whose float32 copy is too large."""
    if is_memory_mapped(X):
        return True
    shareable = X.flags.writeable and X.flags.c_contiguous and X.dtype == np.float32
    return not shareable and _copy_too_large(X)


def split_validation(rows, fraction, generator):
    """(training rows, held-out rows), a random ``fraction`` (at least one
    row) held out; (rows, None) for a ``fraction`` of None."""
    if fraction is None:
        return rows, None
    n_samples = len(rows)
    n_val = max(1, int(np.ceil(fraction * n_samples)))
    if n_val >= n_samples:
        raise ValueError(
            f"validation_fraction={fraction} leaves no training "
            f"samples out of n_samples={n_samples}."
        )
    order = torch.randperm(n_samples, generator=generator, device=generator.device)
    order = order.to(rows.device)
    return rows.subset(order[n_val:]), rows.subset(order[:n_val])


def _copy_too_large(X):
    """Whether a float32 copy of X would take more than ``MAX_COPY_FRACTION``
    of the available memory (read only when a copy is to be made)."""
    free = available_memory()
    return free is not None and 4 * X.size > MAX_COPY_FRACTION * free


def block_rows(n_features):
    """Rows per inference block for rows ``n_features`` wide."""
    return max(1, min(INFERENCE_BLOCK_SIZE, INFERENCE_BLOCK_VALUES // n_features))


#: Values per block of the pass that learns the input scale: small, so that
#: it adds a few MB at most to a fit over a memory map.
SCALE_BLOCK_VALUES = 2**18


def root_mean_square(rows, *, centred=False):
    """The root mean square of every value of a row source (:mod:`skae._rows`;
    a sparse one's implicit zeros count), read block by block and summed in
    float64; with ``centred``, also that of the values less their column's
    mean."""
    step = max(1, SCALE_BLOCK_VALUES // rows.n_features)
    total, columns = 0.0, 0.0
    for start in range(0, len(rows), step):
        block = rows.take(slice(start, start + step)).double()
        total += float(block.square().sum())
        columns = columns + block.sum(0) if centred else 0.0
    n_values = len(rows) * rows.n_features
    rms = float(np.sqrt(total / n_values))
    if not centred:
        return rms
    means_square = float((columns / len(rows)).square().sum()) * len(rows)
    return rms, float(np.sqrt(max(total - means_square, 0.0) / n_values))


#: A warning when the training rows' root mean square is this many times
#: their spread about the column means (a constant offset of 10 spreads).
OFFSET_WARNING_RATIO = 10.0


def far_from_zero(rms, spread):
    """Whether rows of root mean square ``rms`` lie far from zero against
    their ``spread`` about the column means (``OFFSET_WARNING_RATIO``)."""
    return 0 < OFFSET_WARNING_RATIO * spread < rms


def input_scale(rows):
    """The scale the layers see the training rows at (``module.input_scale``):
    their root mean square, or 1 when that is 0 or below float32's smallest
    normal number. Rows far from zero against their spread warn: divided by
    their root mean square they barely vary, and the non-linear layers,
    which see them uncentred, learn little beside PCA's start."""
    rms, spread = root_mean_square(rows, centred=True)
    # one row, or rows that do not vary, have no spread to compare with
    if len(rows) > 1 and far_from_zero(rms, spread):
        warnings.warn(
            f"X is far from zero against its spread: its root mean square is "
            f"{rms / spread:.3g} times its standard deviation "
            "about the column means: the non-linear layers, which see X divided by the "
            "former, barely learn (the fit stays near PCA), and the network's float32 "
            "arithmetic loses digits of X's variation to its offset (even the PCA start "
            "drifts from PCA's codes). Centre X first, for example with "
            "sklearn.preprocessing.StandardScaler(with_std=False).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return rms if rms >= np.finfo(np.float32).tiny else 1.0
