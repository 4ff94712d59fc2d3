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

Torch and numpy only: the estimators choose the source.
"""

import torch


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
