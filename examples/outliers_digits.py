"""Find unusual digits with an AutoencoderOutlierDetector, against PCA.

Two uses of the same Pipeline, ``MinMaxScaler`` then the detector:

1. Novelty detection, one class: fit on the training images of one digit,
   score every held-out digit, and draw the ROC curve of telling that digit
   from the nine others, against PCA's reconstruction error at the same code
   size (``--out``).
2. Outlier detection: fit on all 1797 digits with ``contamination=0.02`` and
   show the digits the detector finds most abnormal, above their
   reconstructions (``--out-abnormal``); their indices and labels are printed.

    python examples/outliers_digits.py [--digit 3] [--out docs/outliers_roc.png]
"""

import argparse
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import RocCurveDisplay, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import Autoencoder, AutoencoderOutlierDetector
from skae.plotting import ReconstructionDisplay


def detector_pipeline(args, contamination=0.1):
    # a small autoencoder, seeded, trained for a fixed number of epochs (the
    # default detector's is wider, elu, with early stopping: slower here)
    estimator = Autoencoder(
        n_components=args.components,
        hidden_layer_sizes=(256,),
        learning_rate=1e-3,
        batch_size=64,
        max_iter=args.max_iter,
        early_stopping=False,
        random_state=args.seed,
        device="cpu",
    )
    return make_pipeline(
        MinMaxScaler(), AutoencoderOutlierDetector(estimator, contamination=contamination)
    )


def pca_scores(X_train, X_test, n_components):
    """PCA's negative squared reconstruction error (higher is more normal)."""
    pca = PCA(n_components=n_components, random_state=0).fit(X_train)
    return -((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2).sum(axis=1)


def save(figure, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    print(f"saved {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digit", type=int, default=3, help="the normal class of part 1")
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--max-iter", type=int, default=30)
    parser.add_argument("--n-abnormal", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/outliers_roc.png")
    parser.add_argument("--out-abnormal", default="docs/outliers_abnormal.png")
    parser.add_argument(
        "--quick", action="store_true", help="few epochs and images, for a smoke test"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.max_iter, args.n_abnormal = 10, 6
    import matplotlib.pyplot as plt

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )

    # 1. one class: the training images of one digit are the normal data
    X_normal = X_train[y_train == args.digit]
    pipe = detector_pipeline(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X_normal)
    is_normal = y_test == args.digit
    scores = {
        "AutoencoderOutlierDetector": pipe.score_samples(X_test),
        f"PCA({args.components}) reconstruction": pca_scores(
            X_normal / 16, X_test / 16, args.components
        ),
    }
    print(
        f"digits: trained on the {len(X_normal)} training images of a {args.digit}; "
        f"{len(X_test)} held-out images, {is_normal.sum()} of them {args.digit}s"
    )
    flagged = pipe.predict(X_test) == -1
    print(
        f"flagged as outliers: {flagged[~is_normal].mean():.1%} of the other digits, "
        f"{flagged[is_normal].mean():.1%} of the held-out {args.digit}s"
    )
    fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    for name, score in scores.items():
        print(f"ROC AUC {name:<28} {roc_auc_score(is_normal, score):.3f}")
        RocCurveDisplay.from_predictions(is_normal, score, name=name, ax=ax)
    ax.set(
        title=f"telling held-out {args.digit}s from the other digits",
        xlabel=f"other digits taken for {args.digit}s (false positive rate)",
        ylabel=f"{args.digit}s kept as normal (true positive rate)",
    )
    save(fig, args.out)

    # 2. outliers among all the digits
    pipe = detector_pipeline(args, contamination=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = pipe.fit_predict(X)
    order = np.argsort(pipe.decision_function(X))[: args.n_abnormal]
    print(f"all {len(X)} digits: {(labels == -1).sum()} flagged as outliers (contamination 0.02)")
    print("most abnormal (index:label): " + " ".join(f"{i}:{y[i]}" for i in order))
    scaled = pipe[0].transform(X[order])
    autoencoder = pipe[-1].estimator_
    display = ReconstructionDisplay(
        [scaled, autoencoder.inverse_transform(autoencoder.transform(scaled))],
        image_shape=(8, 8),
        row_labels=["digit", "reconstruction"],
    ).plot(vmin=0.0, vmax=1.0)
    for ax, i in zip(display.axes_[0], order, strict=True):
        ax.set_title(f"#{i}: {y[i]}", fontsize=9)
    display.figure_.suptitle("the most abnormal digits, most abnormal first")
    save(display.figure_, args.out_abnormal)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
