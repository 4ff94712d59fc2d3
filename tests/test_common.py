"""The contract: every scikit-learn estimator check, on every estimator."""

import pytest
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

from _family import ESTIMATORS


def _estimators():
    # the default settings, seeded: every check passes and none is marked as
    # an expected failure
    return [Estimator(device="cpu", random_state=0) for Estimator in ESTIMATORS]


@parametrize_with_checks(_estimators())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# Checks that scikit-learn's generator does not yield for third-party estimators.
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
@pytest.mark.parametrize("estimator", _estimators(), ids=lambda e: type(e).__name__)
def test_extra_sklearn_checks(estimator, check):
    check(type(estimator).__name__, estimator)
