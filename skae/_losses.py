"""Reconstruction losses, KL terms and likelihoods as pure torch functions.

Every function returns one value per sample (summed over features), so that the
training loss is a mean over the batch and ``score_samples`` is its negation,
and so that figures read as the papers report them (squared error per image
summed over pixels, nats per image).
"""

import math

import torch
import torch.nn.functional as F

from ._activations import with_derivative


def squared_error(output, target):
    """Per-sample squared error summed over features."""
    return (output - target).square().sum(dim=1)


def binary_cross_entropy(logits, target):
    """Per-sample Bernoulli negative log-likelihood, from the decoder's logits."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=1)


def gaussian_nll(mean, target, variance):
    """Per-sample negative log-likelihood under N(mean, variance * I).

    ``variance`` is a scalar tensor shared by every feature.
    """
    n_features = target.shape[1]
    return 0.5 * (
        squared_error(mean, target) / variance
        + n_features * (math.log(2 * math.pi) + torch.log(variance))
    )


def gaussian_kl_terms(mu, log_var):
    """Twice each unit's KL(N(mu, exp(log_var)) || N(0, 1)), per sample."""
    # expm1 keeps exp(v) - 1 - v >= 0 exact near v = 0
    return mu.square() + torch.expm1(log_var) - log_var


def gaussian_kl(mu, log_var):
    """Per-sample KL(N(mu, diag(exp(log_var))) || N(0, I)) in closed form."""
    return 0.5 * gaussian_kl_terms(mu, log_var).sum(dim=1)


def squared_error_total(output, target):
    """The batch's total squared error, in one fused kernel each way (the
    training loop needs only the total, not one value per sample)."""
    return F.mse_loss(output, target, reduction="sum")


def binary_cross_entropy_total(logits, target):
    """The batch's total Bernoulli negative log-likelihood."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum")


#: per-sample loss -> the same loss summed over the whole batch
BATCH_TOTALS = {
    squared_error: squared_error_total,
    binary_cross_entropy: binary_cross_entropy_total,
}

# loss name -> (per-sample loss on the decoder's raw output, output activation)
RECONSTRUCTION_LOSSES = {
    "mse": (squared_error, "identity"),
    "bce": (binary_cross_entropy, "logistic"),
}


#: loss names (of every estimator) whose targets must lie in [0, 1]
UNIT_INTERVAL_LOSSES = frozenset({"bce", "bernoulli"})


def l1_sparsity(code, target=None):
    """Mean over the batch of the L1 norm of each code (``target`` unused)."""
    return code.abs().sum(dim=1).mean()


def kl_sparsity(code, target):
    """sum_j KL(rho || rho_hat_j) between Bernoulli(target) and Bernoulli of
    each unit's mean activation over the batch; ``code`` must lie in (0, 1)."""
    eps = torch.finfo(code.dtype).eps
    rho_hat = code.mean(dim=0).clamp(eps, 1 - eps)
    rho = target
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


SPARSITY_PENALTIES = {"l1": l1_sparsity, "kl": kl_sparsity}


def sigmoid_jacobian_norm(code, weight):
    """Per-sample squared Frobenius norm of the Jacobian of ``sigmoid(x W^T + b)``
    in closed form, ``sum_j (h_j (1 - h_j))^2 ||W_j||^2`` (Rifai et al. 2011),
    from the codes ``h`` and the weight ``W``."""
    return (code * (1 - code)).square() @ weight.square().sum(dim=1)


def one_hidden_layer_jacobian_norm(x, first, activation, second, code_activation):
    """Per-sample squared Frobenius norm of the Jacobian of
    ``code_activation(second(activation(first(x))))`` in closed form, for
    elementwise activations (``None`` for the identity) and linear layers
    ``first`` (weight ``W1``) and ``second`` (``W2``).

    The Jacobian at a row is ``diag(c) W2 diag(s) W1``, with ``s`` and ``c`` the
    activations' derivatives there, so its squared norm is ``sum_i c_i^2
    (W2_i * s)^T W1 W1^T (W2_i * s)``: one Gram matrix of ``W1`` a batch and a
    product of the size of the hidden layer per code unit, instead of one
    backward pass through the network per code unit (:func:`jacobian_norm`,
    whose value and gradients it equals up to rounding). Differentiable with
    respect to the layers' parameters."""
    pre = first(x)
    hidden, s = with_derivative(activation, pre)
    _, c = with_derivative(code_activation, second(hidden))
    w1 = first.weight
    v = s.unsqueeze(1) * second.weight.unsqueeze(0)  # rows x code units x hidden units
    if w1.shape[0] <= w1.shape[1]:  # hidden narrower than the input: through the Gram
        per_unit = ((v @ (w1 @ w1.T)) * v).sum(dim=2)
    else:
        per_unit = (v @ w1).square().sum(dim=2)
    return (c.square() * per_unit).sum(dim=1)


def jacobian_norm(encode, x):
    """Per-sample squared Frobenius norm of the Jacobian of ``encode`` at each
    row of ``x``, exact, batched with ``torch.func``: reverse mode (one
    vector-Jacobian product per code unit) when the code is narrower than the
    input, forward mode otherwise. Differentiable with respect to the
    parameters ``encode`` closes over."""

    def one_row(row):
        return encode(row.unsqueeze(0)).squeeze(0)

    n_components = encode(x[:1]).shape[1]
    jacobian = torch.func.jacrev if n_components <= x.shape[1] else torch.func.jacfwd
    return torch.func.vmap(jacobian(one_row))(x).square().sum(dim=(1, 2))
