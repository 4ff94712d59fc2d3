"""The data sets of bench_outliers and bench_outliers_scores: each with its
inlier classes, split into training rows and held-out rows."""

import _common as C
import numpy as np

#: Inlier classes of each data set: one-class per digit on digits and MNIST,
#: benign tumours on breast cancer, class 0 on wine, each class on iris.
CLASSES = {
    "digits": list(range(10)),
    "mnist": list(range(10)),
    "breast_cancer": [1],
    "wine": [0],
    "iris": [0, 1, 2],
}

#: The data sets in the order of the tables.
SETS = ("digits", "breast_cancer", "wine", "iris", "mnist")


def load_tabular(name):
    """Inliers of one class split 70/30 (seed 0), standardised on the training
    part: training rows (the inliers), held-out inliers and every other row."""
    from sklearn.datasets import load_breast_cancer, load_wine
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    loader = {"breast_cancer": load_breast_cancer, "wine": load_wine}[name]
    X, y = loader(return_X_y=True)
    inlier = CLASSES[name][0]
    X_train, X_held = train_test_split(X[y == inlier], test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return {
        "X_train": scaler.transform(X_train),
        "y_train": np.full(len(X_train), inlier),
        "X_valid": scaler.transform(np.vstack([X_held, X[y != inlier]])),
        "y_valid": np.r_[np.full(len(X_held), inlier), y[y != inlier]],
        "source": f"sklearn.datasets.load_{name}",
    }


def load_iris_split():
    """Iris split 70/30 within each class (seed 0), standardised on the
    training part (all classes: a label-free scaling, as digits' 1/16): each
    class's training rows are its inliers, every held-out row is scored."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return {**C.standardised_split(X, y, 0.3), "source": "sklearn.datasets.load_iris"}


def load_data(name, args):
    if name == "digits":
        return C.load_digits_split()
    if name in ("breast_cancer", "wine"):
        return load_tabular(name)
    if name == "iris":
        return load_iris_split()
    full = C.load_mnist(args.mnist)
    if args.valid_rows:
        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(len(full["X_valid"]), args.valid_rows, replace=False))
        full["X_valid"], full["y_valid"] = full["X_valid"][keep], full["y_valid"][keep]
    return full
