"""The variational autoencoder: a Gaussian posterior, the reparameterisation
trick and a KL term to the N(0, I) prior (Kingma & Welling, 2014)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from ._base import Activation, BaseAutoencoder
from ._losses import (
    binary_cross_entropy,
    gaussian_kl,
    gaussian_kl_terms,
    gaussian_nll,
    squared_error,
)
from ._optim import AUTO_BATCH_SIZE, AUTO_BATCHES_PER_EPOCH
from ._random import draw_seed, seed_source
from ._settings import deterministic_algorithms
from ._validation import Interval, SizeInterval, StrOptions, check_loss_range, positive_ints
from ._warnings import user_stacklevel
from .nn import VariationalModule

#: Weight of the newest batch in the running estimate of that variance.
VARIANCE_MOMENTUM = 0.1
#: Values per layer of a pass of :meth:`VariationalAutoencoder.log_likelihood`
#: (a block of rows, times the draws decoded at once, times the widest decoder
#: layer or the features): 4M, 16 MB per array in float32.
IMPORTANCE_BLOCK_VALUES = 2**22


def positive_count(value, name):
    """``value`` as an int when it is a positive integer (not a bool); else a
    ValueError naming ``name``."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def seeded_generator(random_state, device):
    """A torch Generator on ``device`` seeded from ``random_state`` (never the
    global random state); ``random_state`` is checked as scikit-learn's
    parameter validation checks the estimators' own."""
    if not (
        random_state is None
        or isinstance(random_state, np.random.RandomState)
        or (isinstance(random_state, Integral) and 0 <= random_state < 2**32)
    ):
        raise ValueError(
            "random_state must be None, an int in [0, 2**32 - 1] or a "
            f"numpy.random.RandomState instance; got {random_state!r}."
        )
    generator = torch.Generator(device=device)
    generator.manual_seed(draw_seed(seed_source(random_state)))
    return generator


#: Training rows (at most) the collapse check reads, and the mean KL per code
#: unit (nats) under which a unit's posterior is the prior's
COLLAPSE_ROWS, COLLAPSED_KL = 2048, 0.01


