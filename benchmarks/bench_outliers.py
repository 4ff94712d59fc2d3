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
negated. PCA's score is its negative squared reconstruction error.

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
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM

from skae import (
    AutoencoderOutlierDetector,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    VariationalAutoencoder,
)
from skae._outlier import DEFAULT_ESTIMATOR_PARAMS, default_estimator

SEED = dict(random_state=0, device="cpu")


class PCAReconstruction:
    """PCA's negative squared reconstruction error as a score (higher = normal)."""

    def __init__(self, n_components):
        self.pca = PCA(n_components=n_components, random_state=0)

    def fit(self, X):
        self.pca.fit(X)
        return self

    def score_samples(self, X):
        X_rec = self.pca.inverse_transform(self.pca.transform(X))
        return -((X_rec - X) ** 2).sum(axis=1)


class PyODScore:
    """PyOD's AutoEncoder with its score negated (PyOD: higher = abnormal)."""

    def __init__(self, **params):
        from pyod.models.auto_encoder import AutoEncoder

        self.model = AutoEncoder(**params)

    def fit(self, X):
        self.model.fit(X)
        return self

    def score_samples(self, X):
        return -self.model.decision_function(X)


def skae_detector(estimator):
    return AutoencoderOutlierDetector(estimator)


#: Budgets of the slow rows on MNIST, to keep the full run under ~25 minutes on
#: 2 cores: the convolutional autoencoder trains fewer epochs (each costs ~4x an
#: MLP epoch on CPU), OneClassSVM fits a subset (its fit and scoring grow with
#: the support vectors, half the rows at nu=0.5) and PyOD keeps its default
#: epochs (batch 32 makes its epochs ~3x slower than skae's).
LIMITS = {
    "digits": {"conv_epochs": None, "ocsvm_rows": None, "pyod_epochs": None},
    "mnist": {"conv_epochs": 10, "ocsvm_rows": 2500, "pyod_epochs": 10},
}


def detectors(image_shape, epochs, limits, only=None):
    """name -> (factory, description, training rows cap): the main table.

    The skae rows share the default's code size, hidden layers, batch size and
    epochs (the convolutional one has its own channels); ``epochs`` replaces
    the default's ``max_iter`` (quick mode), ``limits`` hold the budgets of the
    slow rows (None: as the default).
    """
    n_components = DEFAULT_ESTIMATOR_PARAMS["n_components"]
    hidden = DEFAULT_ESTIMATOR_PARAMS["hidden_layer_sizes"]
    shared = {**DEFAULT_ESTIMATOR_PARAMS, **SEED}
    if epochs is not None:
        shared["max_iter"] = epochs
    conv_epochs = epochs or limits["conv_epochs"] or shared["max_iter"]
    pyod_epochs = epochs or limits["pyod_epochs"] or shared["max_iter"]
    ocsvm_rows = limits["ocsvm_rows"]
    mlp = {k: v for k, v in shared.items() if k != "n_components"}
    conv = {k: v for k, v in mlp.items() if k != "hidden_layer_sizes"}
    conv["max_iter"] = conv_epochs
    table = {
        "skae default (Autoencoder)": (
            lambda: skae_detector(default_estimator(**shared)),
            f"AutoencoderOutlierDetector() with random_state=0: Autoencoder({_params(shared)})",
            None,
        ),
        "skae DenoisingAutoencoder": (
            lambda: skae_detector(DenoisingAutoencoder(**shared)),
            "the default's settings, {0.noise} noise {0.noise_level} (its default)".format(
                DenoisingAutoencoder()
            ),
            None,
        ),
        "skae VariationalAutoencoder": (
            lambda: skae_detector(VariationalAutoencoder(n_components=n_components, **mlp)),
            "the default's settings; score: the ELBO",
            None,
        ),
        "skae ConvolutionalAutoencoder": (
            lambda: skae_detector(
                ConvolutionalAutoencoder(n_components=n_components, image_shape=image_shape, **conv)
            ),
            f"image_shape={image_shape}, channels (16, 32) (its default), the default's "
            f"code size and batch, max_iter={conv_epochs}",
            None,
        ),
        f"PCA({n_components}) reconstruction": (
            lambda: PCAReconstruction(n_components),
            "negative squared reconstruction error",
            None,
        ),
        "IsolationForest": (
            lambda: IsolationForest(random_state=0),
            "scikit-learn defaults",
            None,
        ),
        "OneClassSVM": (
            lambda: OneClassSVM(),
            "scikit-learn defaults (RBF, gamma='scale', nu=0.5)"
            + (
                f"; fitted on the first {ocsvm_rows} training images of the digit"
                if ocsvm_rows
                else ""
            ),
            ocsvm_rows,
        ),
        "LocalOutlierFactor": (
            lambda: LocalOutlierFactor(novelty=True),
            "novelty=True, 20 neighbours",
            None,
        ),
        "PyOD AutoEncoder": (
            lambda: PyODScore(
                hidden_neuron_list=[*hidden, n_components],
                epoch_num=pyod_epochs,
                device="cpu",
                random_state=0,
                verbose=0,
            ),
            f"hidden_neuron_list={[*hidden, n_components]}, epoch_num={pyod_epochs}, "
            "its other defaults (StandardScaler, batch norm, dropout 0.2, batch 32, "
            "weight decay 1e-5)",
            None,
        ),
    }
    if only:
        table = {k: v for k, v in table.items() if any(o.lower() in k.lower() for o in only)}
    return table


