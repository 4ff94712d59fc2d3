"""Visualisations of fitted autoencoders, as scikit-learn style Display objects.

Each Display holds the numbers it shows; :meth:`plot` draws them and returns
the Display with the matplotlib artists as attributes ending in ``_``
(``ax_``, ``figure_``, ``line_``, ...); a ``from_estimator`` classmethod
computes the numbers from an estimator and plots them, as
:class:`sklearn.metrics.RocCurveDisplay` does.

matplotlib is an optional dependency (``pip install "skae[plot]"``): it is
imported only when something is drawn.
"""

# check_matplotlib_support and MAX_LEGEND_CLASSES stay importable from here,
# as before the module became a package (not in __all__, as before)
from ._common import check_matplotlib_support as check_matplotlib_support
from ._comparison import ComparisonDisplay
from ._latent_space import MAX_LEGEND_CLASSES as MAX_LEGEND_CLASSES
from ._latent_space import LatentSpaceDisplay
from ._loss_curve import LossCurveDisplay
from ._reconstruction import ReconstructionDisplay

__all__ = [
    "ComparisonDisplay",
    "LatentSpaceDisplay",
    "LossCurveDisplay",
    "ReconstructionDisplay",
]
