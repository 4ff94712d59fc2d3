"""scipy.sparse input: peak memory, epoch time against dense input, and whether
multiplying the sparse batch directly in the first layer would pay.

Memory: ``Autoencoder(hidden_layer_sizes=(64,), n_components=16, max_iter=1,
batch_size=200)`` (Adam 1e-3, no early stopping) ``fit`` then ``transform`` of
a random 100,000 x 50,000 float32 CSR matrix with 2,000,000 stored values
(dense float32 would take 20 GB), each case in its own fresh process; peak
RSS (``VmHWM``, reset once the input exists) is reported as MB above the RSS
once the input exists. Cases: CSR input, and CSC input (which skae copies to
CSR once).

Epoch time: seconds per ``partial_fit`` epoch on MNIST (50,000 x 784, scaled by
1/255, about 19 % non-zero) as a dense float32 array and as CSR, interleaved
round by round, same estimator settings; medians and the ratio CSR / dense.

First layer: seconds per training step of the same 64-16 network in plain torch
on the sparse batches, (a) as skae runs it: the batch densified, then dense
matmuls; (b) the first layer as ``torch.sparse.mm`` of the sparse (COO) batch,
the loss against the densified batch; (c) as (b) with a loss that never
densifies the batch (``|out|^2 - 2 <out, x> + |x|^2`` with ``<out, x>`` summed
over the stored entries). On the wide random matrix and on MNIST.

    .venv/bin/python benchmarks/bench_sparse.py --quick
    .venv/bin/python benchmarks/bench_sparse.py --threads 1
"""

import json
import time
import warnings

import _common as C
import numpy as np
import scipy.sparse as sp
import torch

HIDDEN, CODE = (64,), 16


def random_csr(n_rows, n_features, nnz, seed=0):
    """A canonical float32 CSR matrix with exactly ``nnz`` stored values at
    random positions, values in [0, 1)."""
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(n_rows * n_features, size=nnz, replace=False))
    rows, cols = np.divmod(flat, n_features)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    data = rng.random(nnz, dtype=np.float32)
    return sp.csr_matrix((data, cols.astype(np.int32), indptr), shape=(n_rows, n_features))


