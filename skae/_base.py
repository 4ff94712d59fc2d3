"""The estimator bases of the skae family.

:class:`BaseAutoencoder` owns what all six estimators share: the shared
parameters and their constraints, ``fit`` as a sequence of named steps
(validate, seed, start a module, split, train, record), batched inference,
scores, tags and the one fitted-state path (:meth:`~BaseAutoencoder._export_state`
and :meth:`~BaseAutoencoder._import_state`) that pickling, ``copy.deepcopy``,
``skops`` and ``skae.save``/``skae.load`` all use. A family member overrides a
few hooks: ``_build_module``, ``_training_loss``, ``_score_samples_batch`` and
``_check_data``.

:class:`BaseMLPAutoencoder` is the base of the MLP family (plain, denoising,
sparse, contractive): hidden layers, tied weights, corruption of the input,
penalties on the code and greedy layer-wise pretraining.

This is the one module that imports scikit-learn's private helpers.
"""

from __future__ import annotations

import copy
import mmap
import sys
import warnings
from collections.abc import Callable
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import ArrayLike
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Tags
from sklearn.utils._array_api import (
    _is_numpy_namespace,
    _is_xp_namespace,
    get_namespace,
    get_namespace_and_device,
    move_to,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _distributed, _engine
from ._engine import StopReason
from ._losses import BATCH_TOTALS, RECONSTRUCTION_LOSSES, UNIT_INTERVAL_LOSSES, squared_error
from ._progress import epoch_reporter
from ._rows import ArrayRows, SparseRows, TensorRows, as_rows
from .nn import ACTIVATIONS, AutoencoderModule

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

__all__ = ["Activation", "BaseAutoencoder", "BaseMLPAutoencoder", "Interval", "StrOptions"]

#: The ``activation`` options (the keys of :data:`skae.nn.ACTIVATIONS`).
Activation = Literal[
    "relu", "identity", "logistic", "tanh", "leaky_relu", "elu", "gelu", "softplus"
]

FLOAT_DTYPES = (np.float64, np.float32)
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

#: Rows per block in transform, inverse_transform and score_samples: memory
#: stays bounded for any number of rows...
INFERENCE_BLOCK_SIZE = 4096
#: ... and fewer for wide data (a sparse matrix is densified a block at a
#: time): at most this many values per block (64 MB in float32).
INFERENCE_BLOCK_VALUES = 2**24

#: ``learning_rate_schedule="plateau"`` stops once the rate falls below this
#: fraction of ``learning_rate`` (MLPRegressor's "adaptive" stops at 1e-6).
MIN_LEARNING_RATE_FRACTION = 1e-6

#: The counters of a ``ReduceLROnPlateau`` that ``partial_fit`` carries from
#: one call to the next (its settings come from the parameters of each call).
PLATEAU_PROGRESS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")

#: Bumped whenever the exported fitted state changes shape; ``_import_state``
#: and ``skae.load`` refuse states of other versions with a message.
STATE_VERSION = 2


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


def available_device(saved, name):
    """The device a fitted model was saved on, when it exists here, else the
    CPU with a warning."""
    try:
        return resolve_device(saved)
    except ValueError as exc:
        reason = " (CUDA is not available)" if "CUDA is not available" in str(exc) else ""
        warnings.warn(
            f"{name} was fitted on {saved!r}, which is not available here{reason}; it will "
            "run on the CPU.",
            UserWarning,
            stacklevel=4,
        )
        return torch.device("cpu")


def as_tensor(X, device, dtype=torch.float32):
    """A tensor of ``X`` on ``device``; shares memory with ``X`` only when it can
    do so without a copy and ``X`` is writeable (it is never written to)."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    if not (X.flags.writeable and X.flags.c_contiguous and X.dtype == np_dtype):
        # numpy's cast and copy is much faster than torch.tensor's on arrays
        X = np.array(X, dtype=np_dtype, order="C")
    return torch.from_numpy(X).to(device)


def is_memory_mapped(X):
    """Whether ``X`` is, or is a view of, a memory map (``np.memmap``,
    ``np.load(..., mmap_mode=...)``)."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


def available_memory():
    """Bytes of memory available to new allocations (Linux's MemAvailable),
    or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


#: A float32 copy of the training data larger than this share of the
#: available memory is not made: the engine reads X batch by batch instead.
MAX_COPY_FRACTION = 0.5


def training_rows(X, device):
    """The engine's row source (:mod:`skae._rows`) for the validated training
    data ``X``, in float32.

    A CSR matrix stays sparse (three tensors on ``device``), densified one
    batch at a time; a torch tensor is moved to ``device``. A numpy array is
    one float32 tensor when that costs no copy (float32, C-contiguous,
    writeable) or a copy that fits comfortably, and is read batch by batch
    (:class:`~skae._rows.ArrayRows`) when it is a memory map, which is never
    copied whole, or when its float32 copy would take more than
    ``MAX_COPY_FRACTION`` of the available memory. Dense sources give the
    same batches.
    """
    if sp.issparse(X):
        return SparseRows(
            torch.from_numpy(X.indptr.astype(np.int64, copy=False)).to(device),
            torch.from_numpy(X.indices).to(device),  # int32 or int64, as scipy made it
            torch.from_numpy(X.data.astype(np.float32, copy=False)).to(device),
            X.shape[1],
        )
    if isinstance(X, torch.Tensor):
        return TensorRows(X.detach().to(device, torch.float32))
    if is_memory_mapped(X):
        return ArrayRows(X)
    shareable = X.flags.writeable and X.flags.c_contiguous and X.dtype == np.float32
    free = available_memory()
    if not shareable and free is not None and 4 * X.size > MAX_COPY_FRACTION * free:
        return ArrayRows(X)
    return TensorRows(as_tensor(X, device))


def block_rows(n_features):
    """Rows per inference block for rows ``n_features`` wide."""
    return max(1, min(INFERENCE_BLOCK_SIZE, INFERENCE_BLOCK_VALUES // n_features))


#: Values per block of the pass that learns the input scale: small, so that
#: it adds a few MB at most to a fit over a memory map.
SCALE_BLOCK_VALUES = 2**18


def root_mean_square(rows):
    """The root mean square of every value of a row source (:mod:`skae._rows`;
    a sparse one's implicit zeros count), read block by block and summed in
    float64."""
    step = max(1, SCALE_BLOCK_VALUES // rows.n_features)
    total = 0.0
    for start in range(0, len(rows), step):
        total += float(rows.take(slice(start, start + step)).double().square().sum())
    return float(np.sqrt(total / (len(rows) * rows.n_features)))


def input_scale(rows):
    """The scale the layers see the training rows at (``module.input_scale``):
    their root mean square, or 1 when that is 0 or below float32's smallest
    normal number."""
    rms = root_mean_square(rows)
    return rms if rms >= np.finfo(np.float32).tiny else 1.0


def value_range(X):
    """(smallest, largest) value of a validated X (numpy, scipy.sparse, where
    the implicit zeros count, or a torch tensor) as Python floats."""
    return float(X.min()), float(X.max())


def check_float32_range(X):
    """Training runs in float32: refuse finite values it cannot hold rather
    than turn them into inf."""
    limit = float(np.finfo(np.float32).max)
    if X.dtype not in (np.float64, torch.float64):
        return
    low, high = value_range(X)
    if high > limit or low < -limit:
        largest = max(abs(high), abs(low))
        raise ValueError(
            f"Input X contains values too large for float32 (largest magnitude "
            f"{largest:.3g}; float32 holds up to {limit:.3g}), which skae trains in. "
            "Scale X, for example with sklearn.preprocessing.StandardScaler."
        )


def canonical_csr(X):
    """A validated CSR matrix without duplicate entries and with sorted
    indices: X itself when it is so, else a copy (the caller's is untouched)."""
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


# ------------------------------------------------------- array namespaces


def detached_input(X):
    """A torch tensor detached from autograd (sharing its memory); without
    array API dispatch, as numpy of its dtype: an array-like, which
    ``np.asarray`` could not make of one that requires grad, and which
    scikit-learn would turn from float32 into float64."""
    if not isinstance(X, torch.Tensor):
        return X
    if get_config()["array_api_dispatch"]:
        return X.detach()
    return X.numpy(force=True)


def array_namespace(X):
    """``(xp, device)`` of X when array API dispatch is on and X is an array
    of another namespace than numpy (a torch tensor, ...), else None."""
    if sp.issparse(X):
        return None
    xp, is_array_api, device = get_namespace_and_device(X)
    if not is_array_api or _is_numpy_namespace(xp):
        return None
    return xp, device


def namespace_name(namespace):
    """Plain data naming ``array_namespace``'s result (None for numpy)."""
    if namespace is None:
        return None
    xp, device = namespace
    return (xp.__name__.rsplit(".", 1)[-1], str(device))


def to_torch(X, namespace, device):
    """A validated array of another namespace as a torch tensor (itself for
    a tensor; through DLPack where it can, without a copy)."""
    if namespace is None or _is_xp_namespace(namespace[0], "torch"):
        return X
    xp_torch, _ = get_namespace(torch.empty(0))
    return move_to(X, xp=xp_torch, device=device)


def positive_ints(value, name):
    """``value`` (an int or a sequence of them) as a list of positive ints."""
    sizes = [value] if isinstance(value, Integral) else list(value)
    if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
        raise ValueError(f"{name} must hold positive integers, got {value!r}.")
    return [int(s) for s in sizes]


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


def is_fitted_name(name):
    """scikit-learn's rule: fitted attributes end in "_" (and are not dunder).
    skae's private fitted state follows it too (``_rng_``, ``_optimizer_``,
    ``_build_params_``), so this one rule says what is fitted."""
    return name.endswith("_") and not name.startswith("__")


class BaseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery of the skae estimators. Not for direct use."""

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions(set(RECONSTRUCTION_LOSSES))],
        "optimizer": [StrOptions({"adam", "adamw", "sgd"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
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
        activation: Activation = "relu",
        loss: str = "mse",
        optimizer: Literal["adam", "adamw", "sgd"] = "adam",
        learning_rate: float = 5e-3,
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

    def _training_loss(self, module, generator):
        """``batch_loss(x) -> 0-d tensor`` for the engine: the mean over the
        batch of the reconstruction loss named by ``loss``."""
        total = BATCH_TOTALS[RECONSTRUCTION_LOSSES[self.loss][0]]

        def batch_loss(x):
            return total(module(x), x) / x.shape[0]

        return batch_loss

    def _score_samples_batch(self, module, x):
        """Per-sample score of a batch, higher is better."""
        return -RECONSTRUCTION_LOSSES[self.loss][0](module(x), x)

    def _check_data(self, X):
        """Checks that depend on the data and on several parameters at once."""
        if self.loss not in UNIT_INTERVAL_LOSSES:
            return
        low, high = value_range(X)
        if low < 0 or high > 1:
            raise ValueError(
                f"loss={self.loss!r} needs X in [0, 1], but X ranges over "
                f"[{low:.4g}, {high:.4g}]. Scale X (for example with "
                "sklearn.preprocessing.MinMaxScaler) or use a Gaussian loss."
            )

    def _train_module(self, module, X, *, optimizer, fresh, incremental, **train_kwargs):
        """Train ``module`` end to end on the rows of ``X``; returns the
        engine's history and the fitted attributes a family member adds
        (none here). ``fresh`` says ``module`` was just built."""
        history = self._train(
            module,
            self._training_loss(module, train_kwargs.pop("loss_generator")),
            X,
            optimizer=optimizer,
            max_iter=1 if incremental else self.max_iter,
            stop_early=not incremental,
            **train_kwargs,
        )
        return history, {}

    # ------------------------------------------------------------- fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Fit the autoencoder to X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. A sparse matrix stays sparse (a CSR copy of other
            formats) and is densified one minibatch at a time.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with _engine.deterministic_algorithms(self.deterministic, self.device):
            self._fit(X, incremental=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Run one epoch over X, starting from the current weights if fitted.

        Like ``IncrementalPCA.partial_fit``: call it on successive chunks of a
        data set that does not fit in memory. Early stopping does not apply.
        The input scale (``module_.input_scale``) is learned from the first
        chunk and kept for the later ones.

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
        with _engine.deterministic_algorithms(self.deterministic, self.device):
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
        rng = self._starting_rng(shard, device, fresh=fresh)
        module = self._starting_module(X.shape[1], rng, device, fresh=fresh)
        # separate streams: the corruption or sampling a loss draws does not
        # change which rows go into which batch (and, data-parallel, is drawn
        # independently on each rank, while the batches are shared)
        generator = torch.Generator(device=device).manual_seed(draw_seed(rng))
        loss_seed = draw_seed(rng) + (0 if shard is None else shard.rank)
        loss_generator = torch.Generator(device=device).manual_seed(loss_seed)
        X_train, X_val = self._split_validation(training_rows(X, device), generator, early_stopping)
        if fresh and module.learns_input_scale:  # the layers work at unit scale
            module.set_input_scale(input_scale(X_train))
        batch_size = self._resolve_batch_size(len(X_train))
        optimizer = self._starting_optimizer(module, device, reuse=incremental and not fresh)
        scheduler = self._starting_scheduler(optimizer, incremental=incremental and not fresh)
        previous = self._history_attributes(fresh)
        history, family_attributes = self._train_module(
            module,
            X_train,
            optimizer=optimizer,
            fresh=fresh,
            incremental=incremental,
            scheduler=scheduler,
            batch_size=batch_size,
            generator=generator,
            loss_generator=loss_generator,
            device=device,
            validation_score=self._validation_score(module, X_val),
            previous_epochs=previous["n_iter_"],
            shard=shard,
        )
        self._set_fitted(
            {
                **features,
                **self._merged_history(previous, history, early_stopping),
                **family_attributes,
                "module_": module,
                "device_": device,
                "batch_size_": batch_size,
                "_rng_": rng,
                "_optimizer_": optimizer,
                "_plateau_progress_": _plateau_progress(scheduler),
                "_build_params_": self._build_params() if fresh else self._build_params_,
            },
            replace=fresh,
        )
        if not incremental and history.stop_reason is StopReason.MAX_ITER:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                "the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _validated_training_data(self, X, *, reset, early_stopping, device):
        """X checked and converted (numpy, a canonical CSR matrix or a torch
        tensor), and the attributes it defines (the feature attributes when
        ``reset``), without setting them on the estimator yet."""
        probe = object.__new__(type(self))  # validate_data sets them on its estimator
        probe.__dict__.update(self.__dict__)
        X = detached_input(X)
        namespace = array_namespace(X)
        X = validate_data(
            probe, X, dtype=self._float_dtypes(namespace), accept_sparse="csr", reset=reset
        )
        X = canonical_csr(X) if sp.issparse(X) else to_torch(X, namespace, device)
        check_float32_range(X)
        self._check_data(X)
        if early_stopping and X.shape[0] < 2:
            raise ValueError(
                f"early_stopping=True needs at least 2 samples to hold out a validation "
                f"set; got n_samples={X.shape[0]}."
            )
        names = ("n_features_in_", "feature_names_in_") if reset else ()
        attributes = {name: getattr(probe, name) for name in names if hasattr(probe, name)}
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

    def _starting_rng(self, shard, device, *, fresh):
        """The random generator a call draws its seeds from: new from
        ``random_state``, or the last call's. Data-parallel ranks share rank
        0's unless an int ``random_state`` makes them equal already."""
        if not fresh:
            return copy.deepcopy(self._rng_)
        rng = seed_source(self.random_state)
        if shard is not None and not isinstance(self.random_state, Integral):
            rng = np.random.default_rng(_distributed.shared_seed(draw_seed(rng), device))
        return rng

    def _starting_module(self, n_features, rng, device, *, fresh):
        """A newly built module, or a copy of ``module_`` to continue from."""
        if fresh:
            return self._seeded_module(n_features, draw_seed(rng)).to(device)
        return copy.deepcopy(self.module_).to(device)

    def _split_validation(self, rows, generator, early_stopping):
        """(training rows, held-out rows or None), as row sources."""
        if not early_stopping:
            return rows, None
        n_samples = len(rows)
        n_val = max(1, int(np.ceil(self.validation_fraction * n_samples)))
        if n_val >= n_samples:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no training "
                f"samples out of n_samples={n_samples}."
            )
        order = torch.randperm(n_samples, generator=generator, device=generator.device)
        order = order.to(rows.device)
        return rows.subset(order[n_val:]), rows.subset(order[:n_val])

    def _validation_score(self, module, X_val):
        """``score() -> float`` on the held-out rows, or None without them."""
        if X_val is None:
            return None

        def score():
            return self._map_rows(module, self._score_samples_batch, X_val).mean().item()

        return score

    def _starting_optimizer(self, module, device, *, reuse):
        """A new optimiser, or for ``partial_fit`` a copy of the last call's
        (its moments carry over, also through pickling and skae.save)."""
        previous = getattr(self, "_optimizer_", None) if reuse else None
        if previous is None:
            return self._new_optimizer(module.parameters(), device)
        return _engine.copy_optimizer(previous, module.parameters(), device=device)

    def _starting_scheduler(self, optimizer, *, incremental):
        """The learning-rate scheduler of this call (None for a constant rate).

        Every :meth:`fit` starts its schedule afresh at ``learning_rate``.
        :meth:`partial_fit` (``incremental``) runs its one epoch at
        ``learning_rate`` under "constant" and "cosine" (a cosine over one
        epoch), and continues "plateau" from the counters and the rate (kept by
        the optimiser) of the previous call.
        """
        progress = getattr(self, "_plateau_progress_", None) if incremental else None
        if self.learning_rate_schedule != "plateau" or progress is None:
            # a reused optimiser holds the rate where the last schedule left it
            for group in optimizer.param_groups:
                group["lr"] = self.learning_rate
        if incremental and self.learning_rate_schedule != "plateau":
            return None
        scheduler = self._new_scheduler(optimizer, self.max_iter)
        if scheduler is not None and progress is not None:
            scheduler.load_state_dict({**scheduler.state_dict(), **progress})
        return scheduler

    def _new_scheduler(self, optimizer, max_iter):
        """The ``torch.optim.lr_scheduler`` that ``learning_rate_schedule``
        names, over ``max_iter`` epochs, or None for "constant"."""
        if self.learning_rate_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_iter)
        if self.learning_rate_schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode="min",
                factor=0.1,
                patience=self.n_iter_no_change,
                threshold=self.tol,
                threshold_mode="abs",
                eps=0.0,  # torch's default 1e-8 would stop dividing small rates
            )
        return None

    def _history_attributes(self, fresh):
        """The history attributes a call continues from."""
        if fresh:
            return {
                "n_iter_": 0,
                "loss_curve_": [],
                "best_loss_": None,
                "validation_scores_": None,
                "best_validation_score_": None,
            }
        return {
            name: getattr(self, name)
            for name in (
                "n_iter_",
                "loss_curve_",
                "best_loss_",
                "validation_scores_",
                "best_validation_score_",
            )
        }

    @staticmethod
    def _merged_history(previous, history, early_stopping):
        """``previous`` history attributes extended by one engine run."""
        merged = dict(previous)
        merged["n_iter_"] += history.n_iter
        merged["loss_curve_"] = previous["loss_curve_"] + history.loss_curve
        if early_stopping:
            best = previous["best_validation_score_"]
            merged["validation_scores_"] = (
                previous["validation_scores_"] or []
            ) + history.validation_scores
            merged["best_validation_score_"] = max(
                -np.inf if best is None else best, history.best_validation_score
            )
            merged["best_loss_"] = None
        elif history.n_iter:
            best = previous["best_loss_"]
            merged["best_loss_"] = min(np.inf if best is None else best, history.best_loss)
        return merged

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
        later (a deep copy; ``random_state`` plays no part in its shape, the
        seed is drawn separately)."""
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
        builder = type(self)(**{k: v for k, v in build_params.items() if k in known})
        return builder._seeded_module(n_features, seed=0)

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
        batch_size,
        generator,
        device,
        validation_score=None,
        stop_early=True,
        previous_epochs=0,
        desc=None,
        shard=None,
        scheduler=None,
    ):
        """Run the engine with this estimator's settings, reporting progress
        as ``verbose`` asks (on rank 0 only, data-parallel); a non-finite loss
        raises here, with what to change."""
        min_learning_rate = 0.0
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            # less a rounding margin: a rate divided by 10 six times is at the
            # floor, not below it, however its last bits round
            min_learning_rate = self.learning_rate * MIN_LEARNING_RATE_FRACTION * (1 - 1e-9)
        with epoch_reporter(
            self.verbose if shard is None or shard.rank == 0 else 0,
            desc=desc or type(self).__name__,
            total=max_iter,
            first_epoch=previous_epochs,
        ) as report:
            history = _engine.train(
                module,
                batch_loss,
                X,
                optimizer=optimizer,
                batch_size=batch_size,
                max_iter=max_iter,
                generator=generator,
                device=device,
                shuffle=self.shuffle,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                validation_score=validation_score,
                stop_early=stop_early,
                on_epoch=lambda loss, score: report(loss, score, _engine.learning_rate(optimizer)),
                shard=shard,
                scheduler=scheduler,
                min_learning_rate=min_learning_rate,
            )
        if history.stop_reason is StopReason.NON_FINITE:
            raise ValueError(
                f"{type(self).__name__}: the training loss became non-finite (NaN or inf) "
                f"in epoch {previous_epochs + history.n_iter + 1}. Scale the data (for "
                "example with sklearn.preprocessing.StandardScaler) or lower learning_rate "
                f"(now {self.learning_rate})."
            )
        if history.stop_reason is StopReason.NON_FINITE_SCORE:
            raise ValueError(
                f"{type(self).__name__}: the validation score (on the rows early stopping "
                f"holds out) became non-finite (NaN or inf) in epoch "
                f"{previous_epochs + history.n_iter + 1}. Scale the data (for example "
                "with sklearn.preprocessing.StandardScaler) or lower learning_rate "
                f"(now {self.learning_rate})."
            )
        if history.stop_reason is StopReason.INTERRUPTED:
            warnings.warn("Training interrupted by user.", UserWarning, stacklevel=3)
        return history

    def _new_optimizer(self, parameters, device):
        """The optimiser named by the ``optimizer`` parameter."""
        return _engine.make_optimizer(
            self.optimizer,
            parameters,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            device=device,
        )

    def _resolve_batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(64, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. "
                "It is going to be clipped",
                stacklevel=3,
            )
            return n_samples
        return self.batch_size

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
        CSR matrix densified a block at a time, or a torch tensor) into a
        preallocated output in X's float dtype: numpy, or for a tensor a
        tensor on X's device. ``passes``: how many forward passes ``fn`` makes
        over each block (it sizes the CPU threads to the work).

        Inference runs in X's precision: a float64 copy of the module for
        float64 input. float32 matmul kernels may round differently with the
        block's shape; in float64 that difference stays at rounding level
        (~1e-16), so each row's output does not depend, to far below
        scikit-learn's 1e-7 tolerance, on which rows share its block.
        """
        is_tensor = isinstance(X, torch.Tensor)
        dtype = X.dtype if is_tensor else TORCH_DTYPES[X.dtype]
        module = self.module_
        if dtype != torch.float32:
            module = copy.deepcopy(module).to(dtype)
        step = block_rows(max(X.shape[1], self.n_features_in_))
        out = None
        flops = passes * _engine.step_flops(module, min(X.shape[0], step), training=False)
        with (
            torch.inference_mode(),
            _engine.cpu_threads_for(flops, self.device_),
            _engine.deterministic_algorithms(self.deterministic, self.device_),
        ):
            for start in range(0, X.shape[0], step):
                stop = start + step
                block = fn(module, self._input_block(X[start:stop], dtype))
                self._check_finite_output(block, start)
                block = block.to(X.device) if is_tensor else block.cpu().numpy()
                if out is None:
                    shape = (X.shape[0], *block.shape[1:])
                    out = (
                        torch.empty(shape, dtype=X.dtype, device=X.device)
                        if is_tensor
                        else np.empty(shape, dtype=X.dtype)
                    )
                out[start:stop] = block
        return out

    def _input_block(self, block, dtype):
        """Rows of validated input as a dense tensor on ``device_``."""
        if isinstance(block, torch.Tensor):  # detached by _inference
            return block.to(self.device_, dtype)
        if sp.issparse(block):
            block = block.toarray()
        return as_tensor(block, self.device_, dtype)

    def _check_finite_output(self, block, start):
        """Never hand back NaN or inf: huge inputs can overflow the arithmetic."""
        finite = torch.isfinite(block).reshape(len(block), -1).all(dim=1)
        if not finite.all():
            row = start + int(torch.argmin(finite.to(torch.uint8)))
            dtype = str(block.dtype).removeprefix("torch.")
            hint = " (or pass float64 input)" if block.dtype == torch.float32 else ""
            raise ValueError(
                f"{type(self).__name__} computed non-finite values (NaN or inf) from row "
                f"{row} of the input: its values overflow the model's {dtype} "
                f"arithmetic. Scale the input the way the training data was scaled{hint}."
            )

    @staticmethod
    def _float_dtypes(namespace):
        """The float dtypes validation keeps, in X's array namespace."""
        if namespace is None:
            return FLOAT_DTYPES
        xp = namespace[0]
        return [xp.float64, xp.float32]

    def _inference(self, X, fn, method, *, codes=False, passes=1):
        """``fn(module, block)`` over the rows of ``X`` after validating it:
        numpy out for numpy, scipy.sparse and array-likes; with array API
        dispatch, an array of X's namespace on X's device (a torch tensor
        comes back a tensor, computed without leaving torch). ``codes``: X
        holds codes (``inverse_transform``), ``n_components`` wide;
        ``passes`` as in :meth:`_apply`."""
        check_is_fitted(self)
        X = detached_input(X)
        namespace = array_namespace(X)
        self._check_same_namespace(namespace, method)
        dtypes = self._float_dtypes(namespace)
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
        if namespace is not None and not _is_xp_namespace(namespace[0], "torch"):
            out = move_to(out, xp=namespace[0], device=namespace[1])
        return out

    def _check_same_namespace(self, namespace, method):
        """Under array API dispatch, as scikit-learn's ``check_same_namespace``:
        inference takes arrays of the namespace and device that fit saw."""
        if not get_config()["array_api_dispatch"]:
            return
        fitted = getattr(self, "_array_namespace_", None)
        seen = namespace_name(namespace)
        if seen != (None if fitted is None else tuple(fitted)):

            def describe(name):
                return "numpy arrays" if name is None else f"{name[0]} arrays on {name[1]}"

            raise ValueError(
                f"Inputs passed to {type(self).__name__}.{method}() must use the same "
                f"namespace and the same device as those passed to fit(): fit saw "
                f"{describe(fitted)}, {method} got {describe(seen)}. Pass X as fit did, "
                "or fit on X's kind of array."
            )

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
        X_original : ndarray of shape (n_samples, n_features_in_)
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
        return self._inference(X, self._score_samples_batch, "score_samples")

    def score(self, X: ArrayLike, y: ArrayLike | None = None) -> float:
        """Mean of :meth:`score_samples` over X (higher is better).

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
        A dask array (``dask_ml.wrappers.ParallelPostFit.score`` passes its
        input on) is scored where its blocks are: the workers compute each
        block's scores and only their mean comes back.
        """
        if _is_dask_array(X):
            check_is_fitted(self)
            return _score_dask_array(self, X)
        scores = self.score_samples(X)
        xp, _ = get_namespace(scores)
        return float(xp.mean(scores))

    # ----------------------------------------------------- the fitted state

    def _export_state(self) -> dict[str, Any]:
        """The fitted state as plain data: str-keyed dicts, lists, tuples,
        numbers, strings, None and numpy arrays (CPU), nothing else.

        Pickling, ``copy.deepcopy``, ``skops`` and ``skae.save`` all store
        this and rebuild the estimator with :meth:`_import_state`. What is
        fitted is every attribute named by :func:`is_fitted_name`; four of
        them are converted (the module to its weights, the device to its name,
        the random generator and the optimiser to their states), the others
        are plain data already.
        """
        attributes = {}
        for name, value in self._fitted_attributes().items():
            if name == "module_":
                value = _module_weights(value)
            elif name == "device_":
                value = str(value)
            elif name == "_rng_":
                value = value.bit_generator.state
            elif name == "_optimizer_" and value is not None:
                value = _optimizer_state(value)
            attributes[name] = value
        return {"version": STATE_VERSION, "attributes": attributes}

    def _import_state(self, state: dict[str, Any]) -> None:
        """Become the fitted estimator :meth:`_export_state` described: the
        module built by this class from the parameters it was fitted with,
        the weights loaded, the optimiser rebuilt with its moments, on the
        saved device when it exists here (else the CPU, with a warning)."""
        name = type(self).__name__
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            found = state.get("version") if isinstance(state, dict) else None
            raise ValueError(
                f"{name}: the saved fitted state has version {found!r}; this skae "
                f"({_skae_version()}) reads version {STATE_VERSION}."
            )
        attributes = dict(state["attributes"])
        weights = attributes.pop("module_")
        device = available_device(attributes.pop("device_"), name)
        optimizer = attributes.pop("_optimizer_", None)
        rng = attributes.pop("_rng_", None)
        module = self._architecture(attributes["_build_params_"], attributes["n_features_in_"])
        _load_module_weights(module, weights)
        module.to(device)
        if optimizer is not None:
            optimizer = _restored_optimizer(optimizer, module, device)
        self._set_fitted(
            {
                **attributes,
                "module_": module,
                "device_": device,
                "_rng_": None if rng is None else rng_from_state(rng),
                "_optimizer_": optimizer,
            },
            replace=True,
        )

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
        state["_skae_version"] = _skae_version()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        pickled = state.pop("_skae_version", None)
        if "_module_weights" in state:
            raise ValueError(
                f"This {type(self).__name__} was pickled by skae {pickled}, whose pickle "
                f"layout skae {_skae_version()} does not read. Load it with skae {pickled} "
                "and save it with skae.save (skae.load reads those files), or refit it."
            )
        if pickled is not None and pickled != _skae_version():
            warnings.warn(
                f"Trying to unpickle {type(self).__name__} from skae {pickled} with skae "
                f"{_skae_version()}. This might lead to breaking code or invalid results; "
                "use at your own risk, or refit, or use skae.save/skae.load.",
                UserWarning,
                stacklevel=2,
            )
        fitted = state.pop("_skae_fitted_state", None)
        super().__setstate__(state)
        for name, value in type(self)().get_params(deep=False).items():
            # pickled before the parameter existed: it gets its default
            self.__dict__.setdefault(name, value)
        if fitted is not None:
            self._import_state(fitted)


