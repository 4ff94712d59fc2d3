"""Memory of ``fit``, ``transform`` and ``partial_fit`` on data on disk.

Each case runs in a fresh process that opens its input from a ``.npy`` file
under a temporary folder in /tmp (deleted at the end) and reads
``/proc/self/status``:

- peak RSS above the state before the call (``VmHWM`` after a reset through
  ``/proc/self/clear_refs``; the file's pages are made resident first, so the
  peak counts what the call allocates, not the page cache it reads);
- anonymous memory (``RssAnon``): its growth over the call, and its highest
  value sampled every 5 ms by a thread.

Cases: ``fit`` (one epoch, Autoencoder 784-64-16, batch 256) on a read-only
float32 memmap, on a float64 memmap, and for reference on a read-only
in-memory float32 array, which ``fit`` copies to a tensor (what a memmap cost
before the engine read batches); ``transform`` of the float32 memmap; and
``partial_fit`` over chunks of 10^5 rows read from a 10^7 x 32 float32 file
(1.28 GB), with RssAnon after every call. Torch runs on ``--threads`` (1)
threads: memory is the point, and one thread is steadiest on a shared machine.

    .venv/bin/python benchmarks/bench_memory.py --quick
    .venv/bin/python benchmarks/bench_memory.py
"""

import ctypes
import gc
import json
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path

import _common as C
import numpy as np

MiB = 2**20


def status(key):
    """A ``/proc/self/status`` field in bytes."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(key + ":"))
    return int(line.split()[1]) * 1024


def reset_peak():
    """Freed heap back to the system, then VmHWM restarted at the current RSS."""
    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)
    return C.reset_peak_rss()


class AnonSampler:
    """The highest RssAnon seen while the block runs, polled every 5 ms."""

    def __enter__(self):
        self.peak, self._stop = status("RssAnon"), threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, status("RssAnon"))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, status("RssAnon"))


def write_file(path, n_rows, n_features, dtype, seed=0):
    """Rows near a low-rank subspace, written chunk by chunk (never whole in memory)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((8, n_features)).astype(np.float32) / np.sqrt(8)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n_rows, n_features))
    for start in range(0, n_rows, 65536):
        rows = min(65536, n_rows - start)
        z = rng.standard_normal((rows, 8), dtype=np.float32)
        X[start : start + rows] = z @ basis + 0.05 * rng.standard_normal(
            (rows, n_features), np.float32
        )
    X.flush()
    del X


def estimator(n_features):
    from skae import Autoencoder

    wide = n_features > 100
    return Autoencoder(
        n_components=16 if wide else 4,
        hidden_layer_sizes=(64,) if wide else (16,),
        learning_rate=1e-3,
        batch_size=256,
        max_iter=1,
        early_stopping=False,  # no held-out split of the input: fit reads it as it is
        random_state=0,
        device="cpu",
    )


def measure(call):
    """Run ``call()``; its peak RSS and RssAnon figures, in MiB, and seconds."""
    assert reset_peak(), "needs /proc/self/clear_refs (Linux >= 4.0)"
    rss, anon = status("VmRSS"), status("RssAnon")
    with AnonSampler() as sampler:
        start = time.perf_counter()
        result = call()
        seconds = time.perf_counter() - start
    return result, {
        "seconds": seconds,
        "peak_rss_above_before_mb": (status("VmHWM") - rss) / MiB,
        "rss_anon_growth_mb": (status("RssAnon") - anon) / MiB,
        "peak_rss_anon_above_before_mb": (sampler.peak - anon) / MiB,
        "rss_anon_before_mb": anon / MiB,
    }


def worker(spec):
    """In a fresh process: one case, printed as JSON on the last line."""
    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(spec["threads"])
    X = np.load(spec["path"], mmap_mode="r")
    if spec["case"] == "fit, read-only in-memory float32 (copied)":
        X = np.array(X)
        X.flags.writeable = False
    float(X.sum(dtype=np.float64))  # the file's pages resident before the peak restarts
    est = estimator(X.shape[1])
    est.fit(np.array(X[:2048]))  # one-off allocations (threads, kernels) before measuring
    out = {"case": spec["case"], "n_rows": X.shape[0], "n_features": X.shape[1]}
    out["input_mb"] = X.nbytes / MiB
    if spec["case"].startswith("fit"):
        _, figures = measure(lambda: estimator(X.shape[1]).fit(X))
        out.update(figures, rows_per_sec=X.shape[0] / figures["seconds"])
    elif spec["case"].startswith("transform"):
        Z, figures = measure(lambda: est.transform(X))
        out.update(figures, output_mb=Z.nbytes / MiB, rows_per_sec=X.shape[0] / figures["seconds"])
    else:
        out.update(partial_fit_chunks(spec, X, est))
    print(json.dumps(out))


def partial_fit_chunks(spec, X, est):
    """partial_fit over chunks read from the file into memory; RssAnon after each call."""
    chunk, n_rows, n_features = spec["chunk_rows"], X.shape[0], X.shape[1]
    anon_after = []

    def run():
        with open(spec["path"], "rb") as f:
            f.seek(X.offset)  # past the .npy header
            for start in range(0, n_rows, chunk):
                rows = min(chunk, n_rows - start)
                block = np.fromfile(f, dtype=X.dtype, count=rows * n_features)
                est.partial_fit(block.reshape(rows, n_features))
                anon_after.append(status("RssAnon") / MiB)

    _, figures = measure(run)
    return {
        **figures,
        "chunk_rows": chunk,
        "chunk_mb": chunk * n_features * X.itemsize / MiB,
        "calls": len(anon_after),
        "rows_per_sec": n_rows / figures["seconds"],
        "rss_anon_after_first_call_mb": anon_after[0],
        "rss_anon_after_last_call_mb": anon_after[-1],
        "rss_anon_max_after_a_call_mb": max(anon_after),
        "rss_anon_after_each_call_mb": anon_after,
    }


def add_arguments(p):
    """This benchmark's own arguments (see _common.parse_args for the rest)."""
    p.add_argument("--rows", type=int, default=None, help="rows of the 784-wide files")
    p.add_argument("--stream-rows", type=int, default=None, help="rows of the 32-wide file")
    p.add_argument("--chunk-rows", type=int, default=100_000)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--tmp", default="/tmp", help="where the data files go (deleted after)")


def main():
    args = C.parse_args(
        __doc__, add_arguments, worker=worker, quick_help="small run for CI (~1 minute)"
    )
    if args is None:  # a worker process
        return
    q = args.quick
    args.rows = args.rows or (50_000 if q else 1_000_000)
    args.stream_rows = args.stream_rows or (1_000_000 if q else 10_000_000)
    hardware = C.start()

    folder = Path(tempfile.mkdtemp(prefix="skae_bench_memory_", dir=args.tmp))
    results = []
    try:
        files = {
            "float32": (folder / "X32.npy", args.rows, 784, np.float32),
            "float64": (folder / "X64.npy", args.rows, 784, np.float64),
            "stream": (folder / "stream.npy", args.stream_rows, 32, np.float32),
        }
        cases = [
            ("fit, read-only memmap float32", "float32"),
            ("fit, read-only memmap float64", "float64"),
            ("fit, read-only in-memory float32 (copied)", "float32"),
            ("transform, read-only memmap float32", "float32"),
            ("partial_fit over file chunks", "stream"),
        ]
        written = set()
        for case, key in cases:
            path, n_rows, n_features, dtype = files[key]
            if key not in written:
                print(f"writing {n_rows} x {n_features} {np.dtype(dtype)} to {path}", flush=True)
                write_file(path, n_rows, n_features, dtype)
                written.add(key)
            spec = {
                "case": case,
                "path": str(path),
                "chunk_rows": args.chunk_rows,
                "threads": args.threads,
            }
            res = C.run_worker(__file__, spec, timeout=3600)
            results.append(res)
            print(
                f"  {case}: input {res['input_mb']:.0f} MB, peak RSS +"
                f"{res['peak_rss_above_before_mb']:.1f} MB, RssAnon peak +"
                f"{res['peak_rss_anon_above_before_mb']:.1f} MB, {res['seconds']:.1f} s",
                flush=True,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    columns = [
        "case",
        "n_rows",
        "n_features",
        "input_mb",
        "peak_rss_above_before_mb",
        "peak_rss_anon_above_before_mb",
        "rss_anon_growth_mb",
        "seconds",
        "rows_per_sec",
    ]
    headers = [
        "case",
        "rows",
        "width",
        "input MB",
        "peak RSS above before, MB",
        "peak RssAnon above before, MB",
        "RssAnon growth, MB",
        "s",
        "rows/s",
    ]
    stream = results[-1]
    flat = (
        f"partial_fit: {stream['calls']} calls of {stream['chunk_rows']} rows "
        f"({stream['chunk_mb']:.1f} MB each, read with np.fromfile); RssAnon after the first "
        f"call {stream['rss_anon_after_first_call_mb']:.1f} MB, after the last "
        f"{stream['rss_anon_after_last_call_mb']:.1f} MB, highest after any call "
        f"{stream['rss_anon_max_after_a_call_mb']:.1f} MB."
    )
    sections = [
        (
            "Memory per call",
            "\n".join(
                [
                    "One fresh process per case, torch on "
                    f"{args.threads} thread(s); Autoencoder 784-64-16 (32-16-4 for the 32-wide "
                    "file), batch 256, one epoch. 'Peak RSS above before' is VmHWM after a reset, "
                    "with the file's pages already resident; RssAnon sampled every 5 ms.",
                    "",
                    C.markdown_table(results, columns, headers),
                    "",
                    flat,
                ]
            ),
        )
    ]
    for _, body in sections:
        print("\n" + body)
    payload = {"args": vars(args), "results": results}
    C.write_results("bench_memory", q, payload, sections, hardware, folder=args.results_dir)


if __name__ == "__main__":
    main()
