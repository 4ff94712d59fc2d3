"""One-class outlier detection: skae's AutoencoderOutlierDetector against PCA
reconstruction error, IsolationForest, OneClassSVM, LocalOutlierFactor and PyOD.

The one-class protocol (Ruff et al., ICML 2018): for each digit d, fit on the
training images of d alone, score every held-out image (MNIST ``X_valid``,
10,000 rows; a stratified 25 % split of scikit-learn's digits), and measure
the ROC AUC of the score at telling the images of d (the inliers) from those
of the nine other digits (the outliers). The table gives the AUC per digit,
the mean over the ten digits and the fit seconds per digit.

Every score is oriented "higher is more normal" (scikit-learn's convention:
``score_samples``); PyOD's ``decision_function`` (higher is more abnormal) is
negated. PCA's scores: its negative squared reconstruction error, and its
``score_samples`` (a Gaussian log-likelihood, the code's density included).
skae's default scores by ``score_by="density"``; the ``score_by="satterthwaite"``
row scales the residual's variance for the correlation of its features;
``--detectors reconstruction`` adds the ``score_by="reconstruction"`` row.

The tabular sets: breast cancer (benign as inliers), wine (class 0) and iris
(each class in turn, a set no setting was tuned on).

``--sections sweep`` (MNIST; ``digits-sweep`` on digits) runs the default
detector with one setting changed at a time (code size, width and depth,
epochs, batch size, the denoising variant): the evidence for the default.

    .venv/bin/python benchmarks/bench_outliers.py --quick
    .venv/bin/python benchmarks/bench_outliers.py --threads 1
    .venv/bin/python benchmarks/bench_outliers.py --threads 1 --sections sweep,digits-sweep --name bench_outliers_sweep
"""

import argparse
import os
import resource
import time
import warnings

import _common as C
import numpy as np
import torch
from _outlier_data import CLASSES, SETS, load_data
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM
from threadpoolctl import threadpool_limits

from skae import (
    Autoencoder,
    AutoencoderOutlierDetector,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    VariationalAutoencoder,
)
from skae._outlier import DEFAULT_ESTIMATOR_PARAMS, default_estimator, default_size

SEED = dict(random_state=0, device="cpu")


CONTAMINATION = 0.1


class TrainingQuantile:
    """A score (higher = normal) and, as IsolationForest with a float
    ``contamination``, the threshold ``offset_`` at the training scores'
    ``CONTAMINATION`` quantile."""

    def fit(self, X):
        self._fit(X)
        self.offset_ = float(np.percentile(self.score_samples(X), 100 * CONTAMINATION))
        return self


class PCAReconstruction(TrainingQuantile):
    """PCA's negative squared reconstruction error as a score (higher = normal)."""

    def __init__(self, n_components):
        self.pca = PCA(n_components=n_components, random_state=0)

    def _fit(self, X):
        self.pca.fit(X)

    def score_samples(self, X):
        X_rec = self.pca.inverse_transform(self.pca.transform(X))
        return -((X_rec - X) ** 2).sum(axis=1)


class PCALikelihood(PCAReconstruction):
    """PCA.score_samples (probabilistic PCA's log-likelihood) as a score."""

    def score_samples(self, X):
        return self.pca.score_samples(X)


class OneClassSVMScore(TrainingQuantile):
    """OneClassSVM's score with the training-quantile threshold (its own
    threshold is nu's, 0.5 here)."""

    def __init__(self):
        self.model = OneClassSVM()

    def _fit(self, X):
        self.model.fit(X)

    def score_samples(self, X):
        return self.model.score_samples(X)


class PyODScore:
    """PyOD's AutoEncoder with its score negated (PyOD: higher = abnormal);
    its threshold is its training scores' ``contamination`` quantile."""

    def __init__(self, **params):
        from pyod.models.auto_encoder import AutoEncoder

        self.model = AutoEncoder(contamination=CONTAMINATION, **params)

    def fit(self, X):
        self.model.fit(X)
        self.offset_ = -float(self.model.threshold_)
        return self

    def score_samples(self, X):
        return -self.model.decision_function(X)


