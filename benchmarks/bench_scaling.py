"""How ``Autoencoder.fit`` scales: seconds per epoch and peak memory against
n_samples (10^4 .. 10^6 rows of 64 features) and against n_features (16 ..
4096 at a fixed n_samples), on synthetic float32 data near a rank-8 subspace.

Each size runs in its own fresh process (its own peak RSS). The per-epoch
time is the wall time of ``fit(max_iter=E)`` (validation and conversion
included) divided by E. A log-log fit of time against size gives the slope:
~1 in n_samples is linear scaling.

    .venv/bin/python benchmarks/bench_scaling.py --quick
    .venv/bin/python benchmarks/bench_scaling.py
"""

import json
import time
import warnings

import _common as C
import numpy as np

HIDDEN, CODE, BATCH = (32,), 8, 256


def worker(spec):
    import torch

    from skae import Autoencoder

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    # the first fit in a process pays one-off costs (lazy imports and kernel
    # set-up on the first optimiser step): time it apart, it does not scale with the data
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Autoencoder(
            n_components=CODE,
            hidden_layer_sizes=HIDDEN,
            learning_rate=1e-3,
            batch_size=BATCH,
            max_iter=1,
            early_stopping=False,
            random_state=0,
            device="cpu",
        ).fit(C.low_rank_data(512, spec["n_features"], rank=8, random_state=1))
    first_fit = time.perf_counter() - t0
    X = C.low_rank_data(spec["n_samples"], spec["n_features"], rank=8, random_state=0)
    est = Autoencoder(
        n_components=CODE,
        hidden_layer_sizes=HIDDEN,
        learning_rate=1e-3,
        batch_size=BATCH,
        max_iter=spec["epochs"],
        tol=0.0,
        n_iter_no_change=10**6,
        early_stopping=False,  # every row trained on, no validation pass in the epoch time
        random_state=0,
        device="cpu",
    )
    reset = C.reset_peak_rss()
    rss_input = C.rss_bytes()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    seconds = time.perf_counter() - t0
    peak = C.peak_rss_bytes()
    print(
        json.dumps(
            {
                **spec,
                "seconds_fit": seconds,
                "sec_per_epoch": seconds / est.n_iter_,
                "n_iter": est.n_iter_,
                "samples_per_sec": spec["n_samples"] * est.n_iter_ / seconds,
                "final_loss": est.loss_curve_[-1],
                "input_mb": X.nbytes / 2**20,
                "mb_above_input": (peak - rss_input) / 2**20,
                "peak_rss_mb": peak / 2**20,
                "peak_reset": reset,
                "first_fit_in_process_seconds": first_fit,
                "torch_threads": torch.get_num_threads(),
            }
        )
    )


def slope(xs, ys):
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0]) if len(xs) >= 2 else None


def sweep(label, specs, args):
    rows = []
    for spec in specs:
        res = C.run_worker(__file__, spec)
        rows.append(res)
        print(
            f"  {label}: n_samples={res['n_samples']} n_features={res['n_features']}: "
            f"{res['sec_per_epoch']:.3f} s/epoch, {res['mb_above_input']:.1f} MB above input",
            flush=True,
        )
    return rows


