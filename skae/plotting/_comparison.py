"""Several models side by side on held-out data: :class:`ComparisonDisplay`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone

from .._evaluation import evaluate
from ._common import Axes, Self, _axes_array, _estimator_name, check_matplotlib_support

__all__ = ["ComparisonDisplay"]


def _named(
    estimators: dict[str, BaseEstimator] | Sequence[BaseEstimator],
) -> list[tuple[str, BaseEstimator]]:
    """(name, estimator) pairs: a dict's keys, or class names numbered from
    their second occurrence ("PCA", "PCA (2)")."""
    if isinstance(estimators, dict):
        named = list(estimators.items())
    else:
        named, seen = [], {}
        for est in estimators:
            name = _estimator_name(est)
            seen[name] = seen.get(name, 0) + 1
            named.append((name if seen[name] == 1 else f"{name} ({seen[name]})", est))
    if not named:
        raise ValueError("estimators is empty.")
    return named


def _comparison_axes(ax: Any, n_models: int) -> tuple[Any, np.ndarray]:
    """The figure and its two axes (error, score): new ones if ``ax`` is None."""
    import matplotlib.pyplot as plt

    if ax is None:
        height = 1.2 + 0.4 * n_models
        return plt.subplots(1, 2, figsize=(10, height), sharey=True, layout="constrained")
    axes = _axes_array(ax, (2,), "ax must hold 2 axes (error, accuracy)")
    return axes[0].figure, axes


def _score_column(results: list[dict[str, Any]]) -> tuple[str, str, str]:
    """The key of the score on the codes, its axis label and its title: the
    accuracy of a classifier, or the R^2 of a regressor (a continuous target)."""
    if all("accuracy" in r for r in results):
        return "accuracy", "accuracy (higher is better)", "logistic regression on the codes"
    if all("r2" in r for r in results):
        return "r2", "R^2 (higher is better)", "ridge regression on the codes"
    given = {
        str(r.get("name", i)): [key for key in ("accuracy", "r2") if key in r] or None
        for i, r in enumerate(results)
    }
    raise ValueError(
        "ComparisonDisplay: every result needs the same score on the codes, "
        f"'accuracy' (a classifier's) or 'r2' (a regressor's); got {given}."
    )


class ComparisonDisplay:
    """Held-out reconstruction error and accuracy on the codes of several models.

    Two horizontal bar charts side by side: the mean squared reconstruction
    error per held-out sample (summed over features; lower is better) and the
    accuracy of a classifier trained on the codes (higher is better).

    It is recommended to use :meth:`from_estimators` to create a display.

    Parameters
    ----------
    results : list of dict
        One dict per model with the keys ``"name"``, ``"reconstruction_error"``
        and ``"accuracy"`` (or ``"r2"``, for a regressor on the codes; and
        ``"n_components"``, ``"fit_seconds"`` from :meth:`from_estimators`).
        ``pandas.DataFrame(results)`` makes a table.

    Attributes
    ----------
    error_bars_ : matplotlib BarContainer
        The bars of the reconstruction error.
    accuracy_bars_ : matplotlib BarContainer
        The bars of the accuracy.
    axes_ : ndarray of matplotlib Axes of shape (2,)
        The axes of the error and of the accuracy.
    figure_ : matplotlib Figure
        Figure containing the charts.
    estimators_ : dict of str to fitted estimator
        Set by :meth:`from_estimators`: the fitted clones.

    See Also
    --------
    ComparisonDisplay.from_estimators : Fit and compare several estimators.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import train_test_split
    >>> from skae import Autoencoder
    >>> from skae.plotting import ComparisonDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0)
    >>> display = ComparisonDisplay.from_estimators(
    ...     {"PCA": PCA(n_components=4),
    ...      "Autoencoder": Autoencoder(n_components=4, hidden_layer_sizes=(32,),
    ...                                 max_iter=5, random_state=0, device="cpu")},
    ...     X_train, X_test, y_train, y_test)
    >>> [r["name"] for r in display.results]
    ['PCA', 'Autoencoder']
    >>> len(display.error_bars_), len(display.accuracy_bars_)
    (2, 2)
    >>> import matplotlib.pyplot as plt
    >>> plt.close(display.figure_)
    """

    def __init__(self, results: list[dict[str, Any]]) -> None:
        self.results = results

    def plot(
        self,
        ax: Sequence[Axes] | np.ndarray | None = None,
        *,
        title: str | None = None,
        **kwargs: Any,
    ) -> Self:
        """Plot the two bar charts.

        Parameters
        ----------
        ax : array-like of 2 matplotlib Axes, default=None
            Axes for the error and for the accuracy; a new figure if None.
        title : str, default=None
            Title of the figure.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``barh``.

        Returns
        -------
        display : ComparisonDisplay
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        fig, axes = _comparison_axes(ax, len(self.results))
        names = [str(r["name"]) for r in self.results]
        positions = np.arange(len(names))
        bar_kwargs = {"height": 0.6, **kwargs}
        error_ax, score_ax = axes
        key, score_label, score_title = _score_column(self.results)
        errors = [r["reconstruction_error"] for r in self.results]
        scores = [r[key] for r in self.results]
        self.error_bars_ = error_ax.barh(positions, errors, **{"color": "tab:red", **bar_kwargs})
        self.accuracy_bars_ = score_ax.barh(
            positions, scores, **{"color": "tab:blue", **bar_kwargs}
        )
        error_ax.bar_label(self.error_bars_, fmt="%.3f", padding=2)
        score_ax.bar_label(self.accuracy_bars_, fmt="%.3f", padding=2)
        for a in axes:
            a.set_yticks(positions, names)
            # the first model on top
            a.set_ylim(len(names) - 0.5, -0.5)
            a.margins(x=0.2)
        error_ax.set_xlabel("squared error per sample (lower is better)")
        error_ax.set_title("held-out reconstruction error")
        score_ax.set_xlabel(score_label)
        score_ax.set_title(score_title)
        if key == "accuracy":
            score_ax.set_xlim(0, 1.15)
        if title is not None:
            fig.suptitle(title)
        self.axes_ = axes
        self.figure_ = fig
        return self

    @classmethod
    def from_estimators(
        cls,
        estimators: dict[str, BaseEstimator] | Sequence[BaseEstimator],
        X_train: ArrayLike,
        X_test: ArrayLike,
        y_train: ArrayLike,
        y_test: ArrayLike,
        *,
        classifier: BaseEstimator | None = None,
        ax: Sequence[Axes] | np.ndarray | None = None,
        title: str | None = None,
        **kwargs: Any,
    ) -> Self:
        """Fit each estimator and compare them on held-out data.

        Each estimator is cloned and fitted on ``X_train``; its reconstruction
        error is ``((inverse_transform(transform(X_test)) - X_test) ** 2)``
        summed over features and averaged over samples; its accuracy is that
        of ``classifier`` fitted on the training codes and scored on the
        held-out codes (the R^2 of a ridge regression for a continuous target);
        ``fit_seconds`` times the estimator's ``fit``. This is the protocol of
        skae's benchmarks and tests (``skae._evaluation.evaluate``).

        Parameters
        ----------
        estimators : dict of str to estimator, or list of estimators
            Unfitted transformers with ``inverse_transform`` (include PCA as a
            baseline). A list is named by class names.
        X_train, X_test : array-like of shape (n_samples, n_features)
            Training and held-out data.
        y_train, y_test : array-like of shape (n_samples,)
            Training and held-out labels (or a continuous target).
        classifier : estimator, default=None
            Classifier (or regressor) trained on the codes; if None,
            ``make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))``
            for labels and ``make_pipeline(StandardScaler(), Ridge())`` for a
            continuous target (the codes of different models have very
            different scales).
        ax : array-like of 2 matplotlib Axes, default=None
            See :meth:`plot`.
        title : str, default=None
            Title of the figure.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``barh``.

        Returns
        -------
        display : ComparisonDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimators")
        results, fitted = [], {}
        for name, estimator in _named(estimators):
            fitted[name] = clone(estimator)
            result = evaluate(fitted[name], X_train, y_train, X_test, y_test, model=classifier)
            result["reconstruction_error"] = result.pop("error")
            del result["score_seconds"]
            results.append({"name": name, **result})
        display = cls(results)
        display.estimators_ = fitted
        return display.plot(ax=ax, title=title, **kwargs)
