"""Activations that nn.py's named ones do not cover: pure torch modules."""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LeakyGradientReLU"]

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
