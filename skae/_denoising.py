"""The denoising autoencoder: the base plus a corruption of the training input."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Literal

import numpy as np
import torch

from ._base import Activation
from ._mlp import BaseMLPAutoencoder
from ._noise import NOISES
from ._validation import Interval, StrOptions


class DenoisingAutoencoder(BaseMLPAutoencoder):
    """Denoising autoencoder: reconstructs clean input from a corrupted copy.

    While training, each minibatch is corrupted by ``noise`` and the network is
    asked to reconstruct the clean batch (Vincent et al., 2008); this makes the
    code robust and less prone to copying the input. :meth:`transform` and
    every other method after fitting see the clean input and are deterministic.

    Parameters
    ----------
    n_components : int, default=2
        Size of the code. It may exceed ``n_features`` (an over-complete code).
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
    hidden_layer_sizes : array-like of int or int, default=(100,)
        Widths of the encoder's hidden layers; the decoder uses them in reverse.
        ``()`` gives a single linear map each way.
    activation : {"relu", "identity", "logistic", "tanh", "leaky_relu", "elu", \
"gelu", "softplus"}, default="relu"
        Activation of the hidden layers. The code layer is linear.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss, summed over features: squared error with a linear
        output, or binary cross-entropy with a logistic output (X in [0, 1]).
    noise : {"masking", "gaussian", "salt_and_pepper"}, default="gaussian"
        Corruption of the training input: "masking" sets a random fraction
        ``noise_level`` of the entries to zero; "gaussian" adds noise of
        standard deviation ``noise_level``; "salt_and_pepper" sets a fraction
        ``noise_level`` of the entries to their column's minimum or maximum
        in the batch (a batch of one row, or of equal rows, stays as it is:
        use a ``batch_size`` of a few dozen rows, as the default does).
    noise_level : float, default=0.05
        Fraction of corrupted entries (in [0, 1)) for "masking" and
        "salt_and_pepper"; standard deviation for "gaussian", in the units of
        X. The default, Gaussian noise of 0.05 (for data in [0, 1]), is
        the noise that kept the reconstruction of clean data close to PCA's
        where masking made it worse; see :ref:`training`.
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
        Maximum number of epochs per call to :meth:`fit` (with greedy
        pretraining, also of each layer pair's pretraining before it).
    tol : float, default=1e-4
        Improvement of the loss (or validation score), relative to the best
        so far, below which an epoch counts as no improvement.
    n_iter_no_change : int, default=5
        Stop after more than this many epochs without improvement (with
        early stopping, 10 let some digits fits run to ``max_iter``).
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the data, stop on its score (clean
        reconstruction) and restore the weights of the best epoch.
        On by default: without it most default fits ran to ``max_iter``;
        see :ref:`training`.
    validation_fraction : float, default=0.1
        Fraction of the training data held out when ``early_stopping``.
    shuffle : bool, default=True
        Shuffle the samples at every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the corruption and the validation
        split. An int gives bit-identical results on the CPU. The global numpy
        and torch random states are neither used nor changed.
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
    tied_weights : bool, default=False
        Decoder layers use the transposed weights of their encoder mirrors.
    pretraining : {None, "greedy"}, default=None
        "greedy" gives a stacked denoising autoencoder (Vincent et al., 2010):
        each layer is first trained as a shallow denoising autoencoder on the
        (corrupted) codes of the layer below, for up to ``max_iter`` epochs,
        then the whole network is fine-tuned end to end.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted :class:`skae.nn.AutoencoderModule`.
    device_ : torch.device
        The device the module lives on.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Mean training loss per sample (on corrupted input), one entry per epoch:
        pretraining epochs first, then the end-to-end epochs.
    pretraining_loss_curves_ : list of list of float
        With ``pretraining="greedy"``, the loss curve of each layer's
        pretraining; empty otherwise.
    best_loss_ : float or None
        Lowest training loss of the calls since the last one with
        ``early_stopping`` (``partial_fit`` never has it); None after one.
    validation_scores_ : list of float or None
        Validation score (negative clean reconstruction loss) per end-to-end
        epoch with ``early_stopping``; None otherwise. NaN for epochs trained
        without it (``partial_fit``) once any epoch was scored.
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
    Autoencoder : The same network trained on clean input.

    References
    ----------
    P. Vincent, H. Larochelle, Y. Bengio and P.-A. Manzagol, "Extracting and
    composing robust features with denoising autoencoders", ICML 2008.

    P. Vincent, H. Larochelle, I. Lajoie, Y. Bengio and P.-A. Manzagol,
    "Stacked denoising autoencoders", JMLR 11, 3371-3408, 2010.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import DenoisingAutoencoder
    >>> X = load_digits().data / 16
    >>> dae = DenoisingAutoencoder(n_components=8, noise="masking", noise_level=0.3,
    ...                            max_iter=20, random_state=0, device="cpu")
    >>> dae.fit_transform(X).shape
    (1797, 8)
    """

    _parameter_constraints: dict = {
        **BaseMLPAutoencoder._parameter_constraints,
        "noise": [StrOptions(set(NOISES))],
        "noise_level": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        n_components: int = 2,
        init: Literal["pca", "random"] = "pca",
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: Activation = "relu",
        loss: Literal["mse", "bce"] = "mse",
        noise: str = "gaussian",
        noise_level: float = 0.05,
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
        tied_weights: bool = False,
        pretraining: Literal["greedy"] | None = None,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.tied_weights = tied_weights
        self.pretraining = pretraining
        self.noise = noise
        self.noise_level = noise_level

    def _check_data(self, X):
        super()._check_data(X)
        if self.noise in ("masking", "salt_and_pepper") and self.noise_level >= 1:
            raise ValueError(
                f"noise_level is the fraction of corrupted entries for noise={self.noise!r} "
                f"and must be in [0, 1); got {self.noise_level} (at 1 every entry is "
                "corrupted, and the input says nothing of its row)."
            )

    def _corrupt(self, x, generator, units=1.0):
        if self.noise_level == 0:  # no corruption: the plain model's step, bit for bit
            return x
        # a standard deviation is in X's units; fractions have none
        level = self.noise_level * units if self.noise == "gaussian" else self.noise_level
        with torch.no_grad():
            return NOISES[self.noise](x, level, generator)