class BaseMLPAutoencoder(BaseAutoencoder):
    """The MLP family: hidden layers mirrored in the decoder, tied weights, a
    corruption of the training input, a penalty on the code and greedy
    layer-wise pretraining. Not for direct use.

    A member overrides ``_corrupt``, ``_penalty`` or ``_code_activation``.
    """

    _parameter_constraints: dict = {
        **BaseAutoencoder._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "tied_weights": ["boolean"],
        "pretraining": [StrOptions({"greedy"}), None],
    }

    #: Activation of the code layer; members with a bounded or non-negative
    #: code override it.
    _code_activation = "identity"

    def _corrupt(self, x, generator):
        """The training input made from a clean batch (identity here)."""
        return x

    def _penalty(self, module, x, code):
        """A regulariser on the code of a clean batch, added to the mean loss."""
        return 0.0

    def _check_data(self, X):
        super()._check_data(X)
        positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")

    def _build_module(self, n_features):
        return AutoencoderModule(
            n_features,
            self.n_components,
            positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes"),
            self.activation,
            output_activation=RECONSTRUCTION_LOSSES[self.loss][1],
            code_activation=self._code_activation,
            tied_weights=self.tied_weights,
        )

    def _training_loss(self, module, generator, *, reconstruction=None, penalize=True):
        """``batch_loss(x) -> 0-d tensor`` for the engine: the reconstruction of
        the clean batch from its corruption, plus the penalty.

        ``reconstruction`` replaces the loss chosen by ``loss`` (greedy
        pretraining of inner layers reconstructs hidden activations with squared
        error); ``penalize=False`` leaves out :meth:`_penalty`.
        """
        reconstruction = reconstruction or RECONSTRUCTION_LOSSES[self.loss][0]
        total = BATCH_TOTALS[reconstruction]

        def batch_loss(x):
            code = module.encode(self._corrupt(x, generator))
            loss = total(module.output(code), x) / x.shape[0]
            return loss + self._penalty(module, x, code) if penalize else loss

        return batch_loss

    def _train_module(self, module, X, *, optimizer, fresh, incremental, **train_kwargs):
        """Greedy pretraining first when asked (a fit from scratch), then the
        end-to-end training; the pretraining epochs lead the loss curve."""
        if not fresh:
            return super()._train_module(
                module, X, optimizer=optimizer, fresh=fresh, incremental=incremental, **train_kwargs
            )
        curves = []
        if self.pretraining == "greedy" and not incremental:
            curves = self._pretrain(module, X, **train_kwargs)
            train_kwargs["desc"] = f"{type(self).__name__} fine-tuning"
        train_kwargs["previous_epochs"] += sum(map(len, curves))
        history, attributes = super()._train_module(
            module, X, optimizer=optimizer, fresh=fresh, incremental=incremental, **train_kwargs
        )
        history.loss_curve[:0] = [loss for curve in curves for loss in curve]
        return history, {**attributes, "pretraining_loss_curves_": curves}

    def _pretrain(self, module, X, *, loss_generator, validation_score, **train_kwargs):
        """Train each layer pair of ``module`` as a shallow autoencoder on the
        codes of the layer below; returns one loss curve per layer."""
        pairs = module.layer_pairs()
        curves = []
        for depth, pair in enumerate(pairs):
            batch_loss = self._training_loss(
                pair,
                loss_generator,
                reconstruction=None if depth == 0 else squared_error,
                penalize=depth == len(pairs) - 1,
            )
            optimizer = self._new_optimizer(pair.parameters(), train_kwargs["device"])
            history = self._train(
                pair,
                batch_loss,
                X,
                **{
                    **train_kwargs,
                    "optimizer": optimizer,
                    "scheduler": self._new_scheduler(optimizer, self.max_iter),
                    "max_iter": self.max_iter,
                    "previous_epochs": train_kwargs["previous_epochs"] + sum(map(len, curves)),
                    "desc": f"{type(self).__name__} pretraining layer {depth + 1}/{len(pairs)}",
                },
            )
            curves.append(history.loss_curve)
            if history.stop_reason is StopReason.INTERRUPTED:
                break
            # the next layer learns to reconstruct this layer's codes
            X = self._map_rows(pair, lambda m, x: m.encode(x), X).to(train_kwargs["device"])
        return curves


