"""The contractive autoencoder: a penalty on the encoder's Jacobian."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Literal

import numpy as np
import torch

from ._base import Activation
from ._mlp import BaseMLPAutoencoder, penalty_weight
from ._validation import Interval


class ContractiveAutoencoder(BaseMLPAutoencoder):
    """Contractive autoencoder: codes that vary little around the data.

    The training loss adds ``contraction_weight * ||J_f(x)||_F^2``, the squared
    Frobenius norm of the encoder's Jacobian at each training row (Rifai et al.,
    2011): the code is pushed to be locally invariant to most directions of
    the input, while reconstruction keeps it sensitive along the data. The code
    units are logistic, as in the paper. That is the network of
    ``init="random"``: with the default ``init="pca"`` the code is PCA's plus
    the contracted logistic units through a gate that starts at zero, and
    PCA's part is not penalised, so the code contracts no more than PCA's;
    pass ``init="random"`` for a contractive code.

    Cost: with a single logistic layer (``hidden_layer_sizes=()``) the penalty
    has a closed form, ``sum_j (h_j (1 - h_j))^2 ||W_j||^2``, about as cheap as
    the forward pass. With one hidden layer (the default) it has one too: the
    Jacobian ``diag(c) W2 diag(s) W1`` (``s``, ``c`` the activations'
    derivatives) is normed through the Gram matrix ``W1 W1^T``, about
    ``batch_size x n_components x hidden x min(hidden, n_features)``
    operations a step. With more
    hidden layers it is computed exactly with ``torch.func``: one
    vector-Jacobian product per code unit (``min(n_components, n_features)``
    products, forward mode when the code is wider), so a training step costs
    roughly ``n_components`` times a plain one and holds a ``batch_size x
    n_components x n_features`` Jacobian.

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
        The contraction penalty acts on the non-linear path (the Jacobian of
        its contribution through the gate), not on PCA's.
    hidden_layer_sizes : array-like of int or int, default=(100,)
        Widths of the encoder's hidden layers; the decoder uses them in reverse.
        ``()`` gives one logistic layer; with zero or one hidden layer the
        penalty has a closed form, with more it is computed by autodiff.
    activation : {"relu", "identity", "logistic", "tanh", "leaky_relu", "elu", \
"gelu", "softplus"}, default="relu"
        Activation of the hidden layers. The non-linear path's code layer is
        logistic.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss, summed over features: squared error with a linear
        output, or binary cross-entropy with a logistic output (X in [0, 1]).
    contraction_weight : float, default=0.3
        Weight of the Jacobian penalty, chosen with ``init="random"`` on digits
        with a 16-unit code, where it shrank the encoder's Jacobian at no cost
        in accuracy on the codes (``benchmarks/bench_penalty_weights.py``).
        With ``init="pca"`` the penalty is the formula above in X's units at
        any data scale. With ``init="random"`` the Jacobian is taken of the
        input divided by its root mean square ``s`` (``module_.input_scale``),
        so in X's units the penalty is ``s**2`` times the formula: the weight
        is relative to the data's scale (``s**2`` is about 0.23 on digits / 16).
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
        Decoder layers use the transposed weights of their encoder mirrors (as
        in Rifai et al.).
    pretraining : {None, "greedy"}, default=None
        "greedy" pretrains each layer as a shallow autoencoder on the codes of
        the layer below, for up to ``max_iter`` epochs, then fine-tunes end to
        end. The penalty applies to the layer that produces the code.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted :class:`skae.nn.AutoencoderModule`.
    device_ : torch.device
        The device the module lives on.
    n_iter_ : int
        Epochs run over every call, pretraining included (``len(loss_curve_)``).
    loss_curve_ : list of float
        Mean training loss (reconstruction plus penalty) per sample, per epoch.
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

    See Also
    --------
    sklearn.decomposition.PCA : The linear baseline.
    DenoisingAutoencoder : Robustness by corrupting the input instead.
    Autoencoder : The same network without the penalty.

    References
    ----------
    S. Rifai, P. Vincent, X. Muller, X. Glorot and Y. Bengio, "Contractive
    auto-encoders: explicit invariance during feature extraction", ICML 2011.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import ContractiveAutoencoder
    >>> X = load_digits().data / 16
    >>> cae = ContractiveAutoencoder(n_components=16, hidden_layer_sizes=(),
    ...                              max_iter=20, random_state=0, device="cpu")
    >>> cae.fit_transform(X).shape
    (1797, 16)
    """

    _parameter_constraints: dict = {
        **BaseMLPAutoencoder._parameter_constraints,
        "contraction_weight": [Interval(Real, 0, None, closed="left")],
    }

    _code_activation = "logistic"

    def __init__(
        self,
        *,
        n_components: int = 2,
        init: Literal["pca", "random"] = "pca",
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: Activation = "relu",
        loss: Literal["mse", "bce"] = "mse",
        contraction_weight: float = 0.3,
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
        self.contraction_weight = contraction_weight

    def _penalty(self, module, x, code):
        if self.contraction_weight == 0:
            return None
        norm = module.encoder_jacobian_norm(x, code).mean()
        gate = getattr(module, "encoder_gate", None)
        if gate is not None:  # the Jacobian of what the non-linear path adds to the code
            norm = gate.square() * norm
        return penalty_weight(self.contraction_weight, module) * norm
