"""What the Displays share: the optional matplotlib, the axes they draw on,
the names in their titles, and the typing aliases that work without matplotlib."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
else:
    # matplotlib is optional and imported only when something is drawn: at run
    # time (typing.get_type_hints) its types read as Any
    Axes = Colormap = Any

__all__ = ["Axes", "Colormap", "Self", "check_matplotlib_support"]


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
