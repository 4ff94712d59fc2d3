"""Data-parallel training under torchrun (DistributedDataParallel, gloo, CPU).

One real launch, ``python -m torch.distributed.run --nproc-per-node 2``, of a
script that calls ``fit`` as any user script would; the ranks write what they
fitted to files, and the tests compare them with each other and with single
processes run here:

- 2 ranks with ``batch_size=b`` give the model of one process with ``2 * b``
  (also when the last global batch is short, or shorter than the number of
  ranks, and with early stopping);
- the ranks agree bit for bit, for every estimator of the family (and the
  imputer's calibrated variance head);
- every rank may pass the same memory-mapped file, read batch by batch;
- the fitted estimator pickles and saves (``skae.save``) without process-group
  state and loads in a process without one;
- progress is reported on rank 0 only; differing inputs are refused on every
  rank; ``distributed=False`` trains each rank alone.

Without torchrun's environment nothing of this runs: tested here directly.
"""

import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
import torch
from _family import ESTIMATORS
from sklearn.datasets import load_digits

from skae import Autoencoder, _distributed, _engine

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # one torchrun launch of two processes, shared by the module's tests
    pytest.mark.slow,
    pytest.mark.xdist_group("torchrun"),
]

#: init="random": these tests compare data-parallel training with training
#: in another process, and a PCA start computed by another process's LAPACK
#: may differ in its last bits, which the first updates of the start's gates
#: (from near-zero gradients) magnify; the PCA start itself is the same on
#: every rank (tests/test_pca_start.py, and the ranks' bit-for-bit test below)
TINY = dict(n_components=3, hidden_layer_sizes=(8,), random_state=0, device="cpu", init="random")

#: name -> (rows of digits, parameters); fitted by each rank with batch_size=8
#: (unless the parameters name another) and here, alone, with twice that
CASES = {
    # 61 = 3 * 16 + 13: the last global batch splits 7 / 6
    "uneven_last_batch": (61, dict(max_iter=3)),
    # 49 = 3 * 16 + 1: rank 1's slice of the last global batch is empty
    "fewer_rows_than_ranks": (49, dict(max_iter=3)),
    "early_stopping": (
        80,
        dict(
            max_iter=6,
            early_stopping=True,
            validation_fraction=0.25,
            n_iter_no_change=1,
            tol=0.5,
            learning_rate=1e-3,  # at 5e-3 the score still improves by more than tol
        ),
    ),
    "no_shuffle": (40, dict(max_iter=2, shuffle=False)),
    # learning_rate="auto" reads the global batch: 2 x 64 rows, 5e-3 * sqrt(2)
    "auto_rate_of_the_global_batch": (300, dict(max_iter=2, batch_size=64)),
    # 2 x 64 rows past the 100 there are: the rate of the 100-row batch they
    # form, as one process clips 128 to 100 (it had been 128's)
    "global_batch_past_the_rows": (100, dict(max_iter=2, batch_size=64)),
}

