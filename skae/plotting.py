"""Visualisations of fitted autoencoders, as scikit-learn style Display objects.

Each Display holds the numbers it shows; :meth:`plot` draws them and returns
the Display with the matplotlib artists as attributes ending in ``_``
(``ax_``, ``figure_``, ``line_``, ...); a ``from_estimator`` classmethod
computes the numbers from an estimator and plots them, as
:class:`sklearn.metrics.RocCurveDisplay` does.

matplotlib is an optional dependency (``pip install "skae[plot]"``): it is
imported only when something is drawn.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from numbers import Integral
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

if sys.version_info >= (3, 11):
    from typing import Self
else:  # Python 3.10: typing_extensions is installed with torch, which requires it
    from typing_extensions import Self

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
else:
    # matplotlib is optional and imported only when something is drawn: at run
    # time (typing.get_type_hints) its types read as Any
    Axes = Colormap = Any

__all__ = [
    "ComparisonDisplay",
    "LatentSpaceDisplay",
    "LossCurveDisplay",
    "ReconstructionDisplay",
]

#: Above this many distinct numeric values, ``y`` is a continuous target and
#: gets a colorbar instead of a legend of classes.
MAX_LEGEND_CLASSES = 20


def check_matplotlib_support(caller_name: str) -> None:
    """Raise an ImportError that names the ``plot`` extra when matplotlib is
    missing (scikit-learn's helper of the same name suggests a plain install)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller_name} requires matplotlib, an optional dependency of skae. "
            'Install it with `pip install "skae[plot]"` (or `pip install matplotlib`).'
        ) from exc


def _estimator_name(estimator: object) -> str:
    return type(estimator).__name__


def _validate_plot_params(
    display: Any, ax: Axes | None, name: str | None
) -> tuple[Axes, str | None]:
    """Check for matplotlib; return the axes to draw on (those of a new figure
    if None) and the name for the title (``display.estimator_name`` if None)."""
    check_matplotlib_support(f"{type(display).__name__}.plot")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax, display.estimator_name if name is None else name


def _axes_array(ax: Any, shape: tuple[int, ...], expected: str) -> np.ndarray:
    """The axes given as ``ax``, as an array of ``shape``; ``expected`` starts
    the error message when their number does not fit."""
    axes = np.asarray(ax, dtype=object)
    if axes.size != np.prod(shape):
        raise ValueError(f"{expected}; got {axes.size}.")
    return axes.reshape(shape)


def _line_marker(n_points: int) -> str | None:
    """Dots on the points of a short curve, none on a long one."""
    return "." if n_points < 50 else None


# ---------------------------------------------------------------- loss curve


