"""``transform`` throughput: onnxruntime (CPU) on the graph ``skae.onnx.to_onnx``
exports, against skae's own ``transform`` and ``PCA.transform``.

On the 60,000 MNIST rows (train + valid, float32, scaled by 1/255) for two
fitted models with 30 components: an ``Autoencoder`` 784-256-30 and a
``ConvolutionalAutoencoder`` (channels 16, 32), each trained briefly on 10,000
rows (throughput does not depend on how well a model is trained). Cases per
model: skae's ``transform`` (4096-row blocks under ``inference_mode``),
onnxruntime on all rows in one ``run`` call, and onnxruntime in 4096-row
blocks (skae's memory bound); ``PCA(30).transform`` once. Medians of
interleaved repeats; onnxruntime gets as many intra-op threads as torch.
Also records the export time and how far onnxruntime's codes are from skae's.

    .venv/bin/python benchmarks/bench_onnx.py --quick
    .venv/bin/python benchmarks/bench_onnx.py
"""

import time
import warnings

import _common as C
import numpy as np
import torch

N_COMPONENTS = 30
BLOCK = 4096
MODELS = {
    "Autoencoder 784-256-30": "mlp",
    "ConvolutionalAutoencoder (16, 32)-30": "conv",
}


def make_model(kind, epochs):
    from skae import Autoencoder, ConvolutionalAutoencoder

    common = dict(
        n_components=N_COMPONENTS,
        learning_rate=1e-3,
        batch_size=128,
        max_iter=epochs,
        early_stopping=False,
        random_state=0,
        device="cpu",
    )
    if kind == "mlp":
        return Autoencoder(hidden_layer_sizes=(256,), **common)
    return ConvolutionalAutoencoder(image_shape=(28, 28), **common)  # channels (16, 32)