#: Budgets of the slow rows on MNIST: the convolutional autoencoder trains
#: fewer epochs, OneClassSVM fits a subset, PyOD keeps 10 epochs.
LIMITS = {
    "digits": {"conv_epochs": None, "ocsvm_rows": None, "pyod_epochs": None},
    "mnist": {"conv_epochs": 10, "ocsvm_rows": 2500, "pyod_epochs": 10},
    "breast_cancer": {"conv_epochs": None, "ocsvm_rows": None, "pyod_epochs": None},
    "wine": {"conv_epochs": None, "ocsvm_rows": None, "pyod_epochs": None},
    "iris": {"conv_epochs": None, "ocsvm_rows": None, "pyod_epochs": None},
}


def detectors(image_shape, epochs, limits, only=None):
    """name -> (factory(seed, shape), description, training rows cap).

    The skae rows are the default detector (cross-fitted threshold, early
    stopping) and, with ``--detectors``, its variants with the default's code
    size and hidden layer; ``epochs`` caps the default's ``max_iter`` (quick
    mode); ``limits`` hold the budgets of the slow rows.
    """
    hidden = DEFAULT_ESTIMATOR_PARAMS["hidden_layer_sizes"]
    pyod_epochs = epochs or limits["pyod_epochs"] or 45
    ocsvm_rows = limits["ocsvm_rows"]
    capped = {} if epochs is None else {"max_iter": epochs}

    def skae_default(seed, shape, score_by="density"):
        if not capped:
            return AutoencoderOutlierDetector(random_state=seed, score_by=score_by)
        inner = default_estimator(*shape, random_state=seed, device="cpu", **capped)
        return AutoencoderOutlierDetector(inner, random_state=seed, score_by=score_by)

    def variant(cls, **extra):
        def factory(seed, shape):
            params = {**DEFAULT_ESTIMATOR_PARAMS, **default_size(*shape), **capped, **extra}
            if cls is ConvolutionalAutoencoder:
                params.pop("hidden_layer_sizes")
            inner = cls(**params, random_state=seed, device="cpu")
            return AutoencoderOutlierDetector(inner, random_state=seed)

        return factory

    table = {
        "skae default": (skae_default, "AutoencoderOutlierDetector(random_state=seed)", None),
        "skae score_by='satterthwaite'": (
            lambda seed, shape: skae_default(seed, shape, "satterthwaite"),
            "the default detector, the residual's variance scaled for its correlation",
            None,
        ),
        "PCA reconstruction": (
            lambda seed, shape: PCAReconstruction(default_size(*shape)["n_components"]),
            "negative squared reconstruction error; the skae default's code size",
            None,
        ),
        "PCA score_samples": (
            lambda seed, shape: PCALikelihood(default_size(*shape)["n_components"]),
            "PCA.score_samples (Gaussian log-likelihood); the skae default's code size",
            None,
        ),
        "IsolationForest": (
            lambda seed, shape: IsolationForest(contamination=CONTAMINATION, random_state=seed),
            "scikit-learn defaults, contamination=0.1",
            None,
        ),
        "OneClassSVM": (
            lambda seed, shape: OneClassSVMScore(),
            "scikit-learn defaults (RBF, gamma='scale', nu=0.5)"
            + (f"; fitted on the first {ocsvm_rows} training rows" if ocsvm_rows else ""),
            ocsvm_rows,
        ),
        "LocalOutlierFactor": (
            lambda seed, shape: LocalOutlierFactor(novelty=True, contamination=CONTAMINATION),
            "novelty=True, 20 neighbours, contamination=0.1",
            None,
        ),
        "PyOD AutoEncoder": (
            lambda seed, shape: PyODScore(
                hidden_neuron_list=[*hidden, default_size(*shape)["n_components"]],
                epoch_num=pyod_epochs,
                device="cpu",
                random_state=seed,
                verbose=0,
            ),
            f"hidden_neuron_list=[256, the skae default's code size], epoch_num={pyod_epochs}, "
            "its other defaults (StandardScaler, batch norm, dropout 0.2, batch 32)",
            None,
        ),
    }
    variants = {
        "skae score_by='reconstruction'": (
            lambda seed, shape: skae_default(seed, shape, "reconstruction"),
            "the default detector scoring by the inner model's reconstruction error",
        ),
        "skae DenoisingAutoencoder": (variant(DenoisingAutoencoder), "the default's settings"),
        "skae VariationalAutoencoder": (variant(VariationalAutoencoder), "score: the ELBO"),
        "skae ConvolutionalAutoencoder": (
            variant(ConvolutionalAutoencoder, image_shape=image_shape),
            f"image_shape={image_shape}",
        ),
    }
    if only:
        table.update({k: (*v, None) for k, v in variants.items() if image_shape or "Conv" not in k})
        table = {k: v for k, v in table.items() if any(o.lower() in k.lower() for o in only)}
    return table


