"""What a default fit costs: CPU seconds of default fits against the same
estimator with the defaults of before and with skae 0.2's network (from
random weights), in one run.

Configurations, interleaved (every repeat fits each in turn, so machine noise
hits them alike), one torch and BLAS thread unless ``--threads``:

- ``now``: the estimator with only ``n_components``, ``random_state`` and
  ``device="cpu"`` set;
- ``batches of 64 at 5e-3``: the same with the "auto" batch and rate of skae
  before large data sets took larger batches (``batch_size=64``,
  ``learning_rate=5e-3``);
- ``skae 0.2 network``: ``init="random"`` (no PCA start), batches of 64 at 5e-3:
  skae 0.2's network and batches, trained by this version's loop (its
  stopping rule, losses and penalties), not skae 0.2's code.

Cases: the first 10,000 MNIST rows at 32 components (issue 21: no slower than
skae 0.2's network, about 20 s), and digits' 1,347 training rows at 8
components (issue 21: under a second), where the first two configurations are
the same fit (under 2,048 training rows "auto" is 64 rows at 5e-3). Reported:
median fit CPU and wall seconds, epochs, and the ratio of each median to the
``skae 0.2 network``'s of the same estimator.

    .venv/bin/python benchmarks/bench_fit_cost.py --quick
    .venv/bin/python benchmarks/bench_fit_cost.py
"""

import time
import warnings

import _common as C
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import skae

CONFIGS = {
    "now": {},
    "batches of 64 at 5e-3": {"batch_size": 64, "learning_rate": 5e-3},
    "skae 0.2 network": {"init": "random", "batch_size": 64, "learning_rate": 5e-3},
}
REFERENCE = "skae 0.2 network"

#: data set -> (components, estimators, configurations)
CASES = {
    "mnist": (32, ["Autoencoder", "DenoisingAutoencoder"], list(CONFIGS)),
    "digits": (
        8,
        [
            "Autoencoder",
            "DenoisingAutoencoder",
            "VariationalAutoencoder",
            "SparseAutoencoder",
            "ContractiveAutoencoder",
            "ConvolutionalAutoencoder",
        ],
        ["now", REFERENCE],
    ),
}


def add_arguments(parser):
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--datasets", default=None, help="comma-separated (default: all)")
    parser.add_argument("--mnist", default=str(C.DEFAULT_MNIST))


def load(dataset, args):
    if dataset == "digits":
        X = C.load_digits_split()["X_train"]
        return (X[:600] if args.quick else X).astype(np.float32), (8, 8)
    X = C.load_mnist(args.mnist)["X_train"][: 3000 if args.quick else 10000]
    return np.ascontiguousarray(X, dtype=np.float32), (28, 28)


def fit_once(name, k, image_shape, params, X, quick):
    extra = {"image_shape": image_shape} if name == "ConvolutionalAutoencoder" else {}
    if quick:
        extra["max_iter"] = 3
    params = {"n_components": k, "random_state": 0, "device": "cpu", **extra, **params}
    est = getattr(skae, name)(**params)
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    return time.process_time() - cpu, time.perf_counter() - wall, est.n_iter_


def run_case(dataset, args):
    k, names, configs = CASES[dataset]
    X, image_shape = load(dataset, args)
    fit_once("Autoencoder", 2, None, {"max_iter": 1}, X[:200], True)  # torch's start-up
    samples = {(n, c): [] for n in names for c in configs}
    for _ in range(args.repeats):
        for name in names:
            for config in configs:
                samples[name, config].append(
                    fit_once(name, k, image_shape, CONFIGS[config], X, args.quick)
                )
    rows = []
    for (name, config), runs in samples.items():
        cpu, wall, epochs = (float(np.median(v)) for v in zip(*runs, strict=True))
        rows.append(
            {"dataset": dataset, "model": name, "k": k, "defaults": config, "fit_cpu_s": cpu}
            | {"fit_wall_s": wall, "epochs": epochs, "rows": len(X)}
        )
    for row in rows:
        reference = next(
            r for r in rows if r["model"] == row["model"] and r["defaults"] == REFERENCE
        )
        row["cpu_vs_skae_0_2"] = row["fit_cpu_s"] / reference["fit_cpu_s"]
    return rows


def main():
    args = C.parse_args(__doc__, add_arguments, quick_help="small run for CI (~1 minute)")
    args.repeats = args.repeats or (1 if args.quick else 2)
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    hardware = C.start()
    datasets = args.datasets.split(",") if args.datasets else list(CASES)
    rows = []
    for dataset in datasets:
        rows += run_case(dataset, args)
        print(C.markdown_table([r for r in rows if r["dataset"] == dataset], list(rows[0])))
    columns = ["dataset", "model", "k", "defaults", "fit_cpu_s", "fit_wall_s", "epochs"]
    columns += ["cpu_vs_skae_0_2", "rows"]
    note = (
        f"Medians of {args.repeats} interleaved repeats, {args.threads} torch and BLAS "
        f"thread(s); cpu_vs_skae_0_2 is the median fit CPU seconds over those of the "
        f"same estimator with init='random', batches of 64 at 5e-3."
    )
    C.write_results(
        "bench_fit_cost",
        args.quick,
        {"args": vars(args), "rows": rows},
        [("Fit seconds", note + "\n\n" + C.markdown_table(rows, columns))],
        hardware,
        args.results_dir,
    )


if __name__ == "__main__":
    main()