def ort_session(model, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def ort_one_call(session):
    return lambda X: session.run(None, {"X": X})[0]


def ort_blocked(session, width):
    def run(X):
        out = np.empty((X.shape[0], width), dtype=np.float32)
        for i in range(0, X.shape[0], BLOCK):
            out[i : i + BLOCK] = session.run(None, {"X": X[i : i + BLOCK]})[0]
        return out

    return run


def versions():
    import onnx
    import onnxruntime
    import onnxscript
    import skl2onnx

    return {
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxscript": onnxscript.__version__,
        "skl2onnx": skl2onnx.__version__,
    }


def add_arguments(p):
    """This benchmark's own arguments (see _common.parse_args for the rest)."""
    p.add_argument("--mnist", default=str(C.DEFAULT_MNIST), help="path to mnist_trainval.npz")
    p.add_argument("--rows", type=int, default=None, help="rows to transform (60000 full)")
    p.add_argument("--fit-rows", type=int, default=None)
    p.add_argument("--fit-epochs", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch and onnxruntime threads")


def main():
    args = C.parse_args(__doc__, add_arguments, quick_help="small run for CI (~1 minute)")
    q = args.quick
    args.rows = args.rows or (6000 if q else 60000)
    args.fit_rows = args.fit_rows or (2000 if q else 10000)
    args.fit_epochs = args.fit_epochs or (1 if q else 2)
    args.repeats = args.repeats or (2 if q else 5)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    hardware = C.hardware_info()
    hardware.update(versions())
    hardware["onnxruntime_intra_op_threads"] = threads
    print(hardware, flush=True)

    from sklearn.decomposition import PCA

    from skae.onnx import to_onnx

    mnist = C.load_mnist(args.mnist)
    X = np.ascontiguousarray(np.vstack([mnist["X_train"], mnist["X_valid"]])[: args.rows])
    X_fit = mnist["X_train"][: args.fit_rows]

    fns, details = {}, []
    for label, kind in MODELS.items():
        est = make_model(kind, args.fit_epochs)
        fit_seconds, _ = C.timed(lambda est=est: fit_quietly(est, X_fit))
        export_seconds, model = C.timed(lambda est=est: to_onnx(est))
        session = ort_session(model, threads)
        reference = est.transform(X[:5000])
        diff = np.abs(ort_one_call(session)(X[:5000]) - reference).max()
        details.append(
            {
                "model": label,
                "fit_seconds": fit_seconds,
                "export_seconds": export_seconds,
                "onnx_kb": model.ByteSize() / 1024,
                "max_abs_diff": float(diff),
                "max_abs_diff_over_scale": float(diff / np.abs(reference).max()),
            }
        )
        print(f"  {label}: fitted in {fit_seconds:.1f} s, exported in {export_seconds:.1f} s")
        fns[(label, "skae transform")] = est.transform
        fns[(label, "onnxruntime, one call")] = ort_one_call(session)
        fns[(label, f"onnxruntime, {BLOCK}-row blocks")] = ort_blocked(session, N_COMPONENTS)
    pca = PCA(n_components=N_COMPONENTS, random_state=0).fit(X_fit)
    fns[("PCA(30)", "PCA.transform")] = pca.transform

    for fn in fns.values():  # warm-up
        fn(X[:BLOCK])
    times = {key: [] for key in fns}
    for r in range(args.repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn(X)
            times[key].append(time.perf_counter() - t0)
        print(f"  repeat {r + 1}/{args.repeats}", flush=True)

    pca_t = float(np.median(times[("PCA(30)", "PCA.transform")]))
    rows = []
    for (label, case), samples in times.items():
        t = float(np.median(samples))
        skae_key = (label, "skae transform")
        skae_t = float(np.median(times[skae_key])) if skae_key in times else None
        rows.append(
            {
                "model": label,
                "case": case,
                "seconds": t,
                "rows_per_sec": X.shape[0] / t,
                "speedup_vs_skae": skae_t / t if skae_t else None,
                "time_over_pca": t / pca_t,
                "samples": samples,
            }
        )

    sections = [
        (
            "Throughput",
            "\n".join(
                [
                    f"{X.shape[0]} x {X.shape[1]} float32 MNIST rows, {N_COMPONENTS} components, "
                    f"models fitted {args.fit_epochs} epoch(s) on {args.fit_rows} rows; median of "
                    f"{args.repeats} interleaved repeats; torch and onnxruntime with {threads} "
                    "intra-op thread(s). Speed-up: skae transform's time / the case's time.",
                    "",
                    C.markdown_table(
                        rows,
                        [
                            "model",
                            "case",
                            "seconds",
                            "rows_per_sec",
                            "speedup_vs_skae",
                            "time_over_pca",
                        ],
                        ["model", "case", "s (median)", "rows/s", "speed-up vs skae", "time / PCA"],
                    ),
                ]
            ),
        ),
        (
            "Export and agreement",
            "\n".join(
                [
                    "onnxruntime's codes against skae's float32 `transform` on the first 5000 rows.",
                    "",
                    C.markdown_table(
                        details,
                        [
                            "model",
                            "fit_seconds",
                            "export_seconds",
                            "onnx_kb",
                            "max_abs_diff",
                            "max_abs_diff_over_scale",
                        ],
                        [
                            "model",
                            "fit s",
                            "to_onnx s",
                            "ONNX KB",
                            "max abs diff",
                            "max abs diff / max abs code",
                        ],
                    ),
                ]
            ),
        ),
        ("Versions", ", ".join(f"{k} {v}" for k, v in versions().items())),
    ]
    payload = {"args": vars(args), "n_rows": X.shape[0], "throughput": rows, "models": details}
    for _, body in sections:
        print("\n" + body)
    C.write_results("bench_onnx", q, payload, sections, hardware, folder=args.results_dir)


def fit_quietly(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a brief fit: ConvergenceWarning
        return est.fit(X)


if __name__ == "__main__":
    main()