def skae_detector(estimator):
    return AutoencoderOutlierDetector(estimator, random_state=0)


def sweep_settings(base_epochs, shape):
    """The Autoencoder settings around the default for training rows of
    ``shape`` (one class's) that the sweep compares."""
    base = {**DEFAULT_ESTIMATOR_PARAMS, **default_size(*shape)}
    grid = [
        ("the default", {}),
        ("n_components=8", {"n_components": 8}),
        ("n_components=8, max_iter=60", {"n_components": 8, "max_iter": 60}),
        ("n_components=12", {"n_components": 12}),
        ("activation='tanh'", {"activation": "tanh"}),
        ("weight_decay=1e-4", {"weight_decay": 1e-4}),
        ("loss='bce'", {"loss": "bce"}),
        ("loss='bce', max_iter=60", {"loss": "bce", "max_iter": 60}),
        ("n_components=32", {"n_components": 32}),
        ("n_components=64", {"n_components": 64}),
        ("hidden (512, 128)", {"hidden_layer_sizes": (512, 128)}),
        ("max_iter=10", {"max_iter": 10}),
        ("max_iter=60", {"max_iter": 60}),
        ("n_components=32, max_iter=60", {"n_components": 32, "max_iter": 60}),
        ("hidden (512,)", {"hidden_layer_sizes": (512,)}),
        ("batch_size='auto' (200)", {"batch_size": "auto"}),
        ("DenoisingAutoencoder", {"estimator": DenoisingAutoencoder}),
        (
            "DenoisingAutoencoder, gaussian 0.05",
            {"estimator": DenoisingAutoencoder, "noise": "gaussian", "noise_level": 0.05},
        ),
        ("ContractiveAutoencoder", {"estimator": ContractiveAutoencoder}),
        (
            "ContractiveAutoencoder, 0.03",
            {"estimator": ContractiveAutoencoder, "contraction_weight": 0.03},
        ),
        ("SparseAutoencoder", {"estimator": SparseAutoencoder}),
        ("schedule='cosine'", {"learning_rate_schedule": "cosine"}),
        ("batch_size=32", {"batch_size": 32}),
        ("batch_size=128", {"batch_size": 128}),
        ("learning_rate=3e-3", {"learning_rate": 3e-3}),
        ("hidden (256, 64)", {"hidden_layer_sizes": (256, 64)}),
        ("learning_rate=5e-4", {"learning_rate": 5e-4}),
        ("learning_rate=2e-3", {"learning_rate": 2e-3}),
        ("n_components=24", {"n_components": 24}),
        ("batch_size=32, max_iter=20", {"batch_size": 32, "max_iter": 20}),
        ("max_iter=45", {"max_iter": 45}),
        ("tied_weights=True", {"tied_weights": True}),
        ("activation='elu'", {"activation": "elu"}),
        ("activation='gelu'", {"activation": "gelu"}),
        ("elu random_state=1", {"activation": "elu", "random_state": 1}),
        ("elu max_iter=45", {"activation": "elu", "max_iter": 45}),
        ("elu n_components=24", {"activation": "elu", "n_components": 24}),
        ("elu hidden 512", {"activation": "elu", "hidden_layer_sizes": (512,)}),
        ("random_state=1", {"random_state": 1}),
        ("random_state=2", {"random_state": 2}),
    ]
    if base_epochs is not None:  # quick mode: fewer epochs everywhere
        grid = [(label, {**change, "max_iter": base_epochs}) for label, change in grid]
    out = []
    for label, change in grid:
        params = {**base, **SEED, **change}
        cls = params.pop("estimator", None)
        factory = (lambda c, p: lambda seed, shape: skae_detector(c(**p)))(
            cls or Autoencoder, params
        )
        shown = {k: v for k, v in {**base, **change}.items() if k != "estimator"}
        out.append((label, factory, (f"{cls.__name__}: " if cls else "") + _params(shown)))
    return out