def sweep_settings(base_epochs):
    """The Autoencoder settings around the default that the sweep compares."""
    base = {**DEFAULT_ESTIMATOR_PARAMS}
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
        if cls is None:
            factory = (lambda p: lambda: skae_detector(default_estimator(**p)))(params)
        else:
            factory = (lambda c, p: lambda: skae_detector(c(**p)))(cls, params)
        shown = {k: v for k, v in {**base, **change}.items() if k != "estimator"}
        out.append((label, factory, (f"{cls.__name__}: " if cls else "") + _params(shown)))
    return out


def _params(params):
    return ", ".join(f"{k}={v!r}" for k, v in params.items() if k not in SEED)


def one_class(data, factories, classes, train_rows, log, caps=None):
    """AUC and fit seconds of each detector for each inlier class; ``caps``:
    name -> the most training rows that detector gets (None: all)."""
    caps = caps or {}
    X_train, y_train = data["X_train"], data["y_train"]
    X_valid, y_valid = data["X_valid"], data["y_valid"]
    results = {name: {"auc": {}, "fit_seconds": {}, "n_train": {}} for name in factories}
    with warnings.catch_warnings():  # imports and first calls out of the timings
        warnings.simplefilter("ignore")
        for factory in factories.values():
            factory().fit(X_train[y_train == classes[0]][:50]).score_samples(X_valid[:50])
    for d in classes:
        X_digit = X_train[y_train == d][:train_rows]
        for name, factory in factories.items():
            X_fit = X_digit[: caps.get(name)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                detector = factory()
                seconds, _ = C.timed(lambda detector=detector: detector.fit(X_fit))
                scores = detector.score_samples(X_valid)
            auc = float(roc_auc_score(y_valid == d, scores))
            results[name]["auc"][int(d)] = auc
            results[name]["fit_seconds"][int(d)] = seconds
            results[name]["n_train"][int(d)] = len(X_fit)
            log(f"  digit {d}  {name:<32} AUC {auc:.4f}  fit {seconds:6.1f} s")
    for r in results.values():
        r["mean_auc"] = float(np.mean(list(r["auc"].values())))
        r["mean_fit_seconds"] = float(np.mean(list(r["fit_seconds"].values())))
    return results


def table(results, descriptions, classes):
    rows = []
    for name, r in results.items():
        row = {"detector": name, "mean": r["mean_auc"], "fit_s": r["mean_fit_seconds"]}
        row.update({f"d{d}": r["auc"][int(d)] for d in classes})
        row["settings"] = descriptions.get(name, "")
        rows.append(row)
    best = max(r["mean"] for r in rows)
    for row in rows:
        row["best"] = "**best**" if row["mean"] == best else ""
        row["mean"] = f"{row['mean']:.4f}"  # four digits: the sweep's rows are close
    columns = ["detector", "mean", "best", *[f"d{d}" for d in classes], "fit_s", "settings"]
    headers = [
        "detector",
        "mean AUC",
        "",
        *[str(d) for d in classes],
        "fit s / digit",
        "settings",
    ]
    return C.markdown_table(rows, columns, headers)


def load_data(name, args):
    if name == "digits":
        return C.load_digits_split()
    full = C.load_mnist(args.mnist)
    if args.valid_rows:
        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(len(full["X_valid"]), args.valid_rows, replace=False))
        full["X_valid"], full["y_valid"] = full["X_valid"][keep], full["y_valid"][keep]
    return full


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
        default="digits,mnist",
        help="comma-separated: digits, mnist (the main tables), sweep (the default's "
        "settings on MNIST), digits-sweep",
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
    if args.threads:
        torch.set_num_threads(args.threads)
    classes = [int(c) for c in args.classes.split(",")] if args.classes else list(range(10))
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
    notes = []
    started = time.perf_counter()

    def log(line):
        print(f"[{time.perf_counter() - started:7.1f} s]{line}", flush=True)

    def save():
        C.write_results(args.name, q, payload, sections, hardware)

    for name in ("digits", "mnist"):
        if name not in args.sections.split(","):
            continue
        data = load_data(name, args)
        image_shape = (8, 8) if name == "digits" else (28, 28)
        limits = {  # quick mode: no budget limits (the epochs and rows are small anyway)
            k: getattr(args, k) if getattr(args, k) is not None else None if q else v
            for k, v in LIMITS[name].items()
        }
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
        results = one_class(data, factories, classes, args.train_rows, log, caps)
        descriptions = {k: v[1] for k, v in table_detectors.items()}
        payload[name] = {
            "source": data["source"],
            "n_train": len(data["X_train"]),
            "n_valid": len(data["X_valid"]),
            "results": results,
            "descriptions": descriptions,
        }
        n_fit = sorted(min(args.train_rows or 10**9, np.sum(data["y_train"] == d)) for d in classes)
        body = (
            f"Fit on the training images of one digit ({n_fit[0]}-{n_fit[-1]} images), "
            f"scored on all {len(data['X_valid'])} held-out images ({data['source']}); "
            "ROC AUC of the score (higher = more normal) at telling that digit from the "
            "nine others, per digit and the mean. Fit seconds are the mean per digit, "
            "on the hardware above while other jobs shared the machine.\n\n"
            + table(results, descriptions, classes)
        )
        if notes:
            body += "\n\n" + "\n".join(f"- {n}" for n in notes)
        sections.append((f"{name}: one-class ROC AUC", body))
        save()

    for section, name in (("sweep", "mnist"), ("digits-sweep", "digits")):
        if section not in args.sections.split(","):
            continue
        data = load_data(name, args)
        settings = [
            setting
            for setting in sweep_settings(args.epochs)
            if only is None or any(part in setting[0] for part in only)
        ]
        factories = {label: factory for label, factory, _ in settings}
        log(f" sweep over the Autoencoder detector's settings on {name}")
        results = one_class(data, factories, classes, args.train_rows, log)
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
