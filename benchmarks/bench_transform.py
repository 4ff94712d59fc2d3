"""``transform`` throughput and peak memory of skae's Autoencoder.

Throughput: ``Autoencoder.transform`` on the 60,000 MNIST rows (train + valid,
float32) against the plain torch encoder with the same fitted weights
(``est.module_.encode``, the encoder on ``X / input_scale``, on the whole tensor under ``torch.inference_mode()``)
and against ``PCA.transform``; medians of interleaved repeats.

Memory: peak RSS while transforming 1,000,000 x 784 synthetic float32 rows
(100,000 with --quick), each case in its own fresh process so the peaks do not
mix, reported as MB above the RSS once the input exists, next to the size of
the output.

Single row: ``transform``, ``score_samples`` and the outlier detector's
``decision_function`` on one digits row, skae against PCA side by side in
this process (``PCA.transform``; for ``score_samples`` also PCA's own
per-row score, ``PCA.score_samples`` (a Gaussian log-likelihood), and PCA's
reconstruction error, ``((pca.inverse_transform(pca.transform(x)) - x) **
2).sum(1)``, the same quantity as skae's score; for the detector, PCA's
reconstruction error less its threshold, as bench_outliers scores PCA),
float64 and float32 input, the median of 1,000 calls each, the two
interleaved call by call so that both see the same load, BLAS at one thread
for both (a row gains nothing from threads; with OpenBLAS's two, float64
``PCA.score_samples`` took 8 ms in one process, 0.25 ms in another).
``--single-row-only``
reruns this section alone and writes it into the last full results (with its
own date, commit and load average).

``--device cuda`` times the throughput on the GPU (the input stays a numpy
array on the host, as a user's does; the plain encoder gets a host tensor
and returns one, and timers wait for the GPU) and writes
``bench_transform_cuda``; ``--skip-memory`` leaves out the peak-RSS cases.

    .venv/bin/python benchmarks/bench_transform.py --quick
    .venv/bin/python benchmarks/bench_transform.py
    .venv/bin/python benchmarks/bench_transform.py --device cuda --skip-memory
    .venv/bin/python benchmarks/bench_transform.py --single-row-only
"""

import argparse
import json
import pickle
import tempfile
import time
import warnings
from pathlib import Path

import _common as C
import numpy as np
import torch
from threadpoolctl import threadpool_limits

HIDDEN, CODE = (512, 128), 32
CASES = [
    "skae Autoencoder.transform",
    "torch encoder, one call (inference_mode)",
    "torch encoder, 4096-row blocks (inference_mode)",
    "PCA.transform",
]


def _device_of(module):
    return next(module.parameters()).device


def plain_encoder(module, X):
    """The module's ``encode`` (the encoder layers on ``X / input_scale``) in
    one call."""
    device = _device_of(module)
    with torch.inference_mode():
        return module.encode(torch.from_numpy(X).to(device)).cpu().numpy()


def plain_encoder_blocked(module, X, block=4096):
    device = _device_of(module)
    out = np.empty((X.shape[0], CODE), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, X.shape[0], block):
            out[i : i + block] = (
                module.encode(torch.from_numpy(X[i : i + block]).to(device)).cpu().numpy()
            )
    return out


def transform_fn(case, est, pca):
    if case == CASES[0]:
        return est.transform
    if case == CASES[1]:
        return lambda X: plain_encoder(est.module_, X)
    if case == CASES[2]:
        return lambda X: plain_encoder_blocked(est.module_, X)
    return pca.transform


