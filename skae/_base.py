"""The estimator base every skae autoencoder shares.

It owns what is the same across the family: parameter constraints, the fit
skeleton (validate, convert once, hand to the engine, store what comes back),
batched inference, scores, tags and pickling. A family member overrides a few
hooks: ``_build_module``, ``_corrupt``, ``_training_loss``,
``_score_samples_batch`` and ``_check_data``.

This is the one module that imports scikit-learn's private helpers.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Tags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _engine
from ._losses import BATCH_TOTALS, RECONSTRUCTION_LOSSES
from ._progress import epoch_reporter
from .nn import ACTIVATIONS

if sys.version_info >= (3, 11):
    from typing import Self
else:  # Python 3.10: typing_extensions, a dependency there
    from typing_extensions import Self

if TYPE_CHECKING:
    _F = TypeVar("_F", bound=Callable[..., Any])

    # scikit-learn ships no type information: declared here so that type
    # checkers see that the decorated fit methods keep their signatures
    def _fit_context(*, prefer_skip_nested_validation: bool) -> Callable[[_F], _F]: ...

else:
    from sklearn.base import _fit_context

__all__ = ["BaseAutoencoder", "Interval", "StrOptions"]

FLOAT_DTYPES = (np.float64, np.float32)
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

#: Rows per block in transform, inverse_transform and score_samples: memory
#: stays bounded for any number of rows.
INFERENCE_BLOCK_SIZE = 4096


def resolve_device(device):
    """Turn the ``device`` parameter into a ``torch.device`` that exists here."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"The 'device' parameter must be 'auto', 'cpu', 'cuda', 'cuda:<index>' "
            f"or a torch.device. Got {device!r} ({exc})."
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available "
                "(torch.cuda.is_available() is False). Use device='cpu' or 'auto'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) are present."
            )
    elif resolved.type != "cpu":
        raise ValueError(f"device={device!r} is not supported; use 'cpu', 'cuda' or 'auto'.")
    return resolved


def as_tensor(X, device, dtype=torch.float32):
    """A tensor of ``X`` on ``device``; shares memory with ``X`` only when it can
    do so without a copy and ``X`` is writeable (it is never written to)."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    if not (X.flags.writeable and X.flags.c_contiguous and X.dtype == np_dtype):
        # numpy's cast and copy is much faster than torch.tensor's on arrays
        X = np.array(X, dtype=np_dtype, order="C")
    return torch.from_numpy(X).to(device)


def check_float32_range(X):
    """Training runs in float32: refuse finite values it cannot hold rather
    than turn them into inf."""
    limit = np.finfo(np.float32).max
    if X.dtype == np.float64 and X.size and (X.max() > limit or X.min() < -limit):
        largest = max(abs(X.max()), abs(X.min()))
        raise ValueError(
            f"Input X contains values too large for float32 (largest magnitude "
            f"{largest:.3g}; float32 holds up to {limit:.3g}), which skae trains in. "
            "Scale X, for example with sklearn.preprocessing.StandardScaler."
        )


#: numpy bit generators a saved random state may name; never looked up by getattr.
BIT_GENERATORS = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}


def rng_from_state(state):
    """A numpy Generator restored from ``bit_generator.state`` data."""
    try:
        bit_generator = BIT_GENERATORS[state["bit_generator"]]()
        bit_generator.state = state
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"The saved random generator state is not usable: {exc}") from exc
    return np.random.Generator(bit_generator)


def seed_source(random_state):
    """A private numpy Generator from ``random_state``; never the global one."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


def draw_seed(rng):
    return int(rng.integers(2**62))


class BaseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery of the skae estimators. Not for direct use."""

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions(set(RECONSTRUCTION_LOSSES))],
        "optimizer": [StrOptions({"adam", "adamw", "sgd"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
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
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_components: int = 2,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        loss: str = "mse",
        optimizer: Literal["adam", "adamw", "sgd"] = "adam",
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int | Literal["auto"] = "auto",
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        device: str | torch.device = "auto",
        deterministic: bool = False,
        verbose: int = 0,
        warm_start: bool = False,
    ) -> None:
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
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
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ hooks

    def _build_module(self, n_features):
        """The torch module to train, freshly initialised."""
        raise NotImplementedError

    def _corrupt(self, x, generator):
        """The training input made from a clean batch (identity here)."""
        return x

    def _penalty(self, module, x, code):
        """A regulariser on the code of a clean batch, added to the mean loss."""
        return 0.0

    def _training_loss(self, module, generator, *, reconstruction=None, penalize=True):
        """``batch_loss(x) -> 0-d tensor`` for the engine.

        ``reconstruction`` replaces the loss chosen by ``loss`` (greedy
        pretraining of inner layers reconstructs hidden activations with squared
        error); ``penalize=False`` leaves out :meth:`_penalty`.
        """
        reconstruction = reconstruction or RECONSTRUCTION_LOSSES[self.loss][0]
        total = BATCH_TOTALS[reconstruction]

        def batch_loss(x):
            code = module.encode(self._corrupt(x, generator))
            loss = total(module.decoder(code), x) / x.shape[0]
            return loss + self._penalty(module, x, code) if penalize else loss

        return batch_loss

    def _pretrain(self, module, X, *, device, generator, loss_generator):
        """Greedy layer-wise pretraining before the end-to-end fit; returns one
        loss curve per pretrained layer (none here)."""
        return []

    def _score_samples_batch(self, module, x):
        """Per-sample score of a batch, higher is better."""
        return -RECONSTRUCTION_LOSSES[self.loss][0](module(x), x)

    def _check_data(self, X):
        """Checks that depend on the data and on several parameters at once."""
        if self.loss in ("bce", "bernoulli") and X.size and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                f"loss={self.loss!r} needs X in [0, 1], but X ranges over "
                f"[{X.min():.4g}, {X.max():.4g}]. Scale X (for example with "
                "sklearn.preprocessing.MinMaxScaler) or use a Gaussian loss."
            )

    # ------------------------------------------------------------- fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Fit the autoencoder to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with (
            self._restore_on_error(in_place=self.warm_start),
            _engine.deterministic_algorithms(self.deterministic, self.device),
        ):
            self._fit(X, incremental=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Run one epoch over X, starting from the current weights if fitted.

        Like ``IncrementalPCA.partial_fit``: call it on successive chunks of a
        data set that does not fit in memory. Early stopping does not apply.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with (
            self._restore_on_error(in_place=True),
            _engine.deterministic_algorithms(self.deterministic, self.device),
        ):
            self._fit(X, incremental=True)
        return self

    @contextmanager
    def _restore_on_error(self, *, in_place):
        """A failed fit leaves the estimator as it was: fitted models keep their
        weights and attributes, unfitted ones stay unfitted. The weights and
        optimiser moments are copied only when the call trains the existing
        module in place (``warm_start`` or ``partial_fit``); a fresh fit builds a
        new module and leaves the old one untouched."""
        saved = dict(self.__dict__)
        in_place = in_place and "module_" in saved
        weights = _engine.clone_state(self.module_) if in_place else None
        optimizer = saved.get("_optimizer") if in_place else None
        moments = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
        rng = copy.deepcopy(saved.get("_rng"))
        try:
            yield
        except BaseException:
            if weights is not None:
                saved["module_"].load_state_dict(weights)
            if optimizer is not None:
                optimizer.load_state_dict(moments)
            if rng is not None:
                saved["_rng"] = rng
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit(self, X, *, incremental):
        first_pass = not self.__sklearn_is_fitted__() or not (self.warm_start or incremental)
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=first_pass)
        check_float32_range(X)
        self._check_data(X)
        self._hidden_layer_sizes()  # fails early on a bad value
        early_stopping = self.early_stopping and not incremental
        n_samples = X.shape[0]
        if early_stopping and n_samples < 2:
            raise ValueError(
                f"early_stopping=True needs at least 2 samples to hold out a validation "
                f"set; got n_samples={n_samples}."
            )
        device = resolve_device(self.device)

        if first_pass:
            self._rng = seed_source(self.random_state)
            module = self._seeded_module(X.shape[1], draw_seed(self._rng)).to(device)
            self._record_build_params()
            self._optimizer = None
            self.n_iter_ = 0
            self.loss_curve_ = []
            self.best_loss_ = None
            self.validation_scores_ = None
            self.best_validation_score_ = None
        else:
            module = self.module_
            if device != self.device_:
                module.to(device)
                self._optimizer = None

        # separate streams: the corruption or sampling a loss draws does not
        # change which rows go into which batch
        generator = torch.Generator(device=device).manual_seed(draw_seed(self._rng))
        loss_generator = torch.Generator(device=device).manual_seed(draw_seed(self._rng))
        X_train = as_tensor(X, device)
        validation_score = None
        if early_stopping:
            n_val = max(1, int(np.ceil(self.validation_fraction * n_samples)))
            if n_val >= n_samples:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves no training "
                    f"samples out of n_samples={n_samples}."
                )
            order = torch.randperm(n_samples, generator=generator, device=device)
            X_val, X_train = X_train[order[:n_val]], X_train[order[n_val:]]

            def validation_score():
                return self._map_rows(module, self._score_samples_batch, X_val).mean().item()

        self.batch_size_ = self._resolve_batch_size(X_train.shape[0])
        pretraining_curves = []
        if first_pass and not incremental:
            pretraining_curves = self._pretrain(
                module, X_train, device=device, generator=generator, loss_generator=loss_generator
            )
        optimizer = self._get_optimizer(module, device, reuse=incremental and not first_pass)
        history = self._train(
            module,
            self._training_loss(module, loss_generator),
            X_train,
            optimizer=optimizer,
            max_iter=1 if incremental else self.max_iter,
            generator=generator,
            device=device,
            validation_score=validation_score,
            stop_early=not incremental,
            previous_epochs=self.n_iter_ + sum(map(len, pretraining_curves)),
            desc=f"{type(self).__name__} fine-tuning" if pretraining_curves else None,
        )

        self.module_ = module
        self.device_ = device
        self._optimizer = optimizer
        if first_pass:
            self._n_features_out = self.n_components
        if first_pass:
            self.pretraining_loss_curves_ = pretraining_curves
        pretraining_curve = [loss for curve in pretraining_curves for loss in curve]
        self.n_iter_ += len(pretraining_curve) + history.n_iter
        self.loss_curve_ = self.loss_curve_ + pretraining_curve + history.loss_curve
        if early_stopping:
            previous = self.best_validation_score_
            self.validation_scores_ = (self.validation_scores_ or []) + history.validation_scores
            self.best_validation_score_ = max(
                -np.inf if previous is None else previous, history.best_validation_score
            )
            self.best_loss_ = None
        elif history.n_iter:
            previous = np.inf if self.best_loss_ is None else self.best_loss_
            self.best_loss_ = min(previous, history.best_loss)
        if not incremental and history.stop_reason == "max_iter":
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                "the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _record_build_params(self):
        """Remember what the module is built from, whatever ``set_params``
        changes later (a deep copy; ``random_state`` plays no part in its
        shape, the seed is drawn separately)."""
        self._build_params = copy.deepcopy(_without_seed(self.get_params(deep=False)))

    def _fitted_architecture(self):
        """An untrained module shaped like ``module_``, built from the
        parameters ``fit`` built it with (not from any set since), to load
        saved weights into."""
        params = self._build_params
        known = set(self._get_param_names())
        builder = type(self)(**{k: v for k, v in params.items() if k in known})
        return builder._seeded_module(self.n_features_in_, seed=0)

    def _seeded_module(self, n_features, seed):
        """``_build_module`` with its initial weights drawn from ``seed``; the
        global torch random state is neither used nor changed."""
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            return self._build_module(n_features)

    def _train(
        self,
        module,
        batch_loss,
        X,
        *,
        optimizer,
        max_iter,
        generator,
        device,
        validation_score=None,
        stop_early=True,
        previous_epochs=0,
        desc=None,
    ):
        """Run the engine with this estimator's settings, reporting progress
        as ``verbose`` asks; a non-finite loss raises here, with what to change."""
        with epoch_reporter(
            self.verbose,
            desc=desc or type(self).__name__,
            total=max_iter,
            first_epoch=previous_epochs,
        ) as report:
            history = _engine.train(
                module,
                batch_loss,
                X,
                optimizer=optimizer,
                batch_size=self.batch_size_,
                max_iter=max_iter,
                generator=generator,
                device=device,
                shuffle=self.shuffle,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                validation_score=validation_score,
                stop_early=stop_early,
                on_epoch=report,
            )
        if history.stop_reason == "non_finite":
            raise ValueError(
                f"{type(self).__name__}: the training loss became non-finite (NaN or inf) "
                f"in epoch {previous_epochs + history.n_iter + 1}. Scale the data (for "
                "example with sklearn.preprocessing.StandardScaler) or lower learning_rate "
                f"(now {self.learning_rate})."
            )
        if history.stop_reason == "interrupted":
            warnings.warn("Training interrupted by user.", UserWarning, stacklevel=3)
        return history

    def _new_optimizer(self, parameters, device, kind=None):
        """The optimiser named by ``kind``, by default the ``optimizer`` parameter."""
        return _engine.make_optimizer(
            kind or self.optimizer,
            parameters,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            device=device,
        )

    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, Integral) else list(sizes)
        if not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must hold positive integers, got {self.hidden_layer_sizes!r}."
            )
        return [int(s) for s in sizes]

    def _resolve_batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. "
                "It is going to be clipped",
                stacklevel=3,
            )
            return n_samples
        return self.batch_size

    def _get_optimizer(self, module, device, *, reuse):
        """A new optimiser, or for ``partial_fit`` the one from the last call
        (its moments carry over, also through pickling)."""
        optimizer = getattr(self, "_optimizer", None) if reuse else None
        if optimizer is not None:
            return optimizer
        state = getattr(self, "_optimizer_state", None) if reuse else None
        if state is None:
            optimizer = self._new_optimizer(module.parameters(), device)
            self._optimizer_kind = self.optimizer
        else:
            optimizer = self._optimizer_with_state(module, device, state)
        self._optimizer_state = None
        return optimizer

    def _optimizer_with_state(self, module, device, state):
        """An optimiser of the kind that made ``state`` (whatever ``set_params``
        changed since), loaded with a copy of it: ``load_state_dict`` keeps the
        given tensors and the step updates them in place, and a failed call
        must be able to put the saved ones back."""
        kind = getattr(self, "_optimizer_kind", None)
        optimizer = self._new_optimizer(module.parameters(), device, kind)
        optimizer.load_state_dict(copy.deepcopy(state))
        return optimizer

    def _optimizer_state_dict(self):
        """The optimiser's state dict, or, unpickled and not trained since, the
        one waiting for the next ``partial_fit``; None when there is neither."""
        optimizer = getattr(self, "_optimizer", None)
        if optimizer is not None:
            return optimizer.state_dict()
        return getattr(self, "_optimizer_state", None)

    # ------------------------------------------------------------ inference

    def _map_rows(self, module, fn, X):
        """``fn(module, block)`` over the rows of a tensor, in blocks, without
        gradients; returns the concatenated tensor on the CPU. (``no_grad``, not
        ``inference_mode``: the result may be trained on, as in pretraining.)"""
        with torch.no_grad():
            return torch.cat(
                [
                    fn(module, X[i : i + INFERENCE_BLOCK_SIZE]).cpu()
                    for i in range(0, len(X), INFERENCE_BLOCK_SIZE)
                ]
            )

    def _apply(self, fn, X):
        """``fn(module, block)`` over the rows of a numpy array into a
        preallocated numpy output in X's dtype.

        Inference runs in X's precision: a float64 copy of the module for
        float64 input. float32 matmul kernels may round differently with the
        block's shape; in float64 that difference stays at rounding level
        (~1e-16), so each row's output does not depend, to far below
        scikit-learn's 1e-7 tolerance, on which rows share its block.
        """
        module = self.module_
        dtype = TORCH_DTYPES[X.dtype]
        if dtype != torch.float32:
            module = copy.deepcopy(module).to(dtype)
        out = None
        flops = _engine.step_flops(module, min(len(X), INFERENCE_BLOCK_SIZE), training=False)
        with (
            torch.inference_mode(),
            _engine.cpu_threads_for(flops, self.device_),
            _engine.deterministic_algorithms(self.deterministic, self.device_),
        ):
            for start in range(0, X.shape[0], INFERENCE_BLOCK_SIZE):
                stop = start + INFERENCE_BLOCK_SIZE
                block = fn(module, as_tensor(X[start:stop], self.device_, dtype)).cpu().numpy()
                self._check_finite_output(block, start)
                if out is None:
                    out = np.empty((X.shape[0], *block.shape[1:]), dtype=X.dtype)
                out[start:stop] = block
        return out

    def _check_finite_output(self, block, start):
        """Never hand back NaN or inf: huge inputs can overflow the arithmetic."""
        finite = np.isfinite(block).reshape(len(block), -1).all(axis=1)
        if not finite.all():
            row = start + int(np.argmin(finite))
            hint = " (or pass float64 input)" if block.dtype == np.float32 else ""
            raise ValueError(
                f"{type(self).__name__} computed non-finite values (NaN or inf) from row "
                f"{row} of the input: its values overflow the model's {block.dtype} "
                f"arithmetic. Scale the input the way the training data was scaled{hint}."
            )

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Encode X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The codes, in X's float dtype.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)
        return self._apply(lambda module, x: module.encode(x), X)

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            The reconstructions, in the codes' float dtype.
        """
        check_is_fitted(self)
        X = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
        if X.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__}.inverse_transform "
                f"is expecting {self._n_features_out} features (n_components) as input."
            )
        return self._apply(lambda module, z: module.decode(z), X)

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Per-sample score: the negative reconstruction loss of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Higher is better; low values flag outliers.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)
        return self._apply(self._score_samples_batch, X)

    def score(self, X: ArrayLike, y: ArrayLike | None = None) -> float:
        """Mean of :meth:`score_samples` over X (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

    # ---------------------------------------------------------- plumbing

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def __getstate__(self) -> dict[str, Any]:
        """Fitted state as plain data and CPU numpy arrays: a model fitted on
        CUDA unpickles on a machine without one, and ``skops.io`` can hold it
        trusting nothing but skae's own classes."""
        state = super().__getstate__().copy()
        module = state.pop("module_", None)
        if module is not None:
            state["_module_weights"] = {
                name: value.detach().cpu().numpy() for name, value in module.state_dict().items()
            }
        if "device_" in state:
            state["device_"] = str(state["device_"])
        state.pop("_optimizer", None)
        optimizer_state = self._optimizer_state_dict()
        if optimizer_state is not None:
            state["_optimizer_state"] = _convert_tensors(
                optimizer_state, lambda t: t.detach().cpu().numpy()
            )
        rng = state.pop("_rng", None)
        if rng is not None:
            state["_rng_state"] = rng.bit_generator.state
        state["_skae_version"] = _skae_version()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        pickled = state.pop("_skae_version", None)
        if pickled is not None and pickled != _skae_version():
            warnings.warn(
                f"Trying to unpickle {type(self).__name__} from skae {pickled} with skae "
                f"{_skae_version()}. This might lead to breaking code or invalid results; "
                "use at your own risk, or refit, or use skae.save/skae.load.",
                UserWarning,
                stacklevel=2,
            )
        weights = state.pop("_module_weights", None)
        rng_state = state.pop("_rng_state", None)
        super().__setstate__(state)
        if rng_state is not None:
            self._rng = rng_from_state(rng_state)
        if getattr(self, "_optimizer_state", None) is not None:
            self._optimizer_state = _convert_tensors(
                self._optimizer_state, lambda a: torch.tensor(np.asarray(a))
            )
        for name, value in type(self)().get_params(deep=False).items():
            # pickled before the parameter existed: it gets its default
            self.__dict__.setdefault(name, value)
        fitted = weights is not None or "module_" in self.__dict__
        if fitted and getattr(self, "_build_params", None) is None:
            # pickled before skae recorded them: the current ones, from now on
            self._record_build_params()
        if weights is not None:
            module = self._fitted_architecture()
            module.load_state_dict({k: torch.tensor(np.asarray(w)) for k, w in weights.items()})
            self.module_ = module
        if "module_" in self.__dict__:
            self.device_ = torch.device(self.device_)
            if self.device_.type == "cuda" and not torch.cuda.is_available():
                warnings.warn(
                    f"{type(self).__name__} was fitted on {self.device_} but CUDA is not "
                    "available here; it will run on the CPU.",
                    UserWarning,
                    stacklevel=2,
                )
                self.device_ = torch.device("cpu")
            self.module_.to(self.device_)


def _without_seed(params):
    """Parameters without ``random_state``, which plays no part in the shape of
    a module (its seed is drawn separately)."""
    return {k: v for k, v in params.items() if k != "random_state"}


def _skae_version():
    import skae

    return skae.__version__


def _convert_tensors(obj, convert):
    """``obj`` (nested dicts, lists, tuples) with ``convert`` applied to every
    tensor, or to every numpy array when ``convert`` makes tensors."""
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return convert(obj)
    if isinstance(obj, dict):
        return {k: _convert_tensors(v, convert) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_convert_tensors(v, convert) for v in obj)
    return obj
