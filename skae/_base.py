"""The estimator base of the skae family.

:class:`BaseAutoencoder` owns what all six estimators share: the shared
parameters and their constraints, ``fit`` as a sequence of named steps
(validate, seed, start a module, split, train, record), batched inference,
scores, tags and the one fitted-state path (:meth:`~BaseAutoencoder._export_state`
and :meth:`~BaseAutoencoder._import_state`) that pickling, ``copy.deepcopy``,
``skops`` and ``skae.save``/``skae.load`` all use. A family member overrides a
few hooks: ``_build_module``, ``_training_loss``, ``_score_samples_batch`` and
``_check_data``.

The MLP family's base is in :mod:`skae._mlp`; devices, random generators,
rows, validation, optimisers and the state's converters have modules of their own.
"""

from __future__ import annotations

import copy
import functools
import warnings
from numbers import Integral, Real
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _distributed, _engine, _settings
from ._copying import copy_module
from ._dask import is_dask_array, is_dask_frame, score_dask_array, score_dask_frame
from ._device import TORCH_DTYPES, as_tensor, inference_module, resolve_device
from ._engine import StopReason, TrainingSetup
from ._losses import BATCH_TOTALS, RECONSTRUCTION_LOSSES, squared_error
from ._optim import (
    AUTO_BATCHES,
    LINEAR_PATH_STEP,
    MIN_LEARNING_RATE_FRACTION,
    OPTIMIZER_NAMES,
    auto_learning_rate,
    copy_optimizer,
    global_batch_size,
    make_optimizer,
    min_learning_rate,
    new_scheduler,
    plateau_progress,
    resolved_batch_size,
    shortened_steps,
)
from ._pca_start import linearise_logistic_output, pca_start, warn_too_few_rows_for_pca
from ._progress import (
    epoch_reporter,
    report_end_of_fit,
    scored_start,
    warn_not_converged,
    what_to_lower,
)
from ._random import draw_seed, seed_source
from ._rows import as_rows, block_rows, input_scale, split_validation, training_rows
from ._state import (
    Context,
    export_state,
    import_state,
    is_fitted_name,
    merged_history,
    running_versions,
    skae_version,
    starting_history,
    warn_on_version_change,
)
from ._validation import (
    NETWORK_PARAMS,
    Interval,
    SizeInterval,
    StrOptions,
    _fit_context,
    array_namespace,
    canonical_csr,
    check_finite_output,
    check_float32_not_zero,
    check_float32_range,
    check_loss_range,
    check_same_namespace,
    check_unchanged_params,
    detached_input,
    float_dtypes,
    namespace_mean,
    namespace_name,
    plain_rows,
    to_namespace,
    to_torch,
    validate_aside,
)
from ._warnings import user_stacklevel
from .nn import ACTIVATIONS

__all__ = ["Activation", "BaseAutoencoder"]

#: The ``activation`` options (the keys of :data:`skae.nn.ACTIVATIONS`).
Activation = Literal[
    "relu", "identity", "logistic", "tanh", "leaky_relu", "elu", "gelu", "softplus"
]


class BaseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery of the skae estimators. Not for direct use."""

    #: ``learning_rate_schedule="plateau"`` stops below this share of the rate.
    _min_learning_rate_fraction = MIN_LEARNING_RATE_FRACTION
    #: "auto" batches: this many an epoch, at most this many rows (the "auto" rate grows with them)
    _auto_batches = AUTO_BATCHES

    _parameter_constraints: dict = {
        "n_components": [SizeInterval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"pca", "random"})],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions(set(RECONSTRUCTION_LOSSES))],
        "optimizer": [StrOptions({"adam", "adamw", "sgd"})],
        "learning_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "learning_rate_schedule": [StrOptions({"constant", "cosine", "plateau"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "deterministic": ["boolean"],
        "distributed": [StrOptions({"auto"}), "boolean"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_components: int = 2,
        init: Literal["pca", "random"] = "pca",
        activation: Activation = "relu",
        loss: str = "mse",
        optimizer: Literal["adam", "adamw", "sgd"] = "adam",
        learning_rate: float | Literal["auto"] = "auto",
        learning_rate_schedule: Literal["constant", "cosine", "plateau"] = "constant",
        weight_decay: float = 0.0,
        batch_size: int | Literal["auto"] = "auto",
        max_iter: int = 200,
        tol: float = 1e-4,
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
        self.n_components = n_components
        self.init = init
        self.activation = activation
        self.loss = loss
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

    # ------------------------------------------------------------------ hooks

    def _build_module(self, n_features):
        """The torch module to train, freshly initialised."""
        raise NotImplementedError

    def _start_module(self, module, X, X_train, rng, incremental):
        """Start a fresh ``module`` (``incremental``: for partial_fit): its input
        scale from the training rows (the layers work at unit scale), then with
        ``init="pca"`` the PCA of every row given (``X``), through a logistic
        output to first order; returns no attribute."""
        if module.learns_input_scale:
            module.set_input_scale(input_scale(X_train))
        if self.init == "pca":
            start = pca_start(X, self.n_components, draw_seed(rng), float(module.input_scale))
            linearise_logistic_output(module.start_at_pca(*start))
        return {}

    #: Train and score in the layers' units (:class:`skae.nn.FoldedLoss`: the
    #: same losses, fewer operations); False: through the module's entry points.
    _fold_input_scale = True

    #: Whether the network sees standardised columns (the imputer's), so that
    #: a non-finite loss is no advice to scale the data.
    _standardizes_columns = False

    #: What :class:`~skae.plotting.LossCurveDisplay` calls ``-validation_scores_``.
    _validation_label = "validation loss"

    def _training_loss(self, module, generator):
        """``batch_loss(x) -> 0-d tensor`` for the engine: the mean over the
        batch of the reconstruction loss named by ``loss``, divided by the
        module's ``loss_scale`` (the engine multiplies it back)."""
        reconstruction = RECONSTRUCTION_LOSSES[self.loss][0]
        if folded := self._fold_input_scale and module.folded_loss(reconstruction):
            return lambda x: folded(x)[0]
        total, scale = BATCH_TOTALS[reconstruction], getattr(module, "loss_scale", 1.0)

        def batch_loss(x):
            return total(module(x), x) / (x.shape[0] * scale)

        return batch_loss

    def _score_samples_batch(self, module, x, loss):
        """Per-sample score of a batch under ``loss``, higher is better."""
        reconstruction = RECONSTRUCTION_LOSSES[loss][0]
        if reconstruction is squared_error and self._fold_input_scale:
            return module.folded_squared_error(x, -1.0)
        return -reconstruction(module(x), x)

    def _check_data(self, X):
        """Checks that depend on the data and on several parameters at once."""
        check_loss_range(self.loss, X)

    def _scored_batch(self, module, x):
        """:meth:`_score_samples_batch` under the loss the network was trained
        for (``set_params(loss=...)`` acts at the next fit), for rows in its
        range only (a Bernoulli likelihood of values outside [0, 1] would rate
        them above every training row)."""
        loss = self._build_params_["loss"]
        check_loss_range(loss, x)
        return self._score_samples_batch(module, x, loss)

    def _train_module(self, module, X, setup, *, optimizer, fresh, incremental):
        """Train ``module`` (``fresh``: just built) on the rows of ``X`` as
        ``setup`` says; the engine's history and the fitted attributes a
        family member adds (none here)."""
        history = self._train(
            module,
            self._training_loss(module, setup.loss_generator),
            X,
            setup,
            optimizer=optimizer,
            max_iter=1 if incremental else self.max_iter,
            stop_early=not incremental,
        )
        return history, {}

    # ------------------------------------------------------------- fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Fit the estimator to X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. A sparse matrix (refused by the imputer) stays
            sparse, in CSR, and is densified one minibatch at a time.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with _settings.training(self.deterministic, self.device, self.distributed):
            self._fit(X, incremental=False)
        return self

    def partial_fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Run one epoch over X, starting from the current weights if fitted.

        Like ``IncrementalPCA.partial_fit``: call it on successive chunks of a data set
        that does not fit in memory. Early stopping does not apply. The data's scale
        (``module_.input_scale``; the imputer's column statistics) is learned from the
        first chunk and kept for the later ones. The optimiser's moments carry over (at
        the ``weight_decay`` set now); a changed ``optimizer`` starts anew.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit_chunk(X)

    # not "partial_fit", whose fitted model's parameters scikit-learn leaves unchecked
    @_fit_context(prefer_skip_nested_validation=True)
    def _fit_chunk(self, X):
        with _settings.training(self.deterministic, self.device, self.distributed):
            self._fit(X, incremental=True)
        return self

    def _fit(self, X, *, incremental):
        """Fit as its steps. Each computes local values; the fitted attributes
        are assigned together at the end, so a call that fails anywhere leaves
        the estimator as it was (a warm start trains a copy of ``module_``)."""
        fresh = not (self.__sklearn_is_fitted__() and (self.warm_start or incremental))
        early_stopping = self.early_stopping and not incremental
        X, features = self._validated_training_data(
            X, reset=fresh, early_stopping=early_stopping, device=resolve_device(self.device)
        )
        device, shard = self._training_device(X.shape)
        rng = self._starting_rng(shard, device, fresh=fresh, incremental=incremental)
        module = self._starting_module(X.shape[1], rng, device, fresh=fresh)
        generator, loss_generator = self._generators(rng, device, shard)
        fraction = self.validation_fraction if early_stopping else None
        X_train, X_val = split_validation(rows := training_rows(X, device), fraction, generator)
        started = self._start_module(module, X, X_train, rng, incremental) if fresh else {}
        start = scored_start(self, module, X_train, fresh and not (early_stopping or incremental))
        if fresh:
            warn_too_few_rows_for_pca(self, X.shape, incremental)
        batch_size = resolved_batch_size(self.batch_size, len(X_train), *self._auto_batches)
        global_rows = global_batch_size(batch_size, len(X_train), shard, self.batch_size)
        rate = self._learning_rate(module, global_rows)
        resumed = incremental and not fresh  # partial_fit on a fitted model
        optimizer = self._starting_optimizer(module, device, rate, reuse=resumed)
        old = None if fresh else self
        setup = TrainingSetup(
            batch_size,
            generator,
            loss_generator,
            device,
            validation_score=self._validation_score(module, X_val),
            previous_epochs=starting_history(old)["n_iter_"],
            shard=shard,
            scheduler=self._starting_scheduler(optimizer, rate, incremental=resumed),
            score_start=early_stopping and (self.init == "pca" or not fresh),
            learning_rate=rate,
        )
        history, family_attributes = self._train_module(
            module, X_train, setup, optimizer=optimizer, fresh=fresh, incremental=incremental
        )
        report_end_of_fit(self, module, history, start, (X_train, rows), fresh, incremental)
        self._set_fitted(
            {
                **features,
                **started,
                **merged_history(old, history, early_stopping),
                **family_attributes,
                "module_": module,
                "device_": device,
                "batch_size_": batch_size,
                "_rng_": rng,
                "_optimizer_": optimizer,
                "_plateau_progress_": plateau_progress(setup.scheduler, validated=early_stopping),
                "_build_params_": self._build_params() if fresh else self._build_params_,
            },
            replace=fresh,
        )
        if not incremental and history.stop_reason is StopReason.MAX_ITER:
            warn_not_converged(self.max_iter)

    @staticmethod
    def _generators(rng, device, shard):
        """``(generator, loss_generator)``: the batch order's and the loss's streams,
        apart so that what a loss draws does not change the batches (and,
        data-parallel, differs by rank, while the batches are shared)."""
        generator = torch.Generator(device=device).manual_seed(draw_seed(rng))
        loss_seed = draw_seed(rng) + (0 if shard is None else shard.rank)
        return generator, torch.Generator(device=device).manual_seed(loss_seed)

    def _validated_training_data(self, X, *, reset, early_stopping, device):
        """X checked and converted (numpy, a canonical CSR matrix or a torch
        tensor), and the attributes it defines (the feature attributes when
        ``reset``), without setting them on the estimator yet."""
        X = detached_input(X)
        namespace = array_namespace(X)
        X, attributes = validate_aside(
            self, X, dtype=float_dtypes(namespace), accept_sparse="csr", reset=reset
        )
        X = canonical_csr(X) if sp.issparse(X) else to_torch(X, namespace, device)
        check_float32_range(X)
        check_float32_not_zero(X, fresh=reset)
        self._check_data(X)
        if early_stopping and X.shape[0] < 2:
            raise ValueError(
                f"early_stopping=True needs at least 2 samples to hold out a validation "
                f"set; got n_samples={X.shape[0]}."
            )
        return X, {**attributes, "_array_namespace_": namespace_name(namespace)}

    def _training_device(self, shape):
        """``(device, shard)``: where to train, and this process's part in
        data-parallel training (None to train alone; see ``distributed``)."""
        device = resolve_device(self.device)
        shard = _distributed.current_shard(self.distributed, device)
        if shard is not None:
            device = _distributed.rank_device(device)
            _distributed.check_same_shape(shape, shard, device)
        return device, shard

    def _starting_rng(self, shard, device, *, fresh, incremental):
        """The random generator a call draws its seeds from: the last call's
        for ``partial_fit`` and for a warm start without an int ``random_state``,
        else new from it (a warm start then draws what the fit from scratch drew
        after the module's seed: the same rows held out, as MLPRegressor's).
        Data-parallel ranks share rank 0's unless an int makes them equal."""
        reseeds = not incremental and isinstance(self.random_state, Integral)
        if not (fresh or reseeds):
            return copy.deepcopy(self._rng_)
        rng = seed_source(self.random_state)
        if not fresh:
            draw_seed(rng)  # the module's, which a warm start keeps
        if shard is not None and not isinstance(self.random_state, Integral):
            rng = np.random.default_rng(_distributed.shared_seed(draw_seed(rng), device))
        return rng

    def _starting_module(self, n_features, rng, device, *, fresh):
        """A newly built module, or a copy of ``module_`` to continue from."""
        if fresh:
            return self._seeded_module(n_features, draw_seed(rng)).to(device)
        check_unchanged_params(self, NETWORK_PARAMS)
        return copy_module(self.module_, device)

    def _validation_score(self, module, X_val):
        """``score() -> float`` on the held-out rows, or None without them."""
        if X_val is None:
            return None
        loss = getattr(self, "loss", None)  # the imputer has none
        scored = functools.partial(self._score_samples_batch, loss=loss)
        return lambda: self._map_rows(module, scored, X_val).mean().item()

    def _starting_optimizer(self, module, device, rate, *, reuse):
        """A new optimiser at ``rate``, or for ``partial_fit`` a copy of the last
        call's (its moments carry over, also through pickling and skae.save)
        at today's ``weight_decay``; a changed ``optimizer`` starts anew (the
        moments of one kind mean nothing to another)."""
        previous = getattr(self, "_optimizer_", None) if reuse else None
        if previous is None or OPTIMIZER_NAMES[type(previous)] != self.optimizer:
            return self._new_optimizer(module, device, rate)
        copied = copy_optimizer(previous, module.parameters(), device=device)
        for group in copied.param_groups:
            group["weight_decay"] = self.weight_decay
        return copied

    def _learning_rate(self, module, batch_size):
        """The rate to train ``module`` at in global batches of ``batch_size``
        rows: "auto" grows with the batch (the imputer's reads the width)."""
        if isinstance(self.learning_rate, str):  # "auto", as validated
            return auto_learning_rate(batch_size, largest=self._auto_batches[1])
        return self.learning_rate

    def _starting_scheduler(self, optimizer, rate, *, incremental):
        """The learning-rate scheduler of this call (None for a constant rate):
        every :meth:`fit` starts afresh at ``learning_rate``; :meth:`partial_fit`
        (``incremental``) runs its epoch at ``learning_rate`` under "constant"
        and "cosine", and continues "plateau" from the previous call's state."""
        progress = getattr(self, "_plateau_progress_", None) if incremental else None
        if self.learning_rate_schedule != "plateau" or progress is None:
            # a reused optimiser holds the rate where the last schedule left it
            for group in optimizer.param_groups:
                group["lr"] = rate
        if incremental and self.learning_rate_schedule != "plateau":
            return None
        scheduler = self._new_scheduler(optimizer, self.max_iter)
        if scheduler is not None and progress is not None:
            scheduler.load_state_dict({**scheduler.state_dict(), **progress})
        return scheduler

    #: "plateau" counts an improvement by ``tol`` relative to the best score,
    #: as early stopping does (the imputer's in its score's units)
    _relative_plateau = True

    def _new_scheduler(self, optimizer, max_iter):
        """The scheduler ``learning_rate_schedule`` names (None: "constant")."""
        settings = {"patience": self.n_iter_no_change, "relative": self._relative_plateau}
        return new_scheduler(
            self.learning_rate_schedule, optimizer, max_iter, tol=self.tol, **settings
        )

    def _set_fitted(self, fitted, *, replace):
        """Assign fitted attributes together; ``replace`` first removes every
        fitted attribute there is (a fit from scratch)."""
        if replace:
            for name in [name for name in vars(self) if is_fitted_name(name)]:
                delattr(self, name)
        self.__dict__.update(fitted)

    def _fitted_attributes(self):
        return {name: value for name, value in vars(self).items() if is_fitted_name(name)}

    def _build_params(self):
        """What the module is built from, whatever ``set_params`` changes
        later (a deep copy; ``random_state`` plays no part in its shape)."""
        params = self.get_params(deep=False)
        return copy.deepcopy({k: v for k, v in params.items() if k != "random_state"})

    @property
    def _n_features_out(self):
        """The code width the module was built with (for feature names)."""
        return self._build_params_["n_components"]

    def _architecture(self, build_params, n_features):
        """An untrained module shaped as ``fit`` builds it from ``build_params``
        (not from any parameter set since), to load saved weights into."""
        known = set(self._get_param_names())
        # fitted before skae 0.3, whose networks had no linear path (the imputer has none)
        build_params = {"init": "random", **build_params} if "init" in known else build_params
        name = type(self).__name__
        unknown = sorted(set(build_params) - known)
        if unknown:
            raise ValueError(
                f"{name}: the saved build_params hold parameters {unknown} that {name} "
                "does not have."
            )
        builder = type(self)(**build_params)
        try:
            builder._validate_params()
        except ValueError as exc:
            raise ValueError(f"{name}: the saved build_params are not valid: {exc}") from None
        return builder._seeded_module(n_features, seed=0)

    def _seeded_module(self, n_features, seed):
        """``_build_module`` in float32 with its initial weights drawn from
        ``seed``; the global torch random state is neither used nor changed."""
        with torch.random.fork_rng(devices=[]), _settings.float32_default():
            torch.default_generator.manual_seed(seed)
            return self._build_module(n_features)

    def _train(self, module, batch_loss, X, setup, *, optimizer, max_iter, stop_early=True):
        """Run the engine with this estimator's settings and ``setup`` (a
        :class:`~skae._engine.TrainingSetup`), progress as ``verbose`` asks (on
        rank 0 only), the linear path (init="pca") at ``LINEAR_PATH_STEP`` of
        each step; a non-finite loss raises here, with what to change."""
        shard, slow = setup.shard, getattr(module, "linear_path_parameters", list)()
        with (
            shortened_steps(optimizer, slow, LINEAR_PATH_STEP),
            epoch_reporter(
                self.verbose if shard is None or shard.rank == 0 else 0,
                desc=setup.desc or type(self).__name__,
                total=max_iter,
                first_epoch=setup.previous_epochs,
            ) as report,
        ):
            history = _engine.train(
                module,
                batch_loss,
                X,
                optimizer=optimizer,
                batch_size=setup.batch_size,
                max_iter=max_iter,
                generator=setup.generator,
                device=setup.device,
                shuffle=self.shuffle,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                validation_score=setup.validation_score,
                score_start=setup.score_start,
                stop_early=stop_early,
                on_epoch=lambda loss, score: report(loss, score, _engine.learning_rate(optimizer)),
                shard=shard,
                loss_scale=getattr(module, "loss_scale", 1.0),
                scheduler=setup.scheduler,
                min_learning_rate=min_learning_rate(
                    setup.scheduler, setup.learning_rate, self._min_learning_rate_fraction
                ),
            )
            report.finish(history.stop_reason, self.n_iter_no_change)
        self._raise_on_failed_training(history, setup.previous_epochs, setup.learning_rate)
        return history

    def _raise_on_failed_training(self, history, previous_epochs, rate):
        """A ValueError, with what to change, for a non-finite loss or score;
        a warning for an interrupted run."""
        what = {
            StopReason.NON_FINITE: "the training loss",
            StopReason.NON_FINITE_SCORE: "the validation score (on the rows early stopping "
            "holds out)",
            StopReason.NON_FINITE_WEIGHTS: "the network's weights",
        }.get(history.stop_reason)
        if what is not None:
            advice = f"lower {what_to_lower(self, rate)}"
            if not self._standardizes_columns:
                scaler = "sklearn.preprocessing.StandardScaler"
                advice = f"scale the data (for example with {scaler}) or {advice}"
            raise ValueError(
                f"{type(self).__name__}: {what} became non-finite (NaN or inf) in epoch "
                f"{previous_epochs + history.n_iter + 1}. {advice[0].upper() + advice[1:]}."
            )
        if history.stop_reason is StopReason.INTERRUPTED:
            warnings.warn("Training interrupted by user.", stacklevel=user_stacklevel())

    def _new_optimizer(self, module, device, rate):
        """The optimiser named by the ``optimizer`` parameter, for ``module``."""
        return make_optimizer(
            self.optimizer,
            module.parameters(),
            learning_rate=rate,
            weight_decay=self.weight_decay,
            device=device,
        )

    # ------------------------------------------------------------ inference

    def _map_rows(self, module, fn, X):
        """``fn(module, block)`` over the rows of a tensor or a row source of
        :mod:`skae._rows`, in blocks on the module's device, without
        gradients; returns the concatenated tensor on the CPU. (``no_grad``,
        not ``inference_mode``: the result may be trained on, as in
        pretraining.)"""
        rows = as_rows(X)
        step = block_rows(rows.n_features)
        device = next(module.parameters()).device
        with torch.no_grad():
            return torch.cat(
                [
                    fn(module, rows.take(slice(i, i + step)).to(device)).cpu()
                    for i in range(0, len(rows), step)
                ]
            )

    def _apply(self, fn, X, *, passes=1):
        """``fn(module, block)`` over the rows of validated input (numpy, a
        CSR matrix densified a block at a time, or a torch tensor) into an
        output in X's float dtype: numpy, or for a tensor a tensor on X's
        device. ``passes``: how many forward passes ``fn`` makes over each
        block (it sizes the CPU threads to the work).

        Inference runs in X's precision: a float64 copy of the module for
        float64 input (:func:`~skae._device.inference_module`). float32
        matmul kernels may round differently with the block's shape; in
        float64 that difference stays at rounding level (~1e-16), so each
        row's output does not depend, to far below scikit-learn's 1e-7
        tolerance, on which rows share its block.
        """
        is_tensor = isinstance(X, torch.Tensor)
        dtype = X.dtype if is_tensor else TORCH_DTYPES[X.dtype]
        module, n_parameters = inference_module(self.module_, dtype)
        step = block_rows(max(X.shape[1], self.n_features_in_))
        # 2 operations per parameter and row in a pass (_settings.step_flops)
        flops = 2 * passes * min(X.shape[0], step) * n_parameters
        with (
            # tensors out must be ordinary ones (usable in place and in autograd)
            torch.no_grad() if is_tensor else torch.inference_mode(),
            _settings.cpu_threads_for(flops, self.device_),
            _settings.deterministic_algorithms(self.deterministic, self.device_),
        ):
            if X.shape[0] <= step:  # one block: its output is the result
                return self._output_block(fn(module, self._input_block(X, dtype)), X, 0)
            out = None
            for start in range(0, X.shape[0], step):
                stop = start + step
                block = fn(module, self._input_block(X[start:stop], dtype))
                block = self._output_block(block, X, start)
                if out is None:
                    shape = (X.shape[0], *block.shape[1:])
                    out = (
                        torch.empty(shape, dtype=X.dtype, device=X.device)
                        if is_tensor
                        else np.empty(shape, dtype=X.dtype)
                    )
                out[start:stop] = block
        return out

    def _output_block(self, block, X, start):
        """A block's output checked finite, in X's kind (numpy, or a tensor on
        X's device), dtype and memory of its own."""
        if isinstance(X, torch.Tensor):  # checked in X's dtype: the cast may overflow
            block = block.to(X.device, X.dtype)
            check_finite_output(type(self).__name__, block, start)
            shared = block.untyped_storage().data_ptr() == X.untyped_storage().data_ptr()
            return block.clone() if shared else block
        block = block.cpu().numpy().astype(X.dtype, copy=False)
        check_finite_output(type(self).__name__, block, start)
        return block.copy() if np.may_share_memory(block, X) else block

    def _input_block(self, block, dtype):
        """Rows of validated input as a dense tensor on ``device_``."""
        if isinstance(block, torch.Tensor):  # detached by _inference
            return block.to(self.device_, dtype)
        if sp.issparse(block):
            block = block.toarray()
        return as_tensor(block, self.device_, dtype)

    def _inference(self, X, fn, method, *, codes=False, passes=1):
        """``fn(module, block)`` over the rows of ``X`` after validating it:
        numpy out for numpy, scipy.sparse and array-likes; with array API
        dispatch, an array of X's namespace on X's device (a torch tensor
        comes back a tensor, computed without leaving torch). ``codes``: X
        holds codes (``inverse_transform``), ``n_components`` wide;
        ``passes`` as in :meth:`_apply`."""
        if not self.__sklearn_is_fitted__():
            check_is_fitted(self)
        if not codes and hasattr(self, "feature_names_in_"):
            rows = None  # a numpy array warns that it has no names
        else:
            rows = plain_rows(X, self._n_features_out if codes else self.n_features_in_)
        if rows is not None:  # what validation would hand back: no need to run it
            return self._apply(fn, rows, passes=passes)
        X = detached_input(X)
        namespace = array_namespace(X)
        check_same_namespace(self, namespace, method)
        dtypes = float_dtypes(namespace)
        if codes:
            X = check_array(X, dtype=dtypes, accept_sparse="csr", input_name="X")
            if X.shape[1] != self._n_features_out:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(self).__name__}.{method} "
                    f"is expecting {self._n_features_out} features (n_components) as input."
                )
        else:
            X = validate_data(self, X, dtype=dtypes, accept_sparse="csr", reset=False)
        out = self._apply(fn, to_torch(X, namespace, self.device_), passes=passes)
        return to_namespace(out, namespace)

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Encode X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode. A sparse matrix is densified one block of rows at
            a time.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The codes, in X's float dtype; with array API dispatch on, an
            array of X's namespace on X's device (a torch tensor for a tensor).
        """
        return self._inference(X, lambda module, x: module.encode(x), "transform")

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Decode codes back to the input space.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_components)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The reconstructions, in the codes' float dtype; with array API
            dispatch on, an array of X's namespace on X's device.
        """
        return self._inference(
            X, lambda module, z: module.decode(z), "inverse_transform", codes=True
        )

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Per-sample score: the negative reconstruction loss of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Higher is better; low values flag outliers. With array API
            dispatch on, an array of X's namespace on X's device.
        """
        return self._inference(X, self._scored_batch, "score_samples")

    def score(self, X: ArrayLike, y: ArrayLike | None = None) -> float:
        """Mean of :meth:`score_samples` over X (higher is better).

        In the units of the ``loss`` the model was fitted with (``"bce"``'s
        cross-entropy is never below ``"mse"``'s squared error of the same
        reconstruction), so compare it only between models fitted with the
        same ``loss``: a search over ``loss`` needs a ``scoring`` of its own,
        such as the negative squared reconstruction error.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float

        Notes
        -----
        A dask array or DataFrame (``dask_ml.wrappers.ParallelPostFit.score``
        passes its input on) is scored where its blocks are: the workers
        compute each block's scores and only their mean comes back.
        """
        if is_dask_array(X) or is_dask_frame(X):
            check_is_fitted(self)
            return (score_dask_array if is_dask_array(X) else score_dask_frame)(self, X)
        return namespace_mean(self.score_samples(X))

    # ----------------------------------------------------- the fitted state

    def _export_state(self) -> dict[str, Any]:
        """The fitted state as plain data: str-keyed dicts, lists, tuples,
        numbers, strings, None and numpy arrays (CPU), nothing else.

        Pickling, ``copy.deepcopy``, ``skops`` and ``skae.save`` all store
        this and rebuild the estimator with :meth:`_import_state`. What is
        fitted is every attribute named by :func:`~skae._state.is_fitted_name`;
        those that are not plain data are converted as
        :data:`skae._state.SCHEMA` says.
        """
        return export_state(self._fitted_attributes())

    def _import_state(self, state: dict[str, Any]) -> None:
        """Become the fitted estimator :meth:`_export_state` described, after
        the checks of :func:`skae._state.check_state`: the module built by
        this class from the parameters it was fitted with, the weights loaded
        (a ValueError when they do not fit that network), the optimiser
        rebuilt with its moments, on the saved device when it exists here
        (else the CPU, with a warning)."""
        context = Context(type(self).__name__, self._architecture)
        self._set_fitted(import_state(state, context), replace=True)

    # ---------------------------------------------------------- plumbing

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        tags.array_api_support = True
        return tags

    def __sizeof__(self) -> int:
        """Bytes held, the fitted module's weights and the optimiser's moments
        included. ``sys.getsizeof`` and dask's ``sizeof`` read it: dask then
        ships a fitted estimator over a megabyte to each worker once, as data
        of its own, rather than inside every task that uses it."""
        size = object.__sizeof__(self)
        if self.__sklearn_is_fitted__():
            module = self.module_
            tensors = [*module.parameters(), *module.buffers()]
            optimizer = getattr(self, "_optimizer_", None)
            if optimizer is not None:
                tensors += [v for s in optimizer.state.values() for v in s.values()]
            size += sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))
        return size

    def __getstate__(self) -> dict[str, Any]:
        """Parameters and configuration, and the fitted state of
        :meth:`_export_state`: a model fitted on CUDA unpickles on a machine
        without one, and ``skops.io`` can hold it trusting nothing but skae's
        own classes."""
        state = {k: v for k, v in super().__getstate__().items() if not is_fitted_name(k)}
        if self.__sklearn_is_fitted__():
            state["_skae_fitted_state"] = self._export_state()
        state["_skae_versions"] = running_versions()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        versions = state.pop("_skae_versions", None)
        pickled = state.pop("_skae_version", None)  # earlier skae: its own version only
        if "_module_weights" in state:
            raise ValueError(
                f"This {type(self).__name__} was pickled by skae {pickled}, whose pickle "
                f"layout skae {skae_version()} does not read. Load it with skae {pickled} "
                "and save it with skae.save (skae.load reads those files), or refit it."
            )
        warn_on_version_change(
            versions or ({} if pickled is None else {"skae": pickled}), type(self).__name__
        )
        fitted = state.pop("_skae_fitted_state", None)
        super().__setstate__(state)
        for name, value in type(self)().get_params(deep=False).items():
            # pickled before the parameter existed: it gets its default
            self.__dict__.setdefault(name, value)
        if fitted is not None:
            self._import_state(fitted)
