"""Missing values: an imputer in scikit-learn's imputer API whose fills come
from a mask-aware denoising autoencoder (:class:`AutoencoderImputer`)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn import config_context
from sklearn.impute import MissingIndicator
from sklearn.utils import Tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseAutoencoder
from ._impute_columns import (
    check_observed,
    check_saved_columns,
    column_groups,
    fitted_indicator,
    fixed_indicator,
    training_statistics,
)
from ._impute_module import (
    MaskedImputerModule,
    calibrate_variance,
    keep_means_unless_beaten,
    masked_errors,
)
from ._random import row_keyed_normal
from ._validation import (
    COLUMN_PARAMS,
    FLOAT_DTYPES,
    Interval,
    SizeInterval,
    StrOptions,
    _check_feature_names_in,
    _get_mask,
    check_float32_range,
    check_unchanged_params,
    detached_input,
    is_scalar_nan,
    positive_ints,
    validate_aside,
)

#: "auto": hidden layers as wide as the input within the two widths, and the
#: rate, for layers up to the first width, scaled down for wider ones.
AUTO_MIN_WIDTH, AUTO_MAX_WIDTH, AUTO_LEARNING_RATE = 256, 512, 3e-3

#: Early stopping's score averages hiding patterns until about this many
#: rows' worth are scored, at most this many patterns.
SCORE_ROWS, MAX_SCORE_PATTERNS = 1000, 8

#: The base's parameters that an imputer has no use for.
_NOT_IMPUTER_PARAMS = {"n_components", "loss", "init"}


class AutoencoderImputer(BaseAutoencoder):
    """Imputation of missing values by a mask-aware denoising autoencoder.

    Each row is standardised per column (the observed means and standard
    deviations of the training rows, a deviation at least a fifth of the
    column's range, so that nearly constant columns do not swamp the loss),
    its missing entries are set to the column mean, and the network reads
    that row next to its mask of observed entries and restores the whole
    row. Training teaches it to restore what it was not shown: every batch
    hides a random share (``hide_fraction``) of the observed entries, and
    the loss is the squared error on the hidden entries plus
    ``observed_weight`` times the error on the entries it saw. Early
    stopping scores the held-out rows on fixed patterns of hidden entries
    (several when few rows are held out) and restores the best weights.

    :meth:`transform` returns the observed values exactly as given and fills
    only the missing ones, with the mean of several passes of the network
    (``round(2 / hide_fraction)``, at most 8): the columns are split into
    that many fixed groups, and each pass also hides the observed entries
    of one group, so that the network sees rows about as thin as in
    training (see :ref:`imputation`). For at most ``1 / hide_fraction``
    columns one plain pass fills them instead: hiding a group would hide
    more than training does, often a row's only observed value. A row with
    every value missing gets the column means (``statistics_``).

    Parameters
    ----------
    missing_values : int or float, default=np.nan
        The placeholder for missing values; every occurrence is imputed.
    hidden_layer_sizes : "auto" or array-like of int, default="auto"
        Widths of the hidden layers between the input (the row and its mask,
        ``2 * n_features`` wide) and the restored row. "auto": two layers as
        wide as the input has features, at least 256 and at most 512 units
        (``min(512, max(256, n_features))``; see :ref:`imputation`).
    activation : {"relu", "identity", "logistic", "tanh", "leaky_relu", \
"elu", "gelu", "softplus"}, default="relu"
        Activation of the hidden layers.
    hide_fraction : float, default=0.25
        Share of the observed entries hidden from the network in each batch
        (and, drawn once, in the rows early stopping holds out), in (0, 1).
    observed_weight : float, default=0.1
        Weight of the error on the entries the network saw (1 on the hidden).
    add_indicator : bool, default=False
        Stack a :class:`~sklearn.impute.MissingIndicator` (of the features
        with missing values at fit) to the right of the imputed data.
    keep_empty_features : bool, default=False
        Keep the features with no observed value in the training rows,
        imputed with 0, instead of dropping them, as in
        :class:`~sklearn.impute.SimpleImputer`.
    sample_posterior : bool, default=False
        Return a draw for each missing value instead of the network's mean,
        for multiple imputation (several imputers with different
        ``random_state``), as :class:`~sklearn.impute.IterativeImputer`. The
        draw is Gaussian: the mean fill and a standard deviation that a
        head on the last hidden layer learns for each entry (the Gaussian
        likelihood of the errors on the hidden entries, its gradient
        stopped at that layer, so that the mean fills are trained as
        without it); it is small where the rest of the row determines the
        value. An int ``random_state`` gives a row the same draws at every
        call of :meth:`transform`, in any batch (a repeat of it in one call
        its own); rows with every value missing keep the column means.
    optimizer : {"adam", "adamw", "sgd"}, default="adamw"
        The optimiser.
    learning_rate : float or "auto", default="auto"
        Its learning rate. "auto": 3e-3 for hidden layers up to 256 units
        wide, ``3e-3 * 256 / width`` for a wider widest layer (1.5e-3 for the
        automatic 512 units of a wide input): the same rate moves a wider
        layer's output further at each step.
    learning_rate_schedule : {"constant", "cosine", "plateau"}, default="plateau"
        How the rate changes over the epochs: "plateau" divides it by 10
        after ``n_iter_no_change`` epochs without an improvement by ``tol``
        and stops once it is below a thousandth of it (see :ref:`imputation`).
    weight_decay : float, default=0.1
        L2 penalty (decoupled for "adamw"): without it the network overfits
        the training rows' holes (see :ref:`imputation`).
    batch_size : int or "auto", default="auto"
        Rows per minibatch; "auto" is about 20 batches an epoch of ``n``
        training rows (those early stopping does not hold out), at least 64
        and at most 512 (``min(n, max(64, min(512, n // 20)))``): on large
        sets, fewer and larger steps train faster and the weight decay
        applies fewer times an epoch.
    max_iter : int, default=500
        Most epochs.
    tol : float, default=1e-3
        Least improvement of the validation score that counts (minus the
        held-out rows' mean squared error, in standard deviations, on the
        entries hidden from them, times the share of entries observed), or
        of the training loss without early stopping: for the "plateau"
        schedule in the score's units, for stopping relative to the best.
    n_iter_no_change : int, default=5
        Epochs without improvement before the "plateau" schedule divides
        the rate, or before training stops under the other schedules.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows and stop on their score.
    validation_fraction : float, default=0.1
        Share of the rows held out by early stopping.
    shuffle : bool, default=True
        Shuffle the rows every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the batches and the hidden entries, and with
        ``sample_posterior=True`` the draws of ``transform`` (an int: the same
        draws at every call). The global numpy random state is never used.
    device : str or torch.device, default="auto"
        Where to train ("auto": CUDA when available, else the CPU).
    deterministic : bool, default=False
        Use torch's deterministic algorithms.
    distributed : bool or "auto", default="auto"
        Data-parallel training in a ``torch.distributed`` process group.
    verbose : int, default=0
        Report progress every epoch when positive.
    warm_start : bool, default=False
        Continue from the fitted weights at the next :meth:`fit`, with the
        column statistics, dropped features and indicator of the first fit (as
        :meth:`partial_fit`); a change since to ``hidden_layer_sizes``,
        ``activation`` or ``sample_posterior`` is refused.

    Attributes
    ----------
    statistics_ : ndarray of shape (n_features,)
        The means of the observed values of each feature in the rows trained
        on (the rows early stopping holds out are not, unless they alone hold
        the feature's values), the fill of rows with every value missing; NaN
        for features with no observed value (dropped), or 0 with
        ``keep_empty_features=True``.
    indicator_ : MissingIndicator
        The indicator of missing values, with ``add_indicator=True``.
    module_ : torch.nn.Module
        The trained network (:class:`skae._impute_module.MaskedImputerModule`).
    n_iter_ : int
        Epochs run over every call (``len(loss_curve_)``).
    loss_curve_ : list of float
        The training loss of each epoch.
    validation_scores_ : list of float or None
        The validation score of each epoch (see ``tol``), with early stopping; NaN for
        epochs trained without it (``partial_fit``) once any epoch was scored.
    best_validation_score_ : float or None
        The best of the last call's (its start included): the kept weights';
        None after a call without validation (``partial_fit``).
    best_epoch_ : int or None
        The epoch (of the last call) whose weights early stopping kept (0:
        the start; the one set aside where the means were kept); else None.
    init_validation_score_ : float or None
        With ``early_stopping`` on a warm start, the starting weights'
        validation score; None otherwise.
    best_loss_ : float or None
        The least training loss, without early stopping.
    device_ : torch.device
        Where the module lives.
    batch_size_ : int
        The batch size used.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when X has string column
        names.

    See Also
    --------
    sklearn.impute.SimpleImputer : Fills with a per-column statistic.
    sklearn.impute.KNNImputer : Fills from the nearest rows.
    sklearn.impute.IterativeImputer : Regresses each feature on the others.

    Notes
    -----
    :meth:`partial_fit` trains one epoch on a chunk, as the other skae
    estimators: the column statistics are learned from the first chunk and
    kept for the later ones, and there is no early stopping.

    Sparse input is refused (a missing value is not an implicit zero).

    References
    ----------
    L. Gondara and K. Wang, "MIDA: Multiple imputation using denoising
    autoencoders", PAKDD 2018.

    J. Yoon, J. Jordon and M. van der Schaar, "GAIN: Missing data imputation
    using generative adversarial nets", ICML 2018 (the hint of the mask).

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 8))
    >>> X_missing = np.where(rng.uniform(size=X.shape) < 0.2, np.nan, X)
    >>> imputer = AutoencoderImputer(hidden_layer_sizes=(64,), random_state=0,
    ...                              device="cpu")
    >>> X_filled = imputer.fit_transform(X_missing)
    >>> bool(np.isnan(X_filled).any())
    False
    >>> observed = ~np.isnan(X_missing)
    >>> bool(np.array_equal(X_filled[observed], X_missing[observed]))
    True
    >>> error = np.sqrt(np.mean((X_filled - X)[~observed] ** 2))
    >>> mean_error = np.sqrt(np.mean((np.nanmean(X_missing, 0) - X)[~observed] ** 2))
    >>> bool(error < mean_error / 2)
    True
    """

    _parameter_constraints: dict = {
        **{
            name: constraint
            for name, constraint in BaseAutoencoder._parameter_constraints.items()
            if name not in _NOT_IMPUTER_PARAMS
        },
        "missing_values": [Real],
        "hidden_layer_sizes": [
            StrOptions({"auto"}),
            "array-like",
            SizeInterval(Integral, 1, None, closed="left"),
        ],
        "hide_fraction": [Interval(Real, 0, 1, closed="neither")],
        "observed_weight": [Interval(Real, 0, None, closed="left")],
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "sample_posterior": ["boolean"],
        "learning_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
    }

    #: Not a parameter: random weights (no PCA start for rows with holes).
    init = "random"
    _n_features_out = None  # the autoencoders' code width: none here (as dir() reads it)
    _relative_plateau = False  # tol in the held-out score's units, as documented
    _standardizes_columns = True  # a non-finite loss is no advice to scale the data

    #: "plateau" stops once below a thousandth of the rate, not the
    #: autoencoders' millionth: the epochs at lower rates left the fills as
    #: they were (see the imputation user guide).
    _min_learning_rate_fraction = 1e-3

    #: "auto" batches: about 20 an epoch, from 64 to 512 rows (larger than the
    #: autoencoders': on large sets the weight decay applies fewer times).
    _auto_batches = (20, 512)

    def __init__(
        self,
        *,
        missing_values: float = np.nan,
        hidden_layer_sizes: tuple[int, ...] | Literal["auto"] = "auto",
        activation: str = "relu",
        hide_fraction: float = 0.25,
        observed_weight: float = 0.1,
        add_indicator: bool = False,
        keep_empty_features: bool = False,
        sample_posterior: bool = False,
        optimizer: Literal["adam", "adamw", "sgd"] = "adamw",
        learning_rate: float | Literal["auto"] = "auto",
        learning_rate_schedule: Literal["constant", "cosine", "plateau"] = "plateau",
        weight_decay: float = 0.1,
        batch_size: int | Literal["auto"] = "auto",
        max_iter: int = 500,
        tol: float = 1e-3,
        n_iter_no_change: int = 5,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        device: str | torch.device = "auto",
        deterministic: bool = False,
        distributed: bool | Literal["auto"] = "auto",
        verbose: int = 0,
        warm_start: bool = False,
    ) -> None:
        self.missing_values = missing_values
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.hide_fraction = hide_fraction
        self.observed_weight = observed_weight
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.sample_posterior = sample_posterior
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.device = device
        self.deterministic = deterministic
        self.distributed = distributed
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------ the hooks

    def _build_module(self, n_features):
        sizes = self._hidden_sizes(n_features)
        return MaskedImputerModule(
            n_features, sizes, self.activation, variance=self.sample_posterior
        )

    def _hidden_sizes(self, n_features):
        """``hidden_layer_sizes`` as a tuple, "auto" resolved for ``n_features``."""
        if isinstance(self.hidden_layer_sizes, str):  # "auto", as validated
            width = min(AUTO_MAX_WIDTH, max(AUTO_MIN_WIDTH, n_features))
            return (width, width)
        return positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")

    def _learning_rate(self, module, batch_size):
        """``learning_rate``, "auto" resolved from the widest hidden layer."""
        if not isinstance(self.learning_rate, str):
            return self.learning_rate
        layers = module.hidden_layers()  # none: hidden_layer_sizes=()
        width = max((layer.out_features for layer in layers), default=AUTO_MIN_WIDTH)
        return AUTO_LEARNING_RATE * AUTO_MIN_WIDTH / max(AUTO_MIN_WIDTH, width)

    def _training_loss(self, module, generator):
        """The mean squared error (in standard deviations) of the entries
        hidden in the batch, plus ``observed_weight`` times the seen ones'."""

        def batch_loss(x):
            z, observed = module.standardize(x)
            draw = torch.rand(z.shape, generator=generator, device=z.device)
            return self._masked_errors(module, z, observed, draw)

        return batch_loss

    def _train_module(self, module, X, setup, **kwargs):
        """The base's training, the means kept unless beaten on held-out rows,
        then the variance head calibrated on the training rows."""
        trained = super()._train_module(module, X, setup, **kwargs)
        if not kwargs["incremental"]:  # a chunk's own mean is no fair baseline
            keep_means_unless_beaten(module, setup, trained[0], X, self.hide_fraction)
        if module.log_variance is not None:
            groups = torch.as_tensor(column_groups(X.n_features, self.hide_fraction))
            calibrate_variance(module, X, groups.to(setup.device), setup.generator)
        return trained

    def _masked_errors(self, module, z, observed, draw, *, per_row=False):
        """:func:`~skae._impute_module.masked_errors` at this imputer's settings."""
        settings = {"hide_fraction": self.hide_fraction, "observed_weight": self.observed_weight}
        return masked_errors(module, z, observed, draw, per_row=per_row, **settings)

    _validation_label = "validation error on hidden entries"

    def _score_samples_batch(self, module, x, loss=None):
        """Minus each held-out row's error on its hidden entries, for early
        stopping: the mean over fixed patterns (the same at every epoch),
        as many as make about ``SCORE_ROWS`` rows' worth (at most
        ``MAX_SCORE_PATTERNS``), so that the few dozen rows a small data set
        holds out give a score steady enough to stop on."""
        z, observed = module.standardize(x)
        generator = torch.Generator(device=z.device).manual_seed(0)
        n_patterns = min(MAX_SCORE_PATTERNS, -(-SCORE_ROWS // max(len(z), 1)))
        total = 0.0
        for _ in range(n_patterns):
            draw = torch.rand(z.shape, generator=generator, device=z.device)
            total = total + self._masked_errors(module, z, observed, draw, per_row=True)
        return -total / n_patterns

    def _start_module(self, module, X, X_train, rng, incremental):
        """A fresh module's column statistics, from the training rows; the
        network starts blind to the columns without a value there."""
        super()._start_module(module, X, X_train, rng, incremental)
        means, scales, unseen = training_statistics(
            X, X_train, self.keep_empty_features, incremental
        )
        empty = np.isnan(means)
        module.set_statistics(
            torch.as_tensor(np.where(empty, 0.0, means), dtype=torch.float32),
            torch.as_tensor(scales, dtype=torch.float32),
        )
        module.ignore_columns(torch.as_tensor(unseen))
        fill = 0.0 if self.keep_empty_features else np.nan
        return {"statistics_": np.where(empty, fill, means), "_empty_features_": empty}

    # ----------------------------------------------------------- validation

    def _check_params(self):
        """How X is checked: a float numpy array (NaN allowed when it is the
        marker), dense: a sparse matrix is refused, as by IterativeImputer."""
        nan = is_scalar_nan(self.missing_values)
        return {"dtype": FLOAT_DTYPES, "ensure_all_finite": "allow-nan" if nan else True}

    def _with_nan_marker(self, X, mask):
        """X with NaN at the missing entries (X itself when NaN is the marker)."""
        keep = is_scalar_nan(self.missing_values) or not mask.any()
        return X if keep else np.where(mask, np.nan, X).astype(X.dtype, copy=False)

    def _validated_training_data(self, X, *, reset, early_stopping, device):
        """The training rows, NaN where missing, and the attributes they
        define (the feature attributes and the indicator when ``reset``)."""
        checks = self._check_params()
        X, attributes = validate_aside(self, detached_input(X, self), reset=reset, **checks)
        self._hidden_sizes(X.shape[1])
        if not reset:
            check_unchanged_params(self, COLUMN_PARAMS)
        if early_stopping and X.shape[0] < 2:
            raise ValueError(
                f"early_stopping=True needs at least 2 samples to hold out a validation "
                f"set; got n_samples={X.shape[0]}."
            )
        # a warm start keeps its indicator; one turned on since gets its own
        if self.add_indicator and (reset or not hasattr(self, "indicator_")):
            attributes["indicator_"] = MissingIndicator(
                missing_values=self.missing_values, error_on_new=False
            ).fit(X)
        X = self._with_nan_marker(X, _get_mask(X, self.missing_values))
        check_float32_range(X)
        check_observed(X, fresh=reset)
        return X, attributes

    # ------------------------------------------------------------- transform

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Impute the missing values of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data, with ``missing_values`` where values are missing.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features_out)
            X with its missing values filled, its observed values unchanged;
            the features with no observed value at fit are dropped (unless
            ``keep_empty_features``), and the indicator is stacked to the
            right with ``add_indicator``. float32 for float32 X, else float64.
        """
        check_is_fitted(self)
        X = validate_data(self, detached_input(X, self), reset=False, **self._check_params())
        mask = _get_mask(X, self.missing_values)
        imputed = self._imputed(X, mask)
        kept = ~np.isnan(self.statistics_)
        imputed = imputed if kept.all() else imputed[:, kept]
        if self.add_indicator:
            with config_context(transform_output="default"):  # numpy, whatever the global
                indicator = fitted_indicator(self).transform(X)
            imputed = np.hstack([imputed, indicator.astype(imputed.dtype)])
        return imputed

    def _imputed(self, X, mask):
        """A copy of X with its missing entries filled: by the network for
        rows with a value observed that it learned from, by ``statistics_``
        for the others and for the features empty or constant at fit (whose
        values it never learned from)."""
        out = np.array(X, dtype=X.dtype, order="C", copy=True)
        statistics = np.nan_to_num(self.statistics_).astype(X.dtype)
        by_mean = self._empty_features_ | (self.module_.scale == 0).cpu().numpy()
        unread = mask[:, ~by_mean].all(axis=1)  # nothing the network learned to read
        rows = np.flatnonzero(mask.any(axis=1) & ~unread)
        if rows.size:
            restored = self._restored(self._with_nan_marker(X[rows], mask[rows]))
            restored[:, by_mean] = statistics[by_mean]
            out[rows] = np.where(mask[rows], restored, X[rows])
        out[unread] = np.where(mask[unread], statistics, X[unread])
        return out

    def _restored(self, X):
        """The network's fill of every entry of rows (NaN where missing):
        the mean of the passes, or with ``sample_posterior`` a draw from
        the Gaussian of that mean and the variance head's deviation."""
        fraction = self._build_params_["hide_fraction"]  # the fit's, not one set since
        groups = torch.as_tensor(column_groups(X.shape[1], fraction))
        passes = max(int(groups.max()) + 1, 1)
        if not self.sample_posterior:
            return self._apply(
                lambda module, block: module.averaged(block, groups.to(block.device)),
                X,
                passes=passes,
            )
        if getattr(self.module_, "log_variance", None) is None:
            raise ValueError(
                "AutoencoderImputer: sample_posterior=True draws from the variance the "
                "network learns when it is fitted with sample_posterior=True; this "
                "imputer was fitted with sample_posterior=False. Fit it again with "
                "warm_start=False."
            )
        both = self._apply(
            lambda module, block: torch.cat(
                module.averaged_with_std(block, groups.to(block.device)), dim=1
            ),
            X,
            passes=passes,
        )
        mean, std = np.split(both, 2, axis=1)
        return mean + std * row_keyed_normal(X, self.random_state).astype(mean.dtype)

    # ------------------------------------------------------ names and state

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Names of the output features: the kept input features, then the
        indicator's (``missingindicator_<name>``) with ``add_indicator``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_``, else
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The output feature names.
        """
        check_is_fitted(self)
        input_features = _check_feature_names_in(self, input_features)
        names = input_features[~np.isnan(self.statistics_)]
        if not self.add_indicator:
            return names
        return np.concatenate([names, fitted_indicator(self).get_feature_names_out(input_features)])

    def _export_state(self) -> dict[str, Any]:
        """The base's plain-data state, the indicator as its list of features."""
        state = super()._export_state()
        indicator = state["attributes"].pop("indicator_", None)
        if indicator is not None:
            state["attributes"]["_indicator_features_"] = indicator.features_
        return state

    def _import_state(self, state: dict[str, Any]) -> None:
        attributes = dict(state["attributes"]) if isinstance(state, dict) else {}
        features = attributes.pop("_indicator_features_", None)
        super()._import_state({**state, "attributes": attributes} if attributes else state)
        check_saved_columns(vars(self), self._build_params_["keep_empty_features"], features)
        if features is not None:
            self.indicator_ = fixed_indicator(
                features, self.n_features_in_, self._build_params_["missing_values"]
            )

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = is_scalar_nan(self.missing_values)
        tags.input_tags.sparse = False
        tags.array_api_support = False
        return tags

    # An imputer has no inverse and no score: the autoencoders' methods are
    # not inherited (``hasattr`` says False, as for scikit-learn's imputers).
    inverse_transform = available_if(lambda self: False)(BaseAutoencoder.inverse_transform)
    score_samples = available_if(lambda self: False)(BaseAutoencoder.score_samples)
    score = available_if(lambda self: False)(BaseAutoencoder.score)