def single_row_latency(n_calls=1000, detector_rows=None):
    """Median seconds of one-row calls, skae beside PCA, per dtype and method."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    from skae import Autoencoder, AutoencoderOutlierDetector

    X = load_digits().data / 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = Autoencoder(n_components=8, random_state=0, device="cpu").fit(X)
        detector = AutoencoderOutlierDetector(random_state=0)
        detector.fit(X[:detector_rows])
    pca = PCA(n_components=8, random_state=0).fit(X)
    pca_detector = PCA(n_components=detector.estimator_.n_components, random_state=0).fit(X)
    offset = detector.offset_

    def pca_error(row):
        return ((pca.inverse_transform(pca.transform(row)) - row) ** 2).sum(axis=1)

    def pca_decision(row):
        rebuilt = pca_detector.inverse_transform(pca_detector.transform(row))
        return -((rebuilt - row) ** 2).sum(axis=1) - offset

    pairs = [
        ("transform", est.transform, pca.transform, "PCA.transform"),
        ("score_samples", est.score_samples, pca.transform, "PCA.transform"),
        ("score_samples", est.score_samples, pca.score_samples, "PCA.score_samples"),
        ("score_samples", est.score_samples, pca_error, "PCA reconstruction error"),
        ("decision_function", detector.decision_function, pca_decision, "PCA error - offset"),
    ]
    rows = []
    # BLAS at one thread for both sides: a row gains nothing from threads, and
    # OpenBLAS's made float64 PCA.score_samples take 8 ms or 0.25 ms by process
    with threadpool_limits(1, user_api="blas"):
        for dtype in (np.float64, np.float32):
            rows += _single_row_rows(X[:1].astype(dtype), pairs, n_calls)
    return rows


def _single_row_rows(row, pairs, n_calls):
    """The timing rows of one input ``row`` (its dtype) for every pair: the
    median of ``n_calls`` calls each, skae's and the peer's interleaved."""
    rows = []
    for method, skae_fn, pca_fn, peer in pairs:
        times = [[], []]
        for _ in range(50):  # warm-up
            skae_fn(row), pca_fn(row)
        for _ in range(n_calls):
            for fn, record in ((skae_fn, times[0]), (pca_fn, times[1])):
                t0 = time.perf_counter()
                fn(row)
                record.append(time.perf_counter() - t0)
        skae_ms, pca_ms = (1e3 * float(np.median(t)) for t in times)
        rows.append(
            {
                "dtype": row.dtype.name,
                "method": method,
                "skae_ms": skae_ms,
                "peer": peer,
                "peer_ms": pca_ms,
                "skae_over_peer": skae_ms / pca_ms,
            }
        )
        print(f"  {rows[-1]}", flush=True)
    return rows


def worker(spec):
    """In a fresh process: make the input, transform it once, report peak RSS."""
    with open(spec["models"], "rb") as f:
        est, pca = pickle.load(f)
    fn = transform_fn(spec["case"], est, pca)
    rng = np.random.default_rng(0)
    X = np.empty((spec["n_rows"], 784), dtype=np.float32)
    for i in range(0, X.shape[0], 65536):
        rng.random(out=X[i : i + 65536], dtype=np.float32)
    fn(X[:8192])  # warm-up: one-off allocations are not per-call memory
    peak_before = C.peak_rss_bytes()
    peak_reset = C.reset_peak_rss()
    rss_input = C.rss_bytes()
    t0 = time.perf_counter()
    Z = fn(X)
    seconds = time.perf_counter() - t0
    peak = C.peak_rss_bytes()
    print(
        json.dumps(
            {
                "case": spec["case"],
                "n_rows": X.shape[0],
                "input_mb": X.nbytes / 2**20,
                "output_mb": Z.nbytes / 2**20,
                "output_dtype": str(Z.dtype),
                "rss_with_input_mb": rss_input / 2**20,
                "peak_before_transform_mb": peak_before / 2**20,
                "peak_rss_mb": peak / 2**20,
                "mb_above_input": (peak - rss_input) / 2**20,
                "peak_reset": peak_reset,
                "seconds": seconds,
                "rows_per_sec": X.shape[0] / seconds,
            }
        )
    )


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small run for CI (~1 minute)")
    p.add_argument("--mnist", default=str(C.DEFAULT_MNIST), help="path to mnist_trainval.npz")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--rss-rows", type=int, default=None, help="rows for the peak-RSS cases")
    p.add_argument("--fit-epochs", type=int, default=None)
    p.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU run")
    p.add_argument("--skip-memory", action="store_true", help="throughput only")
    p.add_argument("--results-dir", default=None, help="write results here instead")
    p.add_argument(
        "--single-row-only",
        action="store_true",
        help="rerun the single-row section alone, into the last results of this mode",
    )
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    q = args.quick
    args.repeats = args.repeats or (3 if q else 7)
    args.rss_rows = args.rss_rows or (100_000 if q else 1_000_000)
    args.fit_epochs = args.fit_epochs or (1 if q else 3)
    hardware = C.hardware_info()
    print(hardware, flush=True)
    single_row = single_row_latency(detector_rows=500 if q else None)
    if args.single_row_only:
        rerun_single_row(single_row, hardware, args)
        return
    payload = measure(args)
    payload["single_row"] = single_row
    report(payload, hardware, args)


def rerun_single_row(single_row, hardware, args):
    """Write a new single-row section into the last results of this mode
    (``--quick`` or not, CPU), keeping the other sections as they were
    measured; the section names its own run."""
    path = C.results_dir(args.quick, args.results_dir) / "bench_transform.json"
    doc = json.loads(path.read_text())
    payload = {k: v for k, v in doc.items() if k not in ("benchmark", "quick", "hardware")}
    payload["single_row"] = single_row
    keys = ("date", "loadavg_1_5_15", "git_commit", "skae_uncommitted_changes", "command")
    payload["single_row_run"] = {k: hardware.get(k) for k in keys}
    old_args = argparse.Namespace(**{**payload["args"], "results_dir": args.results_dir})
    report(payload, doc["hardware"], old_args, plot_memory=False)


def measure(args):
    """The throughput and peak-memory cases: their payload for :func:`report`."""
    from sklearn.decomposition import PCA

    from skae import Autoencoder

    mnist = C.load_mnist(args.mnist)
    X = np.ascontiguousarray(np.vstack([mnist["X_train"], mnist["X_valid"]]), dtype=np.float32)
    est = Autoencoder(
        n_components=CODE,
        hidden_layer_sizes=HIDDEN,
        learning_rate=1e-3,
        batch_size=256,
        max_iter=args.fit_epochs,
        early_stopping=False,
        random_state=0,
        device=args.device,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(mnist["X_train"][:10000])
    pca = PCA(n_components=CODE, random_state=0).fit(mnist["X_train"][:10000])

    # same weights, same output
    Z_skae, Z_plain = est.transform(X[:5000]), plain_encoder(est.module_, X[:5000])
    max_abs_diff = float(np.abs(Z_skae - Z_plain).max())

    fns = {case: transform_fn(case, est, pca) for case in CASES}
    times = {case: [] for case in CASES}
    for fn in fns.values():  # warm-up
        fn(X[:8192])
    for r in range(args.repeats):
        for case, fn in fns.items():
            t0 = time.perf_counter()
            fn(X)
            times[case].append(time.perf_counter() - t0)
        print(f"  repeat {r + 1}/{args.repeats}", flush=True)
    base = float(np.median(times[CASES[1]]))
    skae_t = float(np.median(times[CASES[0]]))
    throughput = []
    for case in CASES:
        t = float(np.median(times[case]))
        throughput.append(
            {
                "case": case,
                "seconds": t,
                "rows_per_sec": X.shape[0] / t,
                "ratio_vs_torch_one_call": t / base,
                "samples": times[case],
            }
        )

    memory = []
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models.pkl"
        with open(models, "wb") as f:
            pickle.dump((est, pca), f)
        for case in [] if args.skip_memory else CASES:
            res = C.run_worker(
                __file__, {"case": case, "n_rows": args.rss_rows, "models": str(models)}
            )
            res["mb_above_input_over_output"] = res["mb_above_input"] / res["output_mb"]
            memory.append(res)
            print(
                f"  {case}: {res['mb_above_input']:.1f} MB above input "
                f"(output {res['output_mb']:.1f} MB)",
                flush=True,
            )
    return {
        "args": vars(args),
        "n_rows": X.shape[0],
        "max_abs_diff_skae_vs_torch": max_abs_diff,
        "skae_ratio_vs_torch_one_call": skae_t / base,
        "throughput": throughput,
        "memory": memory,
    }


def report(payload, hardware, args, plot_memory=True):
    """Write the results (JSON and markdown) of ``payload``; the plot too
    when ``plot_memory`` and there are memory cases."""
    q = args.quick
    throughput, memory = payload["throughput"], payload["memory"]
    single_row, max_abs_diff = payload["single_row"], payload["max_abs_diff_skae_vs_torch"]
    run = payload.get("single_row_run")
    rerun = (
        ""
        if run is None
        else f" This section was rerun alone on {run['date']} (commit {run['git_commit']}, "
        f"load average {run['loadavg_1_5_15']}); the others are from the run in the header."
    )
    sections = [
        (
            "Throughput",
            "\n".join(
                [
                    f"{payload['n_rows']} x 784 float32 MNIST rows, encoder 784-512-128-32 (fitted "
                    f"{args.fit_epochs} epoch(s) on 10k rows), median of {args.repeats} interleaved repeats. "
                    f"skae and the plain encoder agree to max |diff| = {max_abs_diff:.2e}.",
                    "",
                    C.markdown_table(
                        throughput,
                        ["case", "seconds", "rows_per_sec", "ratio_vs_torch_one_call"],
                        ["case", "s (median)", "rows/s", "time / torch one call"],
                    ),
                ]
            ),
        ),
    ]
    sections.append(
        (
            "Single row",
            "\n".join(
                [
                    "One digits row (64 features), Autoencoder(n_components=8) and the default "
                    "AutoencoderOutlierDetector (fitted on "
                    f"{'500' if q else 'all 1,797'} rows) against PCA in the same process; "
                    "median ms of 1,000 calls each, interleaved." + rerun,
                    "",
                    C.markdown_table(
                        single_row,
                        ["dtype", "method", "skae_ms", "peer", "peer_ms", "skae_over_peer"],
                        ["input", "skae method", "skae ms", "PCA peer", "PCA ms", "skae / PCA"],
                    ),
                ]
            ),
        )
    )
    if memory:
        sections.append(
            (
                "Peak memory",
                "\n".join(
                    [
                        f"{args.rss_rows} x 784 synthetic float32 rows ({memory[0]['input_mb']:.0f} MB), "
                        "one fresh process per case; 'above input' = peak RSS - RSS once the input exists.",
                        "",
                        C.markdown_table(
                            memory,
                            [
                                "case",
                                "mb_above_input",
                                "output_mb",
                                "mb_above_input_over_output",
                                "peak_rss_mb",
                                "seconds",
                            ],
                            [
                                "case",
                                "MB above input",
                                "output MB",
                                "above input / output",
                                "peak RSS MB",
                                "s",
                            ],
                        ),
                    ]
                ),
            )
        )
    for _, body in sections:
        print("\n" + body)
    name = "bench_transform" if torch.device(args.device).type == "cpu" else "bench_transform_cuda"
    d = C.write_results(name, q, payload, sections, hardware, folder=args.results_dir)
    if memory and plot_memory:
        plot(throughput, memory, d / f"{name}.png")


def plot(throughput, memory, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4))
    names = [r["case"] for r in throughput]
    a.barh(names, [r["rows_per_sec"] for r in throughput], color="tab:blue")
    a.set_xlabel("rows/s (60k MNIST rows)")
    a.invert_yaxis()
    b.barh(
        names, [r["mb_above_input"] for r in memory], color="tab:orange", label="peak above input"
    )
    b.axvline(memory[0]["output_mb"], color="k", ls="--", label="output size")
    b.set_xscale("log")
    b.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    b.set_xlabel(f"MB ({memory[0]['n_rows']} rows)")
    b.invert_yaxis()
    b.set_yticklabels([])
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
