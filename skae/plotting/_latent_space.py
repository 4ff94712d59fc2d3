"""The codes in two dimensions: :class:`LatentSpaceDisplay`."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA

from ._common import (
    Axes,
    Colormap,
    Self,
    _estimator_name,
    _validate_plot_params,
    check_matplotlib_support,
)

__all__ = ["MAX_LEGEND_CLASSES", "LatentSpaceDisplay"]

#: Above this many distinct numeric values, ``y`` is a continuous target and
#: gets a colorbar instead of a legend of classes.
MAX_LEGEND_CLASSES = 20


def _scatter_classes(
    ax: Axes, codes: np.ndarray, y: np.ndarray, cmap: Any, scatter_kwargs: dict[str, Any]
) -> tuple[Any, Any]:
    """Scatter the codes coloured by class, with a legend of the classes;
    return the points and the legend."""
    import matplotlib.pyplot as plt

    try:
        classes, index = np.unique(y, return_inverse=True)
    except TypeError:  # numpy's "'<' not supported between ..." says little
        kinds = sorted({type(label).__name__ for label in np.ravel(y)})
        raise TypeError(
            "LatentSpaceDisplay: the class labels y must be all numbers or all strings "
            f"to be told apart; got labels of types {kinds}."
        ) from None
    n_classes = len(classes)
    if cmap is None:  # past 20 classes, as many colours of a continuous map
        cmap = "tab10" if n_classes <= 10 else "tab20" if n_classes <= 20 else "turbo"
        cmap = plt.get_cmap(cmap, None if n_classes <= 20 else n_classes)
    cmap = plt.get_cmap(cmap)
    scatter = ax.scatter(
        *codes.T,
        c=index,
        cmap=cmap,
        vmin=-0.5,
        vmax=max(n_classes, cmap.N) - 0.5,
        **scatter_kwargs,
    )
    handles = [
        plt.Line2D(
            [], [], linestyle="", marker="o", markersize=6, color=scatter.cmap(scatter.norm(i))
        )
        for i in range(n_classes)
    ]
    legend = ax.legend(
        handles,
        [str(c) for c in classes],
        title="y",
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
    )
    return scatter, legend


def _code_names(estimator: BaseEstimator, n_components: int) -> list[str]:
    """The estimator's output feature names, or "component i"."""
    try:
        return [str(n) for n in estimator.get_feature_names_out()]
    except (AttributeError, TypeError, ValueError):
        return [f"component {i}" for i in range(n_components)]