def _params(params):
    return ", ".join(f"{k}={v!r}" for k, v in params.items() if k not in SEED)


def one_class(data, factories, classes, train_rows, log, caps=None, seeds=(0,)):
    """Per detector: ROC AUC and held-out inlier share flagged at
    ``CONTAMINATION`` per seed and inlier class, fit seconds; ``caps``: name ->
    the most training rows that detector gets (None: all)."""
    caps = caps or {}
    X_train, y_train = data["X_train"], data["y_train"]
    X_valid, y_valid = data["X_valid"], data["y_valid"]
    keys = ("auc", "flagged", "fit_seconds")
    results = {name: {k: {s: {} for s in seeds} for k in keys} for name in factories}
    with warnings.catch_warnings():  # imports and first calls out of the timings
        warnings.simplefilter("ignore")
        for factory in factories.values():
            X_warm = X_train[y_train == classes[0]][:50]
            factory(0, X_warm.shape).fit(X_warm).score_samples(X_valid[:50])
    for seed in seeds:
        for d in classes:
            X_class = X_train[y_train == d][:train_rows]
            for name, factory in factories.items():
                X_fit = X_class[: caps.get(name)]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    detector = factory(seed, X_fit.shape)
                    seconds, _ = C.timed(lambda detector=detector: detector.fit(X_fit))
                    scores = detector.score_samples(X_valid)
                auc = float(roc_auc_score(y_valid == d, scores))
                flagged = float(np.mean(scores[y_valid == d] < detector.offset_))
                for key, value in zip(keys, (auc, flagged, seconds)):
                    results[name][key][seed][int(d)] = value
                log(
                    f"  seed {seed} class {d}  {name:<30} AUC {auc:.4f}  "
                    f"flagged {flagged:.3f}  fit {seconds:6.1f} s"
                )
    for r in results.values():
        summarise(r, seeds)
    return results


def summarise(r, seeds):
    """Means over the classes per seed, then over the seeds, and the spread."""
    per_seed = [np.mean(list(r["auc"][s].values())) for s in seeds]
    r["mean_auc_per_seed"] = [float(a) for a in per_seed]
    r["mean_auc"] = float(np.mean(per_seed))
    r["auc_spread"] = float(np.ptp(per_seed))
    r["mean_flagged"] = float(np.mean([v for s in seeds for v in r["flagged"][s].values()]))
    r["mean_fit_seconds"] = float(np.mean([v for s in seeds for v in r["fit_seconds"][s].values()]))


def table(results, descriptions, classes):
    rows = []
    for name, r in results.items():
        seeds = list(r["auc"])
        row = {
            "detector": name,
            "mean": r["mean_auc"],
            "spread": f"{r['auc_spread']:.4f}",
            "flagged": f"{100 * r['mean_flagged']:.1f} %",
            "fit_s": r["mean_fit_seconds"],
        }
        row.update({f"d{d}": np.mean([r["auc"][s][int(d)] for s in seeds]) for d in classes})
        row["settings"] = descriptions.get(name, "")
        rows.append(row)
    best = max(r["mean"] for r in rows)
    for row in rows:
        row["best"] = "**best**" if row["mean"] == best else ""
        row["mean"] = f"{row['mean']:.4f}"  # four digits: the rows are close
    per_class = [f"d{d}" for d in classes] if len(classes) > 1 else []
    columns = ["detector", "mean", "best", "spread", "flagged", *per_class, "fit_s", "settings"]
    headers = ["detector", "mean AUC", "", "AUC spread over seeds", "held-out inliers flagged"]
    headers += [c[1:] for c in per_class] + ["fit s", "settings"]
    return C.markdown_table(rows, columns, headers)