def plot(by_n, by_d, path, fixed_n):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, rows, key, title in [
        (axes[0], by_n, "n_samples", "64 features"),
        (axes[1], by_d, "n_features", f"{fixed_n} rows"),
    ]:
        x = np.array([r[key] for r in rows], dtype=float)
        t = np.array([r["sec_per_epoch"] for r in rows])
        ax.loglog(x, t, "o-", label=f"s/epoch (slope {slope(x, t):.2f})")
        ax.loglog(x, t[0] * x / x[0], "k:", lw=0.8, label="slope 1")
        ax2 = ax.twinx()
        ax2.plot(
            x,
            [r["mb_above_input"] for r in rows],
            "s--",
            color="tab:orange",
            label="MB above input",
        )
        ax2.set_ylabel("peak MB above input", color="tab:orange")
        ax.set_xlabel(key)
        ax.set_ylabel("seconds per epoch")
        ax.set_title(f"Autoencoder fit, {title}")
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(p):
    """This benchmark's own arguments (see _common.parse_args for the rest)."""
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--n-samples", default=None, help="comma-separated sizes")
    p.add_argument("--n-features", default=None, help="comma-separated sizes")
    p.add_argument("--fixed-n-samples", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in the workers")


def main():
    args = C.parse_args(
        __doc__, add_arguments, worker=worker, quick_help="small run for CI (~1 minute)"
    )
    if args is None:  # a worker process
        return
    q = args.quick
    args.epochs = args.epochs or 2
    ns = [
        int(float(v))
        for v in (args.n_samples or ("1e4,3e4,1e5" if q else "1e4,3e4,1e5,3e5,1e6")).split(",")
    ]
    ds = [
        int(v)
        for v in (args.n_features or ("16,256,1024" if q else "16,64,256,1024,4096")).split(",")
    ]
    args.fixed_n_samples = args.fixed_n_samples or (10000 if q else 20000)
    hardware = C.start()

    common = {"epochs": args.epochs, "threads": args.threads}
    by_n = sweep("n_samples", [{"n_samples": n, "n_features": 64, **common} for n in ns], args)
    by_d = sweep(
        "n_features",
        [{"n_samples": args.fixed_n_samples, "n_features": d, **common} for d in ds],
        args,
    )
    slope_n = slope([r["n_samples"] for r in by_n], [r["sec_per_epoch"] for r in by_n])
    slope_n_upper = slope(
        [r["n_samples"] for r in by_n[-3:]], [r["sec_per_epoch"] for r in by_n[-3:]]
    )
    slope_d = slope([r["n_features"] for r in by_d], [r["sec_per_epoch"] for r in by_d])
    slope_mem_n = slope(
        [r["n_samples"] for r in by_n], [max(r["mb_above_input"], 1e-3) for r in by_n]
    )

    cols = [
        "n_samples",
        "n_features",
        "sec_per_epoch",
        "samples_per_sec",
        "input_mb",
        "mb_above_input",
        "peak_rss_mb",
        "final_loss",
        "first_fit_in_process_seconds",
    ]
    heads = [
        "n_samples",
        "n_features",
        "s/epoch",
        "samples/s",
        "input MB",
        "peak MB above input",
        "peak RSS MB",
        "final loss",
        "first tiny fit in the process, s",
    ]
    sections = [
        (
            "Setup",
            f"Autoencoder {HIDDEN} -> {CODE} (mirrored), ReLU, batch {BATCH}, Adam 1e-3, "
            f"fit(max_iter={args.epochs}) per size in a fresh process, after one "
            f"1-epoch fit on 512 rows that absorbs the process's one-off start-up costs (its time "
            f"is the last column); s/epoch = fit wall time / epochs; torch threads: "
            f"{by_n[0]['torch_threads']}. Data: float32 rank-8 + 0.05 noise.",
        ),
        (
            "Against n_samples (64 features)",
            C.markdown_table(by_n, cols, heads) + "\n\n"
            f"- log-log slope of s/epoch vs n_samples: all points {slope_n:.3f}, largest three "
            f"{slope_n_upper:.3f} (target ~1: {'MET' if abs(slope_n_upper - 1) <= 0.15 else 'NOT MET'} "
            f"within +-0.15)\n- log-log slope of peak MB above input vs n_samples: {slope_mem_n:.3f}",
        ),
        (
            f"Against n_features ({args.fixed_n_samples} rows)",
            C.markdown_table(by_d, cols, heads) + "\n\n"
            f"- log-log slope of s/epoch vs n_features: {slope_d:.3f}",
        ),
    ]
    payload = {
        "args": vars(args),
        "hidden": list(HIDDEN),
        "code": CODE,
        "batch_size": BATCH,
        "by_n_samples": by_n,
        "by_n_features": by_d,
        "slope_time_n_samples": slope_n,
        "slope_time_n_samples_largest3": slope_n_upper,
        "slope_time_n_features": slope_d,
        "slope_memory_n_samples": slope_mem_n,
    }
    for _, body in sections:
        print("\n" + body)
    d = C.write_results("bench_scaling", q, payload, sections, hardware, folder=args.results_dir)
    plot(by_n, by_d, d / "bench_scaling.png", args.fixed_n_samples)


if __name__ == "__main__":
    main()