class VariationalAutoencoder(BaseAutoencoder):
    """Variational autoencoder with a Gaussian posterior and a N(0, I) prior.

    The encoder outputs the mean and log-variance of q(z|x); training draws
    ``z = mu + sigma * eps`` and minimises the negative ELBO, the
    reconstruction negative log-likelihood plus ``beta`` times
    KL(q(z|x) || N(0, I)). :meth:`transform` returns the posterior mean,
    :meth:`sample` decodes draws from the prior, :meth:`score_samples` is
    the per-sample ELBO and :meth:`log_likelihood` estimates log p(x) by
    importance sampling.

    The default Gaussian likelihood learns its variance: a variance shared by
    all features, set in closed form to the mean squared reconstruction error
    of each batch (its maximum-likelihood value; Rybkin et al., 2021). A fixed
    unit variance would weigh reconstruction so little on data scaled to
    [0, 1] that the posterior collapses onto the prior and the codes carry
    almost nothing; the learned variance keeps the balance at any data scale.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the latent space.
    init : {"pca", "random"}, default="pca"
        How the network starts. "pca": a linear path beside the non-linear
        layers holds the components of a PCA of the rows given to
        :meth:`fit`, and the non-linear layers join it through gates that
        start at zero, so that the untrained network *is* that PCA (the same
        codes and reconstructions; with ``loss="bernoulli"``, the codes, and
        the reconstruction through the logistic). With ``early_stopping`` the start is
        scored on the held-out rows and kept unless an epoch beats it, so the
        fit is never worse than PCA there (``best_epoch_`` says which won).
        The codes start as PCA's divided by ``module_.input_scale`` (the
        latent space keeps the prior's units), the posterior variance starts
        small and constant, and the linear encoder takes 0.3 of each
        optimiser step (the same as 0.3 times the learning rate for adam,
        adamw and sgd), so that the KL term and the sampling noise do not
        drag PCA's code off faster than the non-linear paths learn to use
        it. "random": the network alone from a random start, as in skae 0.2.
    hidden_layer_sizes : array-like of int or int, default=(100,)
        Widths of the encoder's hidden layers; the decoder uses them in reverse.
        ``()`` gives linear maps to the posterior's parameters and back.
    activation : {"relu", "identity", "logistic", "tanh", "leaky_relu", "elu", \
"gelu", "softplus"}, default="relu"
        Activation of the hidden layers.
    loss : {"gaussian", "bernoulli"}, default="gaussian"
        Likelihood p(x|z): Gaussian with a learned shared variance, or
        Bernoulli (a logistic output; X in [0, 1], as in Kingma & Welling).
    beta : float, default=1.0
        Weight of the KL term in the training loss (beta-VAE, Higgins et al.,
        2017). ``score_samples`` always reports the ELBO (beta = 1). Early
        stopping keeps the epoch whose posterior means reconstruct the
        held-out rows best, the PCA start included; a large ``beta`` trades
        reconstruction for a code near the prior, and such epochs rarely beat
        the start (``best_epoch_ = 0``): pass ``early_stopping=False`` to
        train for ``max_iter`` epochs under it.
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        Optimiser; "sgd" uses Nesterov momentum 0.9.
    learning_rate : float or "auto", default="auto"
        Step size of the optimiser (the initial one under a schedule).
        "auto" is 5e-3 at every batch size (the other estimators raise it
        with the batch; this one's codes reconstructed worse at the higher
        rate); see :ref:`training`.
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
        Minibatch size; "auto" is ``min(64, n_samples)`` (not
        MLPRegressor's 200: smaller minibatches gave more accurate codes at
        small ``n_components``; the other estimators take larger batches on
        large data sets, where this one's codes reconstructed worse); see
        :ref:`training`.
    max_iter : int, default=200
        Maximum number of epochs per call to :meth:`fit`.
    tol : float, default=1e-4
        Improvement of the loss (or of the validation score), relative to the
        best so far, below which an epoch counts as no improvement.
    n_iter_no_change : int, default=10
        Stop after more than this many epochs without improvement (the other
        models' default is 5: this model's held-out error first rises while
        the ELBO shrinks its posterior means, for longer than 5 epochs at
        wide codes; see :ref:`pca_start`).
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the data, stop on the error of
        its reconstruction from the posterior mean and restore the weights of
        the best epoch (the start included). Training minimises the negative
        ELBO, whose KL term shrinks the posterior mean; judging epochs by
        what :meth:`transform` and :meth:`inverse_transform` return keeps the
        fit never worse than PCA there.
        On by default: without it most default fits ran to ``max_iter``;
        see :ref:`training`.
    validation_fraction : float, default=0.1
        Fraction of the training data held out when ``early_stopping``.
    shuffle : bool, default=True
        Shuffle the samples at every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the reparameterisation noise and the
        validation split. An int gives bit-identical results on the CPU. The
        global numpy and torch random states are neither used nor changed.
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
        The fitted :class:`skae.nn.VariationalModule`.
    device_ : torch.device
        The device the module lives on.
    n_iter_ : int
        Epochs run over every call (``len(loss_curve_)``).
    loss_curve_ : list of float
        Mean training loss (negative ELBO with ``beta``) per sample, per epoch.
    best_loss_ : float or None
        Lowest training loss of the calls since the last one with
        ``early_stopping`` (``partial_fit`` never has it); None after one.
    validation_scores_ : list of float or None
        Validation score per epoch with ``early_stopping``: the negative
        reconstruction error of the held-out rows from their posterior mean
        (see ``early_stopping``); None otherwise. NaN for epochs trained
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
    sklearn.decomposition.FactorAnalysis : The linear-Gaussian latent model.
    Autoencoder : A deterministic code.

    References
    ----------
    D. P. Kingma and M. Welling, "Auto-encoding variational Bayes", ICLR 2014.

    O. Rybkin, K. Daniilidis and S. Levine, "Simple and effective VAE training
    with calibrated decoders", ICML 2021.

    I. Higgins et al., "beta-VAE: learning basic visual concepts with a
    constrained variational framework", ICLR 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VariationalAutoencoder
    >>> X = load_digits().data / 16
    >>> vae = VariationalAutoencoder(n_components=4, max_iter=20, random_state=0,
    ...                              device="cpu")
    >>> vae.fit_transform(X).shape
    (1797, 4)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)
    >>> vae.log_likelihood(X[:5], n_importance_samples=100, random_state=0).shape
    (5,)
    """

    #: "auto" keeps batches of 64 and 5e-3 on large data: with the larger
    #: batches of the other estimators its MNIST codes reconstructed worse.
    _auto_batches = (AUTO_BATCHES_PER_EPOCH, AUTO_BATCH_SIZE)

    _parameter_constraints: dict = {
        **BaseAutoencoder._parameter_constraints,
        "hidden_layer_sizes": ["array-like", SizeInterval(Integral, 1, None, closed="left")],
        "loss": [StrOptions({"gaussian", "bernoulli"})],
        "beta": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        n_components: int = 2,
        init: Literal["pca", "random"] = "pca",
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: Activation = "relu",
        loss: Literal["gaussian", "bernoulli"] = "gaussian",
        beta: float = 1.0,
        optimizer: Literal["adam", "adamw", "sgd"] = "adam",
        learning_rate: float | Literal["auto"] = "auto",
        learning_rate_schedule: Literal["constant", "cosine", "plateau"] = "constant",
        weight_decay: float = 0.0,
        batch_size: int | Literal["auto"] = "auto",
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.beta = beta

    def _check_data(self, X):
        super()._check_data(X)
        positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")

    def _build_module(self, n_features):
        return VariationalModule(
            n_features,
            self.n_components,
            positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes"),
            self.activation,
            output_activation="identity" if self.loss == "gaussian" else "logistic",
            linear_path=self.init == "pca",
        )

    def _negative_log_likelihood(self, module, output, x, loss):
        if loss == "bernoulli":
            return binary_cross_entropy(output, x)
        return gaussian_nll(output, x, module.noise_variance)

    def _training_loss(self, module, generator):
        floor = module.noise_variance_floor()

        def batch_loss(x):
            mu, log_var = module.encode_distribution(x)
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            output = module.output(mu + torch.exp(0.5 * log_var) * eps)
            if self.loss == "gaussian":
                # closed-form maximum-likelihood variance of this batch; the
                # running value is what score_samples uses after fitting
                variance = (squared_error(output, x).mean() / x.shape[1]).detach()
                variance = variance.clamp_min(floor)
                running = module.noise_variance
                running.copy_(
                    torch.where(
                        running.isnan(), variance, running.lerp(variance, VARIANCE_MOMENTUM)
                    )
                )
                nll = gaussian_nll(output, x, variance)
            else:
                nll = binary_cross_entropy(output, x)
            return (nll + self.beta * gaussian_kl(mu, log_var)).mean()

        return batch_loss

    def _train_module(self, module, X, setup, *, incremental, **kwargs):
        """Training as every estimator trains, then a warning when the
        posterior has collapsed to the prior (no silent failures)."""
        history, attributes = super()._train_module(
            module, X, setup, incremental=incremental, **kwargs
        )
        if not incremental:
            rows = X.take(slice(0, min(len(X), COLLAPSE_ROWS))).to(setup.device)
            self._warn_on_collapse(module, rows)
        return history, attributes

    @torch.no_grad()
    def _warn_on_collapse(self, module, rows):
        """A ConvergenceWarning when every code unit's posterior is the prior
        on the training ``rows`` (its mean KL to N(0, 1) under
        ``COLLAPSED_KL`` nats): the codes then say nothing of the rows."""
        mu, log_var = module.encode_distribution(rows)
        kl = 0.5 * gaussian_kl_terms(mu, log_var).double().mean(dim=0)
        if len(rows) and bool((kl < COLLAPSED_KL).all()):
            warnings.warn(
                f"VariationalAutoencoder: the posterior collapsed to the prior: each of the "
                f"{kl.numel()} code units is within {COLLAPSED_KL} nats of N(0, 1) on the "
                "training rows, so transform gives nearly the same code for every row. "
                f"Lower beta (now {self.beta:g}), or keep init='pca'.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )

    _validation_label = "validation reconstruction error (posterior mean)"

    def _validation_score(self, module, X_val):
        """``score() -> float``: the negative reconstruction error of the
        held-out rows decoded from their posterior mean (not the ELBO)."""
        if X_val is None:
            return None

        def score():
            return self._map_rows(module, self._mean_reconstruction_batch, X_val).mean().item()

        return score

    def _mean_reconstruction_batch(self, module, x):
        output = module.output(module.encode_distribution(x)[0])
        if self.loss == "bernoulli":
            return -binary_cross_entropy(output, x)
        # in float64: the squares of float32 values below ~1e-19 are 0
        return -squared_error(output.double(), x.double())

    def _score_samples_batch(self, module, x, loss):
        mu, log_var = module.encode_distribution(x)
        nll = self._negative_log_likelihood(module, module.output(mu), x, loss)
        return -(nll + gaussian_kl(mu, log_var))

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Per-sample evidence lower bound (ELBO) at the posterior mean, in nats.

        The reconstruction term is evaluated at the posterior mean (z = mu),
        which makes the score deterministic and independent of the other rows;
        the KL term is exact. At z = mu the reconstruction term is the
        decoder's best guess rather than its expectation over the posterior,
        so this plug-in score is not a bound on log p(x): it can exceed
        :meth:`log_likelihood`'s estimate.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            Higher is better; low values flag outliers.
        """
        return super().score_samples(X)

    def log_likelihood(
        self,
        X: ArrayLike,
        n_importance_samples: int = 1000,
        random_state: int | np.random.RandomState | None = None,
    ) -> np.ndarray:
        """Importance-sampled estimate of each row's log-likelihood log p(x), in nats.

        Draws ``n_importance_samples`` codes z_k from the posterior q(z|x) of
        each row and returns ``log mean_k p(x|z_k) p(z_k) / q(z_k|x)``, the
        importance-weighted bound of Burda et al. (2016): in expectation a
        lower bound on log p(x), never looser than the (sampled) ELBO and
        tightening towards log p(x) as ``n_importance_samples`` grows (one
        sample is the single-sample ELBO). This is how published VAE
        likelihoods are estimated (5,000 samples in Burda et al.);
        :meth:`score_samples` is the cheaper, deterministic plug-in ELBO at the
        posterior mean, which is no bound and can lie above this estimate.

        With the Gaussian likelihood it is a log-density in X's units. With
        ``loss="bernoulli"`` it is a log-probability only for X of 0s and 1s;
        on values between (grey-level images, as in PyTorch's VAE example) it
        is the same expression, in the units of the cross-entropy the model
        trains on, not a normalised density.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.
        n_importance_samples : int, default=1000
            Codes drawn per row. The cost is that many decoder passes per row.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; the global random state is not used. An int gives
            the same estimates for the same X. The draws are taken block by
            block of rows, so a row's estimate depends, within the sampling
            error, on the rows passed with it.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            Higher is better.

        References
        ----------
        Y. Burda, R. Grosse and R. Salakhutdinov, "Importance weighted
        autoencoders", ICLR 2016.
        """
        check_is_fitted(self)
        n_draws = positive_count(n_importance_samples, "n_importance_samples")
        generator = seeded_generator(random_state, self.device_)

        return self._inference(
            X,
            lambda module, x: self._block_log_likelihood(module, x, n_draws, generator),
            "log_likelihood",
            passes=n_draws,
        )

    def _block_log_likelihood(self, module, x, n_draws, generator):
        """:meth:`log_likelihood` of a block of rows, ``n_draws`` codes each,
        drawn in passes of about ``IMPORTANCE_BLOCK_VALUES`` values per layer."""
        loss = self._build_params_["loss"]
        check_loss_range(loss, x)
        mu, log_var = module.encode_distribution(x)
        sigma = torch.exp(0.5 * log_var)
        width = max(
            [x.shape[1]]
            + [m.out_features for m in module.decoder.modules() if isinstance(m, torch.nn.Linear)]
        )
        per_pass = max(1, min(n_draws, IMPORTANCE_BLOCK_VALUES // (x.shape[0] * width)))
        total = None
        for start in range(0, n_draws, per_pass):
            k = min(per_pass, n_draws - start)
            eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + sigma * eps
            output = module.output(z.reshape(-1, z.shape[-1]))
            nll = self._negative_log_likelihood(module, output, x.repeat(k, 1), loss)
            # log p(z) - log q(z|x): the 2 pi terms cancel
            log_ratio = 0.5 * (eps.square() - z.square() + log_var).sum(dim=2)
            chunk = torch.logsumexp(log_ratio - nll.reshape(k, -1), dim=0)
            total = chunk if total is None else torch.logaddexp(total, chunk)
        return total - math.log(n_draws)

    def sample(
        self, n_samples: int = 1, random_state: int | np.random.RandomState | None = None
    ) -> np.ndarray:
        """Decode draws from the prior N(0, I).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; the global random state is not used.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Decoder means of the drawn codes, as float64.
        """
        check_is_fitted(self)
        n_samples = positive_count(n_samples, "n_samples")
        generator = seeded_generator(random_state, self.device_)
        z = torch.randn(
            (n_samples, self._n_features_out),
            generator=generator,
            device=self.device_,
            dtype=next(self.module_.parameters()).dtype,  # not the caller's default dtype
        )
        with torch.inference_mode(), deterministic_algorithms(self.deterministic, self.device_):
            return self.module_.decode(z).cpu().numpy().astype(np.float64)
