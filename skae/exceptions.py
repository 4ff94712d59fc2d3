"""Warnings of skae's own that a user may filter by category, as
:mod:`sklearn.exceptions` has ``ConvergenceWarning``."""

__all__ = ["KeptStartWarning"]


class KeptStartWarning(UserWarning):
    """A fit in which no epoch beat its starting point by ``tol``.

    The start is PCA's (``init="pca"``) or, for a warm start, the previous
    fit's; the fitted model is that start, or an epoch next to it, and
    ``best_epoch_`` records which. The model is sound, but this fit's
    training bought nothing. On small or nearly linear data that is what
    ``init="pca"`` is for, so in a search over many fits it may be filtered
    by this category.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skae import Autoencoder
    >>> from skae.exceptions import KeptStartWarning
    >>> X = np.random.default_rng(0).normal(size=(30, 6))
    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     est = Autoencoder(n_components=2, max_iter=3, random_state=0).fit(X)
    >>> est.best_epoch_, any(w.category is KeptStartWarning for w in said)
    (0, True)
    >>> with warnings.catch_warnings(record=True) as said:
    ...     warnings.simplefilter("always")
    ...     warnings.filterwarnings("ignore", category=KeptStartWarning)
    ...     est = Autoencoder(n_components=2, max_iter=3, random_state=0).fit(X)
    >>> [str(w.message) for w in said if "best_epoch_" in str(w.message)]
    []
    """
