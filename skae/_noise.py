"""Input corruptions for denoising autoencoders, as pure torch functions.

Each takes ``(x, level, generator)`` and returns a new tensor; ``x`` is never
modified. All randomness comes from the given ``torch.Generator``.
"""

import torch


def gaussian(x, level, generator):
    """Add isotropic Gaussian noise with standard deviation ``level``."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + level * noise


def masking(x, level, generator):
    """Set a random fraction ``level`` of the entries to zero (Vincent et al. 2008)."""
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= level
    return x * keep


def salt_and_pepper(x, level, generator):
    """Set a random fraction ``level`` of the entries to their column's minimum or
    maximum in the batch, each with probability one half (Vincent et al. 2010)."""
    u = torch.rand(x.shape, generator=generator, device=x.device)
    low = x.amin(dim=0, keepdim=True).expand_as(x)
    high = x.amax(dim=0, keepdim=True).expand_as(x)
    corrupted = torch.where(u < level / 2, low, x)
    return torch.where((u >= level / 2) & (u < level), high, corrupted)


NOISES = {
    "gaussian": gaussian,
    "masking": masking,
    "salt_and_pepper": salt_and_pepper,
}
