"""Scoring a dask array where its blocks are (``ParallelPostFit.score``),
told apart without importing dask."""

import numpy as np

from ._validation import FLOAT_DTYPES


def is_dask_array(X):
    """Whether ``X`` is a 2-d dask array (told without importing dask)."""
    return hasattr(X, "__dask_graph__") and hasattr(X, "map_blocks") and getattr(X, "ndim", 0) == 2


def _score_samples_of_block(block, estimator):
    return estimator.score_samples(block)


def score_dask_array(estimator, X):
    """The mean score of a dask array's rows, computed block by block on the
    cluster; the estimator goes in as an argument, so that dask ships a large
    one once (see ``__sizeof__``)."""
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    dtype = X.dtype if X.dtype in FLOAT_DTYPES else np.dtype(np.float64)
    scores = X.map_blocks(
        _score_samples_of_block,
        estimator=estimator,
        drop_axis=1,
        dtype=dtype,
        meta=np.empty((0,), dtype=dtype),
    )
    return float(scores.mean().compute())
