"""The convolutional autoencoder: rows of X are flattened images or signals."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from numbers import Integral
from typing import Literal

import numpy as np
import torch

from ._base import Activation, BaseAutoencoder
from ._losses import RECONSTRUCTION_LOSSES
from ._validation import SizeInterval, positive_ints
from ._warnings import user_stacklevel
from .nn import ConvolutionalModule


class ConvolutionalAutoencoder(BaseAutoencoder):
    """Convolutional autoencoder over rows that are flattened images.

    Each row of X is viewed as an image of ``image_shape`` (as
    ``X.reshape(-1, *image_shape)`` would, C order). Stride-2 convolutions
    halve the image at each of the ``channels`` layers, a linear
    layer maps the last feature map to the ``n_components`` code, and
    transposed convolutions mirror the way back to exactly the input size.
    With ``image_shape=None`` each row is a one-channel 1-D signal, so the
    estimator takes data of any width.

    Parameters
    ----------
    n_components : int, default=2
        Size of the code.
    init : {"pca", "random"}, default="pca"
        How the network starts. "pca": a linear path beside the non-linear
        layers holds the components of a PCA of the rows given to
        :meth:`fit`, and the non-linear layers join it through gates that
        start at zero, so that the untrained network *is* that PCA (the same
        codes and reconstructions; with ``loss="bce"``, the codes, and
        the reconstruction through the logistic). With ``early_stopping`` the start is
        scored on the held-out rows and kept unless an epoch beats it, so the
        fit is never worse than PCA there (``best_epoch_`` says which won).
        The linear path takes 0.3 of each optimiser step, so that noise does
        not move it off PCA before the non-linear layers learn (see
        :ref:`pca_start`). "random": the network alone from a random start,
        as in skae 0.2.
        The linear path maps the flattened image to the code beside the
        convolutions.
    image_shape : tuple of int or None, default=None
        ``(height, width)`` for one-channel images, ``(channels, height,
        width)`` for several channels; ``None`` treats each row as a 1-D signal
        of length ``n_features``. The product must equal ``n_features``.
        With ``None`` and a width that is a square of 16 or more (64 = 8 x 8,
        784 = 28 x 28), ``fit`` warns that rows are taken as 1-D signals: it
        does not guess a square image, since a square width need not be one
        (measured on digits at ``n_components=2``, 5-fold logistic regression
        on the codes: 0.664 with ``image_shape=(8, 8)``, 0.444 as 1-D).
    channels : array-like of int or int, default=(16, 32)
        Number of channels of each convolutional layer, from the input inwards;
        the decoder uses them in reverse.
    kernel_size : int, default=3
        Size of every convolution kernel.
    hidden_layer_sizes : array-like of int or int, default=()
        Widths of dense layers between the flattened last feature map and the
        code (mirrored in the decoder); ``()`` maps it to the code linearly.
    activation : {"relu", "identity", "logistic", "tanh", "leaky_relu", "elu", \
"gelu", "softplus"}, default="relu"
        Activation after every convolution and before the code's linear layer.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss, summed over features: squared error with a linear
        output, or binary cross-entropy with a logistic output (X in [0, 1]).
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        Optimiser; "sgd" uses Nesterov momentum 0.9.
    learning_rate : float or "auto", default="auto"
        Step size of the optimiser (the initial one under a schedule).
        "auto" is 5e-3 for batches of up to 64 rows and times the square
        root of ``batch / 64`` for larger ones, at most 1e-2 (from 256
        rows, the automatic batch of a large data set), where ``batch`` is
        ``batch_size_`` times the number of data-parallel processes: the
        rates at which default fits stopped early without reconstructing
        worse than PCA on the benchmark data; see :ref:`training`.
    learning_rate_schedule : {"constant", "cosine", "plateau"}, default="constant"
        How the step size changes over the epochs of a call. "constant" keeps
        ``learning_rate``. "cosine" anneals it to zero along half a cosine over
        the ``max_iter`` epochs of each :meth:`fit` (a warm start begins a new
        cycle at ``learning_rate``). "plateau" divides it by 10 whenever the
        monitored loss (the validation loss with ``early_stopping``, else the
        training loss) has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs, and stops training once it falls below 1e-6
        times ``learning_rate`` instead of at the first such plateau, as
        MLPRegressor's ``learning_rate="adaptive"`` does. :meth:`partial_fit`
        runs its one epoch at ``learning_rate`` under "constant" and "cosine";
        under "plateau" it carries on from the previous call (its rate, its
        best loss and its count of epochs without improvement) and never stops.
    weight_decay : float, default=0.0
        L2 penalty (decoupled for "adamw").
    batch_size : int or "auto", default="auto"
        Minibatch size; "auto" is ``min(64, n_samples)`` up to 2,048
        training rows (not MLPRegressor's 200: smaller minibatches gave more
        accurate codes at small ``n_components``) and a 32nd of the rows
        above, at most 256 (fewer, larger steps: large data sets fit
        faster, with codes as good); see :ref:`training`.
    max_iter : int, default=200
        Maximum number of epochs per call to :meth:`fit`.
    tol : float, default=1e-4
        Improvement of the loss (or validation score), relative to the best
        so far, below which an epoch counts as no improvement.
    n_iter_no_change : int, default=5
        Stop after more than this many epochs without improvement (with
        early stopping, 10 let some digits fits run to ``max_iter``).
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the data, stop on its score and
        restore the weights of the best epoch.
        On by default: without it most default fits ran to ``max_iter``;
        see :ref:`training`.
    validation_fraction : float, default=0.1
        Fraction of the training data held out when ``early_stopping``.
    shuffle : bool, default=True
        Shuffle the samples at every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and the validation split. An int
        gives bit-identical results on the CPU. The global numpy and torch
        random states are neither used nor changed.
    device : str or torch.device, default="auto"
        "auto" picks CUDA when available, else the CPU; or "cpu", "cuda",
        "cuda:1", a ``torch.device``.
    deterministic : bool, default=False
        Run with torch's deterministic algorithms (and deterministic cuDNN)
        during fit and inference, so that CUDA results repeat bit for bit on the
        same GPU and software; slower on CUDA. Sets ``CUBLAS_WORKSPACE_CONFIG``
        when unset, which takes effect only if cuBLAS was not used yet in the
        process. The CPU is deterministic either way.
    distributed : {"auto"} or bool, default="auto"
        Data-parallel training with ``torch.nn.parallel.DistributedDataParallel``
        when the script runs under ``torchrun`` (or has initialised the default
        process group): every rank passes the same X, each trains on its slice
        of every global batch of ``world_size * batch_size`` rows, and all end
        with the same model. "auto" does so from the main thread; False always
        trains this process alone (for example on data of its own); True
        requires a process group and raises without one.
    verbose : int, default=0
        0 is silent. 1 shows a tqdm progress bar over the epochs, on stderr,
        with the training and validation loss. 2 also logs one line per epoch
        on the ``"skae"`` logger (on stderr when logging is not configured).
    warm_start : bool, default=False
        Continue from the previous solution when :meth:`fit` is called again; a
        change since to a parameter that shapes the network (such as
        ``n_components`` or ``loss``) is refused.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted :class:`skae.nn.ConvolutionalModule`.
    image_shape_ : tuple of int
        The ``(channels, *spatial)`` shape each row is viewed as.
    device_ : torch.device
        The device the module lives on.
    n_iter_ : int
        Epochs run over every call (``len(loss_curve_)``).
    loss_curve_ : list of float
        Mean training loss per sample, one entry per epoch.
    best_loss_ : float or None
        Lowest training loss of the calls since the last one with
        ``early_stopping`` (``partial_fit`` never has it); None after one.
    validation_scores_ : list of float or None
        Validation score per epoch with ``early_stopping``; None otherwise.
        NaN for epochs trained without it (``partial_fit``) once any epoch
        was scored.
    best_validation_score_ : float or None
        With ``early_stopping``, the best validation score of the last call
        (its start included): the kept weights'. None otherwise.
    best_epoch_ : int or None
        With ``early_stopping``, the epoch (of the last call) whose weights
        were kept: 0 when no epoch beat the starting point (PCA, with
        ``init="pca"``). None otherwise.
    init_validation_score_ : float or None
        With ``early_stopping`` and ``init="pca"`` (or a warm start), the
        validation score of the starting point, which the kept weights never
        score below; None otherwise.
    batch_size_ : int
        The minibatch size used.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when X has string column names.

    See Also
    --------
    sklearn.decomposition.PCA : The linear baseline.
    Autoencoder : Fully connected layers, for data that is not an image.

    References
    ----------
    J. Masci, U. Meier, D. Ciresan and J. Schmidhuber, "Stacked convolutional
    auto-encoders for hierarchical feature extraction", ICANN 2011.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import ConvolutionalAutoencoder
    >>> X = load_digits().data / 16
    >>> cae = ConvolutionalAutoencoder(n_components=8, image_shape=(8, 8),
    ...                                max_iter=10, random_state=0, device="cpu")
    >>> cae.fit_transform(X).shape
    (1797, 8)
    >>> cae.inverse_transform(cae.transform(X[:2])).shape
    (2, 64)
    """

    _parameter_constraints: dict = {
        **BaseAutoencoder._parameter_constraints,
        "image_shape": ["array-like", None],
        "channels": ["array-like", SizeInterval(Integral, 1, None, closed="left")],
        "kernel_size": [SizeInterval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", SizeInterval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        n_components: int = 2,
        init: Literal["pca", "random"] = "pca",
        image_shape: tuple[int, ...] | None = None,
        channels: int | Sequence[int] = (16, 32),
        kernel_size: int = 3,
        hidden_layer_sizes: int | Sequence[int] = (),
        activation: Activation = "relu",
        loss: Literal["mse", "bce"] = "mse",
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
        super().__init__(
            n_components=n_components,
            init=init,
            activation=activation,
            loss=loss,
            optimizer=optimizer,
            learning_rate=learning_rate,
            learning_rate_schedule=learning_rate_schedule,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_iter=max_iter,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            shuffle=shuffle,
            random_state=random_state,
            device=device,
            deterministic=deterministic,
            distributed=distributed,
            verbose=verbose,
            warm_start=warm_start,
        )
        self.image_shape = image_shape
        self.channels = channels
        self.kernel_size = kernel_size
        self.hidden_layer_sizes = hidden_layer_sizes

    def _resolve_image_shape(self, n_features):
        if self.image_shape is None:
            return (1, n_features)
        shape = tuple(self.image_shape)
        if len(shape) not in (2, 3) or not all(
            isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in shape
        ):
            raise ValueError(
                "image_shape must be (height, width) or (channels, height, width) of "
                f"positive integers, or None; got {self.image_shape!r}."
            )
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != n_features:
            raise ValueError(
                f"image_shape={self.image_shape!r} holds {int(np.prod(shape))} values but X "
                f"has {n_features} features per row."
            )
        return shape if len(shape) == 3 else (1, *shape)

    @staticmethod
    def _same_built_setting(name, was, now):
        """Whether ``image_shape`` ``was`` and ``now`` view rows as the same
        image: ``(h, w)`` is ``(1, h, w)`` (a warm start had refused it)."""
        if name != "image_shape" or was is None or now is None:
            return False

        def image(value):
            shape = tuple(int(s) for s in np.ravel(value))
            return (1, *shape) if len(shape) == 2 else shape

        try:
            return image(was) == image(now)
        except (TypeError, ValueError):
            return False

    def _validated_training_data(self, X, *, reset, **kwargs):
        X, attributes = super()._validated_training_data(X, reset=reset, **kwargs)
        side = math.isqrt(X.shape[1])
        if reset and self.image_shape is None and side >= 4 and side * side == X.shape[1]:
            warnings.warn(
                f"ConvolutionalAutoencoder: image_shape=None treats each row of "
                f"{X.shape[1]} features as a 1-D signal. If the rows are {side} x "
                f"{side} images, pass image_shape=({side}, {side}).",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return X, attributes

    def _check_data(self, X):
        super()._check_data(X)
        self._resolve_image_shape(X.shape[1])
        positive_ints(self.channels, "channels")
        positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")

    @property
    def image_shape_(self) -> tuple[int, ...]:
        """The ``(channels, *spatial)`` shape each row is viewed as."""
        return self.module_.image_shape

    def _build_module(self, n_features):
        return ConvolutionalModule(
            self._resolve_image_shape(n_features),
            self.n_components,
            channels=positive_ints(self.channels, "channels"),
            kernel_size=int(self.kernel_size),  # numpy's ints too (a grid's np.arange)
            hidden_layer_sizes=positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes"),
            activation=self.activation,
            output_activation=RECONSTRUCTION_LOSSES[self.loss][1],
            linear_path=self.init == "pca",
        )
