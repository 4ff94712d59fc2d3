"""Which score on the default detector's autoencoder: the density score against
variants of its code and residual terms, on bench_outliers' sets and splits.

For each set, seed and inlier class this fits the default detector's models
once (its ``cv`` fold models and its final model, seeded as the detector seeds
them) and keeps their codes and residuals; each variant then scores the same
pieces (the held-out rows with the final model; the out-of-fold rows with the
fold models, for the threshold at ``contamination=0.1``). The rows: ROC AUC,
its spread over the seeds and the held-out inlier share flagged, as in
bench_outliers. "density" and "satterthwaite" are the detector's
``score_by`` values; the others were tried for them (see the notes file
``results/bench_outliers_notes.md``).

    .venv/bin/python benchmarks/bench_outliers_scores.py --threads 1
    .venv/bin/python benchmarks/bench_outliers_scores.py --sets mnist --seeds 0
"""

import argparse
import time
import warnings

import _common as C
import numpy as np
import torch
from _outlier_data import CLASSES, load_data
from sklearn.base import clone
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import KFold
from sklearn.neighbors import NearestNeighbors

from skae import AutoencoderOutlierDetector
from skae._outlier_scores import satterthwaite_variance
from skae._random import seed_source

CONTAMINATION = 0.1


def pieces(model, X):
    """Codes and residuals (reconstruction minus row) of X, float64."""
    codes = np.asarray(model.transform(X), dtype=np.float64)
    rebuilt = np.asarray(model.inverse_transform(model.transform(X)), dtype=np.float64)
    return codes, rebuilt - X


def fitted_pieces(X_train, X_valid, seed):
    """The default detector's fold models and final model, seeded as its fit
    seeds them, reduced to their codes and residuals."""
    detector = AutoencoderOutlierDetector(random_state=seed)
    split_seed, model_seed = (int(s) for s in seed_source(seed).integers(2**31, size=2))
    template = detector._template(X_train.shape, model_seed)
    folds = KFold(n_splits=detector.cv, shuffle=True, random_state=split_seed)
    out = {"folds": []}
    for fitted, held in folds.split(X_train):
        model = clone(template).fit(X_train[fitted])
        fitted_codes = pieces(model, X_train[fitted])[0]
        out["folds"].append((held, fitted_codes, *pieces(model, X_train[held])))
    final = clone(template).fit(X_train)
    out["codes"] = pieces(final, X_train)[0]
    out["valid"] = pieces(final, X_valid)
    residuals = np.empty(X_train.shape)
    for held, _, _, fold_residuals in out["folds"]:
        residuals[held] = fold_residuals
    out["residuals"] = residuals  # out of fold
    return out


def mahalanobis(codes, query):
    shrunk = LedoitWolf().fit(codes)
    centred = query - shrunk.location_
    return np.einsum("ij,jk,ik->i", centred, shrunk.precision_, centred)


def knn_log_density(codes, query, k=10):
    """-dim * log(mean distance to the k nearest training codes), in the
    Ledoit-Wolf whitened code space: a k-nearest-neighbour log-density."""
    shrunk = LedoitWolf().fit(codes)
    root = np.linalg.cholesky(shrunk.precision_)
    near = NearestNeighbors(n_neighbors=min(k, len(codes))).fit((codes - shrunk.location_) @ root)
    distances = near.kneighbors((query - shrunk.location_) @ root)[0].mean(axis=1)
    return -codes.shape[1] * np.log(np.maximum(distances, 1e-12))


def mixture_log_density(codes, query):
    """A GaussianMixture of 1-4 components, the count chosen by BIC."""
    fits = [
        GaussianMixture(n, reg_covar=1e-3, random_state=0).fit(codes)
        for n in range(1, 5)
        if n <= len(codes) // 2
    ]
    return min(fits, key=lambda m: m.bic(codes)).score_samples(query)


def residual_terms(residuals):
    """name -> fn(query residuals): the residual term of each variant, its
    noise model fitted on the out-of-fold ``residuals``."""
    mean = float(np.square(residuals).mean())
    per_feature = np.square(residuals).mean(axis=0) + 1e-12 * mean
    satterthwaite = satterthwaite_variance(residuals)
    full = LedoitWolf(assume_centered=True).fit(residuals).precision_
    return {
        "isotropic": lambda r: -0.5 * np.square(r).sum(axis=1) / mean,
        "satterthwaite": lambda r: -0.5 * np.square(r).sum(axis=1) / satterthwaite,
        "per feature": lambda r: -0.5 * (np.square(r) / per_feature).sum(axis=1),
        "full (Ledoit-Wolf)": lambda r: -0.5 * np.einsum("ij,jk,ik->i", r, full, r),
        "none": lambda r: np.zeros(len(r)),
    }


