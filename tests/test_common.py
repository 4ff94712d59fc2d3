"""The contract: every scikit-learn estimator check, on every estimator."""

import functools

import pytest
from _family import ESTIMATORS
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_global_output_transform_pandas,
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from skae import (
    Autoencoder,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    VariationalAutoencoder,
)


def _estimators():
    # the default settings, seeded, and every option that changes the network
    # or its training: every check passes and none is marked as an expected
    # failure. (loss="bce"/"bernoulli" need X in [0, 1], which the checks'
    # data is not, and image_shape fixes the width, which the checks vary.)
    seeded = dict(device="cpu", random_state=0)
    short = dict(max_iter=10, **seeded)  # the variants: fewer epochs keep the suite fast
    deep = dict(hidden_layer_sizes=(8, 4), **short)
    return [Estimator(**seeded) for Estimator in ESTIMATORS] + [
        Autoencoder(tied_weights=True, **short),
        Autoencoder(pretraining="greedy", **deep),
        DenoisingAutoencoder(noise="gaussian", pretraining="greedy", tied_weights=True, **deep),
        DenoisingAutoencoder(noise="salt_and_pepper", **short),
        SparseAutoencoder(sparsity="kl", pretraining="greedy", **deep),
        ContractiveAutoencoder(hidden_layer_sizes=(), **short),
        ContractiveAutoencoder(tied_weights=True, **deep),
        VariationalAutoencoder(early_stopping=True, **short),
        ConvolutionalAutoencoder(channels=(4, 4, 4), kernel_size=5, **short),
    ]


ALL = _estimators()
#: each class with its default settings, first in ALL
DEFAULTS = ALL[: len(ESTIMATORS)]


def check_name(check):
    while isinstance(check, functools.partial):
        check = check.func
    return check.__name__


@parametrize_with_checks(ALL)
def test_sklearn_compatible_estimator(estimator, check):
    if check_name(check).startswith("check_array_api") and not any(
        estimator is default for default in DEFAULTS
    ):
        # array API input takes one path, the base's, whatever the settings:
        # its checks run on every class (with every namespace and device
        # scikit-learn finds) and are not repeated for each variant
        pytest.skip("array API checks run on each class's default settings")
    check(estimator)


# Checks that scikit-learn's generator does not yield for third-party estimators:
# parameter validation, set_output, feature names. They check scikit-learn's
# wrappers around fit and transform, which no network option changes, so they
# run on each class's default settings, not on every variant.
EXTRA_CHECKS = [
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_global_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    check_dataframe_column_names_consistency,
]


@pytest.mark.parametrize("check", EXTRA_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("estimator", _estimators()[: len(ESTIMATORS)], ids=repr)
def test_extra_sklearn_checks(estimator, check):
    check(type(estimator).__name__, estimator)
