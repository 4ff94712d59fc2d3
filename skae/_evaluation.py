"""The one evaluation protocol of a transformer's codes, shared by
``plotting.ComparisonDisplay``, the benchmarks and the tests.

A model is judged on held-out rows by two numbers: how well it reconstructs
them (squared error per row, summed over the features) and how much their
codes tell about a target (the held-out accuracy of a logistic regression fitted
on the training rows' codes, or the R^2 of a ridge regression for a continuous
target); and by the seconds its ``fit`` took.
"""

import time

import numpy as np
from sklearn.base import clone, is_regressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import type_of_target

__all__ = ["default_model", "evaluate", "reconstruction_error", "score_codes"]


def reconstruction_error(estimator, X):
    """Mean over the rows of X of the squared reconstruction error summed over
    the features, ``inverse_transform(transform(X))`` compared in float64.

    Parameters
    ----------
    estimator : fitted transformer
        An estimator with ``transform`` and ``inverse_transform``.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The rows to reconstruct, in the units the estimator was fitted on.

    Returns
    -------
    error : float
        ``mean_i sum_j (X_rec[i, j] - X[i, j]) ** 2``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skae._evaluation import reconstruction_error
    >>> X = np.random.RandomState(0).normal(size=(50, 4))
    >>> round(reconstruction_error(PCA(n_components=4).fit(X), X), 12)
    0.0
    """
    reconstructed = np.asarray(estimator.inverse_transform(estimator.transform(X)))
    dense = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    difference = reconstructed.astype(np.float64) - dense
    return float(np.mean(np.sum(difference**2, axis=1)))


def default_model(y):
    """The model fitted on the codes: ``StandardScaler`` then
    ``LogisticRegression(max_iter=2000)`` for class labels, ``Ridge`` for a
    continuous target (the codes of different models have very different
    scales, hence the scaler)."""
    if type_of_target(y) == "continuous":
        return make_pipeline(StandardScaler(), Ridge())
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def score_codes(codes_train, y_train, codes_test, y_test, *, model=None):
    """Fit ``model`` (a clone; :func:`default_model` if None) on the training
    codes and return its ``score`` on the held-out codes: accuracy for a
    classifier, R^2 for a regressor.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae._evaluation import score_codes
    >>> X, y = load_digits(return_X_y=True)
    >>> score_codes(X[:1000], y[:1000], X[1000:], y[1000:]) > 0.85
    True
    """
    model = default_model(y_train) if model is None else clone(model)
    return float(model.fit(codes_train, y_train).score(codes_test, y_test))


def evaluate(estimator, X_train, y_train, X_test, y_test, *, model=None, prefit=False):
    """Fit ``estimator`` on ``X_train`` and judge it on the held-out rows.

    Parameters
    ----------
    estimator : transformer
        An estimator with ``transform`` and ``inverse_transform``; it is
        fitted in place (clone it first to keep the original unfitted).
    X_train, X_test : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training and held-out rows.
    y_train, y_test : array-like of shape (n_samples,)
        Training and held-out targets: class labels, or a continuous target.
    model : estimator, default=None
        The classifier (or regressor) fitted on the codes; see
        :func:`default_model` for the default.
    prefit : bool, default=False
        If True, ``estimator`` is already fitted: it is not fitted again and
        ``fit_seconds`` is None.

    Returns
    -------
    result : dict
        ``"error"``: :func:`reconstruction_error` on ``X_test``;
        ``"accuracy"`` (a classifier) or ``"r2"`` (a regressor, the default
        for a continuous target): the model's held-out score on the codes;
        ``"fit_seconds"``: wall seconds of ``estimator.fit(X_train)``;
        ``"score_seconds"``: those of fitting the model on the codes;
        ``"n_components"``: the codes' width.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skae._evaluation import evaluate
    >>> X, y = load_digits(return_X_y=True)
    >>> result = evaluate(PCA(n_components=8), X[:1000], y[:1000], X[1000:], y[1000:])
    >>> sorted(result)
    ['accuracy', 'error', 'fit_seconds', 'n_components', 'score_seconds']
    >>> result["n_components"]
    8
    """
    fit_seconds = None
    if not prefit:
        start = time.perf_counter()
        estimator.fit(X_train)
        fit_seconds = time.perf_counter() - start
    codes_train, codes_test = estimator.transform(X_train), estimator.transform(X_test)
    model = default_model(y_train) if model is None else model
    start = time.perf_counter()
    score = score_codes(codes_train, y_train, codes_test, y_test, model=model)
    score_seconds = time.perf_counter() - start
    return {
        "error": reconstruction_error(estimator, X_test),
        "r2" if is_regressor(model) else "accuracy": score,
        "fit_seconds": fit_seconds,
        "score_seconds": score_seconds,
        "n_components": int(np.shape(codes_test)[1]),
    }
