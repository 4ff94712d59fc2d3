"""AutoencoderImputer(sample_posterior=True): draws for multiple imputation,
seeded, around the mean fills, with a spread that knows what a row tells."""

import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.utils.estimator_checks import parametrize_with_checks

import skae
from skae import AutoencoderImputer

FAST = dict(hidden_layer_sizes=(16,), max_iter=20, random_state=0, device="cpu")


def fast(**params):
    return AutoencoderImputer(**{**FAST, "sample_posterior": True, **params})


def quiet_fit(imputer, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the short fits
        return imputer.fit(X)


def copies_and_noise(n_samples=2000, seed=0):
    """(X, X with 20 % NaN): six copies of one normal column, then two
    independent normal columns. A missing copy is determined by the others;
    a missing independent column is not (its conditional deviation is 1)."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n_samples))
    X = np.column_stack([a, a, a, a, a, a, b, c])
    return X, np.where(rng.uniform(size=X.shape) < 0.2, np.nan, X)


@parametrize_with_checks([fast()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_draws_are_seeded_and_keep_the_observed_values():
    X, X_missing = copies_and_noise(400)
    imputer = quiet_fit(fast(), X_missing)
    missing = np.isnan(X_missing)
    first = imputer.transform(X_missing)
    assert_array_equal(imputer.transform(X_missing), first)  # an int seed: same draws
    assert_array_equal(first[~missing], X_missing[~missing])
    assert not np.isnan(first).any()
    other = imputer.set_params(random_state=1).transform(X_missing)
    assert np.all(other[missing] != first[missing])
    assert_array_equal(other[~missing], X_missing[~missing])


def test_a_rows_draws_do_not_depend_on_the_rows_beside_it():
    # the draws were one matrix by position: rows imputed one at a time all
    # got the first row's noise (every draw on the same side of its mean)
    _, X_missing = copies_and_noise(400)
    X_missing[:40, 7] = np.nan
    imputer = quiet_fit(fast(), X_missing)
    batch = imputer.transform(X_missing[:40])
    alone = np.vstack([imputer.transform(X_missing[i : i + 1]) for i in range(40)])
    reversed_batch = imputer.transform(X_missing[:40][::-1])[::-1]
    # one process: the network's blocks differ, so equal up to float rounding
    np.testing.assert_allclose(alone, batch, rtol=0, atol=1e-12)
    np.testing.assert_allclose(reversed_batch, batch, rtol=0, atol=1e-12)
    fill = imputer.set_params(sample_posterior=False).transform(X_missing[:40])
    above = alone[:, 7] > fill[:, 7]
    assert 10 < above.sum() < 30  # independent draws fall on both sides


def test_copies_of_a_row_in_one_call_get_independent_draws():
    _, X_missing = copies_and_noise(400)
    imputer = quiet_fit(fast(), X_missing)
    row = X_missing[np.isnan(X_missing[:, 7])][:1]
    copies = imputer.transform(np.repeat(row, 3, axis=0))
    assert len(np.unique(copies[:, 7])) == 3
    # the first copy's key is the row's (its mean computed in another block)
    np.testing.assert_allclose(copies[0], imputer.transform(row)[0], rtol=0, atol=1e-12)


def test_different_seeds_fit_different_imputers_same_seed_the_same():
    _, X_missing = copies_and_noise(400)
    first = quiet_fit(fast(), X_missing).transform(X_missing)
    assert_array_equal(quiet_fit(fast(), X_missing).transform(X_missing), first)
    other = quiet_fit(fast(random_state=1), X_missing).transform(X_missing)
    missing = np.isnan(X_missing)
    assert not np.allclose(other[missing], first[missing])


@pytest.mark.parametrize("params", [{}, dict(hidden_layer_sizes=(64,), max_iter=200)], ids=repr)
def test_the_spread_is_that_of_the_errors_of_the_mean_fill(params):
    # a missing copy is determined by the others and an independent column
    # is not; the draws spread as the mean fill errs. Uncalibrated, the
    # defaults' draws of a copy had spread 8 to 12 times the fill's RMSE
    # (0.30-0.48 against 0.04), as the head stopped with the network
    X, X_missing = copies_and_noise()
    imputer = quiet_fit(
        AutoencoderImputer(sample_posterior=True, random_state=0, **params), X_missing
    )
    first = imputer.transform(X_missing)
    second = imputer.set_params(random_state=1).transform(X_missing)
    fill = imputer.set_params(sample_posterior=False).transform(X_missing)
    spread = (first - second) / np.sqrt(2)  # two independent draws around one mean
    missing = np.isnan(X_missing)
    for column, rows in ((1, missing[:, 1] & ~missing[:, 0]), (7, missing[:, 7])):
        rmse = np.sqrt(np.mean((fill - X)[rows, column] ** 2))
        # measured over data seeds 0-2: 0.95-1.65 (copy), 0.91-1.01 (independent)
        assert 0.5 * rmse < spread[rows, column].std() < 2 * rmse, (column, rmse)
    assert 0.7 < spread[missing[:, 7], 7].std() < 1.3  # the conditional deviation is 1


def test_the_mean_fills_are_trained_as_without_the_variance_head():
    _, X_missing = copies_and_noise(400)
    plain = quiet_fit(fast(sample_posterior=False), X_missing).transform(X_missing)
    with_head = quiet_fit(fast(), X_missing).set_params(sample_posterior=False)
    assert_array_equal(with_head.transform(X_missing), plain)


def test_a_plain_fit_refuses_to_draw():
    _, X_missing = copies_and_noise(200)
    imputer = quiet_fit(fast(sample_posterior=False), X_missing)
    with pytest.raises(ValueError, match="fitted with sample_posterior=False"):
        imputer.set_params(sample_posterior=True).transform(X_missing)


def test_unseeded_draws_leave_the_global_random_state_alone():
    _, X_missing = copies_and_noise(200)
    imputer = quiet_fit(fast(random_state=None), X_missing)
    np.random.seed(0)  # noqa: NPY002
    _, key, position, *_ = np.random.get_state()  # noqa: NPY002
    first = imputer.transform(X_missing)
    _, key_after, position_after, *_ = np.random.get_state()  # noqa: NPY002
    assert_array_equal(key_after, key)
    assert position_after == position
    missing = np.isnan(X_missing)
    assert not np.array_equal(imputer.transform(X_missing)[missing], first[missing])


def test_a_warm_start_cannot_add_the_variance_head():
    _, X_missing = copies_and_noise(200)
    # the fit refuses the new setting, and transform cannot draw without the head
    imputer = quiet_fit(fast(sample_posterior=False, warm_start=True), X_missing)
    imputer.set_params(sample_posterior=True)
    with pytest.raises(ValueError, match="sample_posterior=True was set after the fit"):
        quiet_fit(imputer, X_missing)
    with pytest.raises(ValueError, match="Fit it again with warm_start=False"):
        imputer.transform(X_missing)


def test_pickle_and_save_keep_the_variance_head(tmp_path):
    _, X_missing = copies_and_noise(200)
    imputer = quiet_fit(fast(), X_missing)
    drawn = imputer.transform(X_missing)
    assert_array_equal(pickle.loads(pickle.dumps(imputer)).transform(X_missing), drawn)
    path = os.fspath(tmp_path / "imputer.skae")
    skae.save(imputer, path)
    assert_array_equal(skae.load(path).transform(X_missing), drawn)


def test_too_few_rows_leave_the_variance_head_uncalibrated():
    # a 4-row partial_fit chunk hides a few entries: a factor from them would
    # be noise, and 4 * 1024 patterns of 8 passes took seconds per call
    from skae._impute_module import calibrate_variance
    from skae._rows import TensorRows

    _, X_missing = copies_and_noise(400)
    imputer = quiet_fit(fast(), X_missing)
    module = imputer.module_
    groups = torch.zeros(X_missing.shape[1], dtype=torch.int64)
    bias = module.log_variance.bias.clone()
    rows = TensorRows(torch.as_tensor(X_missing[:4], dtype=torch.float32))
    calibrate_variance(module, rows, groups, torch.Generator().manual_seed(0))
    assert torch.equal(module.log_variance.bias, bias)
    rows = TensorRows(torch.as_tensor(X_missing, dtype=torch.float32))
    calibrate_variance(module, rows, groups, torch.Generator().manual_seed(0))
    assert not torch.equal(module.log_variance.bias, bias)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_memmap_calibrates_on_cuda(tmp_path):
    # a memory map is read in CPU batches: the calibration moves its rows to
    # the module's device (it read them where they were)
    _, X_missing = copies_and_noise(400)
    path = os.fspath(tmp_path / "X.npy")
    np.save(path, X_missing)
    imputer = quiet_fit(fast(device="cuda"), np.load(path, mmap_mode="r"))
    assert imputer.module_.log_variance.bias.device.type == "cuda"
    assert not np.isnan(imputer.transform(X_missing)).any()
