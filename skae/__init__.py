"""skae: the autoencoder family as scikit-learn transformers, on PyTorch."""

from ._autoencoder import Autoencoder
from ._denoising import DenoisingAutoencoder
from ._variational import VariationalAutoencoder

__version__ = "0.1.0"

__all__ = ["Autoencoder", "DenoisingAutoencoder", "VariationalAutoencoder", "__version__"]
