"""Fill the holes of digits with an AutoencoderImputer, against KNNImputer.

A fifth of the pixels of every digit is missing, in training and in held-out
images alike. Each imputer, in a Pipeline before a logistic regression, is
fitted on the training digits with holes; the script prints the RMSE of the
filled pixels of the held-out digits and the pipeline's held-out accuracy,
and saves a figure with the rows: digits with holes (the holes in red), the
KNN fill, the skae fill, the truth.

    python examples/impute_digits.py [--missing 0.2] [--out docs/impute_digits.png]
"""

import argparse
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import KNNImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skae import AutoencoderImputer


def fit_pipelines(imputers, X_train, y_train):
    """Each imputer in a Pipeline before a logistic regression, fitted."""
    pipelines = {}
    for name, imputer in imputers.items():
        pipeline = make_pipeline(imputer, LogisticRegression(max_iter=1000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipelines[name] = pipeline.fit(X_train, y_train)
    return pipelines


def save_figure(rows, mask, out, n):
    """The rows of images (name -> array), holes in red on the first."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 1.0))
    for r, (name, images) in enumerate(rows.items()):
        for i in range(n):
            ax = axes[r, i]
            image = np.repeat(images[i].reshape(8, 8, 1), 3, axis=2).clip(0, 1)
            image = 1 - image  # dark ink on white
            if r == 0:
                image[mask[i].reshape(8, 8)] = (1.0, 0.3, 0.3)
            ax.imshow(image, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"saved {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--missing", type=float, default=0.2)
    parser.add_argument("--n-images", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/impute_digits.png")
    parser.add_argument("--quick", action="store_true", help="few epochs, for a smoke test")
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    if args.quick:  # a smoke test: fewer training digits
        X_train, y_train = X_train[:600], y_train[:600]
    rng = np.random.default_rng(args.seed)
    mask_train = rng.random(X_train.shape) < args.missing
    mask_test = rng.random(X_test.shape) < args.missing
    X_train_holes = np.where(mask_train, np.nan, X_train)
    X_test_holes = np.where(mask_test, np.nan, X_test)

    skae_params = dict(random_state=args.seed, device="cpu")
    if args.quick:
        skae_params["max_iter"] = 20
    pipelines = fit_pipelines(
        {"KNNImputer": KNNImputer(), "AutoencoderImputer": AutoencoderImputer(**skae_params)},
        X_train_holes,
        y_train,
    )
    print(
        f"digits: {len(X_train)} training and {len(X_test)} held-out images, "
        f"{args.missing:.0%} of the pixels missing in both"
    )
    fills = {}
    for name, pipeline in pipelines.items():
        fills[name] = pipeline[0].transform(X_test_holes)
        rmse = np.sqrt(np.mean((fills[name] - X_test)[mask_test] ** 2))
        accuracy = pipeline.score(X_test_holes, y_test)
        print(f"  {name:<19} RMSE of the filled pixels {rmse:.3f}, accuracy {accuracy:.3f}")

    n = min(args.n_images, 6 if args.quick else args.n_images)
    rows = {"with holes": np.nan_to_num(X_test_holes), "KNN": fills["KNNImputer"]}
    rows.update({"skae": fills["AutoencoderImputer"], "truth": X_test})
    save_figure(rows, mask_test, args.out, n)


if __name__ == "__main__":
    main()
