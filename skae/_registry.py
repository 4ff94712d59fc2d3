"""The one list of skae's estimator family.

``onnx``, persistence, the tests and the benchmarks take the family from
here, so that a new estimator is added in one place (and in ``__init__``).
"""

from ._autoencoder import Autoencoder
from ._contractive import ContractiveAutoencoder
from ._convolutional import ConvolutionalAutoencoder
from ._denoising import DenoisingAutoencoder
from ._sparse import SparseAutoencoder
from ._variational import VariationalAutoencoder

#: The autoencoders: transformers with ``transform`` / ``inverse_transform``.
AUTOENCODERS = (
    Autoencoder,
    DenoisingAutoencoder,
    VariationalAutoencoder,
    SparseAutoencoder,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
)

#: The MLP members (hidden layers, tied weights, greedy pretraining).
MLP_AUTOENCODERS = (
    Autoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    ContractiveAutoencoder,
)


def estimator_classes():
    """Every public estimator class skae can save and load, by name: the
    autoencoders and the estimators built on them (the outlier detector, ...)."""
    from ._impute import AutoencoderImputer
    from ._outlier import AutoencoderOutlierDetector

    classes = (*AUTOENCODERS, AutoencoderOutlierDetector, AutoencoderImputer)
    return {cls.__name__: cls for cls in classes}
