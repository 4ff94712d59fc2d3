"""Seconds per epoch of data-parallel training under torchrun, on the CPU.

An unchanged training script (``fit`` once, then one ``partial_fit`` per
timed epoch) launched with ``python -m torch.distributed.run
--nproc-per-node N`` for N = 1 and 2 on MNIST's 50,000 training rows (scaled
by 1/255): skae trains alone with one process and with
DistributedDataParallel (gloo) with two. The global batch is the same
everywhere (256: ``batch_size=256`` for one process, 128 per rank for two), so
the runs train the same model up to float rounding, which training then
amplifies; the table compares each run's loss curve and the codes of 1,000
held-out rows with the one-process, one-thread run's. A last one-process run
computes each batch loss as the mean of its two halves' losses, as two ranks
do: it rounds as DDP does, so it shows how much of the difference is rounding.

Threads: each process runs torch on ``--threads-per-process`` threads (set
with ``torch.set_num_threads`` and ``OMP_NUM_THREADS``); the one-process case
runs once with that and once with as many threads as the two processes have
together, so that both ways of using the cores are compared.

``--device cuda --processes 1,N`` is the GPU check's smoke test of
DistributedDataParallel on nccl: each rank trains on its own GPU
(``LOCAL_RANK``); results go to ``bench_distributed_cuda``.

    .venv/bin/python benchmarks/bench_distributed.py --quick
    .venv/bin/python benchmarks/bench_distributed.py --epochs 3
    .venv/bin/python benchmarks/bench_distributed.py --device cuda --processes 1,2
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _common as C
import numpy as np

HIDDEN, CODE, GLOBAL_BATCH = (512, 128), 32, 256


def half_batch_autoencoder(**params):
    """An Autoencoder whose batch loss is the mean of its two halves' losses,
    each computed on its own, as two DDP ranks compute it: a one-process
    reference that rounds as DDP does."""
    from skae import Autoencoder

    class HalfBatchAutoencoder(Autoencoder):
        def _training_loss(self, module, generator, **kwargs):
            loss = super()._training_loss(module, generator, **kwargs)

            def batch_loss(x):
                half = (len(x) + 1) // 2
                return (loss(x[:half]) * half + loss(x[half:]) * (len(x) - half)) / len(x)

            return batch_loss

    return HalfBatchAutoencoder(**params)


def worker(spec):
    """One rank of a torchrun launch: fit, time partial_fit epochs, and (rank 0)
    write the timings and held-out codes to ``spec["out"]``."""
    import torch

    from skae import Autoencoder

    warnings.simplefilter("ignore")
    torch.set_num_threads(spec["threads"])
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    data = C.load_mnist(spec["mnist"])
    X = data["X_train"][: spec["rows"]]
    est = (half_batch_autoencoder if spec["half_batches"] else Autoencoder)(
        n_components=CODE,
        hidden_layer_sizes=HIDDEN,
        learning_rate=1e-3,
        batch_size=GLOBAL_BATCH // world_size,
        max_iter=1,
        early_stopping=False,  # every rank trains on all its rows, no held-out split
        random_state=0,
        device=spec["device"],
    )
    start = time.perf_counter()
    est.fit(X)  # the first epoch: process group, threads, allocations
    first = time.perf_counter() - start
    seconds = []
    for _ in range(spec["epochs"]):
        start = time.perf_counter()
        est.partial_fit(X)
        seconds.append(time.perf_counter() - start)
    if rank == 0:
        result = {
            "half_batches": spec["half_batches"],
            "backend": torch.distributed.get_backend() if world_size > 1 else None,
            "processes": world_size,
            "threads_per_process": torch.get_num_threads(),
            "distributed": torch.distributed.is_initialized(),
            "first_epoch_seconds": first,
            "epoch_seconds": seconds,
            "loss_curve": est.loss_curve_,
            "codes": est.transform(data["X_valid"][:1000]).tolist(),
        }
        Path(spec["out"]).write_text(json.dumps(result))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(processes, threads, args, out, half_batches=False):
    """One torchrun launch of this script's worker; what its rank 0 wrote."""
    spec = {
        "half_batches": half_batches,
        "threads": threads,
        "rows": args.rows,
        "epochs": args.epochs,
        "mnist": args.mnist,
        "out": str(out),
        "device": args.device,
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(processes),
        "--master-port",
        str(free_port()),
        __file__,
        "--worker",
        json.dumps(spec),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun {processes} x {threads} failed:\n{proc.stderr[-3000:]}")
    return json.loads(Path(out).read_text())


def add_arguments(p):
    """This benchmark's own arguments (see _common.parse_args for the rest)."""
    p.add_argument("--mnist", default=str(C.DEFAULT_MNIST), help="path to mnist_trainval.npz")
    p.add_argument("--rows", type=int, default=None, help="MNIST training rows used")
    p.add_argument("--epochs", type=int, default=None, help="timed epochs per launch")
    p.add_argument("--threads-per-process", type=int, default=1)
    p.add_argument("--processes", default="1,2", help="process counts to launch")
    p.add_argument("--device", default="cpu", help="cpu, or cuda: one GPU per rank")


def main():
    args = C.parse_args(
        __doc__, add_arguments, worker=worker, quick_help="small run for CI (~2 minutes)"
    )
    if args is None:  # a worker process
        return
    q = args.quick
    args.rows = args.rows or (10_000 if q else 50_000)
    args.epochs = args.epochs or (2 if q else 5)
    hardware = C.start()

    t, on_cpu = args.threads_per_process, args.device == "cpu"
    counts = [int(n) for n in args.processes.split(",")]
    cases = [(n, t, False) for n in counts]
    if on_cpu and 1 in counts and max(counts) > 1:
        # the same cores as one process's threads; and the rounding of two ranks
        cases.insert(counts.index(1) + 1, (1, max(counts) * t, False))
        cases.append((1, t, True))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (processes, threads, half_batches) in enumerate(cases):
            res = launch(processes, threads, args, Path(tmp) / f"case{i}.json", half_batches)
            res["median_epoch_seconds"] = float(np.median(res["epoch_seconds"]))
            res["min_epoch_seconds"] = float(np.min(res["epoch_seconds"]))
            res["samples_per_sec"] = args.rows / res["median_epoch_seconds"]
            runs.append(res)
            print(
                f"  {processes} process(es) x {threads} thread(s): "
                f"{res['median_epoch_seconds']:.2f} s per epoch (median of {args.epochs})",
                flush=True,
            )
    reference = np.asarray(runs[0]["codes"])
    reference_losses = np.asarray(runs[0]["loss_curve"])
    comparison = ""
    halves = [r for r in runs if r["half_batches"]]
    ddp = [r for r in runs if r["distributed"]]
    if halves and ddp:
        half, parallel = halves[0], ddp[-1]
        code_diff = np.abs(np.asarray(parallel["codes"]) - np.asarray(half["codes"])).max()
        loss_diff = np.abs(np.asarray(parallel["loss_curve"]) / half["loss_curve"] - 1).max()
        comparison = (
            f"DDP against the half-batch run: loss curve max rel. diff {loss_diff:.2e}, codes "
            f"max diff / max code {code_diff / np.abs(reference).max():.2e}."
        )
    for res in runs:
        codes = np.asarray(res.pop("codes"))
        res["max_abs_code_diff_vs_first"] = float(np.abs(codes - reference).max())
        res["code_diff_relative_to_largest_code"] = res["max_abs_code_diff_vs_first"] / float(
            np.abs(reference).max()
        )
        res["max_relative_loss_diff_vs_first"] = float(
            np.max(np.abs(np.asarray(res["loss_curve"]) / reference_losses - 1))
        )
        res["speedup_vs_first"] = runs[0]["median_epoch_seconds"] / res["median_epoch_seconds"]
        res["case"] = (
            f"{res['processes']} process{'es' if res['processes'] > 1 else ''} x "
            f"{res['threads_per_process']} thread{'s' if res['threads_per_process'] > 1 else ''}"
            + (f" (DDP, {res['backend']})" if res["distributed"] else "")
            + (", loss as the mean of two half-batch means" if res["half_batches"] else "")
        )
        res["batch_per_process"] = GLOBAL_BATCH // res["processes"]

    columns = [
        "case",
        "batch_per_process",
        "median_epoch_seconds",
        "min_epoch_seconds",
        "samples_per_sec",
        "speedup_vs_first",
        "first_epoch_seconds",
        "max_relative_loss_diff_vs_first",
        "code_diff_relative_to_largest_code",
    ]
    headers = [
        "processes x threads",
        "batch per process",
        "s per epoch (median)",
        "s per epoch (min)",
        "samples/s",
        "speed-up",
        "first epoch s",
        "loss curve vs first row (max rel. diff)",
        "codes vs first row (max diff / max code)",
    ]
    body = "\n".join(
        [
            f"MNIST {args.rows} x 784 float32 rows, Autoencoder 784-{HIDDEN[0]}-{HIDDEN[1]}-{CODE}, "
            f"Adam, global batch {GLOBAL_BATCH}; {args.epochs} timed epochs (partial_fit) after a "
            f"first fit epoch; every case launched with torchrun, device {args.device}.",
            "",
            C.markdown_table(runs, columns, headers),
            "",
            comparison,
        ]
    )
    print("\n" + body)
    C.write_results(
        "bench_distributed" if on_cpu else "bench_distributed_cuda",
        q,
        {"args": vars(args), "runs": runs},
        [("Seconds per epoch", body)],
        hardware,
        folder=args.results_dir,
    )


if __name__ == "__main__":
    main()
