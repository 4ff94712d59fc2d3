"""PCA against the skae autoencoders on scikit-learn's bundled digits.

For each number of components, every model is fitted on the training split and
judged on the held-out split: reconstruction error (squared error per image,
summed over the 64 pixels in [0, 1]) and the accuracy of a logistic regression
trained on the codes. Prints a Markdown table. With ``--figures DIR`` (needs
matplotlib: ``pip install "skae[plot]"``) it also saves, for the largest number
of components, the figures of the documentation's gallery: comparison.png (error and
accuracy of every model), loss_curve.png (the denoising autoencoder's training
and validation loss), latent_space.png (the VAE's codes of the held-out digits, projected on their
first two principal components)
and reconstruction.png (held-out digits and their reconstructions).

    python examples/compare_pca_digits.py [--components 2 8 16] [--max-iter N]
        [--figures docs] [--n-jobs N] [--quick]

The fits run in parallel, one per core (``--n-jobs``, default all cores).
"""

import argparse
import time
import warnings
from pathlib import Path

import torch
from joblib import Parallel, delayed
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import (
    Autoencoder,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    VariationalAutoencoder,
)


def models(n_components, max_iter, seed):
    """Every model with its defaults: only the code size, the seed (and the
    convolutional model's image shape) are set; ``max_iter`` only if given."""
    common = dict(n_components=n_components, random_state=seed)
    if max_iter is not None:
        common["max_iter"] = max_iter
    return {
        "PCA": PCA(n_components=n_components, random_state=seed),
        "Autoencoder": Autoencoder(**common),
        "DenoisingAutoencoder": DenoisingAutoencoder(**common),
        "VariationalAutoencoder": VariationalAutoencoder(**common),
        "SparseAutoencoder": SparseAutoencoder(**common),
        "ContractiveAutoencoder": ContractiveAutoencoder(**common),
        "ConvolutionalAutoencoder": ConvolutionalAutoencoder(image_shape=(8, 8), **common),
    }


def evaluate(model, X_train, X_test, y_train, y_test):
    start = time.perf_counter()
    codes_train = model.fit_transform(X_train)
    seconds = time.perf_counter() - start
    codes_test = model.transform(X_test)
    error = ((model.inverse_transform(codes_test) - X_test) ** 2).sum(axis=1).mean()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    accuracy = clf.fit(codes_train, y_train).score(codes_test, y_test)
    return error, accuracy, seconds


def fit_and_evaluate(model, data):
    """``(fitted model, error, accuracy, fit seconds)``, on one torch thread."""
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return (model, *evaluate(model, *data))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, nargs="+", default=[2, 8, 16])
    parser.add_argument(
        "--max-iter", type=int, default=None, help="cap on epochs (default: the models' own)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figures", metavar="DIR", help="save the README's figures here")
    parser.add_argument("--n-jobs", type=int, default=-1, help="fits run in parallel (joblib)")
    parser.add_argument("--quick", action="store_true", help="k = 2 and 5 epochs, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.components, args.max_iter = [2], 5

    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    raw = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    raw_accuracy = raw.fit(X_train, y_train).score(X_test, y_test)

    print(f"digits: {len(X_train)} training and {len(X_test)} held-out images of 8x8 pixels")
    print(f"logistic regression on the raw 64 pixels: accuracy {raw_accuracy:.3f}\n")
    print("| n_components | model | held-out error per image | accuracy on codes | fit seconds |")
    print("|---:|---|---:|---:|---:|")
    tasks = [
        (k, name, model)
        for k in args.components
        for name, model in models(k, args.max_iter, args.seed).items()
    ]
    data = (X_train, X_test, y_train, y_test)
    # one fit per core, each on one torch thread: the small networks gain
    # nothing from a second thread, the table arrives in about half the time
    outcomes = Parallel(n_jobs=args.n_jobs, return_as="generator")(
        delayed(fit_and_evaluate)(model, data) for _, _, model in tasks
    )
    fitted, results, largest = {}, [], max(args.components)
    for (k, name, _), (model, error, accuracy, seconds) in zip(tasks, outcomes, strict=True):
        print(f"| {k} | {name} | {error:.3f} | {accuracy:.3f} | {seconds:.1f} |", flush=True)
        if k == largest:
            fitted[name] = model
            results.append(dict(name=name, reconstruction_error=error, accuracy=accuracy))
    if args.figures:
        save_figures(Path(args.figures), fitted, results, X_test, y_test, largest)
    return 0


def save_figures(folder, fitted, results, X_test, y_test, n_components):
    """The README's figures, from the models fitted for ``n_components``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skae.plotting import (
        ComparisonDisplay,
        LatentSpaceDisplay,
        LossCurveDisplay,
        ReconstructionDisplay,
    )

    folder.mkdir(parents=True, exist_ok=True)
    displays = {
        "comparison.png": ComparisonDisplay(results).plot(
            title=f"Held-out digits, {n_components} components"
        ),
        "loss_curve.png": LossCurveDisplay.from_estimator(fitted["DenoisingAutoencoder"]),
        "latent_space.png": LatentSpaceDisplay.from_estimator(
            fitted["VariationalAutoencoder"], X_test, y_test, projection="pca"
        ),
        "reconstruction.png": ReconstructionDisplay.from_estimator(
            fitted["Autoencoder"], X_test, image_shape=(8, 8), n_images=10
        ),
    }
    for filename, display in displays.items():
        path = folder / filename
        display.figure_.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(display.figure_)
        print(f"saved {path}")


if __name__ == "__main__":
    raise SystemExit(main())