# ------------------------------------------------------------------ dask


def _is_dask_array(X):
    """Whether ``X`` is a 2-d dask array (told without importing dask)."""
    return hasattr(X, "__dask_graph__") and hasattr(X, "map_blocks") and getattr(X, "ndim", 0) == 2


def _score_samples_of_block(block, estimator):
    return estimator.score_samples(block)


def _score_dask_array(estimator, X):
    """The mean score of a dask array's rows, computed block by block on the
    cluster; the estimator goes in as an argument, so that dask ships a large
    one once (see ``__sizeof__``)."""
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    dtype = X.dtype if X.dtype in FLOAT_DTYPES else np.dtype(np.float64)
    scores = X.map_blocks(
        _score_samples_of_block,
        estimator=estimator,
        drop_axis=1,
        dtype=dtype,
        meta=np.empty((0,), dtype=dtype),
    )
    return float(scores.mean().compute())


# -------------------------------------------------------- state conversion


def _numpy(tensor):
    return tensor.detach().cpu().numpy()


def _module_weights(module):
    """``{"weights": {name: array}, "aliases": {name: name kept}}``: the state
    dict with tensors that are the same tensor as an earlier entry (tied
    weights) kept once."""
    weights, aliases, seen = {}, {}, {}
    for key, tensor in module.state_dict().items():
        identity = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
            tensor.dtype,
        )
        kept = seen.setdefault(identity, key)
        if kept != key:
            aliases[key] = kept
        else:
            weights[key] = _numpy(tensor)
    return {"weights": weights, "aliases": aliases}


