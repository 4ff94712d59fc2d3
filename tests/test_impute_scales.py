"""AutoencoderImputer on columns the float32 layers cannot see as they are:
constant columns, columns in units below float32's smallest normal number,
columns far from zero against their spread, values beyond float32."""

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.impute import KNNImputer

from skae import AutoencoderImputer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(hidden_layer_sizes=(16,), max_iter=20, random_state=0, device="cpu")


def correlated(n_samples=300, seed=0, missing=0.2):
    """Four correlated columns and their copy with ``missing`` of it NaN."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 1)) + 0.3 * rng.normal(size=(n_samples, 4))
    holes = rng.uniform(size=X.shape) < missing
    holes[holes.all(1), 0] = False
    return X, np.where(holes, np.nan, X)


def fit_recording(imputer, X):
    """``(imputer fitted on X, the UserWarnings of the fit but convergence's)``."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        imputer.fit(X)
    return imputer, [w for w in record if "Stochastic Optimizer" not in str(w.message)]


@pytest.mark.parametrize("value", [1e-6, 0.1, 1e6 + 0.1])
def test_a_constant_column_is_filled_with_its_value(value):
    # as SimpleImputer, KNNImputer and IterativeImputer fill it; its scale of
    # 1 had left the network's noise in it (0.1 filled within 0.0008-0.156)
    _, X_missing = correlated()
    X_missing[:, 2] = value
    X_missing[::5, 2] = np.nan
    imputer, record = fit_recording(AutoencoderImputer(**FAST), X_missing)
    filled = imputer.transform(X_missing)
    assert_array_equal(filled[::5, 2], KNNImputer().fit_transform(X_missing)[::5, 2])
    assert not record


def test_a_column_constant_in_the_training_rows_only_is_filled_with_their_value():
    # one row differs, and early stopping holds it out for some seeds: the fill
    # (and statistics_) was the mean over every row, the held-out ones too
    _, X_missing = correlated(n_samples=40)
    X_missing[:, 2] = 5.0
    X_missing[0, 2] = 9.0
    X_missing[5:8, 2] = np.nan
    held_out = 0
    for seed in range(8):
        imputer = AutoencoderImputer(**{**FAST, "random_state": seed, "max_iter": 2})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imputer.fit(X_missing)
        if imputer.module_.scale[2] == 0:  # constant in the rows trained on
            held_out += 1
            assert imputer.statistics_[2] == 5.0
            assert_array_equal(imputer.transform(X_missing)[5:8, 2], 5.0)
    assert held_out  # the case arose


def _fitted_and_rows():
    """A fitted imputer on correlated columns (it fills better than the
    means: nothing said) and its training rows as a row source."""
    from skae._rows import training_rows

    _, X_missing = correlated()
    imputer, record = fit_recording(AutoencoderImputer(**FAST), X_missing)
    assert not record  # a network that learned says nothing
    return imputer, X_missing, training_rows(torch.as_tensor(X_missing, dtype=torch.float32), "cpu")


def _setup(validation_score):
    """What :func:`keep_means_unless_beaten` reads of a training setup."""
    from types import SimpleNamespace

    return SimpleNamespace(validation_score=validation_score, device="cpu")


def _means_kept(imputer, X_missing):
    """Whether ``imputer`` fills every missing entry with its column mean."""
    holes = np.isnan(X_missing)
    means = np.broadcast_to(imputer.statistics_, X_missing.shape)
    return np.allclose(imputer.transform(X_missing)[holes], means[holes], rtol=1e-6, atol=1e-6)


def test_fills_worse_than_the_means_on_training_rows_keep_the_means():
    # a network that never learned (a rate of 1e-9) filled worse than
    # SimpleImputer (RMSE 0.978 against 0.969), and nothing was said; the
    # check, on a fitted network whose output is then blown up 100 times
    from skae._engine import History
    from skae._impute_module import keep_means_unless_beaten

    imputer, X_missing, rows = _fitted_and_rows()
    assert not _means_kept(imputer, X_missing)
    with torch.no_grad():
        imputer.module_.net[-1].weight.mul_(100)
    training = r"column means on its training rows \(squared error .*with sample_posterior=True\)"
    with pytest.warns(UserWarning, match=training):
        kept = keep_means_unless_beaten(
            imputer.module_, _setup(None), History(), rows, imputer.hide_fraction
        )
    assert kept and _means_kept(imputer, X_missing)


def test_fills_no_better_than_the_means_on_held_out_rows_keep_the_means():
    # on columns that do not predict one another a network had filled worse
    # than the means (4 independent normals, 100 rows: RMSE 0.947 against
    # 0.896); the held-out rows' score of the means decides
    from skae._engine import History
    from skae._impute_module import keep_means_unless_beaten

    imputer, X_missing, rows = _fitted_and_rows()
    module = imputer.module_
    score = imputer._validation_score(module, rows)
    trained = History(best_validation_score=score())
    with torch.no_grad():  # the network's best beats the means: kept
        assert not keep_means_unless_beaten(module, _setup(score), trained, rows, 0.25)
        module.net[-1].weight.mul_(3)
    worse = History(best_validation_score=score())
    with pytest.warns(UserWarning, match=r"column means on the held-out rows \(score"):
        assert keep_means_unless_beaten(module, _setup(score), worse, rows, 1e-9)
    assert _means_kept(imputer, X_missing)
    # the attributes describe the model kept: the means' score, not the network's
    assert worse.best_validation_score == score() < trained.best_validation_score


def test_a_tie_with_the_means_keeps_the_network():
    # held-out rows with nothing to hide score 0 for the network and for the
    # means alike: the means had been kept over a network better elsewhere
    from skae._engine import History
    from skae._impute_module import keep_means_unless_beaten

    imputer, X_missing, rows = _fitted_and_rows()
    tie = History(best_validation_score=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not keep_means_unless_beaten(imputer.module_, _setup(lambda: 0.0), tie, rows, 1e-9)
    assert not _means_kept(imputer, X_missing)


def test_fills_barely_better_than_the_means_warn_and_are_kept():
    from skae._engine import History
    from skae._impute_module import MEAN_FILL_MARGIN, keep_means_unless_beaten, mean_fill_ratio

    imputer, X_missing, rows = _fitted_and_rows()
    last = imputer.module_.net[-1]
    with torch.no_grad():  # shrink the output towards the means' until barely better
        for _ in range(40):
            last.weight.mul_(0.7)
            last.bias.mul_(0.7)
            if mean_fill_ratio(imputer.module_, rows, imputer.hide_fraction, "cpu") >= 0.99:
                break
    ratio = mean_fill_ratio(imputer.module_, rows, imputer.hide_fraction, "cpu")
    assert MEAN_FILL_MARGIN <= ratio < 1
    with pytest.warns(UserWarning, match=r"no better than their column means \(squared error"):
        kept = keep_means_unless_beaten(
            imputer.module_, _setup(None), History(), rows, imputer.hide_fraction
        )
    assert not kept and not _means_kept(imputer, X_missing)


def test_one_column_is_not_judged_against_its_mean():
    # it has no other column to fill from: the means are the best fill, and
    # the warning's advice (rates, epochs, width) had sent users tuning
    X = np.random.default_rng(0).normal(size=(200, 1))
    X[::5, 0] = np.nan
    imputer, record = fit_recording(AutoencoderImputer(**FAST), X)
    assert not [w for w in record if "column means" in str(w.message)]
    assert_array_equal(imputer.transform(X)[::5, 0], imputer.statistics_[0])


def test_a_column_in_units_below_float32_is_filled_with_its_mean_and_warns():
    # float32 holds 1e-40 as a subnormal: the column was left unscaled and
    # its fills came out about 1e38 times its values
    X, X_missing = correlated()
    X_missing[:, 1] *= 1e-40
    with pytest.warns(UserWarning, match=r"features \[1\] vary by less than float32") as record:
        imputer = AutoencoderImputer(**FAST).fit(X_missing)
    assert [w.filename for w in record if "vary by less" in str(w.message)] == [__file__]
    filled = imputer.transform(X_missing)
    holes = np.isnan(X_missing[:, 1])
    assert_array_equal(filled[holes, 1], imputer.statistics_[1])
    # the others are scaled as ever: filled from the rows
    other = np.isnan(X_missing[:, 0])
    rmse = np.sqrt(np.mean((filled[other, 0] - X[other, 0]) ** 2))
    assert rmse < 0.7 * X[:, 0].std()


def test_a_float64_column_far_from_zero_warns():
    # float32 rounds 1e9 + x by 64, far more than the spread of 0.4: the fills
    # lost it without a word (RMSE 30x the mean's on six such columns)
    _, X_missing = correlated()
    far = X_missing.copy()
    far[:, 3] += 1e9
    with pytest.warns(UserWarning, match=r"features \[3\] lie more than 1e\+04 times") as record:
        AutoencoderImputer(**FAST).fit(far)
    assert [w.filename for w in record if "lie more" in str(w.message)] == [__file__]
    # float32 input held no more than the layers see; data near zero is quiet
    for quiet in (far.astype(np.float32), X_missing + 1e3):
        assert not fit_recording(AutoencoderImputer(**FAST), quiet)[1]


def test_values_beyond_float32_are_refused_by_name():
    # they became inf in training, which blamed the learning rate and
    # warned that every feature was empty
    _, X_missing = correlated()
    with pytest.raises(ValueError, match="too large for float32"):
        AutoencoderImputer(**FAST).fit(X_missing * 1e39)


def test_a_first_partial_fit_chunk_leaves_its_constant_columns_learnable():
    # a first chunk of one row is constant in every column: scale 0 there had
    # fixed every later fill at that row's values
    _, X_missing = correlated(600)
    imputer = AutoencoderImputer(**FAST)
    imputer.partial_fit(X_missing[:1])
    for _ in range(5):
        for start in range(1, 600, 100):
            imputer.partial_fit(X_missing[start : start + 100])
    assert np.all(imputer.module_.scale.numpy() == 1)
    filled = imputer.transform(X_missing)
    holes = np.isnan(X_missing[:, 0])
    assert len(np.unique(filled[holes, 0])) == holes.sum()  # each row its own fill


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"keep_empty_features": True},
        {"hidden_layer_sizes": ()},
    ],
)
def test_a_column_empty_at_fit_does_not_move_the_other_fills(params):
    # it reached the layers in its raw units: a value of 1e4 in it at
    # transform moved wine's magnesium fill from 101 to 2471 (range 70-162)
    _, X_missing = correlated()
    X_missing[:, 3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the empty column, convergence
        imputer = AutoencoderImputer(**{**FAST, **params}).fit(X_missing)
    rows = X_missing[:50].copy()
    with_values = rows.copy()
    with_values[:, 3] = np.linspace(-1e4, 1e4, 50)
    assert_array_equal(imputer.transform(with_values)[:, :3], imputer.transform(rows)[:, :3])


def test_a_column_observed_only_in_held_out_rows_is_filled_with_their_mean():
    from skae._impute_columns import training_statistics
    from skae._rows import ArrayRows

    _, X_missing = correlated()
    X_missing[:, 1] = np.nan
    X_missing[-2:, 1] = [3.0, 5.0]  # the last rows: those held out below
    means, scales, unseen = training_statistics(
        X_missing, ArrayRows(X_missing[:-30]), keep_empty_features=False, incremental=False
    )
    assert means[1] == 4.0 and scales[1] == 0.0
    assert_array_equal(unseen, [False, True, False, False])
    assert np.all(scales[[0, 2, 3]] > 0)


def test_a_column_missing_from_the_first_partial_fit_chunk_stays_out_of_the_layers():
    # later chunks fed it unscaled (scale 1): wine's proline (300-1700) took
    # the loss from 7.7 to 26520 and the other fills' error from 1.07 to 5.97
    X, X_missing = correlated(600)
    X_missing[:, 3] *= 1000
    first = X_missing[:100].copy()
    first[:, 3] = np.nan
    imputer = AutoencoderImputer(**FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the column empty in the first chunk
        imputer.partial_fit(first)
        for _ in range(5):
            for start in range(100, 600, 100):
                imputer.partial_fit(X_missing[start : start + 100])
    filled = imputer.transform(X_missing)[:, :3]
    other_values = X_missing.copy()
    other_values[:, 3] = -other_values[:, 3]  # the same holes, other values
    assert_array_equal(imputer.transform(other_values)[:, :3], filled)
    holes = np.isnan(X_missing[:, :3])
    means = np.nanmean(X_missing[:, :3], axis=0)
    assert np.abs(filled - X[:, :3])[holes].mean() < np.abs(means - X[:, :3])[holes].mean()


def test_the_variance_head_is_blind_to_a_column_empty_at_fit_too():
    # without a hidden layer it reads the input itself: its weights on the
    # column kept their random start, and the column's value moved the
    # other columns' deviations by up to 10 %
    import torch

    from skae._impute_columns import column_groups

    _, X_missing = correlated()
    X_missing[:, 3] = np.nan
    params = dict(FAST, hidden_layer_sizes=(), sample_posterior=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the empty column, convergence
        imputer = AutoencoderImputer(**params).fit(X_missing)
    groups = torch.as_tensor(column_groups(4, imputer.hide_fraction))
    rows = torch.tensor(X_missing[:50], dtype=torch.float32)
    with_values = rows.clone()
    with_values[:, 3] = 7.0
    with torch.no_grad():
        mean, std = imputer.module_.averaged_with_std(rows, groups)
        mean_with, std_with = imputer.module_.averaged_with_std(with_values, groups)
    assert torch.equal(mean[:, :3], mean_with[:, :3])
    assert torch.equal(std[:, :3], std_with[:, :3])
