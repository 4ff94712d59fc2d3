"""Reconstruction losses, KL terms and likelihoods as pure torch functions.

Every function returns one value per sample (summed over features), so that the
training loss is a mean over the batch and ``score_samples`` is its negation,
and so that figures read as the papers report them (squared error per image
summed over pixels, nats per image).
"""

import math

import torch
import torch.nn.functional as F


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


def gaussian_kl(mu, log_var):
    """Per-sample KL(N(mu, diag(exp(log_var))) || N(0, I)) in closed form."""
    # expm1 keeps exp(v) - 1 - v >= 0 exact near v = 0
    return 0.5 * (mu.square() + torch.expm1(log_var) - log_var).sum(dim=1)


# loss name -> (per-sample loss on the decoder's raw output, output activation)
RECONSTRUCTION_LOSSES = {
    "mse": (squared_error, "identity"),
    "bce": (binary_cross_entropy, "logistic"),
}