class LossCurveDisplay:
    """Training loss per epoch of a fitted autoencoder.

    Draws ``loss_curve_`` and, when the estimator was fitted with
    ``early_stopping=True``, the validation loss (the negative of
    ``validation_scores_``, on the same scale: mean loss per sample). With
    greedy pretraining, each layer's pretraining epochs and the end-to-end
    fine-tuning epochs are shaded as separate phases.

    It is recommended to use :meth:`from_estimator` to create a display.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Mean training loss per sample at each epoch, pretraining epochs first.
    validation_loss : array-like of shape (n_validation_epochs,), default=None
        Validation loss at each end-to-end epoch (after any pretraining).
    pretraining_loss_curves : list of array-like, default=()
        The loss curve of each pretrained layer, from the input inwards; their
        epochs are the first ones of ``loss_curve``.
    estimator_name : str, default=None
        Name of the estimator, used in the title.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The training loss.
    validation_line_ : matplotlib Line2D or None
        The validation loss; None without one.
    pretraining_spans_ : list of matplotlib Rectangle
        One shaded span per pretrained layer (from ``axvspan``); empty without
        pretraining.
    finetuning_span_ : matplotlib Rectangle or None
        The shaded span of the end-to-end epochs; None without pretraining.
    ax_ : matplotlib Axes
        Axes with the curves.
    figure_ : matplotlib Figure
        Figure containing the curves.

    See Also
    --------
    LossCurveDisplay.from_estimator : Plot the loss curve of a fitted estimator.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skae import Autoencoder
    >>> from skae.plotting import LossCurveDisplay
    >>> X = load_digits().data / 16
    >>> ae = Autoencoder(n_components=2, hidden_layer_sizes=(16,), max_iter=30,
    ...                  early_stopping=True, random_state=0, device="cpu").fit(X)
    >>> display = LossCurveDisplay.from_estimator(ae)
    >>> display.ax_.get_xlabel(), display.ax_.get_ylabel()
    ('epoch', 'loss per sample')
    >>> [text.get_text() for text in display.ax_.get_legend().get_texts()]
    ['training loss', 'validation loss']
    >>> import matplotlib.pyplot as plt
    >>> plt.close(display.figure_)
    """

    def __init__(
        self,
        *,
        loss_curve: ArrayLike,
        validation_loss: ArrayLike | None = None,
        pretraining_loss_curves: Sequence[ArrayLike] = (),
        estimator_name: str | None = None,
    ) -> None:
        self.loss_curve = loss_curve
        self.validation_loss = validation_loss
        self.pretraining_loss_curves = pretraining_loss_curves
        self.estimator_name = estimator_name

    def plot(self, ax: Axes | None = None, *, name: str | None = None, **kwargs: Any) -> Self:
        """Plot the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure and axes are created if None.
        name : str, default=None
            Name used in the title; ``estimator_name`` if None.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``plot`` for the training
            loss.

        Returns
        -------
        display : LossCurveDisplay
            Object that stores the computed values and the artists.
        """
        ax, name = _validate_plot_params(self, ax, name)
        import matplotlib.pyplot as plt

        loss = np.asarray(self.loss_curve, dtype=float)
        pretraining_lengths = [len(curve) for curve in self.pretraining_loss_curves]
        n_pretraining = sum(pretraining_lengths)

        # spans cover whole epochs: epoch e is drawn at x = e, so a phase of
        # epochs [a, b] is shaded over [a - 0.5, b + 0.5]
        colors = plt.get_cmap("Pastel2").colors
        self.pretraining_spans_ = []
        start = 0
        for layer, length in enumerate(pretraining_lengths):
            span = ax.axvspan(
                start + 0.5,
                start + length + 0.5,
                color=colors[layer % len(colors)],
                alpha=0.6,
                zorder=0,
                label=f"pretraining layer {layer + 1}",
            )
            self.pretraining_spans_.append(span)
            start += length
        self.finetuning_span_ = None
        if pretraining_lengths and len(loss) > n_pretraining:
            self.finetuning_span_ = ax.axvspan(
                n_pretraining + 0.5, len(loss) + 0.5, color="0.9", zorder=0, label="fine-tuning"
            )

        line_kwargs = {"label": "training loss", "marker": _line_marker(len(loss))}
        line_kwargs.update(kwargs)
        # each pretrained layer has its own loss, on its own scale: break the
        # line between phases rather than join unrelated values
        breaks = np.cumsum(pretraining_lengths, dtype=int)
        breaks = breaks[breaks < len(loss)]
        (self.line_,) = ax.plot(
            np.insert(np.arange(1, len(loss) + 1, dtype=float), breaks, np.nan),
            np.insert(loss, breaks, np.nan),
            **line_kwargs,
        )

        self.validation_line_ = None
        if self.validation_loss is not None and len(self.validation_loss):
            validation = np.asarray(self.validation_loss, dtype=float)
            validation_epochs = n_pretraining + np.arange(1, len(validation) + 1)
            (self.validation_line_,) = ax.plot(
                validation_epochs,
                validation,
                label="validation loss",
                linestyle="--",
                marker=_line_marker(len(validation)),
            )

        ax.set_xlabel("epoch")
        ax.set_ylabel("loss per sample")
        if name is not None:
            ax.set_title(f"{name}: loss per epoch")
        ax.legend(loc="best")
        ax.grid(True, alpha=0.3)

        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator: BaseEstimator,
        *,
        ax: Axes | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> Self:
        """Plot the loss curve of a fitted estimator.

        Parameters
        ----------
        estimator : fitted skae estimator
            Any estimator with a ``loss_curve_``; ``validation_scores_`` and
            ``pretraining_loss_curves_`` are used when present.
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure and axes are created if None.
        name : str, default=None
            Name used in the title; the estimator's class name if None.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``plot`` for the training
            loss.

        Returns
        -------
        display : LossCurveDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        if not hasattr(estimator, "loss_curve_"):
            raise ValueError(
                f"{_estimator_name(estimator)} has no loss_curve_: pass a fitted skae "
                "estimator (or any estimator trained by epochs, such as MLPRegressor)."
            )
        scores = getattr(estimator, "validation_scores_", None)
        display = cls(
            loss_curve=estimator.loss_curve_,
            validation_loss=None if scores is None else -np.asarray(scores, dtype=float),
            pretraining_loss_curves=getattr(estimator, "pretraining_loss_curves_", None) or (),
            estimator_name=_estimator_name(estimator),
        )
        return display.plot(ax=ax, name=name, **kwargs)


# -------------------------------------------------------------- latent space


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
            Name used in the title; ``estimator_name`` if None.
        cmap : str or matplotlib Colormap, default=None
            Colormap for ``y``: "tab10" or "tab20" for up to 10 or 20 classes,
            "viridis" for a continuous target.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``scatter``.

        Returns
        -------
        display : LatentSpaceDisplay
        """
        ax, name = _validate_plot_params(self, ax, name)
        import matplotlib.pyplot as plt

        codes = np.asarray(self.codes)
        if codes.ndim != 2 or codes.shape[1] != 2:
            raise ValueError(f"codes must have shape (n_samples, 2); got {codes.shape}.")

        scatter_kwargs = {"s": 12, "alpha": 0.8, "linewidths": 0}
        scatter_kwargs.update(kwargs)
        self.legend_ = None
        self.colorbar_ = None
        if self.y is None:
            self.scatter_ = ax.scatter(*codes.T, **scatter_kwargs)
        else:
            y = np.asarray(self.y)
            if len(y) != len(codes):
                raise ValueError(f"y has {len(y)} entries but there are {len(codes)} codes.")
            classes, index = np.unique(y, return_inverse=True)
            continuous = y.dtype.kind == "f" and len(classes) > MAX_LEGEND_CLASSES
            if continuous:
                self.scatter_ = ax.scatter(*codes.T, c=y, cmap=cmap or "viridis", **scatter_kwargs)
                self.colorbar_ = ax.figure.colorbar(self.scatter_, ax=ax)
            else:
                n_classes = len(classes)
                cmap = plt.get_cmap(cmap or ("tab10" if n_classes <= 10 else "tab20"))
                self.scatter_ = ax.scatter(
                    *codes.T,
                    c=index,
                    cmap=cmap,
                    vmin=-0.5,
                    vmax=max(n_classes, cmap.N) - 0.5,
                    **scatter_kwargs,
                )
                handles = [
                    plt.Line2D(
                        [],
                        [],
                        linestyle="",
                        marker="o",
                        markersize=6,
                        color=self.scatter_.cmap(self.scatter_.norm(i)),
                    )
                    for i in range(n_classes)
                ]
                self.legend_ = ax.legend(
                    handles,
                    [str(c) for c in classes],
                    title="y",
                    loc="center left",
                    bbox_to_anchor=(1.01, 0.5),
                    frameon=False,
                )

        if self.axis_labels is not None:
            ax.set_xlabel(self.axis_labels[0])
            ax.set_ylabel(self.axis_labels[1])
        if name is not None:
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
            Name used in the title; the estimator's class name if None.
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
        try:
            names = [str(n) for n in estimator.get_feature_names_out()]
        except (AttributeError, TypeError, ValueError):
            names = [f"component {i}" for i in range(n_components)]
        if projection == "pca" and n_components > 2:
            codes = PCA(n_components=2).fit_transform(codes)
            labels = tuple(f"PC {i} of the codes ({names[0]} ... {names[-1]})" for i in (1, 2))
        else:
            codes = codes[:, :2]
            labels = tuple(names[:2])
        display = cls(
            codes=codes, y=y, axis_labels=labels, estimator_name=_estimator_name(estimator)
        )
        return display.plot(ax=ax, name=name, cmap=cmap, **kwargs)