def _load_module_weights(module, saved):
    """Copy saved weights into ``module``; a clear ValueError when they do not
    fit it (other layers, shapes, dtypes or tied weights)."""
    expected = _module_weights(module)
    if saved["aliases"] != expected["aliases"]:
        raise ValueError(
            f"The saved tied weights {saved['aliases']} do not match the module's "
            f"{expected['aliases']}."
        )
    weights, shapes = saved["weights"], expected["weights"]
    if "input_scale" in shapes and "input_scale" not in weights:
        # saved before modules had an input scale: they worked at scale 1
        weights = {**weights, "input_scale": np.ones((), dtype=shapes["input_scale"].dtype)}
    missing, unexpected = sorted(set(shapes) - set(weights)), sorted(set(weights) - set(shapes))
    if missing or unexpected:
        raise ValueError(
            f"The saved weights do not fit the module: missing {missing}, unexpected {unexpected}."
        )
    for key, array in weights.items():
        array = np.asarray(array)
        if array.shape != shapes[key].shape or array.dtype != shapes[key].dtype:
            raise ValueError(
                f"Weight {key!r} has shape {array.shape} and dtype {array.dtype} in the saved "
                f"state; the module expects {shapes[key].shape} and {shapes[key].dtype}."
            )
    full = {key: torch.tensor(np.asarray(array)) for key, array in weights.items()}
    full.update({alias: full[kept] for alias, kept in saved["aliases"].items()})
    module.load_state_dict(full, strict=True)


