"""Outlier detection with an autoencoder, in scikit-learn's outlier-detector
convention: rows unlikely under the autoencoder's fit (far off its manifold, or
far out along it) are the outliers."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erf
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.utils import ClassifierTags, Tags, get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

from ._autoencoder import Autoencoder
from ._base import BaseAutoencoder
from ._distributed import failing_together, same_on_ranks
from ._outlier_scores import (
    DENSITY_ATTRIBUTES,
    DENSITY_SCORES,
    checked_attributes,
    checked_density,
    density_scores,
    distances_without_far_out,
    fit_code_density,
    fit_folds,
    noise_floor,
    out_of_fold_splits,
    overflow_as_outliers,
    reconstruction_scores,
    satterthwaite_variance,
    warn_if_code_covers_input,
    warn_if_rows_identical,
)
from ._progress import KEPT_START
from ._random import seed_source
from ._validation import (
    FEATURE_ATTRIBUTES,
    InstancesOf,
    Interval,
    InvalidParameterError,
    StrOptions,
    _fit_context,
    detached_input,
    plain_rows,
    validate_aside,
)

#: What ``estimator`` must be, in the message that refuses another.
AUTOENCODERS = "a skae autoencoder (skae.Autoencoder, skae.VariationalAutoencoder, ...)"

#: The inner estimator's settings when ``estimator=None`` (besides the code
#: size and batch size of :func:`default_size`), chosen on
#: benchmarks/bench_outliers.py: early stopping on held-out rows ends every
#: fit before ``max_iter`` (so without a ConvergenceWarning) and keeps the
#: best epoch, the PCA start included where the Autoencoder has one.
DEFAULT_ESTIMATOR_PARAMS: dict[str, Any] = dict(
    hidden_layer_sizes=(256,),
    activation="elu",
    max_iter=500,
    learning_rate=1e-3,
    early_stopping=True,
)

#: The default code size is a quarter of the features, at most this many.
MAX_DEFAULT_COMPONENTS = 16

#: Version of the detector's exported fitted state (``skae.save``).
DETECTOR_STATE_VERSION = 1


def default_size(n_samples: int, n_features: int) -> dict[str, int]:
    """The default inner model's code size and batch size for data of this
    shape: a code of a quarter of the features (at most 16), and batches of
    a 32nd of the rows between 16 and 64, so that a small data set still
    gets enough optimiser steps per epoch for early stopping to end the fit."""
    return {
        "n_components": min(MAX_DEFAULT_COMPONENTS, max(1, n_features // 4)),
        "batch_size": int(np.clip(n_samples // 32, 16, 64)),
    }


def default_estimator(n_samples: int, n_features: int, **params: Any) -> Autoencoder:
    """The autoencoder an :class:`AutoencoderOutlierDetector` with
    ``estimator=None`` fits on data of shape ``(n_samples, n_features)``,
    with ``params`` (``random_state``, ``device``, ...) set on top."""
    settings = {**DEFAULT_ESTIMATOR_PARAMS, **default_size(n_samples, n_features)}
    return Autoencoder(**{**settings, **params})


class AutoencoderOutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection by an autoencoder's fit: its residual and its code.

    Fits a clone of a skae autoencoder to the training data and scores each
    row by a Gaussian on the autoencoder's fit (``score_by="density"``, the
    default): ``-(|r|^2 / noise_variance_ + (z - code_location_)'
    code_precision_ (z - code_location_)) / 2`` for the row's code ``z`` and
    residual ``r`` (reconstruction minus row), with the mean squared residual
    per feature of rows the scoring model did not see (the out-of-fold
    reconstructions below) and a Ledoit-Wolf shrunk covariance of the
    training codes: the form of
    :meth:`sklearn.decomposition.PCA.score_samples` (less a constant) when
    the autoencoder is PCA, since the reconstruction error alone sees how
    far a row lies off the code's manifold, not how far out along it.
    ``score_by="reconstruction"`` scores with the autoencoder's own
    :meth:`score_samples` (the negative reconstruction error; the ELBO for
    :class:`VariationalAutoencoder`). ``score_by="satterthwaite"`` is the
    density with ``noise_variance_`` the out-of-fold residuals'
    ``tr(C^2) / tr(C)`` (``C`` their second-moment matrix) instead of
    ``tr(C) / p``: correlated residual features then count as the fewer
    independent ones they amount to, which quiets the residual against the
    code where the residuals are correlated (:ref:`outliers` compares the
    two). Rows scoring low are the outliers.

    The threshold ``offset_`` is cross-fitted, so that about
    ``contamination`` of *new* inliers fall below it: the rows are split in
    ``cv`` folds, a clone is fitted on all folds but one and scores the
    held-out fold, and ``offset_`` is the ``contamination`` quantile of these
    out-of-fold scores; the model kept (``estimator_``) is then fitted on
    the rows but the far-out ones (below). An autoencoder reconstructs its
    own training rows better than new ones, so the quantile of the training
    scores (the threshold of :class:`~sklearn.ensemble.IsolationForest`
    with a float ``contamination``) flags many more new inliers than ``contamination``
    (20 % to 70 % on small data sets at 0.1); the out-of-fold scores are
    scores of rows the model did not see, as new rows will be. Cross-fitting
    rather than one held-out split keeps every row for the threshold (a
    small data set has few to spare) and for the final model; it costs
    ``cv`` more fits on ``(cv - 1) / cv`` of the rows, and a refit of each
    fold model that trained on a far-out row (a sentinel), without it. The
    fold models saw fewer rows than the final one; where that makes them
    worse, the threshold errs low (the shares of held-out inliers flagged are on the
    benchmarks page).
    On a few dozen rows the final model's own early stopping, on a handful
    of held-out rows, makes it vary from seed to seed, and the share flagged
    with it (60 rows of four blobs: 0 % to 39 % over eight seeds, 0 % on
    most; ``IsolationForest`` 9 % to 19 %).

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
        in place, and keeps its own ``random_state``. None fits an
        :class:`Autoencoder` with one hidden layer of 256 ELU units, a code
        of a quarter of the features (at most 16), learning rate 1e-3,
        batches of a 32nd of the rows (16 to 64; at most the rows of the
        smallest fold's fit, on small data) and early stopping on 10 %
        of the rows held out (best epoch kept, at most 500 epochs), seeded
        from ``random_state``: settings chosen on
        ``benchmarks/bench_outliers.py``.
    contamination : float, default=0.1
        The share of new inliers to flag, in (0, 0.5]: ``offset_`` is the
        ``contamination`` quantile of the out-of-fold scores.
    cv : int, default=5
        Number of folds of the cross-fitted threshold (at least 2); the fit
        costs ``cv`` fits on ``(cv - 1) / cv`` of the rows besides the final
        one (and refits where rows are far out).
    random_state : int, RandomState instance or None, default=None
        Seeds the folds and the default inner model (a given ``estimator``
        keeps its own: seed it too). An int repeats results across calls.
    score_by : {"density", "satterthwaite", "reconstruction"}, default="density"
        The score of a row: ``"density"``, the Gaussian on the code and the
        residual above (each fold model and the final model with the code
        Gaussian of the rows it was fitted to, all with the one
        ``noise_variance_`` of the out-of-fold residuals: the noise of new
        rows, which an in-sample variance would understate the more, the
        better a model fits its rows); ``"satterthwaite"``, the same
        Gaussian with the residual's variance scaled for the correlation
        of its features (Satterthwaite's effective degrees of freedom: the
        squared norm of correlated residuals varies like that of fewer
        independent features, so it weighs less against the code); it
        keeps the out-of-fold residuals (an X-sized float64 array) during
        the fit; ``"reconstruction"``, the inner estimator's
        :meth:`score_samples` (-inf for a row outside [0, 1] under a loss
        that models values in it, which the estimator itself refuses).

    Attributes
    ----------
    estimator_ : skae autoencoder
        The fitted clone of ``estimator``, fitted on the training rows but
        the far-out ones (see ``noise_variance_``).
    calibration_scores_ : ndarray of shape (n_samples,)
        The out-of-fold :meth:`score_samples` of the training rows, each from
        the fold model that did not see the row.
    offset_ : float
        The ``100 * contamination`` percentile of ``calibration_scores_``;
        ``decision_function = score_samples - offset_``.
    noise_variance_ : float
        ``score_by="density"`` and ``"satterthwaite"`` only: from the
        out-of-fold residuals ``R`` (``n`` rows by ``p`` features) of the
        training rows (each by the fold model that did not see the row)
        but those far out (squared error beyond ``Q3 + 3 IQR`` on a log
        scale: a corrupted row), with ``C = R'R / n``: ``tr(C) / p``
        (``"density"``), or ``tr(C^2) / tr(C)`` (``"satterthwaite"``).
    code_location_ : ndarray of shape (n_components,)
        Density scores only: the mean of the codes of the training rows
        but the far-out ones.
    code_precision_ : ndarray of shape (n_components, n_components)
        Density scores only: the inverse of their covariance shrunk by
        :class:`~sklearn.covariance.LedoitWolf`.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when X has string column
        names.

    Notes
    -----
    ``contamination`` is the share of *new* inliers flagged, not of the
    training rows: :meth:`predict` on the training rows flags fewer than
    ``contamination`` of them, since the final model has fitted them and
    scores them higher than the out-of-fold models did. scikit-learn's
    checks ``check_outliers_train`` and ``check_outliers_fit_predict``
    expect ``fit(X).predict(X)`` (and ``fit_predict(X)``, which must equal
    it) to flag exactly ``contamination`` of the training rows; that holds
    for :class:`~sklearn.ensemble.IsolationForest`, whose ``offset_`` is the
    quantile of its own training scores, and cannot hold together with a
    threshold for new rows (one ``offset_``, and ``decision_function`` a
    translation of ``score_samples``), so the detector fails these two
    checks by design. :class:`~sklearn.neighbors.LocalOutlierFactor` with
    ``novelty=True`` is exempt from them for the same reason.

    ``predict_proba`` is binary (columns for -1 and +1), so the tags carry
    ``classifier_tags.multi_class=False`` (scikit-learn's checks read it for
    its shape); the estimator type stays ``"outlier_detector"``.

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

    H.-P. Kriegel, P. Kröger, E. Schubert and A. Zimek, "Interpreting and
    unifying outlier scores", SDM 2011 (``predict_proba(method="unify")``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from skae import Autoencoder, AutoencoderOutlierDetector
    >>> X = load_digits().data / 16
    >>> X_train, X_new = train_test_split(X, test_size=0.5, random_state=0)
    >>> detector = AutoencoderOutlierDetector(
    ...     Autoencoder(n_components=8, hidden_layer_sizes=(32,), max_iter=20,
    ...                 early_stopping=False, random_state=0, device="cpu"),
    ...     contamination=0.05,
    ... ).fit(X_train)
    >>> share = float(np.mean(detector.predict(X_new) == -1))  # new inliers
    >>> bool(0.02 < share < 0.1)
    True
    >>> noise = np.random.default_rng(0).uniform(size=(3, 64))
    >>> detector.predict(noise)
    array([-1, -1, -1])
    >>> detector.predict_proba(noise)[:, 0]  # P(outlier), the column of -1
    array([1., 1., 1.])
    """

    _parameter_constraints: dict = {
        "estimator": [InstancesOf(BaseAutoencoder, AUTOENCODERS), None],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
        "score_by": [StrOptions({*DENSITY_SCORES, "reconstruction"})],
    }

    def __init__(
        self,
        estimator: BaseAutoencoder | None = None,
        *,
        contamination: float = 0.1,
        cv: int = 5,
        random_state: int | np.random.RandomState | None = None,
        score_by: str = "density",
    ) -> None:
        self.estimator = estimator
        self.contamination = contamination
        self.cv = cv
        self.random_state = random_state
        self.score_by = score_by

    def _template(self, shape, seed):
        """The unfitted estimator that every fit of this call clones."""
        if self.estimator is not None:
            return self.estimator
        inner = default_estimator(*shape, random_state=seed)
        # batches no larger than the rows the smallest fold's fit trains on
        # (less the share early stopping holds out), which the inner model
        # would clip with a warning about a batch_size the user never set
        fold_rows = shape[0] - -(-shape[0] // self.cv)
        held_out = max(1, int(np.ceil(inner.validation_fraction * fold_rows)))
        return inner.set_params(batch_size=min(inner.batch_size, fold_rows - held_out))

    def _inner(self):
        """The inner estimator as given, or an unfitted default (fit refuses a bad one)."""
        return Autoencoder() if self.estimator is None else self.estimator

    def _accepts_sparse(self, inner=None):
        inner = self._inner() if inner is None else inner  # as the inner estimator does
        return isinstance(inner, BaseAutoencoder) and get_tags(inner).input_tags.sparse

    def _check_params(self, inner=None):
        """How X is checked: float, and sparse input as CSR where ``inner``
        (the fitted inner estimator when scoring, not the ``estimator`` set
        since) takes it, which the folds can index by rows (COO and DIA
        cannot) and the inner estimators take as it is."""
        inner = self._inner() if inner is None else inner
        if not hasattr(inner, "score_samples"):  # AutoencoderImputer
            raise InvalidParameterError(
                "The 'estimator' parameter of AutoencoderOutlierDetector must be one of "
                f"skae's autoencoders, which score rows; got {type(inner).__name__}."
            )
        return {
            "dtype": (np.float64, np.float32),
            "accept_sparse": "csr" if self._accepts_sparse(inner) else False,
        }

    # prefer_skip_nested_validation=False: the inner estimator's parameters
    # come from the user and are validated by its own fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Fit the autoencoder to X and cross-fit the threshold ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, at least ``2 * cv`` rows.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        inner = self._inner()
        setting, device = getattr(inner, "distributed", False), getattr(inner, "device", "cpu")
        with failing_together(setting, device):  # a rank's refusal stops every rank
            return self._fit(X, setting, device)

    def _fit(self, X, setting, device):
        # the feature attributes are set once the fit succeeds
        checks = self._check_params()
        X, features = validate_aside(self, detached_input(X, self), reset=True, **checks)
        if X.shape[0] < 2 * self.cv:
            raise ValueError(
                f"AutoencoderOutlierDetector with cv={self.cv} needs at least "
                f"{2 * self.cv} samples (2 per fold); got n_samples={X.shape[0]}."
            )
        seeds = [int(s) for s in seed_source(self.random_state).integers(2**31, size=2)]
        # torchrun's ranks: the same X, and the same folds
        share = not isinstance(self.random_state, Integral)
        seeds = same_on_ranks(X.shape, seeds, setting, device, share_seeds=share)
        split_seed, model_seed = seeds
        seed = None if self.random_state is None else model_seed
        template = self._template(X.shape, seed)
        warn_if_code_covers_input(template, X.shape[1], self.score_by)
        warn_if_rows_identical(X)
        scores, noise, rows_inside = self._out_of_fold_scores(X, template, split_seed)
        with warnings.catch_warnings():  # a detector of PCA's code is sound (estimator_ says)
            warnings.filterwarnings("ignore", f".*{KEPT_START}")
            estimator = clone(template).fit(rows_inside)
        density = {}
        if self.score_by in DENSITY_SCORES:
            codes = fit_code_density(estimator, rows_inside)
            density = {"noise_variance_": noise, **codes}
        # all computed before anything is set: a failed fit keeps the last fit's
        # model and features; a refit by reconstruction drops the density, etc.
        for name in (*DENSITY_ATTRIBUTES, *FEATURE_ATTRIBUTES):
            self.__dict__.pop(name, None)
        self.__dict__.update({**features, **density})
        self.estimator_ = estimator
        self.calibration_scores_ = scores
        self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
        return self

    def _out_of_fold_scores(self, X, template, seed):
        """Each row's score by a clone fitted on the other folds; for the
        density scores ``noise_variance_`` from these out-of-fold residuals;
        and the rows the final model fits: X but the :func:`far_out_rows`,
        which the fold models are refitted without (:func:`fit_folds`)."""
        folds = out_of_fold_splits(X, self.cv, seed)
        parts, kept, fits, inside = fit_folds(template, X, folds, self.score_by)
        rows = X if inside.all() else X[np.flatnonzero(inside)]  # one copy, for both
        if self.score_by not in DENSITY_SCORES:
            return parts[:, 1], None, rows
        distances_without_far_out(fits, X, parts, inside)
        if kept is None:  # the mean squared residual per feature
            noise = float(parts[inside, 0].mean()) / X.shape[1]
        else:
            noise = satterthwaite_variance(kept[inside])
        noise = max(noise, noise_floor(rows))  # their rounding: a far-out row's had set it
        return -0.5 * (parts[:, 0] / noise + parts[:, 1]), noise, rows

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """The score of each row (see ``score_by``): higher is more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            In X's float dtype: with ``score_by="density"``, the Gaussian
            log-likelihood (up to a constant) of the row's code and residual;
            with ``"reconstruction"``, the negative reconstruction error (the
            ELBO for a :class:`VariationalAutoencoder`).
        """
        if not self.__sklearn_is_fitted__():  # sklearn's check scans every attribute
            check_is_fitted(self)
        # plain numpy as validation hands on: the inner model's own check suffices
        names = hasattr(self, "feature_names_in_")
        rows = None if names else plain_rows(X, self.n_features_in_)
        plain = rows is not None
        if not plain:
            checks = self._check_params(self.estimator_)
            rows = validate_data(self, detached_input(X, self), reset=False, **checks)
        # the score fitted with (offset_ is in its units), whatever score_by says now
        if hasattr(self, "noise_variance_"):
            scores = density_scores(self.estimator_, self.__dict__, rows, plain=plain)
        else:
            scores = reconstruction_scores(self.estimator_, rows)
        return overflow_as_outliers(scores)

    def __sklearn_is_fitted__(self) -> bool:
        # offset_ is set last by fit (and by a load, with the rest)
        return "offset_" in self.__dict__

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

    def predict_proba(self, X: ArrayLike, method: str = "linear") -> np.ndarray:
        """Each row's outlier score mapped to [0, 1], as PyOD's ``predict_proba``.

        The mapping is fitted on ``calibration_scores_`` (scores of rows the
        scoring model did not see). ``"linear"``: 1 at or below the lowest
        calibration score, 0 at or above the highest, linear in between.
        ``"unify"`` (Kriegel et al. 2011): ``max(0, erf((m - s) / (sd *
        sqrt(2))))`` for a score ``s`` and the calibration scores' mean
        ``m`` and standard deviation ``sd``: 0 for any row scoring at least
        the average inlier, near 1 several deviations below it. Either is
        monotone in :meth:`score_samples` (a lower score, a higher outlier
        probability); neither is a calibrated probability of being an
        outlier (that would need labelled outliers), and their 0.5 is not
        ``offset_``: label rows with :meth:`predict`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        method : {"linear", "unify"}, default="linear"
            The mapping from score to [0, 1].

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Column 0: the outlier probability (label -1); column 1: one minus
            it (label +1), the columns in the order of the sorted labels as
            in scikit-learn's classifiers (PyOD's column 1 is the outlier's).
        """
        if method not in ("linear", "unify"):
            raise ValueError(f"method must be 'linear' or 'unify'; got {method!r}.")
        scores = self.score_samples(X).astype(np.float64)
        calibration = self.calibration_scores_
        if method == "linear":
            low, high = calibration.min(), calibration.max()
            outlier = (high - scores) / max(high - low, np.finfo(np.float64).tiny)
        else:
            spread = max(calibration.std(), np.finfo(np.float64).tiny)
            outlier = erf((calibration.mean() - scores) / (spread * np.sqrt(2)))
        outlier = np.clip(outlier, 0.0, 1.0)
        return np.column_stack([outlier, 1.0 - outlier])

    # ----------------------------------------------------- the fitted state

    def _export_state(self) -> dict[str, Any]:
        """The fitted state as plain data for ``skae.save``: the detector's
        own fitted attributes and the inner estimator's class, parameters
        and exported state."""
        check_is_fitted(self)
        inner = self.estimator_
        attributes = {
            name: value
            for name, value in vars(self).items()
            if name.endswith("_") and not name.startswith("_") and name != "estimator_"
        }
        return {
            "version": DETECTOR_STATE_VERSION,
            "attributes": attributes,
            "estimator_": {
                "class": type(inner).__name__,
                "params": inner.get_params(deep=False),
                "state": inner._export_state(),
            },
        }

    def _import_state(self, state: dict[str, Any]) -> None:
        """Become the fitted detector :meth:`_export_state` described; the
        inner estimator is rebuilt and checked as ``skae.load`` checks a
        saved autoencoder."""
        from ._persistence import _check_params, _check_state
        from ._registry import AUTOENCODERS

        if state.get("version") != DETECTOR_STATE_VERSION:
            raise ValueError(
                f"AutoencoderOutlierDetector: the saved fitted state has version "
                f"{state.get('version')!r}; this skae reads {DETECTOR_STATE_VERSION}."
            )
        attributes, inner = dict(state["attributes"]), state["estimator_"]
        required = {"offset_", "calibration_scores_", "n_features_in_"}
        # the score the detector was fitted with, not score_by (which may have
        # been set since): a density state holds its attributes, all of them
        density = any(name in attributes for name in DENSITY_ATTRIBUTES)
        if density:
            required |= set(DENSITY_ATTRIBUTES)
        missing = required - set(attributes)
        if missing:
            raise ValueError(f"The file's detector state lacks {sorted(missing)}.")
        attributes = checked_attributes(attributes)
        classes = {cls.__name__: cls for cls in AUTOENCODERS}
        name = inner["class"]
        if name not in classes:
            raise ValueError(f"The file's inner estimator class {name!r} is not an autoencoder.")
        cls = classes[name]
        _check_params(inner["params"], cls, name, "The file's inner estimator holds parameters")
        estimator = cls(**inner["params"])
        estimator._validate_params()
        _check_state(inner["state"], cls, name)
        estimator._import_state(inner["state"])
        if estimator.n_features_in_ != attributes["n_features_in_"]:
            raise ValueError("The file's detector and inner estimator disagree on n_features_in_.")
        if density:
            attributes.update(checked_density(attributes, estimator))
        self.__dict__.update(attributes)
        self.estimator_ = estimator

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self._accepts_sparse()
        # predict_proba's two columns are the labels -1 and +1: binary only.
        # scikit-learn reads classifier_tags.multi_class for the shape of
        # predict_proba (its sparse-input check); estimator_type stays
        # "outlier_detector", so no classifier checks or scorers apply.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags
