"""How the penalty weights of SparseAutoencoder and ContractiveAutoencoder trade
reconstruction and code usefulness for sparsity or contraction, on digits.

The defaults of ``sparsity_weight`` and ``contraction_weight`` were chosen from
this table: the largest weight that keeps the held-out accuracy of a logistic
regression on the codes within about a point of the unpenalised network.

    python benchmarks/bench_penalty_weights.py [--quick]
"""

import json
import platform
import time
import warnings

import _common as C
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

import skae
from skae import ContractiveAutoencoder, SparseAutoencoder
from skae._evaluation import evaluate


def hoyer_sparsity(codes):
    """Mean over rows of Hoyer's sparsity: 0 for a flat vector, 1 for one-hot."""
    k = codes.shape[1]
    l1 = np.abs(codes).sum(axis=1)
    l2 = np.sqrt((codes**2).sum(axis=1)) + 1e-12
    return float(((np.sqrt(k) - l1 / l2) / (np.sqrt(k) - 1)).mean())


def jacobian_frobenius(est, X):
    module = est.module_
    x = torch.as_tensor(X, dtype=torch.float32)
    return float(module.encoder_jacobian_norm(x).mean().detach())


def judge(est, X_train, X_test, y_train, y_test):
    """skae's evaluation protocol (skae._evaluation.evaluate: held-out error and
    accuracy on the codes), with the codes' sparsity and contraction."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = evaluate(est, X_train, y_train, X_test, y_test)
    return dict(
        accuracy=round(result["accuracy"], 4),
        error=round(result["error"], 4),
        hoyer=round(hoyer_sparsity(est.transform(X_test)), 4),
        jacobian=round(jacobian_frobenius(est, X_test), 4),
    )


def add_arguments(p):
    """This benchmark's own arguments (see _common.parse_args for the rest)."""
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")


def main(argv=None):
    args = C.parse_args(__doc__, add_arguments, argv=argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    max_iter = 20 if args.quick else 60
    out = C.results_dir(args.quick, args.results_dir)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0, stratify=y)
    # the training the penalty defaults were chosen with: Adam 1e-3, stopping on
    # the training loss (tol 1e-4, 10 epochs), no held-out split
    common = dict(
        max_iter=max_iter,
        learning_rate=1e-3,
        batch_size=64,
        early_stopping=False,
        n_iter_no_change=10,
        random_state=0,
        device="cpu",
    )
    weights = [0.0, 0.1, 1.0] if args.quick else [0.0, 0.01, 0.1, 0.3, 1.0, 3.0]
    rows = []
    for sparsity in ["kl", "l1"]:
        for w in weights:
            est = SparseAutoencoder(
                n_components=128,
                hidden_layer_sizes=(64,),
                sparsity=sparsity,
                sparsity_weight=w,
                **common,
            )
            rows.append(
                dict(
                    estimator="SparseAutoencoder",
                    option=f"sparsity={sparsity}",
                    weight=w,
                    **judge(est, X_train, X_test, y_train, y_test),
                )
            )
            print(rows[-1], flush=True)
    for hidden in [(), (64,)]:
        for w in weights:
            est = ContractiveAutoencoder(
                n_components=16, hidden_layer_sizes=hidden, contraction_weight=w, **common
            )
            rows.append(
                dict(
                    estimator="ContractiveAutoencoder",
                    option=f"hidden={hidden}",
                    weight=w,
                    **judge(est, X_train, X_test, y_train, y_test),
                )
            )
            print(rows[-1], flush=True)

    meta = dict(
        date=time.strftime("%Y-%m-%d %H:%M:%S"),
        machine=platform.processor() or platform.machine(),
        cores=torch.get_num_threads(),
        torch=torch.__version__,
        skae=skae.__version__,
        data="digits /16, 75/25 stratified split",
        max_iter=max_iter,
    )
    (out / "penalty_weights.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    lines = [
        "| estimator | option | weight | held-out accuracy | held-out error | Hoyer sparsity | "
        "Jacobian norm^2 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['estimator']} | {r['option']} | {r['weight']} | {r['accuracy']:.3f} | "
        f"{r['error']:.3f} | {r['hoyer']:.3f} | {r['jacobian']:.3f} |"
        for r in rows
    ]
    (out / "penalty_weights.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
