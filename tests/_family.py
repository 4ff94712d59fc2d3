"""The one list of estimators every test module parametrizes over."""

from skae import (
    Autoencoder,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    VariationalAutoencoder,
)

ESTIMATORS = [
    Autoencoder,
    DenoisingAutoencoder,
    VariationalAutoencoder,
    SparseAutoencoder,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
]
