"""The estimators every test module parametrizes over: skae's one registry."""

from skae._registry import AUTOENCODERS, MLP_AUTOENCODERS

ESTIMATORS = list(AUTOENCODERS)

__all__ = ["ESTIMATORS", "MLP_AUTOENCODERS"]
