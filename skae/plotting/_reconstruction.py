"""Images above their reconstructions: :class:`ReconstructionDisplay`."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

from .._validation import _safe_indexing
from ._common import (
    Axes,
    Colormap,
    Self,
    _axes_array,
    _estimator_name,
    check_matplotlib_support,
)

__all__ = ["ReconstructionDisplay"]


def _image_shape(image_shape: Sequence[int], n_features: int) -> tuple[int, ...]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 3 and shape[1] * shape[2] * shape[0] == n_features:
        raise ValueError(
            f"ReconstructionDisplay draws one-channel images; these have {shape[0]} "
            f"channels (image_shape {tuple(image_shape)})."
        )
    if len(shape) != 2 or shape[0] * shape[1] != n_features:
        raise ValueError(
            f"image_shape must be (height, width) with height * width == n_features "
            f"({n_features}); got {tuple(image_shape)}."
        )
    return shape


def _square_shape(n_features: int) -> tuple[int, int]:
    """The shape of a square image of ``n_features`` pixels."""
    side = int(round(np.sqrt(n_features)))
    if side * side != n_features:
        raise ValueError(f"Pass image_shape: {n_features} features are not a square image.")
    return side, side


def _split_axes(ax: Axes, n_rows: int, n_images: int) -> np.ndarray:
    """Split one axes' area into a grid of cells, as PartialDependenceDisplay
    does with a bounding axes."""
    ax.set_axis_off()
    gap = 0.04
    width, height = (1 - gap * (n_images - 1)) / n_images, (1 - gap * (n_rows - 1)) / n_rows
    axes = np.empty((n_rows, n_images), dtype=object)
    for i, j in np.ndindex(axes.shape):
        axes[i, j] = ax.inset_axes(
            [j * (width + gap), 1 - height - i * (height + gap), width, height]
        )
    return axes


def _draw_images(axes: np.ndarray, images: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    """Draw ``images[i, j]`` upright and without ticks on ``axes[i, j]``;
    return the AxesImages."""
    drawn = np.empty(axes.shape, dtype=object)
    for (i, j), cell_ax in np.ndenumerate(axes):
        drawn[i, j] = cell_ax.imshow(
            images[i, j], origin="upper", interpolation="nearest", **kwargs
        )
        cell_ax.set_xticks([])
        cell_ax.set_yticks([])
    return drawn


def _image_axes(ax: Any, n_rows: int, n_images: int, titled: bool) -> tuple[Any, np.ndarray, Any]:
    """The figure, one axes per image, and the bounding axes (None unless
    ``ax`` is a single axes, whose area is split)."""
    import matplotlib.pyplot as plt

    if ax is None:
        cell = 1.1
        fig, axes = plt.subplots(
            n_rows,
            n_images,
            figsize=(cell * n_images + 1.2, cell * n_rows + (0.5 if titled else 0.1)),
            squeeze=False,
            layout="constrained",
        )
        return fig, axes, None
    if hasattr(ax, "inset_axes"):
        return ax.figure, _split_axes(ax, n_rows, n_images), ax
    axes = _axes_array(
        ax,
        (n_rows, n_images),
        f"Expected {n_rows * n_images} axes ({n_rows} rows of {n_images} images)",
    )
    return axes[0, 0].figure, axes, None


class ReconstructionDisplay:
    """Rows of images: originals above their reconstructions.

    Each row is a set of flattened images drawn side by side in grayscale,
    upright (``origin="upper"``) and without ticks, with the row's label on
    its left. :meth:`from_estimator` makes two rows, the originals and
    ``inverse_transform(transform(X))``; build a display directly for other
    rows (noisy, denoised, clean).

    It is recommended to use :meth:`from_estimator` to create a display.

    Parameters
    ----------
    rows : array-like of shape (n_rows, n_images, n_features)
        The flattened images of each row.
    image_shape : tuple of int
        ``(height, width)`` of one image (or ``(1, height, width)``).
    row_labels : list of str, default=None
        The label of each row.
    estimator_name : str, default=None
        Name of the estimator, used in the title.

    Attributes
    ----------
    images_ : ndarray of matplotlib AxesImage of shape (n_rows, n_images)
        The images.
    axes_ : ndarray of matplotlib Axes of shape (n_rows, n_images)
        One axes per image.
    ax_ : matplotlib Axes or None
        The axes whose area was split into ``axes_`` when ``plot`` was given a
        single axes; None otherwise.
    figure_ : matplotlib Figure
        Figure containing the images.

    See Also
    --------
    ReconstructionDisplay.from_estimator : Plot images and their reconstructions.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skae import Autoencoder
    >>> from skae.plotting import ReconstructionDisplay
    >>> X = load_digits().data / 16
    >>> ae = Autoencoder(n_components=8, hidden_layer_sizes=(32,), max_iter=5,
    ...                  random_state=0, device="cpu").fit(X)
    >>> display = ReconstructionDisplay.from_estimator(ae, X, image_shape=(8, 8),
    ...                                                n_images=6)
    >>> display.images_.shape
    (2, 6)
    >>> display.images_[1, 0].get_array().shape
    (8, 8)
    >>> import matplotlib.pyplot as plt
    >>> plt.close(display.figure_)
    """

    def __init__(
        self,
        rows: ArrayLike,
        *,
        image_shape: tuple[int, ...],
        row_labels: Sequence[str] | None = None,
        estimator_name: str | None = None,
    ) -> None:
        self.rows = rows
        self.image_shape = image_shape
        self.row_labels = row_labels
        self.estimator_name = estimator_name

    def plot(
        self,
        ax: Axes | Sequence[Axes] | Sequence[Sequence[Axes]] | np.ndarray | None = None,
        *,
        name: str | None = None,
        cmap: str | Colormap = "gray_r",
        vmin: float | None = None,
        vmax: float | None = None,
        **kwargs: Any,
    ) -> Self:
        """Plot the images.

        Parameters
        ----------
        ax : matplotlib Axes or array-like of Axes, default=None
            A single axes, whose area is split into one cell per image; or
            ``n_rows * n_images`` axes, one per image; a new figure if None.
        name : str, default=None
            Name used in the title; ``estimator_name`` if None; "" for no title.
        cmap : str or matplotlib Colormap, default="gray_r"
            Grayscale colormap: dark ink on a light background.
        vmin, vmax : float, default=None
            Limits of the colour scale, shared by all images; the range of the
            first row (the originals) if None, so reconstructions are shown on
            the scale of the data.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``imshow``.

        Returns
        -------
        display : ReconstructionDisplay
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        rows = np.asarray(self.rows, dtype=float)
        if rows.ndim != 3:
            raise ValueError(
                f"rows must have shape (n_rows, n_images, n_features); got {rows.shape}."
            )
        n_rows, n_images, n_features = rows.shape
        shape = _image_shape(self.image_shape, n_features)
        if self.row_labels is not None and len(self.row_labels) != n_rows:
            raise ValueError(f"row_labels has {len(self.row_labels)} entries for {n_rows} rows.")
        name = self.estimator_name if name is None else name
        fig, axes, self.ax_ = _image_axes(ax, n_rows, n_images, titled=bool(name))
        # one colour scale for all images: by default the originals' range
        vmin = rows[0].min() if vmin is None else vmin
        vmax = rows[0].max() if vmax is None else vmax
        imshow_kwargs = {"cmap": cmap, "vmin": vmin, "vmax": vmax, **kwargs}
        images = _draw_images(axes, rows.reshape(n_rows, n_images, *shape), imshow_kwargs)
        if self.row_labels is not None:
            for row_ax, label in zip(axes[:, 0], self.row_labels, strict=True):
                row_ax.set_ylabel(label, rotation=0, ha="right", va="center", labelpad=6)
        if name and self.ax_ is not None:  # "" draws no title
            self.ax_.set_title(f"{name}: reconstructions")
        elif name:
            fig.suptitle(f"{name}: reconstructions")
        self.images_ = images
        self.axes_ = axes
        self.figure_ = fig
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator: BaseEstimator,
        X: ArrayLike,
        *,
        image_shape: tuple[int, ...] | None = None,
        n_images: int = 8,
        ax: Axes | Sequence[Axes] | Sequence[Sequence[Axes]] | np.ndarray | None = None,
        name: str | None = None,
        cmap: str | Colormap = "gray_r",
        **kwargs: Any,
    ) -> Self:
        """Plot the first ``n_images`` rows of X above their reconstructions.

        Parameters
        ----------
        estimator : fitted transformer
            An estimator with ``transform`` and ``inverse_transform`` (a skae
            estimator, PCA, ...).
        X : array-like of shape (n_samples, n_features)
            Flattened images.
        image_shape : tuple of int, default=None
            ``(height, width)`` of one image; the estimator's ``image_shape``
            (ConvolutionalAutoencoder) or a square if None.
        n_images : int, default=8
            Number of images to show (the first rows of X).
        ax : matplotlib Axes or array-like of Axes, default=None
            See :meth:`plot`.
        name : str, default=None
            Name used in the title; the estimator's class name if None; "" for
            no title.
        cmap : str or matplotlib Colormap, default="gray_r"
            Grayscale colormap.
        **kwargs : dict
            Keyword arguments passed to :meth:`plot`.

        Returns
        -------
        display : ReconstructionDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        if not isinstance(n_images, Integral) or n_images < 1:
            raise ValueError(f"n_images must be a positive integer; got {n_images!r}.")
        # the first rows as they are (a frame keeps its column names, a
        # sparse matrix its format), for the estimator; dense, for drawing
        rows = _safe_indexing(X, slice(0, n_images))
        originals = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
        n_features = originals.shape[1]
        if image_shape is None:
            image_shape = getattr(estimator, "image_shape", None)
        if image_shape is None:
            image_shape = _square_shape(n_features)
        reconstructions = estimator.inverse_transform(estimator.transform(rows))
        display = cls(
            [originals, np.asarray(reconstructions)],
            image_shape=image_shape,
            row_labels=["original", "reconstruction"],
            estimator_name=_estimator_name(estimator),
        )
        return display.plot(ax=ax, name=name, cmap=cmap, **kwargs)
