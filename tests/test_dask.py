"""dask-ml's wrappers on a real ``dask.distributed.LocalCluster`` with two
worker processes (one thread each), for every estimator of the family:

- ``Incremental(est).fit`` over a dask array's blocks equals ``partial_fit``
  over the same blocks in the same order, here;
- ``transform`` (a dask array) and ``score`` of ``Incremental`` and
  ``ParallelPostFit`` equal the local results;
- a fitted estimator over a megabyte reaches each worker once per call, not
  once per block; the workers keep the thread count dask gave them.
"""

import os
import sys
import warnings

import numpy as np
import pytest
from _family import ESTIMATORS
from sklearn.datasets import load_digits

from skae import Autoencoder, ConvolutionalAutoencoder

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
wrappers = pytest.importorskip("dask_ml.wrappers")

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # a cluster of two worker processes, started once for the module's tests
    pytest.mark.slow,
    pytest.mark.xdist_group("dask"),
]

ROWS_PER_BLOCK = 300


def small(cls, **params):
    """A tiny instance of a family member, for the 8x8 digits."""
    settings = dict(n_components=4, batch_size=64, random_state=0, device="cpu", **params)
    if cls is ConvolutionalAutoencoder:
        return cls(image_shape=(8, 8), channels=(4,), **settings)
    return cls(hidden_layer_sizes=(16,), **settings)


@pytest.fixture(scope="module")
def client():
    """Two worker processes with one thread each, skae imported in both."""
    environ = {"PYTHONPATH": os.pathsep.join(sys.path)}
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",  # a free port: runs side by side do not collide
            env=environ,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(lambda: __import__("skae") and __import__("dask_ml.wrappers") and None)
        yield client


@pytest.fixture(scope="module")
def digits():
    X = (load_digits().data / 16).astype(np.float32)
    return X, da.from_array(X, chunks=(ROWS_PER_BLOCK, X.shape[1]))


def assert_close_to_local(on_workers, local):
    """Codes computed in other processes, in dask's blocks (300 or 100 rows),
    against local ones in 4096-row blocks: float32 matmuls whose kernel and
    summation order follow the block shape, so equal to a few float32 ulps
    (eps 1.2e-7), not to the bit (1.5e-8 apart on an Intel CPU)."""
    assert on_workers.dtype == local.dtype
    np.testing.assert_allclose(on_workers, local, rtol=1e-5, atol=1e-6)


def local_partial_fit(est, X):
    for start in range(0, len(X), ROWS_PER_BLOCK):
        est.partial_fit(X[start : start + ROWS_PER_BLOCK])
    return est


@pytest.mark.parametrize("cls", ESTIMATORS, ids=[cls.__name__ for cls in ESTIMATORS])
def test_incremental_fit_equals_local_partial_fit(client, digits, cls):
    X, X_dask = digits
    incremental = wrappers.Incremental(small(cls), shuffle_blocks=False).fit(X_dask)
    local = local_partial_fit(small(cls), X)
    fitted = incremental.estimator_
    assert fitted.n_iter_ == local.n_iter_ == X_dask.numblocks[0]
    np.testing.assert_allclose(fitted.loss_curve_, local.loss_curve_, rtol=1e-6)

    Z = incremental.transform(X_dask)
    assert isinstance(Z, da.Array)
    assert_close_to_local(Z.compute(), local.transform(X))
    np.testing.assert_allclose(incremental.score(X_dask, None), local.score(X), rtol=1e-5)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=[cls.__name__ for cls in ESTIMATORS])
def test_parallel_post_fit_transform_and_score_equal_local(client, digits, cls):
    X, X_dask = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = small(cls, max_iter=2).fit(X)
    wrapped = wrappers.ParallelPostFit(est)
    Z = wrapped.transform(X_dask)
    assert isinstance(Z, da.Array) and Z.numblocks[0] == X_dask.numblocks[0]
    # dask-ml maps the blocks without new chunks: the lazy array declares X's
    # width, the computed one has the codes' (README, Scaling out)
    assert Z.shape == X.shape
    assert_close_to_local(Z.compute(), est.transform(X))
    np.testing.assert_allclose(wrapped.score(X_dask, None), est.score(X), rtol=1e-5)


