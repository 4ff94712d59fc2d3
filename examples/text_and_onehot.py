"""Autoencoders on sparse features: a text pipeline and a one-hot pipeline.

Text: ``TfidfVectorizer -> DenoisingAutoencoder -> LogisticRegression`` on a
corpus that needs no download: the docstrings of public functions and classes
of numpy, torch and scikit-learn, each labelled by its package. Categories:
``ColumnTransformer([OneHotEncoder, StandardScaler]) -> Autoencoder ->
LogisticRegression`` on a DataFrame with two categorical and two numeric
columns, whose label depends on both kinds. Both feature matrices are scipy
sparse matrices: skae takes them as they are and densifies one minibatch at a
time. Prints the cross-validated accuracy of each pipeline next to the same
pipeline without the autoencoder (the classifier on the sparse features).

    python examples/text_and_onehot.py [--quick] [--cv 5]
"""

import argparse
import importlib
import inspect
import time
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skae import Autoencoder, DenoisingAutoencoder

#: where the documents come from: package label -> modules whose public
#: callables' docstrings are read
SOURCES = {
    "numpy": ["numpy", "numpy.linalg", "numpy.random"],
    "torch": ["torch", "torch.nn.functional"],
    "scikit-learn": [
        "sklearn.linear_model",
        "sklearn.preprocessing",
        "sklearn.decomposition",
        "sklearn.cluster",
    ],
}


def package_docstrings(per_package, min_length=300):
    """Up to ``per_package`` docstrings of at least ``min_length``
    characters per package, in name order, each labelled by its package."""
    texts, labels = [], []
    for package, module_names in SOURCES.items():
        seen = []
        for module_name in module_names:
            # vars(), not getattr(): no lazily imported submodules
            for name, obj in sorted(vars(importlib.import_module(module_name)).items()):
                doc = inspect.getdoc(obj) if callable(obj) and not name.startswith("_") else None
                if doc and len(doc) >= min_length and doc not in seen:
                    seen.append(doc)
        texts += seen[:per_package]
        labels += [package] * len(seen[:per_package])
    return texts, np.array(labels)


def customers(n_samples, seed):
    """A DataFrame with categorical and numeric columns, and a label that
    depends on a group of colours and on a number."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "colour": rng.choice([f"colour_{i}" for i in range(10)], n_samples),
            "city": rng.choice([f"city_{i}" for i in range(8)], n_samples),
            "size": rng.normal(size=n_samples),
            "weight": rng.normal(size=n_samples),
        }
    )
    warm = frame["colour"].isin([f"colour_{i}" for i in range(5)])
    return frame, (warm + frame["size"] > 0.5).astype(int).to_numpy()


def cross_validated(pipe, X, y, cv):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=cv)
    return scores, time.perf_counter() - start


def report(name, scores, seconds):
    print(f"| {name} | {scores.mean():.3f} | {scores.std():.3f} | {seconds:.1f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer documents and rows")
    args = parser.parse_args(argv)
    cv = StratifiedKFold(n_splits=3 if args.quick else args.cv, shuffle=True, random_state=0)
    network = dict(device="cpu", random_state=args.seed)

    # ---------------------------------------------------------------- text
    texts, labels = package_docstrings(per_package=60 if args.quick else 200)
    tfidf = TfidfVectorizer(max_features=2000, sublinear_tf=True)
    features = tfidf.fit_transform(texts)
    print(
        f"text: {len(texts)} docstrings of {', '.join(SOURCES)}; tf-idf is a "
        f"{type(features).__name__} {features.shape[0]} x {features.shape[1]} with "
        f"{100 * features.nnz / np.prod(features.shape):.1f} % non-zero"
    )
    text_pipe = make_pipeline(
        tfidf,
        DenoisingAutoencoder(
            n_components=16,
            hidden_layer_sizes=(64,),
            activation="tanh",
            noise="masking",  # drop a fifth of the words, not add noise to every feature
            noise_level=0.2,
            learning_rate=1e-2,
            batch_size=16,
            max_iter=20,
            **network,
        ),
        LogisticRegression(max_iter=1000),
    )
    print("\n| pipeline | mean CV accuracy | std | seconds |\n|---|---:|---:|---:|")
    report(
        "TfidfVectorizer -> DenoisingAutoencoder(16) -> LogisticRegression",
        *cross_validated(text_pipe, texts, labels, cv),
    )
    report(
        "TfidfVectorizer -> LogisticRegression",
        *cross_validated(
            make_pipeline(tfidf, LogisticRegression(max_iter=1000)), texts, labels, cv
        ),
    )

    # ------------------------------------------------------------- one-hot
    frame, target = customers(300 if args.quick else 2000, args.seed)
    encode = ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore"), ["colour", "city"]),
            ("numbers", StandardScaler(), ["size", "weight"]),
        ]
    )
    encoded = encode.fit_transform(frame)
    print(
        f"\none-hot: {len(frame)} rows of {list(frame.columns)}; the ColumnTransformer gives a "
        f"{'sparse' if sp.issparse(encoded) else 'dense'} {encoded.shape[0]} x "
        f"{encoded.shape[1]} matrix"
    )
    onehot_pipe = make_pipeline(
        encode,
        Autoencoder(
            n_components=8,
            hidden_layer_sizes=(32,),
            activation="tanh",
            batch_size=32,
            max_iter=30 if args.quick else 60,
            **network,
        ),
        LogisticRegression(max_iter=1000),
    )
    print("\n| pipeline | mean CV accuracy | std | seconds |\n|---|---:|---:|---:|")
    report(
        "ColumnTransformer -> Autoencoder(8) -> LogisticRegression",
        *cross_validated(onehot_pipe, frame, target, cv),
    )
    report(
        "ColumnTransformer -> LogisticRegression",
        *cross_validated(
            make_pipeline(encode, LogisticRegression(max_iter=1000)), frame, target, cv
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