def code_terms():
    """name -> fn(training codes, query codes): the code term of each variant."""
    return {
        "Gaussian": lambda codes, query: -0.5 * mahalanobis(codes, query),
        "kNN": knn_log_density,
        "mixture": mixture_log_density,
        "none": lambda codes, query: np.zeros(len(query)),
    }


#: The variants: name -> (residual term, code term, description).
VARIANTS = {
    "density": ("isotropic", "Gaussian", "score_by='density' (the default)"),
    "satterthwaite": ("satterthwaite", "Gaussian", "score_by='satterthwaite'"),
    "per-feature noise": ("per feature", "Gaussian", "a diagonal noise model"),
    "full residual covariance": ("full (Ledoit-Wolf)", "Gaussian", "residual whitened"),
    "kNN code density": ("isotropic", "kNN", "10 nearest whitened codes"),
    "mixture code density": ("isotropic", "mixture", "GaussianMixture, BIC over 1-4"),
    "code only": ("none", "Gaussian", "the code's Mahalanobis distance alone"),
    "residual only": ("isotropic", "none", "the reconstruction error alone"),
}


def variant_scores(found, residual, code):
    """(held-out scores, out-of-fold scores) of one variant."""
    terms, codes = residual_terms(found["residuals"]), code_terms()
    query_codes, query_residuals = found["valid"]
    scores = terms[residual](query_residuals) + codes[code](found["codes"], query_codes)
    calibration = np.empty(len(found["residuals"]))
    for held, fitted_codes, held_codes, held_residuals in found["folds"]:
        calibration[held] = terms[residual](held_residuals) + codes[code](fitted_codes, held_codes)
    return scores, calibration


def run_set(name, args, seeds, log):
    """variant -> {"auc": {seed: {class: auc}}, "flagged": ...} on one set."""
    data = load_data(name, args)
    rows = args.mnist_train_rows if name == "mnist" else None
    results = {
        v: {"auc": {s: {} for s in seeds}, "flagged": {s: {} for s in seeds}} for v in VARIANTS
    }
    for seed in seeds:
        for d in CLASSES[name]:
            X_train = data["X_train"][data["y_train"] == d][:rows]
            inlier = data["y_valid"] == d
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = fitted_pieces(X_train, data["X_valid"], seed)
            for variant, (residual, code, _) in VARIANTS.items():
                scores, calibration = variant_scores(found, residual, code)
                offset = np.percentile(calibration, 100 * CONTAMINATION)
                results[variant]["auc"][seed][d] = float(roc_auc_score(inlier, scores))
                results[variant]["flagged"][seed][d] = float(np.mean(scores[inlier] < offset))
            log(f" {name} seed {seed} class {d}")
    return results


def set_table(results):
    rows = []
    for variant, r in results.items():
        seeds = list(r["auc"])
        per_seed = [np.mean(list(r["auc"][s].values())) for s in seeds]
        flagged = np.mean([v for s in seeds for v in r["flagged"][s].values()])
        rows.append(
            {
                "variant": variant,
                "auc": f"{np.mean(per_seed):.4f}",
                "spread": f"{np.ptp(per_seed):.4f}",
                "flagged": f"{100 * flagged:.1f} %",
                "what": VARIANTS[variant][2],
            }
        )
    headers = ["variant", "mean AUC", "AUC spread over seeds", "held-out inliers flagged", ""]
    return C.markdown_table(rows, ["variant", "auc", "spread", "flagged", "what"], headers)


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sets", default="digits,breast_cancer,wine,iris,mnist")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--mnist-seeds", default="0", help="MNIST's seeds (default: 0)")
    p.add_argument("--mnist-train-rows", type=int, default=1000)
    p.add_argument("--valid-rows", type=int, default=2000, help="held-out MNIST rows scored")
    p.add_argument("--mnist", default=str(C.DEFAULT_MNIST))
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--name", default="bench_outliers_scores")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    hardware = C.hardware_info()
    started = time.perf_counter()

    def log(line):
        print(f"[{time.perf_counter() - started:7.1f} s]{line}", flush=True)

    payload, sections = {"variants": VARIANTS}, []
    for name in args.sets.split(","):
        seeds = args.mnist_seeds if name == "mnist" else args.seeds
        seeds = [int(s) for s in seeds.split(",")]
        payload[name] = run_set(name, args, seeds, log)
        body = (
            f"The default detector's models, seeds {seeds}; each variant scores "
            "the same codes and residuals (bench_outliers' protocol).\n\n"
            + set_table(payload[name])
        )
        sections.append((f"{name}: score variants", body))
        C.write_results(args.name, False, payload, sections, hardware)
    log(" done")


if __name__ == "__main__":
    main()