def _project(
    codes: np.ndarray, names: list[str], projection: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Two coordinates of the codes and their axis labels: the first two
    components, or the first two principal components of the codes."""
    if projection == "pca" and codes.shape[1] > 2:
        labels = tuple(f"PC {i} of the codes ({names[0]} ... {names[-1]})" for i in (1, 2))
        return PCA(n_components=2).fit_transform(codes), labels
    return codes[:, :2], tuple(names[:2])


class LatentSpaceDisplay:
    """Scatter plot of the codes of a fitted estimator in two dimensions.

    It is recommended to use :meth:`from_estimator` to create a display.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, 2)
        The two coordinates of each sample.
    y : array-like of shape (n_samples,), default=None
        Labels or values that colour the points: a legend of classes for
        discrete labels, a colorbar for a continuous target.
    axis_labels : tuple of str, default=None
        Labels of the x and y axes.
    estimator_name : str, default=None
        Name of the estimator, used in the title.

    Attributes
    ----------
    scatter_ : matplotlib PathCollection
        The points.
    legend_ : matplotlib Legend or None
        The legend of classes, for discrete ``y``.
    colorbar_ : matplotlib Colorbar or None
        The colorbar, for continuous ``y``.
    ax_ : matplotlib Axes
        Axes with the scatter plot.
    figure_ : matplotlib Figure
        Figure containing the scatter plot.

    See Also
    --------
    LatentSpaceDisplay.from_estimator : Plot the codes of a fitted estimator.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skae import Autoencoder
    >>> from skae.plotting import LatentSpaceDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = Autoencoder(n_components=2, hidden_layer_sizes=(16,), max_iter=5,
    ...                  random_state=0, device="cpu").fit(X / 16)
    >>> display = LatentSpaceDisplay.from_estimator(ae, X / 16, y)
    >>> display.ax_.get_xlabel(), display.ax_.get_ylabel()
    ('autoencoder0', 'autoencoder1')
    >>> len(display.legend_.get_texts())
    10
    >>> import matplotlib.pyplot as plt
    >>> plt.close(display.figure_)
    """

    def __init__(
        self,
        *,
        codes: ArrayLike,
        y: ArrayLike | None = None,
        axis_labels: tuple[str, str] | None = None,
        estimator_name: str | None = None,
    ) -> None:
        self.codes = codes
        self.y = y
        self.axis_labels = axis_labels
        self.estimator_name = estimator_name

    def plot(
        self,
        ax: Axes | None = None,
        *,
        name: str | None = None,
        cmap: str | Colormap | None = None,
        **kwargs: Any,
    ) -> Self:
        """Plot the codes.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure and axes are created if None.
        name : str, default=None
            Name used in the title; ``estimator_name`` if None; "" for no title.
        cmap : str or matplotlib Colormap, default=None
            Colormap for ``y``: "tab10" or "tab20" for up to 10 or 20 classes,
            as many colours of "turbo" for more, "viridis" for a continuous
            target.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``scatter``.

        Returns
        -------
        display : LatentSpaceDisplay
        """
        ax, name = _validate_plot_params(self, ax, name)
        codes = np.asarray(self.codes)
        if codes.ndim != 2 or codes.shape[1] != 2:
            raise ValueError(f"codes must have shape (n_samples, 2); got {codes.shape}.")
        scatter_kwargs = {"s": 12, "alpha": 0.8, "linewidths": 0}
        scatter_kwargs.update(kwargs)
        self.legend_ = None
        self.colorbar_ = None
        y = None if self.y is None else np.asarray(self.y)
        if y is not None and len(y) != len(codes):
            raise ValueError(f"y has {len(y)} entries but there are {len(codes)} codes.")
        if y is None:
            self.scatter_ = ax.scatter(*codes.T, **scatter_kwargs)
        elif y.dtype.kind in "iuf" and len(np.unique(y)) > MAX_LEGEND_CLASSES:
            self.scatter_ = ax.scatter(*codes.T, c=y, cmap=cmap or "viridis", **scatter_kwargs)
            self.colorbar_ = ax.figure.colorbar(self.scatter_, ax=ax)
        else:
            self.scatter_, self.legend_ = _scatter_classes(ax, codes, y, cmap, scatter_kwargs)
        if self.axis_labels is not None:
            ax.set_xlabel(self.axis_labels[0])
            ax.set_ylabel(self.axis_labels[1])
        if name:  # "" draws no title
            ax.set_title(f"{name}: codes")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator: BaseEstimator,
        X: ArrayLike,
        y: ArrayLike | None = None,
        *,
        projection: Literal["first", "pca"] = "first",
        ax: Axes | None = None,
        name: str | None = None,
        cmap: str | Colormap | None = None,
        **kwargs: Any,
    ) -> Self:
        """Plot the codes ``estimator.transform(X)`` in two dimensions.

        Parameters
        ----------
        estimator : fitted transformer
            A skae estimator, PCA or any transformer with ``transform``.
        X : array-like of shape (n_samples, n_features)
            Data to encode.
        y : array-like of shape (n_samples,), default=None
            Labels or values that colour the points.
        projection : {"first", "pca"}, default="first"
            With more than two components: "first" shows the first two, "pca"
            the first two principal components of the codes.
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure and axes are created if None.
        name : str, default=None
            Name used in the title; the estimator's class name if None; "" for
            no title.
        cmap : str or matplotlib Colormap, default=None
            Colormap for ``y``.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``scatter``.

        Returns
        -------
        display : LatentSpaceDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        if projection not in ("first", "pca"):
            raise ValueError(f"projection must be 'first' or 'pca'; got {projection!r}.")
        codes = np.asarray(estimator.transform(X))
        n_components = codes.shape[1]
        if n_components < 2:
            raise ValueError(
                f"LatentSpaceDisplay needs at least 2 components; "
                f"{_estimator_name(estimator)} has {n_components}."
            )
        codes, labels = _project(codes, _code_names(estimator, n_components), projection)
        display = cls(
            codes=codes, y=y, axis_labels=labels, estimator_name=_estimator_name(estimator)
        )
        return display.plot(ax=ax, name=name, cmap=cmap, **kwargs)