def _plateau_progress(scheduler):
    """What :meth:`BaseAutoencoder._starting_scheduler` continues a
    ``ReduceLROnPlateau`` from (plain data), or None for other schedules."""
    if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return None
    state = scheduler.state_dict()
    return {key: state[key] for key in PLATEAU_PROGRESS}


def _optimizer_state(optimizer):
    """An optimiser as plain data: its kind, and its state dict with arrays
    for tensors and str keys."""
    state = optimizer.state_dict()
    return {
        "kind": _engine.OPTIMIZER_NAMES[type(optimizer)],
        "param_groups": state["param_groups"],
        "state": {
            str(index): {key: _numpy(v) if torch.is_tensor(v) else v for key, v in values.items()}
            for index, values in state["state"].items()
        },
    }


def _restored_optimizer(saved, module, device):
    """The optimiser :func:`_optimizer_state` described, over ``module``'s
    parameters, with its moments."""
    try:
        optimizer = _engine.make_optimizer(
            saved["kind"], module.parameters(), learning_rate=1.0, weight_decay=0.0, device=device
        )
        state = {
            int(index): {
                key: torch.tensor(np.asarray(v)) if isinstance(v, np.ndarray) else v
                for key, v in values.items()
            }
            for index, values in saved["state"].items()
        }
        groups = [dict(group) for group in saved["param_groups"]]
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"The saved optimiser state does not fit the module: {exc}") from exc
    return optimizer


def _skae_version():
    import skae

    return skae.__version__
