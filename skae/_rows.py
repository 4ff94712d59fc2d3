"""Rows of training data for the engine: a dense tensor, or a sparse matrix in
compressed sparse row (CSR) form held as three tensors and densified one
batch at a time. Torch only: the estimators turn scipy matrices into
:class:`SparseRows`.

Both kinds answer the same three questions: how many rows (``len``), the
dense rows at some indices (:meth:`take`), and the rows at some indices as
rows of the same kind (:meth:`subset`, for the validation split).
"""

import torch


class DenseRows:
    """The rows of a 2-D tensor.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
    """

    def __init__(self, X):
        self.X = X

    def __len__(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def device(self):
        return self.X.device

    def take(self, index):
        """The rows at ``index`` (a slice or a 1-D integer tensor)."""
        return self.X[index]

    def subset(self, index):
        return DenseRows(self.X[index])


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
    """``X`` as rows: a tensor is wrapped, rows are returned as they are."""
    return DenseRows(X) if isinstance(X, torch.Tensor) else X
