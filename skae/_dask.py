"""Scoring a dask array or DataFrame where its blocks are
(``ParallelPostFit.score``), told apart without importing dask."""

import numpy as np

from ._validation import FLOAT_DTYPES


def is_dask_array(X):
    """Whether ``X`` is a 2-d dask array (told without importing dask)."""
    return hasattr(X, "__dask_graph__") and hasattr(X, "map_blocks") and getattr(X, "ndim", 0) == 2


def is_dask_frame(X):
    """Whether ``X`` is a dask DataFrame (told without importing dask)."""
    return (
        hasattr(X, "__dask_graph__") and hasattr(X, "map_partitions") and getattr(X, "ndim", 0) == 2
    )


def _score_samples_of_block(block, estimator, out_dtype):
    """A block's scores (a block a boolean filter emptied has none: the
    estimator refuses 0 rows, where the frames' path skipped them)."""
    if len(block) == 0:
        return np.empty((0,), dtype=out_dtype)
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
        out_dtype=dtype,
        drop_axis=1,
        dtype=dtype,
        meta=np.empty((0,), dtype=dtype),
    )
    return float(scores.mean().compute())


def _scores_of_partition(frame, estimator):
    """A partition's scores as a pandas Series (an empty partition has none)."""
    import pandas as pd

    scores = estimator.score_samples(frame) if len(frame) else np.empty((0,))
    return pd.Series(np.asarray(scores, dtype=np.float64), index=frame.index)


def score_dask_frame(estimator, X):
    """The mean score of a dask DataFrame's rows, computed partition by
    partition on the cluster (each a pandas DataFrame, whose column names the
    estimator checks); converted on the client, the whole frame had been."""
    scores = X.map_partitions(_scores_of_partition, estimator, meta=(None, "f8"))
    return float(scores.mean().compute())
