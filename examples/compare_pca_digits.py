"""PCA against the skae autoencoders on scikit-learn's bundled digits.

For each number of components, every model is fitted on the training split and
judged on the held-out split: reconstruction error (squared error per image,
summed over the 64 pixels in [0, 1]) and the accuracy of a logistic regression
trained on the codes. Prints a Markdown table.

    python examples/compare_pca_digits.py [--components 2 8 16] [--max-iter 200]
"""

import argparse
import time
import warnings

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
    training = dict(
        n_components=n_components,
        max_iter=max_iter,
        batch_size=64,
        early_stopping=True,
        n_iter_no_change=10,
        random_state=seed,
    )
    mlp = dict(hidden_layer_sizes=(128,), **training)
    return {
        "PCA": PCA(n_components=n_components, random_state=seed),
        "Autoencoder": Autoencoder(**mlp),
        "DenoisingAutoencoder": DenoisingAutoencoder(noise="masking", noise_level=0.2, **mlp),
        "VariationalAutoencoder": VariationalAutoencoder(**mlp),
        "SparseAutoencoder": SparseAutoencoder(**mlp),
        "ContractiveAutoencoder": ContractiveAutoencoder(**mlp),
        "ConvolutionalAutoencoder": ConvolutionalAutoencoder(image_shape=(8, 8), **training),
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, nargs="+", default=[2, 8, 16])
    parser.add_argument("--max-iter", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

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
    for k in args.components:
        for name, model in models(k, args.max_iter, args.seed).items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                error, accuracy, seconds = evaluate(model, X_train, X_test, y_train, y_test)
            print(f"| {k} | {name} | {error:.3f} | {accuracy:.3f} | {seconds:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
