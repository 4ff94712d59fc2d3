"""Choose the feature extractor of a classifier with GridSearchCV.

A Pipeline scales the raw digits to [0, 1], reduces them to ``n_components``
features and classifies them with a logistic regression. GridSearchCV
searches over the reducer itself (PCA, Autoencoder, DenoisingAutoencoder) and
its ``n_components``, as it would over any other step; the autoencoders are
drop-in replacements for PCA. Prints the cross-validation table and the
held-out accuracy of the best pipeline.

    python examples/features_gridsearch.py [--components 8 16] [--cv 3]
"""

import argparse
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skae import Autoencoder, DenoisingAutoencoder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="a small grid on part of the data, for a smoke test"
    )
    args = parser.parse_args(argv)
    components = [8] if args.quick else args.components
    max_iter = 5 if args.quick else args.max_iter
    cv = 2 if args.quick else args.cv

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    if args.quick:
        X_train, y_train = X_train[:600], y_train[:600]
    autoencoder = dict(
        hidden_layer_sizes=(128,),
        max_iter=max_iter,
        batch_size=64,
        early_stopping=True,
        random_state=args.seed,
        device="cpu",
    )
    pipe = Pipeline(
        [
            ("scale", MinMaxScaler()),
            ("reduce", PCA()),
            # the codes of different reducers have very different scales
            ("standardize", StandardScaler()),
            ("classify", LogisticRegression(max_iter=2000)),
        ]
    )
    reducers = [
        PCA(random_state=args.seed),
        Autoencoder(**autoencoder),
        DenoisingAutoencoder(noise="masking", noise_level=0.2, **autoencoder),
    ]
    param_grid = {"reduce": reducers, "reduce__n_components": components}
    search = GridSearchCV(pipe, param_grid, cv=cv, n_jobs=args.n_jobs)

    start = time.perf_counter()
    with warnings.catch_warnings():
        # the workers' warnings are not caught here; early stopping keeps them rare
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    seconds = time.perf_counter() - start

    results = search.cv_results_
    print(
        f"GridSearchCV: {len(results['params'])} candidates x {cv} folds on "
        f"{len(X_train)} digits, n_jobs={args.n_jobs}, {seconds:.1f} s\n"
    )
    print("| rank | reducer | n_components | mean CV accuracy | std | mean fit seconds |")
    print("|---:|---|---:|---:|---:|---:|")
    for i in sorted(range(len(results["params"])), key=lambda i: results["rank_test_score"][i]):
        params = results["params"][i]
        print(
            f"| {results['rank_test_score'][i]} | {type(params['reduce']).__name__} "
            f"| {params['reduce__n_components']} | {results['mean_test_score'][i]:.3f} "
            f"| {results['std_test_score'][i]:.3f} | {results['mean_fit_time'][i]:.1f} |"
        )
    best = search.best_params_
    print(
        f"\nbest: {type(best['reduce']).__name__} with n_components={best['reduce__n_components']}"
    )
    print(f"held-out accuracy of the best pipeline: {search.score(X_test, y_test):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
