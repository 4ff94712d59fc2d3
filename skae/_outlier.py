"""Outlier detection with an autoencoder, in scikit-learn's outlier-detector
convention: rows the autoencoder reconstructs badly are the outliers."""

from __future__ import annotations

import sys
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.utils import Tags, get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

from ._autoencoder import Autoencoder
from ._base import BaseAutoencoder, Interval

if sys.version_info >= (3, 11):
    from typing import Self
else:  # Python 3.10: typing_extensions, a dependency there
    from typing_extensions import Self

#: The inner estimator's settings when ``estimator=None``, chosen by the
#: one-class MNIST benchmark (benchmarks/bench_outliers.py). The training
#: settings are spelled out so that the default detector stays the one that
#: was measured when the Autoencoder's own defaults change.
DEFAULT_ESTIMATOR_PARAMS: dict[str, Any] = dict(
    n_components=16,
    hidden_layer_sizes=(256,),
    activation="elu",
    batch_size=64,
    max_iter=45,
    learning_rate=1e-3,
    early_stopping=False,
)


def default_estimator(**params: Any) -> Autoencoder:
    """The autoencoder an :class:`AutoencoderOutlierDetector` with
    ``estimator=None`` fits, with ``params`` (``random_state``, ``device``,
    ...) set on top of the default settings."""
    return Autoencoder(**{**DEFAULT_ESTIMATOR_PARAMS, **params})


class AutoencoderOutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection by the reconstruction of an autoencoder.

    Fits a clone of a skae autoencoder to the training data and scores each
    row with the autoencoder's :meth:`score_samples`: the negative
    reconstruction error (the ELBO for :class:`VariationalAutoencoder`).
    Rows the autoencoder reconstructs badly score low. The threshold
    ``offset_`` is the ``contamination`` quantile of the training scores, so
    that share of the training rows is flagged, as in
    :class:`~sklearn.ensemble.IsolationForest` with a float ``contamination``.

    Use it for novelty detection (fit on clean data, flag new rows unlike it)
    or for outlier detection (fit on data with a few outliers; an autoencoder
    with a small code reconstructs the bulk of the data better than the
    rare rows).

    Parameters
    ----------
    estimator : skae autoencoder or None, default=None
        The autoencoder to fit (any skae estimator: :class:`Autoencoder`,
        :class:`DenoisingAutoencoder`, :class:`VariationalAutoencoder`,
        :class:`ConvolutionalAutoencoder`, ...); it is cloned, never fitted
        in place. None fits ``Autoencoder(n_components=16,
        hidden_layer_sizes=(256,), activation="elu", batch_size=64,
        max_iter=45, learning_rate=1e-3, early_stopping=False)``, chosen on
        the one-class MNIST benchmark (``benchmarks/bench_outliers.py``:
        mean AUC 0.975 over the ten digits; ReLU units gave 0.972, 30
        epochs 0.973, a code of 24 or 32 units less), with
        ``random_state=None`` as every scikit-learn default: for results that
        repeat, pass an estimator with an int ``random_state`` (these settings
        plus ``random_state=0``, say).
    contamination : float, default=0.1
        The share of outliers expected in the training data, in (0, 0.5]:
        ``offset_`` is set so that this share of the training rows falls
        below it.

    Attributes
    ----------
    estimator_ : skae autoencoder
        The fitted clone of ``estimator``.
    offset_ : float
        The ``100 * contamination`` percentile of the training rows'
        :meth:`score_samples`; ``decision_function = score_samples -
        offset_``.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when X has string column
        names.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Isolation by random trees.
    sklearn.neighbors.LocalOutlierFactor : Local density against the
        neighbours' (``novelty=True`` for new data).
    sklearn.svm.OneClassSVM : The support of the data in a kernel space.
    sklearn.decomposition.PCA : Its ``score_samples`` (a Gaussian
        log-likelihood) and reconstruction error are the linear baselines.

    References
    ----------
    M. Sakurada and T. Yairi, "Anomaly detection using autoencoders with
    nonlinear dimensionality reduction", MLSDA workshop 2014.

    L. Ruff et al., "Deep one-class classification", ICML 2018 (the one-class
    MNIST protocol of the benchmark).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import Autoencoder, AutoencoderOutlierDetector
    >>> X = load_digits().data / 16
    >>> detector = AutoencoderOutlierDetector(
    ...     Autoencoder(n_components=8, hidden_layer_sizes=(32,), max_iter=20,
    ...                 random_state=0, device="cpu"),
    ...     contamination=0.05,
    ... ).fit(X)
    >>> round(float(np.mean(detector.predict(X) == -1)), 3)
    0.05
    >>> noise = np.random.default_rng(0).uniform(size=(3, 64))
    >>> detector.predict(noise)
    array([-1, -1, -1])
    >>> bool(np.all(detector.decision_function(noise) < 0))
    True
    """

    _parameter_constraints: dict = {
        "estimator": [BaseAutoencoder, None],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
    }

    def __init__(
        self, estimator: BaseAutoencoder | None = None, *, contamination: float = 0.1
    ) -> None:
        self.estimator = estimator
        self.contamination = contamination

    def _inner(self):
        return default_estimator() if self.estimator is None else self.estimator

    def _accepts_sparse(self):
        # as the inner estimator does (a bad ``estimator`` is refused by fit)
        inner = self._inner()
        return isinstance(inner, BaseAutoencoder) and get_tags(inner).input_tags.sparse

    def _validate(self, X, *, reset):
        return validate_data(
            self,
            X,
            dtype=(np.float64, np.float32),
            accept_sparse=self._accepts_sparse(),
            reset=reset,
        )

    # prefer_skip_nested_validation=False: the inner estimator's parameters
    # come from the user and are validated by its own fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Fit the autoencoder to X and set the threshold ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        X = self._validate(X, reset=True)
        estimator = clone(self._inner()).fit(X)
        scores = estimator.score_samples(X)
        self.estimator_ = estimator
        self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
        return self

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """The inner estimator's score of each row: higher is more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The negative reconstruction error of each row (the ELBO for a
            :class:`VariationalAutoencoder`), in X's float dtype.
        """
        check_is_fitted(self)
        return self.estimator_.score_samples(self._validate(X, reset=False))

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Negative for outliers, non-negative for inliers.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Label each row: -1 for an outlier, +1 for an inlier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to label.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where :meth:`decision_function` is negative, +1 elsewhere.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self._accepts_sparse()
        return tags
