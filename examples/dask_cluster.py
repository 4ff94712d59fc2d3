"""Train and apply an autoencoder on a dask cluster with dask-ml's wrappers.

A ``dask.distributed.LocalCluster`` with two worker processes stands in for a
real cluster (point ``--scheduler`` at one to use it). The training rows are a
dask array in blocks: ``dask_ml.wrappers.Incremental`` streams them through
``partial_fit``, one block after another, for ``--epochs`` passes; then
``transform`` and ``score`` run on every block of the held-out rows in
parallel (``ParallelPostFit``'s machinery, which ``Incremental`` shares). The
same ``partial_fit`` calls run here too, to show that the cluster's model is
the local one.

    pip install dask distributed dask-ml
    python examples/dask_cluster.py [--epochs 5] [--block-rows 300] [--quick]
"""

import argparse
import time
import warnings

import dask.array as da
import numpy as np
from dask.distributed import Client, LocalCluster
from dask_ml.wrappers import Incremental
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import Autoencoder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="passes over the blocks")
    parser.add_argument("--block-rows", type=int, default=300)
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--scheduler", default=None, help="address of a running scheduler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="two passes, for a smoke test")
    args = parser.parse_args(argv)
    epochs = 2 if args.quick else args.epochs

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_train, X_test = train_test_split(X, test_size=0.25, stratify=y, random_state=args.seed)
    rows = (args.block_rows, X.shape[1])
    train_blocks, test_blocks = da.from_array(X_train, rows), da.from_array(X_test, rows)

    def autoencoder():
        return Autoencoder(
            n_components=args.components,
            hidden_layer_sizes=(64,),
            batch_size=64,
            random_state=args.seed,
            device="cpu",
        )

    if args.scheduler:
        cluster, client = None, Client(args.scheduler)
    else:
        # one thread per worker process: torch then runs one thread per task
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
    try:
        print(f"dask cluster: {len(client.scheduler_info()['workers'])} workers")
        # shuffle_blocks=False: the blocks in order, so that the local run
        # below makes the same partial_fit calls
        model = Incremental(autoencoder(), shuffle_blocks=False)
        start = time.perf_counter()
        for _ in range(epochs):
            model.partial_fit(train_blocks)
        seconds = time.perf_counter() - start
        print(
            f"Incremental: {epochs} passes over {train_blocks.numblocks[0]} blocks of "
            f"{train_blocks.shape[0]} rows on the cluster, {seconds:.1f} s"
        )
        codes = model.transform(test_blocks)  # lazy: one task per block
        Z = codes.compute()
        score = model.score(test_blocks, None)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    local = autoencoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs):
            for start in range(0, len(X_train), args.block_rows):
                local.partial_fit(X_train[start : start + args.block_rows])
    print(f"codes of {Z.shape[0]} held-out digits: shape {Z.shape}")
    print(f"max |cluster - local| on codes: {np.abs(Z - local.transform(X_test)).max():.2e}")
    local_score = local.score(X_test)
    print(f"held-out score (cluster): {score:.3f}, (local): {local_score:.3f}")
    # the cluster scores in blocks of rows, the local run in one: rounding apart
    print(f"relative score difference: {abs(score - local_score) / abs(local_score):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