def matrix_mb(X):
    return (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20


def estimator(**params):
    from skae import Autoencoder

    settings = dict(
        hidden_layer_sizes=HIDDEN,
        n_components=CODE,
        learning_rate=1e-3,
        batch_size=200,  # the batch of the tables and of first_layer_steps
        max_iter=1,
        early_stopping=False,  # no held-out split of the sparse input
        device="cpu",
        random_state=0,
    )
    return Autoencoder(**{**settings, **params})


# ------------------------------------------------------------------ memory


def worker(spec):
    """One memory case in this fresh process; prints a JSON line."""
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    X = random_csr(spec["n_rows"], spec["n_features"], spec["nnz"])
    if spec["rows"]:
        X = X[: spec["rows"]].copy()
    if spec["format"] == "csc":
        X = X.tocsc()
    input_mb = matrix_mb(X)
    rss_input = C.rss_bytes()
    peak_reset = C.reset_peak_rss()
    est = estimator(max_iter=spec["epochs"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached
        fit_s, _ = C.timed(lambda: est.fit(X))
    transform_s, codes = C.timed(lambda: est.transform(X))
    peak = C.peak_rss_bytes()
    print(
        json.dumps(
            {
                "case": f"fit + transform, {spec['format'].upper()} input"
                + (f", first {spec['rows']:,} rows only" if spec["rows"] else ""),
                "format": spec["format"],
                "n_rows": X.shape[0],
                "n_features": X.shape[1],
                "nnz": int(X.nnz),
                "dense_float32_gb": X.shape[0] * X.shape[1] * 4 / 2**30,
                "input_mb": input_mb,
                "rss_with_input_mb": rss_input / 2**20,
                "peak_rss_mb": peak / 2**20,
                "mb_above_input": (peak - rss_input) / 2**20,
                "peak_reset": peak_reset,
                "output_mb": codes.nbytes / 2**20,
                "fit_seconds": fit_s,
                "transform_seconds": transform_s,
                "epochs": spec["epochs"],
                "final_loss": est.loss_curve_[-1],
            }
        )
    )


# -------------------------------------------------------------- epoch time


def epoch_times(X_dense, rounds):
    """Seconds per partial_fit epoch, dense and CSR, interleaved."""
    X_csr = sp.csr_matrix(X_dense)
    dense, sparse = estimator(), estimator()
    dense.partial_fit(X_dense)  # warm-up: first-call costs out of the timings
    sparse.partial_fit(X_csr)
    times = {"dense": [], "csr": []}
    for _ in range(rounds):
        times["dense"].append(C.timed(lambda: dense.partial_fit(X_dense))[0])
        times["csr"].append(C.timed(lambda: sparse.partial_fit(X_csr))[0])
    # same seed, same rows: the two estimators stay equal
    max_diff = float(np.abs(dense.transform(X_dense[:1000]) - sparse.transform(X_csr[:1000])).max())
    return times, float(X_csr.nnz / np.prod(X_csr.shape)), max_diff


# ------------------------------------------------------------- first layer


def first_layer_steps(X, batch_size, n_steps, seed=0):
    """Median seconds per training step of the three variants on batches of
    the CSR matrix ``X`` (float32)."""
    from skae._rows import SparseRows

    torch.manual_seed(seed)
    n_features = X.shape[1]
    encoder = torch.nn.Sequential(
        torch.nn.Linear(n_features, HIDDEN[0]), torch.nn.ReLU(), torch.nn.Linear(HIDDEN[0], CODE)
    )
    decoder = torch.nn.Sequential(
        torch.nn.Linear(CODE, HIDDEN[0]), torch.nn.ReLU(), torch.nn.Linear(HIDDEN[0], n_features)
    )
    params = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=True)
    rows = SparseRows(
        torch.from_numpy(X.indptr.astype(np.int64)),
        torch.from_numpy(X.indices.astype(np.int64)),
        torch.from_numpy(X.data.astype(np.float32)),
        n_features,
    )
    generator = torch.Generator().manual_seed(seed)
    first, rest = encoder[0], encoder[1:]

    def sparse_batch(index):
        sub = rows.subset(index)
        counts = sub.crow[1:] - sub.crow[:-1]
        batch_rows = torch.repeat_interleave(torch.arange(len(index)), counts)
        coo = torch.sparse_coo_tensor(
            torch.stack([batch_rows, sub.col]),
            sub.values,
            (len(index), n_features),
            check_invariants=False,
        )
        return coo, batch_rows, sub

    def dense_step(index):
        x = rows.take(index)
        out = decoder(encoder(x))
        return ((out - x) ** 2).sum() / len(index)

    def sparse_first_layer(coo):
        hidden = torch.sparse.mm(coo, first.weight.T) + first.bias
        return decoder(rest(hidden))

    def sparse_mm_step(index):
        coo, _, _ = sparse_batch(index)
        x = rows.take(index)
        out = sparse_first_layer(coo)
        return ((out - x) ** 2).sum() / len(index)

    def sparse_mm_sparse_loss_step(index):
        coo, batch_rows, sub = sparse_batch(index)
        out = sparse_first_layer(coo)
        stored = out[batch_rows, sub.col]
        loss = (out**2).sum() - 2 * (stored * sub.values).sum() + (sub.values**2).sum()
        return loss / len(index)

    variants = {
        "(a) densified batch, dense matmuls (skae)": dense_step,
        "(b) torch.sparse.mm first layer, dense target": sparse_mm_step,
        "(c) torch.sparse.mm first layer, loss over stored values": sparse_mm_sparse_loss_step,
    }
    # all three compute the same loss
    index = torch.randperm(len(rows), generator=generator)[:batch_size]
    with torch.no_grad():
        losses = {name: float(step(index)) for name, step in variants.items()}
    times = {name: [] for name in variants}
    for _ in range(n_steps):
        index = torch.randperm(len(rows), generator=generator)[:batch_size]
        for name, step in variants.items():  # interleaved
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            step(index).backward()
            optimizer.step()
            times[name].append(time.perf_counter() - start)
    return {
        name: {"median_step_seconds": float(np.median(t[1:])), "loss_on_first_batch": losses[name]}
        for name, t in times.items()
    }


# -------------------------------------------------------------------- main


def add_arguments(p):
    """This benchmark's own arguments (see _common.parse_args for the rest)."""
    p.add_argument("--mnist", default=str(C.DEFAULT_MNIST), help="path to mnist_trainval.npz")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--rounds", type=int, default=None, help="epoch-time rounds")
    p.add_argument("--sections", default="memory,epoch,first_layer")


def main():
    args = C.parse_args(
        __doc__, add_arguments, worker=worker, quick_help="smaller matrices, fewer rounds"
    )
    if args is None:  # a worker process
        return
    q = args.quick
    if args.threads:
        torch.set_num_threads(args.threads)
    wanted = args.sections.split(",")
    hardware = C.start()
    shape = dict(n_rows=10_000, n_features=5_000, nnz=200_000) if q else {}
    shape = shape or dict(n_rows=100_000, n_features=50_000, nnz=2_000_000)
    payload = {"args": vars(args), "shape": shape}
    sections = []

    def save():
        C.write_results("bench_sparse", q, payload, sections, hardware, folder=args.results_dir)

    if "memory" in wanted:
        memory = []
        # the first 1,000 rows alone: the same model, so what the full case
        # adds above it is what grows with the rows
        for fmt, rows in (("csr", None), ("csc", None), ("csr", 1000)):
            spec = {**shape, "format": fmt, "rows": rows, "epochs": 1, "threads": args.threads}
            res = C.run_worker(__file__, spec, timeout=3600)
            memory.append(res)
            print(f"  {res['case']}: {res['mb_above_input']:.0f} MB above input", flush=True)
        payload["memory"] = memory
        sections.append(
            (
                "Peak memory, fit + transform of a sparse matrix",
                "\n".join(
                    [
                        f"{shape['n_rows']:,} x {shape['n_features']:,} random float32 CSR matrix, "
                        f"{shape['nnz']:,} stored values ({memory[0]['input_mb']:.0f} MB; dense "
                        f"float32 would be {memory[0]['dense_float32_gb']:.1f} GB). Autoencoder "
                        f"hidden {HIDDEN}, n_components {CODE}, 1 epoch, batch 200, device cpu; "
                        "one fresh process per case; 'above input' = peak RSS (VmHWM, reset once "
                        "the input exists) - RSS once the input exists. The last case trains the "
                        "same model on the first 1,000 rows only: the torch runtime's and the "
                        "model's own memory, which does not grow with the rows.",
                        "",
                        C.markdown_table(
                            memory,
                            [
                                "case",
                                "mb_above_input",
                                "input_mb",
                                "rss_with_input_mb",
                                "peak_rss_mb",
                                "fit_seconds",
                                "transform_seconds",
                            ],
                            [
                                "case",
                                "MB above input",
                                "input MB",
                                "RSS with input MB",
                                "peak RSS MB",
                                "fit s",
                                "transform s",
                            ],
                        ),
                    ]
                ),
            )
        )
        save()

    mnist = None
    if "epoch" in wanted or "first_layer" in wanted:
        data = C.load_mnist(args.mnist)
        mnist = np.ascontiguousarray(data["X_train"][: 5000 if q else 50000])
        payload["mnist_source"] = data["source"]

    if "epoch" in wanted:
        rounds = args.rounds or (3 if q else 7)
        times, density, max_diff = epoch_times(mnist, rounds)
        med = {kind: float(np.median(t)) for kind, t in times.items()}
        rows = [
            {"input": "dense float32 ndarray", "median_epoch_seconds": med["dense"], "ratio": 1.0},
            {
                "input": "CSR float32",
                "median_epoch_seconds": med["csr"],
                "ratio": med["csr"] / med["dense"],
            },
        ]
        payload["epoch"] = {
            "n_rows": mnist.shape[0],
            "density": density,
            "rounds": rounds,
            "times": times,
            "rows": rows,
            "max_abs_diff_codes": max_diff,
        }
        sections.append(
            (
                "Epoch time on MNIST, CSR against dense",
                "\n".join(
                    [
                        f"{mnist.shape[0]:,} x 784 MNIST rows / 255 ({100 * density:.1f} % non-zero); "
                        f"Autoencoder hidden {HIDDEN}, n_components {CODE}, batch 200; one "
                        f"partial_fit epoch per timing, dense and CSR interleaved, median of "
                        f"{rounds} rounds after one warm-up. The two estimators' codes after "
                        f"training agree to max |diff| = {max_diff:.1e}.",
                        "",
                        C.markdown_table(
                            rows,
                            ["input", "median_epoch_seconds", "ratio"],
                            ["input", "s per epoch (median)", "time / dense"],
                        ),
                    ]
                ),
            )
        )
        save()

    if "first_layer" in wanted:
        n_steps = 10 if q else 40
        wide = random_csr(
            shape["n_rows"] // 5, shape["n_features"], shape["nnz"] // 5, seed=1
        )  # same density, a fifth of the rows: only batches are drawn from it
        cases = {
            f"random {wide.shape[1]:,} wide, {100 * wide.nnz / np.prod(wide.shape):.2f} % non-zero": wide,
            "MNIST (784 wide, 19 % non-zero)": sp.csr_matrix(mnist),
        }
        table = []
        for data_name, X in cases.items():
            res = first_layer_steps(X, batch_size=200, n_steps=n_steps)
            base = res["(a) densified batch, dense matmuls (skae)"]["median_step_seconds"]
            for name, r in res.items():
                table.append(
                    {
                        "data": data_name,
                        "variant": name,
                        "ms_per_step": 1000 * r["median_step_seconds"],
                        "ratio": r["median_step_seconds"] / base,
                        "loss": r["loss_on_first_batch"],
                    }
                )
                print(f"  {data_name} {name}: {1000 * r['median_step_seconds']:.1f} ms", flush=True)
        payload["first_layer"] = {"n_steps": n_steps, "rows": table}
        sections.append(
            (
                "Sparse first layer: does multiplying the sparse batch directly pay?",
                "\n".join(
                    [
                        f"Plain torch, the network above (n_features-{HIDDEN[0]}-{CODE}-{HIDDEN[0]}-"
                        f"n_features, Adam), batch 200, median of {n_steps - 1} interleaved steps "
                        "(forward, backward, optimiser step). The three variants compute the same "
                        "loss (column 'loss' on one batch).",
                        "",
                        C.markdown_table(
                            table,
                            ["data", "variant", "ms_per_step", "ratio", "loss"],
                            ["data", "variant", "ms per step", "time / (a)", "loss"],
                        ),
                    ]
                ),
            )
        )
        save()
    for _, body in sections:
        print("\n" + body)


if __name__ == "__main__":
    main()