def summary(payload):
    """Per detector: the mean AUC and its seed spread on each data set, and
    the held-out inlier share flagged, averaged over the data sets."""
    sets = [
        name for name in ("mnist", "digits", "breast_cancer", "wine", "iris") if name in payload
    ]
    rows = []
    for detector in payload[sets[0]]["results"]:
        found = [payload[n]["results"][detector] for n in sets]
        row = {"detector": detector}
        for name, r in zip(sets, found):
            row[name] = f"{r['mean_auc']:.4f} ± {r['auc_spread']:.4f}"
        row["flagged"] = f"{100 * np.mean([r['mean_flagged'] for r in found]):.1f} %"
        rows.append(row)
    intro = (
        "Mean ROC AUC per data set (the mean over the inlier classes and the seeds) "
        "± its spread over the seeds, and the held-out inlier share flagged at "
        f"contamination={CONTAMINATION}, averaged over the data sets.\n\n"
    )
    headers = ["detector", *sets, "held-out inliers flagged (mean over sets)"]
    return intro + C.markdown_table(rows, ["detector", *sets, "flagged"], headers)


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="digits, and MNIST with 200 training images per digit and 1000 held-out rows; "
        "3 epochs, no other budget limits",
    )
    p.add_argument(
        "--mnist",
        default=os.environ.get("SKAE_MNIST", str(C.DEFAULT_MNIST)),
        help="path to mnist_trainval.npz (default: $SKAE_MNIST, else ../shared/data/)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument(
        "--sections",
        default="digits,breast_cancer,wine,iris,mnist",
        help="comma-separated: digits, breast_cancer, wine, iris, mnist (the main tables), sweep "
        "(the default's settings on MNIST), digits-sweep",
    )
    p.add_argument("--seeds", default="0,1,2,3,4", help="random_state of each repeat")
    p.add_argument("--mnist-seeds", default=None, help="MNIST's seeds (default: --seeds)")
    p.add_argument(
        "--mnist-train-rows",
        type=int,
        default=None,
        help="training images per MNIST digit (default: all; --train-rows applies to all sets)",
    )
    p.add_argument("--classes", default=None, help="inlier digits, e.g. 0,1,2 (default all)")
    p.add_argument("--train-rows", type=int, default=None, help="training images per digit")
    p.add_argument("--valid-rows", type=int, default=None, help="held-out MNIST rows scored")
    p.add_argument("--epochs", type=int, default=None, help="max_iter of the skae and PyOD rows")
    p.add_argument("--conv-epochs", type=int, default=None, help="MNIST default: 10")
    p.add_argument("--ocsvm-rows", type=int, default=None, help="MNIST default: 2500")
    p.add_argument("--pyod-epochs", type=int, default=None, help="MNIST default: 10")
    p.add_argument(
        "--detectors",
        default=None,
        help="comma-separated parts of the detector names (or sweep labels) to run",
    )
    p.add_argument("--name", default="bench_outliers", help="results file name")
    args = p.parse_args()
    q = args.quick
    if q:
        args.train_rows = args.train_rows or 200
        args.valid_rows = args.valid_rows or 1000
        args.epochs = args.epochs or 3
    if args.threads:  # torch's and BLAS's (PCA, OneClassSVM): the peers get what skae gets
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    if q:
        seeds = seeds[:2]
    only = args.detectors.split(",") if args.detectors else None
    hardware = C.hardware_info()
    print(hardware, flush=True)
    try:
        import pyod

        hardware["pyod"] = pyod.__version__
    except ImportError:
        pass
    payload = {"args": vars(args), "default_estimator_params": DEFAULT_ESTIMATOR_PARAMS}
    sections = []
    started = time.perf_counter()

    def log(line):
        print(f"[{time.perf_counter() - started:7.1f} s]{line}", flush=True)

    def save():
        C.write_results(args.name, q, payload, sections, hardware)

    for name in SETS:
        if name not in args.sections.split(","):
            continue
        data = load_data(name, args)
        image_shape = {"digits": (8, 8), "mnist": (28, 28)}.get(name)
        classes = CLASSES[name]
        if args.classes and name in ("digits", "mnist"):
            classes = [int(c) for c in args.classes.split(",")]
        train_rows = args.mnist_train_rows if name == "mnist" else None
        train_rows = train_rows or args.train_rows
        limits = {  # quick mode: no budget limits (the epochs and rows are small anyway)
            k: getattr(args, k) if getattr(args, k) is not None else None if q else v
            for k, v in LIMITS[name].items()
        }
        notes = []  # this data set's
        table_detectors = detectors(image_shape, args.epochs, limits, only)
        factories = {k: v[0] for k, v in table_detectors.items()}
        caps = {k: v[2] for k, v in table_detectors.items()}
        if "PyOD AutoEncoder" in factories:
            try:
                import pyod  # noqa: F401
            except ImportError as error:
                notes.append(f"PyOD AutoEncoder skipped: {error}")
                del factories["PyOD AutoEncoder"]
        log(f" {name}: {len(data['X_train'])} training rows, {len(data['X_valid'])} held out")
        set_seeds = (
            [int(s) for s in args.mnist_seeds.split(",")]
            if (name == "mnist" and args.mnist_seeds)
            else seeds
        )
        results = one_class(data, factories, classes, train_rows, log, caps, set_seeds)
        descriptions = {k: v[1] for k, v in table_detectors.items()}
        payload[name] = {
            "source": data["source"],
            "n_train": len(data["X_train"]),
            "n_valid": len(data["X_valid"]),
            "results": results,
            "descriptions": descriptions,
        }
        n_fit = sorted(min(train_rows or 10**9, np.sum(data["y_train"] == d)) for d in classes)
        body = (
            f"Fit on the training rows of one class ({n_fit[0]}-{n_fit[-1]} rows), scored "
            f"on all {len(data['X_valid'])} held-out rows ({data['source']}); ROC AUC of the "
            "score (higher = more normal) at telling that class from the others, per class "
            f"and the mean, averaged over the seeds {set_seeds} (skae, IsolationForest and PyOD "
            "take the seed; PCA, OneClassSVM and LOF are deterministic); the spread is the "
            "largest minus the smallest mean AUC over the seeds; skae's default score is "
            "score_by='density'. Held-out inliers flagged: "
            "the share of the held-out rows of the inlier class below each detector's "
            f"threshold for contamination={CONTAMINATION} (skae: the cross-fitted "
            "`offset_`; IsolationForest and LocalOutlierFactor: their own, the training "
            "scores' quantile; PCA and OneClassSVM, which have none here: that quantile "
            "too, which over-flags new rows where a model fits its training rows closely). Fit "
            "seconds are the mean per fit, on the hardware above while other jobs shared "
            "the machine.\n\n" + table(results, descriptions, classes)
        )
        if notes:
            body += "\n\n" + "\n".join(f"- {n}" for n in notes)
        sections.append((f"{name}: one-class ROC AUC", body))
        save()

    for section, name in (("sweep", "mnist"), ("digits-sweep", "digits")):
        if section not in args.sections.split(","):
            continue
        data = load_data(name, args)
        # the default's code and batch sizes for one class's training rows
        per_class = int(np.bincount(data["y_train"]).min())
        train_rows = (args.mnist_train_rows if name == "mnist" else None) or args.train_rows
        shape = (min(per_class, train_rows or per_class), data["X_train"].shape[1])
        settings = [
            setting
            for setting in sweep_settings(args.epochs, shape)
            if only is None or any(part in setting[0] for part in only)
        ]
        factories = {label: factory for label, factory, _ in settings}
        log(f" sweep over the Autoencoder detector's settings on {name}")
        classes = CLASSES[name]
        if args.classes:  # as the main sections take them
            classes = [int(c) for c in args.classes.split(",")]
        results = one_class(data, factories, classes, train_rows, log, seeds=seeds[:1])
        descriptions = {label: params for label, _, params in settings}
        payload[section] = {"results": results, "descriptions": descriptions}
        sections.append(
            (
                f"{name}: the Autoencoder detector's settings, one change at a time",
                "One-class ROC AUC as in the main table, for the default and for one "
                "setting changed at a time.\n\n" + table(results, descriptions, classes),
            )
        )
        save()
    if any(name in payload for name in CLASSES):
        sections.append(("Summary over the data sets", summary(payload)))
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    payload["run_seconds"] = {"wall": wall, "cpu": cpu}
    sections.append(
        (
            "Run time",
            f"{wall / 60:.1f} minutes of wall time and {cpu / 60:.1f} minutes of CPU time "
            "for this process (other jobs on the machine stretch the first, not the second).",
        )
    )
    save()
    log(" done")


if __name__ == "__main__":
    main()