# ------------------------------------------------------------ reconstruction


def _image_shape(image_shape: Sequence[int], n_features: int) -> tuple[int, ...]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 2 or shape[0] * shape[1] != n_features:
        raise ValueError(
            f"image_shape must be (height, width) with height * width == n_features "
            f"({n_features}); got {tuple(image_shape)}."
        )
    return shape


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
            Name used in the title; ``estimator_name`` if None.
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
        import matplotlib.pyplot as plt

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

        self.ax_ = None
        if ax is None:
            cell = 1.1
            fig, axes = plt.subplots(
                n_rows,
                n_images,
                figsize=(cell * n_images + 1.2, cell * n_rows + (0.5 if name else 0.1)),
                squeeze=False,
                layout="constrained",
            )
        elif hasattr(ax, "inset_axes"):
            # one axes: split its area into a grid of cells, as
            # PartialDependenceDisplay does with a bounding axes
            self.ax_ = ax
            ax.set_axis_off()
            fig = ax.figure
            gap = 0.04
            width, height = (1 - gap * (n_images - 1)) / n_images, (1 - gap * (n_rows - 1)) / n_rows
            axes = np.empty((n_rows, n_images), dtype=object)
            for i, j in np.ndindex(axes.shape):
                axes[i, j] = ax.inset_axes(
                    [j * (width + gap), 1 - height - i * (height + gap), width, height]
                )
        else:
            axes = _axes_array(
                ax,
                (n_rows, n_images),
                f"Expected {n_rows * n_images} axes ({n_rows} rows of {n_images} images)",
            )
            fig = axes[0, 0].figure

        if vmin is None:
            vmin = rows[0].min()
        if vmax is None:
            vmax = rows[0].max()
        images = np.empty((n_rows, n_images), dtype=object)
        for (i, j), cell_ax in np.ndenumerate(axes):
            images[i, j] = cell_ax.imshow(
                rows[i, j].reshape(shape),
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                origin="upper",
                interpolation="nearest",
                **kwargs,
            )
            cell_ax.set_xticks([])
            cell_ax.set_yticks([])
        if self.row_labels is not None:
            for row_ax, label in zip(axes[:, 0], self.row_labels, strict=True):
                row_ax.set_ylabel(label, rotation=0, ha="right", va="center", labelpad=6)
        if name is not None:
            title = f"{name}: reconstructions"
            if self.ax_ is not None:
                self.ax_.set_title(title)
            else:
                fig.suptitle(title)

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
            Name used in the title; the estimator's class name if None.
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
        originals = np.asarray(X)[:n_images]
        n_features = originals.shape[1]
        if image_shape is None:
            image_shape = getattr(estimator, "image_shape", None)
        if image_shape is None:
            side = int(round(np.sqrt(n_features)))
            if side * side != n_features:
                raise ValueError(f"Pass image_shape: {n_features} features are not a square image.")
            image_shape = (side, side)
        reconstructions = estimator.inverse_transform(estimator.transform(originals))
        display = cls(
            [originals, np.asarray(reconstructions)],
            image_shape=image_shape,
            row_labels=["original", "reconstruction"],
            estimator_name=_estimator_name(estimator),
        )
        return display.plot(ax=ax, name=name, cmap=cmap, **kwargs)


