"""skae: the autoencoder family as scikit-learn transformers, on PyTorch."""

from ._autoencoder import Autoencoder
from ._contractive import ContractiveAutoencoder
from ._convolutional import ConvolutionalAutoencoder
from ._denoising import DenoisingAutoencoder
from ._impute import AutoencoderImputer
from ._outlier import AutoencoderOutlierDetector
from ._persistence import load, save
from ._show_versions import show_versions
from ._sparse import SparseAutoencoder
from ._variational import VariationalAutoencoder

__version__ = "0.3.0"

__all__ = [
    "Autoencoder",
    "AutoencoderImputer",
    "AutoencoderOutlierDetector",
    "ContractiveAutoencoder",
    "ConvolutionalAutoencoder",
    "DenoisingAutoencoder",
    "SparseAutoencoder",
    "VariationalAutoencoder",
    "__version__",
    "load",
    "save",
    "show_versions",
]
