"""The training loss per epoch: :class:`LossCurveDisplay`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

from ._common import (
    Axes,
    Self,
    _estimator_name,
    _line_marker,
    _validate_plot_params,
    check_matplotlib_support,
)

__all__ = ["LossCurveDisplay"]


def _shade_phases(ax: Axes, lengths: Sequence[int], n_epochs: int) -> tuple[list, Any]:
    """Shade each pretrained layer's epochs and the fine-tuning epochs; return
    the layers' spans and the fine-tuning span (None without pretraining)."""
    import matplotlib.pyplot as plt

    # spans cover whole epochs: epoch e is drawn at x = e, so a phase of
    # epochs [a, b] is shaded over [a - 0.5, b + 0.5]
    colors = plt.get_cmap("Pastel2").colors
    spans, start = [], 0
    for layer, length in enumerate(lengths):
        span = ax.axvspan(
            start + 0.5,
            start + length + 0.5,
            color=colors[layer % len(colors)],
            alpha=0.6,
            zorder=0,
            label=f"pretraining layer {layer + 1}",
        )
        spans.append(span)
        start += length
    finetuning = None
    if lengths and n_epochs > start:
        finetuning = ax.axvspan(
            start + 0.5, n_epochs + 0.5, color="0.9", zorder=0, label="fine-tuning"
        )
    return spans, finetuning


def _plot_training_loss(
    ax: Axes, loss: np.ndarray, lengths: Sequence[int], kwargs: dict[str, Any]
) -> Any:
    """Draw the training loss, the line broken between pretraining phases."""
    line_kwargs = {"label": "training loss", "marker": _line_marker(len(loss))}
    line_kwargs.update(kwargs)
    # each pretrained layer has its own loss, on its own scale: break the
    # line between phases rather than join unrelated values
    breaks = np.cumsum(lengths, dtype=int)
    breaks = breaks[breaks < len(loss)]
    (line,) = ax.plot(
        np.insert(np.arange(1, len(loss) + 1, dtype=float), breaks, np.nan),
        np.insert(loss, breaks, np.nan),
        **line_kwargs,
    )
    return line


class LossCurveDisplay:
    """Training loss per epoch of a fitted autoencoder.

    Draws ``loss_curve_`` and, when the estimator was fitted with
    ``early_stopping=True``, the negative of ``validation_scores_``: for most
    skae estimators the same loss per sample on the held-out rows; for the
    VAE (trained on the negative ELBO) and the imputer, the held-out error
    that early stopping judges by, a different quantity, labelled as such
    (``validation_label``). With
    greedy pretraining, each layer's pretraining epochs and the end-to-end
    fine-tuning epochs are shaded as separate phases.

    It is recommended to use :meth:`from_estimator` to create a display.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        Mean training loss per sample at each epoch, pretraining epochs first.
    validation_loss : array-like of shape (n_validation_epochs,), default=None
        Validation loss at each end-to-end epoch (after any pretraining).
    validation_label : str, default="validation loss"
        The legend's name for ``validation_loss``.
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
        validation_label: str = "validation loss",
    ) -> None:
        self.loss_curve = loss_curve
        self.validation_loss = validation_loss
        self.validation_label = validation_label
        self.pretraining_loss_curves = pretraining_loss_curves
        self.estimator_name = estimator_name

    def plot(self, ax: Axes | None = None, *, name: str | None = None, **kwargs: Any) -> Self:
        """Plot the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on; a new figure and axes are created if None.
        name : str, default=None
            Name used in the title; ``estimator_name`` if None; "" for no title.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``plot`` for the training
            loss.

        Returns
        -------
        display : LossCurveDisplay
            Object that stores the computed values and the artists.
        """
        ax, name = _validate_plot_params(self, ax, name)
        loss = np.asarray(self.loss_curve, dtype=float)
        lengths = [len(curve) for curve in self.pretraining_loss_curves]
        self.pretraining_spans_, self.finetuning_span_ = _shade_phases(ax, lengths, len(loss))
        self.line_ = _plot_training_loss(ax, loss, lengths, kwargs)
        self.validation_line_ = None
        if self.validation_loss is not None and len(self.validation_loss):
            validation = np.asarray(self.validation_loss, dtype=float)
            validation_epochs = sum(lengths) + np.arange(1, len(validation) + 1)
            (self.validation_line_,) = ax.plot(
                validation_epochs,
                validation,
                label=self.validation_label,
                linestyle="--",
                marker=_line_marker(len(validation)),
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss per sample")
        if name:  # "" draws no title
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
            Name used in the title; the estimator's class name if None; "" for
            no title.
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
        # skae names what its validation score measures; another estimator's
        # (MLPRegressor's R^2) is drawn negated, and named so
        label = getattr(estimator, "_validation_label", "validation score, negated")
        display = cls(
            loss_curve=estimator.loss_curve_,
            validation_loss=None if scores is None else -np.asarray(scores, dtype=float),
            pretraining_loss_curves=getattr(estimator, "pretraining_loss_curves_", None) or (),
            estimator_name=_estimator_name(estimator),
            validation_label=label,
        )
        return display.plot(ax=ax, name=name, **kwargs)