# ---------------------------------------------------------------- comparison


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
        and ``"accuracy"`` (and ``"n_components"``, ``"fit_seconds"`` from
        :meth:`from_estimators`). ``pandas.DataFrame(results)`` makes a table.

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
        import matplotlib.pyplot as plt

        if ax is None:
            height = 1.2 + 0.4 * len(self.results)
            fig, axes = plt.subplots(1, 2, figsize=(10, height), sharey=True, layout="constrained")
        else:
            axes = _axes_array(ax, (2,), "ax must hold 2 axes (error, accuracy)")
            fig = axes[0].figure
        names = [str(r["name"]) for r in self.results]
        positions = np.arange(len(names))
        bar_kwargs = {"height": 0.6}
        bar_kwargs.update(kwargs)

        error_ax, accuracy_ax = axes
        errors = [r["reconstruction_error"] for r in self.results]
        accuracies = [r["accuracy"] for r in self.results]
        self.error_bars_ = error_ax.barh(positions, errors, color="tab:red", **bar_kwargs)
        self.accuracy_bars_ = accuracy_ax.barh(
            positions, accuracies, color="tab:blue", **bar_kwargs
        )
        error_ax.bar_label(self.error_bars_, fmt="%.3f", padding=2)
        accuracy_ax.bar_label(self.accuracy_bars_, fmt="%.3f", padding=2)
        for a in axes:
            a.set_yticks(positions, names)
            # the first model on top
            a.set_ylim(len(names) - 0.5, -0.5)
            a.margins(x=0.2)
        error_ax.set_xlabel("squared error per sample (lower is better)")
        error_ax.set_title("held-out reconstruction error")
        accuracy_ax.set_xlabel("accuracy (higher is better)")
        accuracy_ax.set_title("logistic regression on the codes")
        accuracy_ax.set_xlim(0, 1.15)
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
        held-out codes.

        Parameters
        ----------
        estimators : dict of str to estimator, or list of estimators
            Unfitted transformers with ``inverse_transform`` (include PCA as a
            baseline). A list is named by class names.
        X_train, X_test : array-like of shape (n_samples, n_features)
            Training and held-out data.
        y_train, y_test : array-like of shape (n_samples,)
            Training and held-out labels.
        classifier : estimator, default=None
            Classifier trained on the codes; if None,
            ``make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))``
            (the codes of different models have very different scales).
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
        if classifier is None:
            classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        X_test = np.asarray(X_test)

        results, fitted = [], {}
        for name, estimator in named:
            estimator = clone(estimator)
            start = time.perf_counter()
            codes_train = estimator.fit_transform(X_train)
            seconds = time.perf_counter() - start
            codes_test = estimator.transform(X_test)
            error = ((estimator.inverse_transform(codes_test) - X_test) ** 2).sum(axis=1).mean()
            accuracy = clone(classifier).fit(codes_train, y_train).score(codes_test, y_test)
            results.append(
                {
                    "name": name,
                    "n_components": codes_test.shape[1],
                    "reconstruction_error": float(error),
                    "accuracy": float(accuracy),
                    "fit_seconds": seconds,
                }
            )
            fitted[name] = estimator
        display = cls(results)
        display.estimators_ = fitted
        return display.plot(ax=ax, title=title, **kwargs)