def _count_state_imports():
    """On a worker: count how often a fitted estimator is rebuilt from its
    pickled state."""
    from skae._base import BaseAutoencoder

    original = BaseAutoencoder._import_state
    BaseAutoencoder.imports = 0

    def counting(self, state):
        BaseAutoencoder.imports += 1
        return original(self, state)

    BaseAutoencoder._import_state = counting


def _state_imports():
    from skae._base import BaseAutoencoder

    return BaseAutoencoder.imports


def test_a_large_fitted_estimator_reaches_each_worker_once(client, digits):
    """dask puts arguments over a megabyte (by ``sizeof``) into the graph as
    data of their own, shipped once per worker; ``__sizeof__`` counts the
    weights and optimiser moments so that a large model is one of them."""
    X, X_dask = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = Autoencoder(
            n_components=4, hidden_layer_sizes=(1024,), max_iter=1, random_state=0, device="cpu"
        ).fit(X[:100])
    assert sys.getsizeof(est) > 1_500_000  # 137k weights and Adam's two moments of each
    client.run(_count_state_imports)
    blocks = X_dask.rechunk((100, 64))
    wrapped = wrappers.ParallelPostFit(est)
    assert_close_to_local(wrapped.transform(blocks).compute(), est.transform(X))
    imports = client.run(_state_imports)
    assert blocks.numblocks[0] == 18
    assert all(count <= 1 for count in imports.values()), imports
    wrapped.score(blocks, None)
    assert all(count <= 2 for count in client.run(_state_imports).values())


def test_workers_keep_the_thread_count_dask_gave_them(client, digits):
    """dask starts workers with OMP_NUM_THREADS=1 (one torch thread per task
    thread); training and inference there leave it so."""
    X, X_dask = digits
    incremental = wrappers.Incremental(small(Autoencoder), shuffle_blocks=False).fit(X_dask)
    incremental.transform(X_dask).compute()
    threads = client.run(lambda: __import__("torch").get_num_threads())
    assert set(threads.values()) == {1}, threads


def test_a_dask_array_with_an_empty_block_is_scored_as_its_rows(client, digits):
    """A boolean filter can empty a block: the estimator refuses 0 rows, and
    the array's score failed where a frame's skipped the empty partition."""
    X, _ = digits
    keep = np.ones(len(X), bool)
    keep[100:200] = False
    X_dask = da.from_array(X, chunks=(100, X.shape[1]))[da.from_array(keep, chunks=100)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = small(Autoencoder, max_iter=2).fit(X)
    score = wrappers.ParallelPostFit(est).score(X_dask, None)
    np.testing.assert_allclose(score, est.score(X[keep]), rtol=1e-5)


def test_a_dask_dataframe_is_scored_on_the_workers(client, digits):
    """``ParallelPostFit.score`` of a dask DataFrame: each partition (a pandas
    DataFrame, its column names checked) scored where it is, as an array's
    blocks are, with an empty partition among them; not gathered whole into
    the client."""
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X, _ = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(X.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = small(Autoencoder, max_iter=2).fit(frame)
    parts = dd.from_pandas(frame, npartitions=4)
    empty = dd.from_pandas(frame.iloc[:0], npartitions=1)
    with_empty = dd.concat([parts, empty])
    with distributed.get_task_stream(client) as stream:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "fitted with feature names" warning
            score = wrappers.ParallelPostFit(est).score(with_empty, None)
    np.testing.assert_allclose(score, est.score(frame), rtol=1e-5)
    names = {
        task["key"][0] if isinstance(task["key"], tuple) else task["key"] for task in stream.data
    }
    assert any("scores_of_partition" in str(name) for name in names), names