RANK_SCRIPT = """
    import io, json, logging, os, pickle, sys, warnings
    import numpy as np
    import torch
    import torch.distributed as dist
    from sklearn.datasets import load_digits
    sys.path.insert(0, {tests!r})
    from _family import ESTIMATORS
    import skae
    from skae import Autoencoder
    from test_distributed import CASES, TINY

    warnings.simplefilter("ignore")
    out_dir = sys.argv[1]
    rank = int(os.environ["RANK"])
    X = load_digits().data / 16
    result = {{"group_before_fit": dist.is_initialized()}}

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("skae").addHandler(handler)
    logging.getLogger("skae").setLevel(logging.INFO)

    def weights(est):
        return [p.detach().numpy().tolist() for p in est.module_.state_dict().values()]

    for name, (n_rows, params) in CASES.items():
        verbose = 2 if name == "uneven_last_batch" else 0
        est = Autoencoder(**TINY, **{{"batch_size": 8, **params}}, verbose=verbose)
        est.fit(X[:n_rows])
        result[name] = {{"weights": weights(est), "n_iter": est.n_iter_,
                         "loss_curve": est.loss_curve_,
                         "validation_scores": est.validation_scores_}}
        if name == "uneven_last_batch":
            result["group_after_fit"] = dist.is_initialized()
            result["backend"] = dist.get_backend()
            result["log_records"] = len(records)
            result["module_type"] = type(est.module_).__name__
            with open(os.path.join(out_dir, f"model{{rank}}.pkl"), "wb") as f:
                pickle.dump(est, f)
            again = pickle.loads(pickle.dumps(est))
            result["unpickled_transform_equal"] = bool(
                np.array_equal(again.transform(X[:20]), est.transform(X[:20])))
            saved = io.BytesIO()
            skae.save(est, saved)
            saved.seek(0)
            result["loaded_transform_equal"] = bool(
                np.array_equal(skae.load(saved).transform(X[:20]), est.transform(X[:20])))
            on_disk = np.load(os.path.join(out_dir, "X.npy"), mmap_mode="r")
            result["memmap"] = weights(
                Autoencoder(**TINY, **params, batch_size=8).fit(on_disk))

    for cls in ESTIMATORS:
        extra = {{"pretraining": "greedy", "tied_weights": True}} if cls is ESTIMATORS[0] else {{}}
        est = cls(**TINY, **extra, max_iter=2, batch_size=8).fit(X[:50])
        result[cls.__name__] = weights(est)

    # the variance head is calibrated after training, alike on every rank
    holes = np.random.default_rng(0).uniform(size=(200, 64)) < 0.2
    imputer = skae.AutoencoderImputer(
        hidden_layer_sizes=(16,), max_iter=2, sample_posterior=True, random_state=0
    ).fit(np.where(holes, np.nan, X[:200]))
    result["posterior_imputer"] = weights(imputer)

    # random_state=None: the folds and the inner fits drawn by rank 0 for all
    inner = Autoencoder(n_components=3, hidden_layer_sizes=(8,), max_iter=2, device="cpu")
    detector = skae.AutoencoderOutlierDetector(inner, cv=2).fit(X[:80])
    result["unseeded_detector"] = [detector.offset_, detector.score_samples(X[:20]).tolist()]

    try:
        Autoencoder(**TINY, max_iter=1).fit(X[: 30 + rank])
    except ValueError as exc:
        result["different_shapes"] = str(exc)

    # rank 1's X is refused before the ranks' first collective call; caught
    # there, rank 0 had waited for it in the shape check until killed
    bad = X[:30].copy()
    if rank == 1:
        bad[3, 3] = np.nan
    try:
        Autoencoder(**TINY, max_iter=1).fit(bad)
    except ValueError as exc:
        result["one_rank_refused"] = str(exc)

    # the detector too: its own checks and seeds came before any collective
    # call of the ranks, and rank 0 had waited for rank 1 until killed
    for name, rows, seed in [("detector_one_rank_refused", bad, None),
                             ("detector_different_shapes", X[: 30 + rank], 0)]:
        try:
            skae.AutoencoderOutlierDetector(inner, cv=2, random_state=seed).fit(rows)
        except ValueError as exc:
            result[name] = str(exc)

    alone = Autoencoder(**TINY, max_iter=2, distributed=False).fit(X[rank * 50 : rank * 50 + 50])
    result["alone"] = weights(alone)
    with open(os.path.join(out_dir, f"rank{{rank}}.json"), "w") as f:
        json.dump(result, f)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of two torchrun ranks fitted: one launch for the module."""
    out = tmp_path_factory.mktemp("ddp")
    tests = os.path.dirname(os.path.abspath(__file__))
    script = out / "rank_script.py"
    script.write_text(textwrap.dedent(RANK_SCRIPT.format(tests=tests)))
    np.save(out / "X.npy", digits(CASES["uneven_last_batch"][0]).astype(np.float32))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, *sys.path])}
    for name in _distributed.TORCHRUN_VARIABLES:
        env.pop(name, None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        str(free_port()),
        str(script),
        str(out),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return results, out


def digits(n_rows):
    return load_digits().data[:n_rows] / 16


def flat(weights):
    return np.concatenate([np.ravel(w) for w in weights])


def test_an_unseeded_detector_is_the_same_on_every_rank(ranks):
    results, _ = ranks
    (offset0, scores0), (offset1, scores1) = (r["unseeded_detector"] for r in results)
    assert offset0 == offset1
    np.testing.assert_array_equal(scores0, scores1)


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_with_batch_b_equal_one_process_with_batch_2b(ranks, case):
    results, _ = ranks
    n_rows, params = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch_size = 2 * params.get("batch_size", 8)
        single = Autoencoder(**TINY, **{**params, "batch_size": batch_size}).fit(digits(n_rows))
    expected = [p.detach().numpy() for p in single.module_.state_dict().values()]
    for result in results:
        got = result[case]
        assert got["n_iter"] == single.n_iter_
        np.testing.assert_allclose(flat(got["weights"]), flat(expected), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["loss_curve"], single.loss_curve_, rtol=1e-5)
        if single.validation_scores_ is not None:
            scores = single.validation_scores_
            np.testing.assert_allclose(got["validation_scores"], scores, rtol=1e-5)
    if case == "early_stopping":  # tol=0.5 stops it before max_iter
        assert single.n_iter_ < params["max_iter"]


@pytest.mark.parametrize(
    "name", [*CASES, *(cls.__name__ for cls in ESTIMATORS), "posterior_imputer"]
)
def test_ranks_agree_bit_for_bit(ranks, name):
    rank0, rank1 = ranks[0]
    got0 = rank0[name]["weights"] if name in CASES else rank0[name]
    got1 = rank1[name]["weights"] if name in CASES else rank1[name]
    np.testing.assert_array_equal(flat(got0), flat(got1))


def test_skae_made_the_gloo_group_and_kept_the_plain_module(ranks):
    for result in ranks[0]:
        assert result["group_before_fit"] is False
        assert result["group_after_fit"] is True
        assert result["backend"] == "gloo"
        assert result["module_type"] == "AutoencoderModule"
        assert result["unpickled_transform_equal"]
        assert result["loaded_transform_equal"]


def test_ranks_read_a_shared_memmap_batch_by_batch_to_the_same_model(ranks):
    """float32 copies of the same rows, in a file every rank maps: the batches
    hold the same values, so the model is the in-memory run's bit for bit."""
    for result in ranks[0]:
        in_memory = flat(result["uneven_last_batch"]["weights"])
        np.testing.assert_array_equal(flat(result["memmap"]), in_memory)


def test_ddp_model_unpickles_without_a_process_group(ranks):
    _, out = ranks
    models = [pickle.loads((out / f"model{r}.pkl").read_bytes()) for r in range(2)]
    assert not torch.distributed.is_initialized()
    X = digits(30)
    np.testing.assert_array_equal(models[0].transform(X), models[1].transform(X))
    assert models[0].distributed == "auto"
    models[0].partial_fit(X)  # trains alone here


def test_progress_on_rank_zero_only(ranks):
    rank0, rank1 = ranks[0]
    assert rank0["log_records"] == CASES["uneven_last_batch"][1]["max_iter"]
    assert rank1["log_records"] == 0


def test_different_inputs_are_refused_on_every_rank(ranks):
    for result in ranks[0]:
        assert "every rank must pass the same X" in result["different_shapes"]
        assert "[(30, 64), (31, 64)]" in result["different_shapes"]


def test_a_rank_whose_input_is_refused_fails_the_others_too(ranks):
    rank0, rank1 = ranks[0]
    assert "rank(s) [1] failed before training" in rank0["one_rank_refused"]
    assert "Input X contains NaN" in rank1["one_rank_refused"]


def test_a_detectors_refused_input_or_shape_fails_every_rank(ranks):
    rank0, rank1 = ranks[0]
    assert "rank(s) [1] failed before training" in rank0["detector_one_rank_refused"]
    assert "Input X contains NaN" in rank1["detector_one_rank_refused"]
    for result in ranks[0]:
        assert "[(30, 64), (31, 64)]" in result["detector_different_shapes"]


def test_distributed_false_trains_each_rank_alone(ranks):
    rank0, rank1 = ranks[0]
    for rank, result in enumerate(ranks[0]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            alone = Autoencoder(**TINY, max_iter=2).fit(digits(100)[rank * 50 : rank * 50 + 50])
        expected = [p.detach().numpy() for p in alone.module_.state_dict().values()]
        # trained in torchrun's process (one torch thread) and here: the same
        # float32 steps, whose kernels may sum in another order, so to a few
        # ulps, as in test_two_ranks_with_batch_b_equal_one_process_with_batch_2b
        np.testing.assert_allclose(flat(result["alone"]), flat(expected), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(flat(rank0["alone"]), flat(rank1["alone"]))


# ---------------------------------------------------- without torchrun


@pytest.fixture
def no_torchrun(monkeypatch):
    for name in _distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_plain_process_trains_alone_and_makes_no_group(no_torchrun, monkeypatch):
    shards = []
    train = _engine.train

    def recording_train(*args, shard=None, **kwargs):
        shards.append(shard)
        return train(*args, shard=shard, **kwargs)

    monkeypatch.setattr(_engine, "train", recording_train)
    Autoencoder(**TINY, max_iter=1).fit(digits(30))
    assert shards == [None]
    assert not torch.distributed.is_initialized()


def test_torchrun_with_one_process_trains_alone(monkeypatch):
    torchrun = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
    for name, value in {**torchrun, "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(name, value)
    assert _distributed.current_shard("auto", torch.device("cpu")) is None
    assert not torch.distributed.is_initialized()


def test_auto_stays_alone_in_threads_and_worker_processes(monkeypatch):
    """joblib and dask workers inherit torchrun's variables: they must not
    join the launcher's group (nor fits in threads, which cannot keep the
    ranks' collective calls in step)."""
    torchrun = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
    for name, value in {**torchrun, "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(name, value)
    found = []
    thread = threading.Thread(
        target=lambda: found.append(_distributed.current_shard("auto", torch.device("cpu")))
    )
    thread.start()
    thread.join()
    assert found == [None]
    monkeypatch.setattr(_distributed.multiprocessing, "parent_process", lambda: object())
    assert _distributed.current_shard("auto", torch.device("cpu")) is None
    assert not torch.distributed.is_initialized()


def test_distributed_true_without_a_group_says_how_to_get_one(no_torchrun):
    with pytest.raises(ValueError, match="launch the script with torchrun"):
        Autoencoder(**TINY, max_iter=1, distributed=True).fit(digits(30))


def test_distributed_parameter_is_validated():
    with pytest.raises(ValueError, match="distributed"):
        Autoencoder(**TINY, distributed="yes").fit(digits(30))


def test_shard_bounds_split_a_global_batch_into_consecutive_near_equal_slices():
    for world_size in (1, 2, 3, 4):
        for n_rows in range(0, 20):
            bounds = [_engine.Shard(r, world_size).bounds(n_rows) for r in range(world_size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n_rows
            assert all(a[1] == b[0] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
            sizes = [stop - start for start, stop in bounds]
            assert max(sizes) - min(sizes) <= 1
