"""The sparse autoencoder: a sparsity penalty on the code."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Real
from typing import Literal

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from ._activations import NEGATIVE_GRADIENT_SLOPE, LeakyGradientReLU
from ._base import Activation
from ._losses import SPARSITY_PENALTIES
from ._mlp import BaseMLPAutoencoder, penalty_weight
from ._validation import Interval, StrOptions
from ._warnings import user_stacklevel

#: Rows of the training data whose codes the check for an all-zero L1 code reads.
DEAD_CODE_ROWS = 2048
#: The gradient below zero of the L1 code units beside init="pca"'s linear
#: path: the reconstruction's pull on a unit there is weak (it adds little to
#: PCA's code), and at the random start's 0.01 units still died on some seeds.
PCA_START_GRADIENT_SLOPE = 0.1


class SparseAutoencoder(BaseMLPAutoencoder):
    """Sparse autoencoder: a penalty keeps most code units near zero.

    With ``sparsity="kl"`` the code units are logistic and the penalty is
    ``sparsity_weight * sum_j KL(rho || rho_hat_j)``, where ``rho_hat_j`` is the
    mean activation of unit j over the batch and ``rho = sparsity_target``
    (Ng's sparse autoencoder notes). With ``sparsity="l1"`` the code units are
    ReLU (so they can be exactly zero) and the penalty is ``sparsity_weight``
    times the mean L1 norm of the code. Over-complete codes
    (``n_components > n_features``, with ``init="random"``) are where sparsity
    matters most: without it an over-complete autoencoder can learn a dense,
    near-identity code.

    Parameters
    ----------
    n_components : int, default=2
        Size of the code. It may exceed ``n_features`` (an over-complete code).
    init : {"pca", "random"}, default="pca"
        How the network starts (see :ref:`pca_start`). "pca": a linear path
        beside the non-linear layers holds the components of a PCA of the
        rows given to :meth:`fit`, and the non-linear layers join it through
        gates that start at zero, so that the untrained network *is* that PCA
        (the same codes and reconstructions; with ``loss="bce"``, the codes, and
        the reconstruction through the logistic). With ``early_stopping`` the
        start is scored on the held-out rows and kept unless an epoch beats
        it, so the fit is never worse than PCA there (``best_epoch_`` says
        which won); the linear path takes 0.3 of each optimiser step.
        "random": the network alone from a random start, as in skae 0.2.
        The penalty acts on the non-linear path's units (L1: their
        contribution through the gate), so with "pca" the code is PCA's
        dense code plus sparse non-linear corrections; for a code of sparse
        units only use "random" (with ``n_components >= n_features`` PCA
        reconstructs the rows exactly and the fit keeps it). L1 code units
        are kept from dying on either start: their biases start centred on
        the training rows and their gradient below zero is 0.01 ("random")
        or 0.1 ("pca") instead of 0, while the code itself is an exact ReLU
        (see :ref:`sparse_pca_start` for why and what it gives).
    hidden_layer_sizes : array-like of int or int, default=(100,)
        Widths of the encoder's hidden layers; the decoder uses them in reverse.
        ``()`` gives a single layer each way.
    activation : {"relu", "identity", "logistic", "tanh", "leaky_relu", "elu", \
"gelu", "softplus"}, default="relu"
        Activation of the hidden layers. The code layer's activation follows
        ``sparsity``.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss, summed over features: squared error with a linear
        output, or binary cross-entropy with a logistic output (X in [0, 1]).
    sparsity : {"l1", "kl"}, default="l1"
        The penalty: the L1 norm of ReLU code units, or the KL divergence of
        the mean activation of logistic code units from ``sparsity_target``.
    sparsity_weight : float, default=0.01
        Weight of the penalty against the reconstruction loss (a sum over
        features per sample), in the units of that loss, X's: on data far
        below unit scale it weighs more (measurements in
        :ref:`sparse_pca_start`). Too heavy an L1 penalty switches most ReLU
        units of the code off: ``fit`` then warns.
    sparsity_target : float, default=0.05
        Target mean activation rho of each code unit, for ``sparsity="kl"``.
        The penalty trades against the reconstruction: at the default
        weight a code of few units keeps mean activations well above it; a
        heavier ``sparsity_weight`` brings them to it (see
        :ref:`sparse_pca_start`).
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
        Hold out ``validation_fraction`` of the data, stop on its score
        (negative reconstruction loss) and restore the best epoch's weights.
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
    tied_weights : bool, default=False
        Decoder layers use the transposed weights of their encoder mirrors.
    pretraining : {None, "greedy"}, default=None
        "greedy" pretrains each layer as a shallow autoencoder on the codes of
        the layer below, for up to ``max_iter`` epochs, then fine-tunes end to
        end. The sparsity penalty applies to the layer that produces the code.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted :class:`skae.nn.AutoencoderModule`.
    device_ : torch.device
        The device the module lives on.
    n_iter_ : int
        Epochs run over every call, pretraining included (``len(loss_curve_)``).
    loss_curve_ : list of float
        Mean training loss (reconstruction plus penalty) per sample, per epoch:
        pretraining epochs first, then the end-to-end epochs.
    pretraining_loss_curves_ : list of list of float
        With ``pretraining="greedy"``, the loss curve of each layer's
        pretraining; empty otherwise.
    best_loss_ : float or None
        Lowest training loss of the calls since the last one with
        ``early_stopping`` (``partial_fit`` never has it); None after one.
    validation_scores_ : list of float or None
        Validation score per end-to-end epoch with ``early_stopping``; None
        otherwise. NaN for epochs trained without it (``partial_fit``) once
        any epoch was scored.
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

    Warns
    -----
    ConvergenceWarning
        When, with ``sparsity="l1"``, :meth:`fit` ends with more than half of
        the ReLU code units at zero on every training row checked (the first
        2,048): dead units. Beside ``init="pca"``'s linear path these are
        the non-linear path's units, and the code is mostly or only the
        linear path's: dense, not sparse. A small gradient reaches them,
        which too heavy a penalty outweighs, or the reconstruction does not
        need them; from a random start with every unit dead,
        :meth:`transform` gives the same code for every row.

    See Also
    --------
    sklearn.decomposition.PCA : The linear baseline.
    sklearn.decomposition.MiniBatchDictionaryLearning : Sparse linear codes.
    Autoencoder : The same network without the penalty.

    References
    ----------
    A. Ng, "Sparse autoencoder", CS294A lecture notes, Stanford, 2011.

    A. Makhzani and B. Frey, "k-Sparse autoencoders", ICLR 2014.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import SparseAutoencoder
    >>> X = load_digits().data / 16
    >>> sae = SparseAutoencoder(n_components=128, sparsity="kl", sparsity_target=0.05,
    ...                         init="random", max_iter=20, random_state=0, device="cpu")
    >>> codes = sae.fit_transform(X)
    >>> codes.shape
    (1797, 128)
    >>> bool(codes.mean() < 0.2)
    True
    """

    _parameter_constraints: dict = {
        **BaseMLPAutoencoder._parameter_constraints,
        "sparsity": [StrOptions(set(SPARSITY_PENALTIES))],
        "sparsity_weight": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        *,
        n_components: int = 2,
        init: Literal["pca", "random"] = "pca",
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: Activation = "relu",
        loss: Literal["mse", "bce"] = "mse",
        sparsity: str = "l1",
        sparsity_weight: float = 0.01,
        sparsity_target: float = 0.05,
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
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target

    @property
    def _code_activation(self):
        return "logistic" if self.sparsity == "kl" else "relu"

    @property
    def _revives_units(self):
        """Whether the ReLU code units get the two remedies against dying: a
        leaky gradient and a bias centred on the training rows at the start
        (an L1 code, from either start)."""
        return self.sparsity == "l1"

    def _build_module(self, n_features):
        module = super()._build_module(n_features)
        if self._revives_units:  # exact ReLU forward, a small gradient below zero
            slope = PCA_START_GRADIENT_SLOPE if self.init == "pca" else NEGATIVE_GRADIENT_SLOPE
            module.encoder[-1] = LeakyGradientReLU(slope)
        return module

    def _start_module(self, module, X, X_train, rng, incremental):
        """The start of every autoencoder, then (an L1 code) the code layer's
        bias centred on the training rows (the first 2,048), so that each ReLU
        code unit starts active on about half of them."""
        started = super()._start_module(module, X, X_train, rng, incremental)
        if not self._revives_units:
            return started
        device = next(module.parameters()).device
        rows = X_train.take(slice(0, min(len(X_train), DEAD_CODE_ROWS))).to(device)
        with torch.no_grad():
            pre_activation = module.encoder[:-1](module.scaled(rows))
            module.encoder[-2].bias.sub_(pre_activation.mean(dim=0))
        return started

    def _penalty(self, module, x, code):
        penalty = SPARSITY_PENALTIES[self.sparsity]
        gate = getattr(module, "encoder_gate", None)
        if gate is not None and self.sparsity == "l1":  # what the units add to the code
            code = gate * code
        weight = penalty_weight(self.sparsity_weight, module)
        return weight * penalty(code, self.sparsity_target)

    def _train_module(self, module, X, setup, *, incremental, **kwargs):
        """Training as every MLP autoencoder trains, then a warning when an L1
        penalty has left more than half of the code units dead (held below
        zero by the penalty against their leaky gradient, or not needed
        beside PCA's code)."""
        history, attributes = super()._train_module(
            module, X, setup, incremental=incremental, **kwargs
        )
        # a kept PCA start is not the penalty's doing: its units fire on about
        # half of the rows, and on none only when the rows do not vary (a kept
        # warm start's units are the previous fit's, and judged)
        pca_kept = kwargs["fresh"] and self.init == "pca" and history.best_epoch == 0
        if self.sparsity == "l1" and not incremental and not pca_kept:
            rows = X.take(slice(0, min(len(X), DEAD_CODE_ROWS))).to(setup.device)
            self._warn_on_dead_units(_relu_code(module, rows), module.has_linear_path)
        return history, attributes

    def _warn_on_dead_units(self, code, beside_linear_path):
        n_units = code.shape[1]
        dead = int((~(code > 0).any(dim=0)).sum())
        if dead <= n_units / 2:
            return
        if beside_linear_path:
            message = _dead_beside_linear_path(dead, n_units, self.sparsity_weight)
        else:
            fixes = (
                f"Lower sparsity_weight (now {self.sparsity_weight}) or learning_rate, "
                "or use sparsity='kl'."
            )
            message = (
                f"Every one of the {n_units} code units is zero on the training rows: the L1 "
                f"sparsity penalty switched them all off, and transform gives the same code "
                f"for every row. {fixes}"
                if dead == n_units
                else f"{dead} of the {n_units} code units are zero on every training row "
                "checked (dead: the L1 penalty holds them below zero, against the leak of "
                f"gradient that could bring them back); the code uses only "
                f"{n_units - dead}. {fixes}"
            )
        warnings.warn(message, ConvergenceWarning, stacklevel=user_stacklevel())


def _dead_beside_linear_path(dead, n_units, weight):
    """The dead-unit warning of a model with init="pca"'s linear path."""
    code = (
        "the code is the linear path's alone (PCA's start, trained): dense, not sparse"
        if dead == n_units
        else f"only {n_units - dead} sparse units add to the linear path's dense code"
    )
    return (
        f"{dead} of the {n_units} ReLU code units of the non-linear path are zero on every "
        f"training row checked (dead: the L1 penalty holds them below zero, or the "
        f"reconstruction does not need them beside PCA's code); {code}. Lower "
        f"sparsity_weight (now {weight}); for a code of ReLU units only, use "
        "init='random'; or use sparsity='kl'."
    )


def _relu_code(module, rows):
    """The ReLU code units' values on ``rows`` (the non-linear path's, beside
    a linear path, whose units are never dead)."""
    with torch.inference_mode():
        if hasattr(module, "encode_parts"):
            return module.encode_parts(rows)[1]
        return module.encode(rows)
