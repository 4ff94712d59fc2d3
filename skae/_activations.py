"""Activations that nn.py's named ones do not cover: pure torch modules."""

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LeakyGradientReLU", "has_written_derivative", "with_derivative"]

#: The slope at which :class:`LeakyGradientReLU` passes gradient below zero.
NEGATIVE_GRADIENT_SLOPE = 0.01


class LeakyGradientReLU(nn.Module):
    """ReLU forward, leaky ReLU gradient: dead units can come back.

    The output is exactly ``relu(x)`` (zero below zero, so codes stay sparse),
    but in training the gradient with respect to ``x`` is ``negative_slope``
    instead of zero where ``x < 0``. A ReLU unit that is negative on every row
    gets no gradient and stays dead for good; with this one the reconstruction
    loss can pull it back above zero when it would help.

    Parameters
    ----------
    negative_slope : float, default=0.01
        The gradient's slope below zero.

    Examples
    --------
    >>> import torch
    >>> from skae._activations import LeakyGradientReLU
    >>> x = torch.tensor([-2.0, 3.0], requires_grad=True)
    >>> y = LeakyGradientReLU()(x)
    >>> y.detach().tolist()
    [0.0, 3.0]
    >>> y.sum().backward()
    >>> x.grad.tolist()
    [0.009999999776482582, 1.0]
    """

    def __init__(self, negative_slope=NEGATIVE_GRADIENT_SLOPE):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        y = F.relu(x)
        if not (self.training and torch.is_grad_enabled() and x.requires_grad):
            return y  # inference and export: a plain ReLU
        below = x.clamp(max=0)
        # adds exactly zero to the output, and negative_slope to the gradient below zero
        return y + self.negative_slope * (below - below.detach())

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


#: the modules whose derivative :func:`with_derivative` writes out
_WRITTEN_OUT = (nn.Identity, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.Softplus)


def has_written_derivative(module):
    """Whether :func:`with_derivative` takes ``module``'s derivative."""
    kind = type(module)
    return kind in _WRITTEN_OUT or (kind is nn.GELU and module.approximate == "none")


def with_derivative(activation, pre):
    """``(activation(pre), its elementwise derivative at pre)``, both
    differentiable with respect to ``pre``; ``None`` is the identity.

    Written out for the activations skae names (:data:`skae.nn.ACTIVATIONS`;
    the derivative autograd uses, at the kinks too), in a few elementwise
    operations; any other module raises TypeError."""
    if activation is None or type(activation) is nn.Identity:
        return pre, torch.ones_like(pre)
    out = activation(pre)
    kind = type(activation)
    if kind is nn.ReLU:
        return out, (pre > 0).to(pre.dtype)
    if kind is nn.Sigmoid:
        return out, out * (1 - out)
    if kind is nn.Tanh:
        return out, 1 - out.square()
    if kind is nn.LeakyReLU:
        return out, torch.where(pre > 0, 1.0, torch.full_like(pre, activation.negative_slope))
    if kind is nn.ELU:
        return out, torch.where(pre > 0, torch.ones_like(pre), out + activation.alpha)
    if kind is nn.Softplus:
        scaled = pre * activation.beta
        return out, torch.where(scaled > activation.threshold, 1.0, torch.sigmoid(scaled))
    if kind is nn.GELU and activation.approximate == "none":
        density = torch.exp(-0.5 * pre.square()) / math.sqrt(2 * math.pi)
        return out, 0.5 * (1 + torch.erf(pre / math.sqrt(2))) + pre * density
    raise TypeError(f"no derivative written out for {activation!r}")
