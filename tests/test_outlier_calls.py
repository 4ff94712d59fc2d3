"""AutoencoderOutlierDetector's scoring calls: the short path of a plain numpy
array against validated input, and the fitted check."""

import copy
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skae import Autoencoder, AutoencoderOutlierDetector

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module", params=["density", "satterthwaite", "reconstruction"])
def fitted(request):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    estimator = Autoencoder(
        n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0, device="cpu"
    )
    detector = AutoencoderOutlierDetector(estimator, score_by=request.param, random_state=0)
    return detector.fit(X), X


@pytest.mark.parametrize("method", ["score_samples", "decision_function", "predict"])
def test_unfitted_detector_refuses_to_score(method):
    detector = AutoencoderOutlierDetector()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(detector, method)(np.zeros((2, 3)))


def test_failed_first_fit_leaves_the_detector_unfitted():
    detector = AutoencoderOutlierDetector(cv=5)
    with pytest.raises(ValueError, match="needs at least 10 samples"):
        detector.fit(np.zeros((4, 3)))
    with pytest.raises(NotFittedError):
        detector.score_samples(np.zeros((2, 3)))


@pytest.mark.parametrize("named", [False, True], ids=["array", "dataframe"])
def test_failed_refit_keeps_the_fitted_detector(named):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    if named:
        X = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    estimator = Autoencoder(n_components=2, hidden_layer_sizes=(8,), max_iter=3, device="cpu")
    detector = AutoencoderOutlierDetector(estimator, cv=2, random_state=0).fit(X)
    before = detector.decision_function(X)
    with pytest.raises(ValueError, match="needs at least 4 samples"):
        detector.fit(rng.normal(size=(3, 2)))  # fewer rows and columns
    assert detector.n_features_in_ == 5
    assert hasattr(detector, "feature_names_in_") is named
    np.testing.assert_array_equal(detector.decision_function(X), before)


def test_refit_on_unnamed_columns_drops_the_names():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).normal(size=(60, 3))
    estimator = Autoencoder(n_components=2, hidden_layer_sizes=(8,), max_iter=3, device="cpu")
    detector = AutoencoderOutlierDetector(estimator, cv=2, random_state=0)
    detector.fit(pd.DataFrame(X, columns=["a", "b", "c"])).fit(X)
    assert not hasattr(detector, "feature_names_in_")


def test_plain_rows_score_as_validated_input(fitted):
    detector, X = fitted
    plain = detector.score_samples(X[:20])
    # a list and a Fortran-ordered array go through validation: same rows,
    # same float64 arithmetic on blocks of the same shape
    np.testing.assert_array_equal(detector.score_samples(X[:20].tolist()), plain)
    np.testing.assert_array_equal(detector.score_samples(np.asfortranarray(X[:20])), plain)


def test_one_row_scores_as_in_a_block(fitted):
    detector, X = fitted
    block = detector.score_samples(X[:20])
    rows = np.concatenate([detector.score_samples(X[i : i + 1]) for i in range(20)])
    # float64 inference: a row's score does not depend on its block beyond rounding
    np.testing.assert_allclose(rows, block, rtol=1e-12, atol=1e-12)


def test_plain_rows_with_bad_values_are_refused(fitted):
    detector, X = fitted
    bad = X[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        detector.score_samples(bad)
    with pytest.raises(ValueError, match="6 features"):
        detector.score_samples(X[:3, :5])


@pytest.mark.parametrize("sparse", [False, True])
def test_reconstruction_scores_of_rows_outside_a_bounded_loss_are_minus_inf(sparse):
    # the inner model refuses X outside [0, 1] under loss="bce": one such
    # row made predict raise for the whole call instead of flagging it
    from sklearn.datasets import load_digits

    X = load_digits().data[:200] / 16
    inner = Autoencoder(n_components=4, hidden_layer_sizes=(16,), loss="bce", max_iter=3)
    detector = AutoencoderOutlierDetector(
        inner.set_params(early_stopping=False, device="cpu", random_state=0),
        score_by="reconstruction",
        cv=2,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        detector.fit(X)
    new = X[:4].copy()
    new[0, 10], new[2, 5] = 1.5, -0.5
    rows = scipy.sparse.csr_matrix(new) if sparse else new
    scores = detector.score_samples(rows)
    assert np.isneginf(scores[[0, 2]]).all()
    np.testing.assert_array_equal(scores[[1, 3]], detector.score_samples(X[[1, 3]]))
    np.testing.assert_array_equal(detector.predict(rows)[[0, 2]], [-1, -1])
    np.testing.assert_array_equal(detector.predict_proba(rows)[[0, 2], 0], [1.0, 1.0])


@pytest.mark.parametrize("dtype, huge", [(np.float32, 1e30), (np.float64, 1e160)])
def test_rows_whose_scores_overflow_are_outliers_and_the_others_keep_theirs(fitted, dtype, huge):
    # a finite glitch value (such as uint64's largest, 1.8e19, in float32 data
    # near 1) overflowed the inner model's arithmetic, which refused the call
    detector, X = fitted
    detector = clone(detector).fit(X.astype(dtype))
    new = X[:9].astype(dtype)
    new[[2, 7], 1] = huge
    with pytest.warns(UserWarning, match="2 of 9 rows give no finite score"):
        scores = detector.score_samples(new)
    assert scores.dtype == dtype and np.isneginf(scores[[2, 7]]).all()
    others = [0, 1, 3, 4, 5, 6, 8]
    np.testing.assert_allclose(scores[others], detector.score_samples(new[others]), rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(detector.predict(new)[[2, 7]], [-1, -1])


@pytest.mark.parametrize("value", [2.0, 0.7])  # a mean exact in floats, and one not
@pytest.mark.parametrize("score_by", ["density", "satterthwaite", "reconstruction"])
def test_a_detector_of_identical_rows_flags_a_row_off_them_in_any_direction(score_by, value):
    # PCA of rows that do not vary picks an arbitrary direction; a code unit
    # carrying it had reconstructed rows off along it, scored as inliers
    X = np.full((60, 4), value)
    detector = AutoencoderOutlierDetector(score_by=score_by, random_state=0)
    with pytest.warns(UserWarning, match="training rows are all the same row"):
        detector.fit(X)
    off = np.full((4, 4), value) - 52 * np.eye(4)
    np.testing.assert_array_equal(detector.predict(off), [-1, -1, -1, -1])
    np.testing.assert_array_equal(detector.predict(X[:2]), [1, 1])


@pytest.mark.parametrize("form", ["dense", "csr"])
def test_identical_training_rows_warn_and_one_differing_entry_does_not(form):
    """Rows that are all one row leave no spread to threshold by: the fit
    says so (it had said nothing); one entry off that row is spread enough."""
    X = np.tile([0.0, 3.0, 0.0, 1.5], (40, 1))
    as_form = scipy.sparse.csr_matrix if form == "csr" else np.asarray
    inner = Autoencoder(n_components=1, hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    detector = AutoencoderOutlierDetector(inner, cv=2, random_state=0)
    with pytest.warns(UserWarning, match="the 40 training rows are all the same row"):
        detector.fit(as_form(X))
    X[7, 2] = 1e-3
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        detector.fit(as_form(X))
    assert not [w for w in record if "same row" in str(w.message)]


def test_an_unconverged_inner_model_warns_once_per_detector_fit():
    """The fold models' fits do not repeat the final model's warning (cv + 1
    ConvergenceWarnings for one call before)."""
    X = np.random.default_rng(0).normal(size=(60, 5))
    inner = Autoencoder(n_components=2, max_iter=2, early_stopping=False, random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        AutoencoderOutlierDetector(inner, cv=3, random_state=0).fit(X)
    assert [w.category for w in record].count(ConvergenceWarning) == 1


def test_an_inner_model_warning_is_said_once_per_detector_fit():
    """Any warning of the inner model's fit: the folds' fits (on fewer rows,
    with their own figures in the message) had said it cv more times."""
    X = np.random.default_rng(0).normal(size=(40, 5))
    inner = Autoencoder(n_components=2, batch_size=64, max_iter=2, random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        AutoencoderOutlierDetector(inner, cv=5, random_state=0).fit(X)
    clipped = [w for w in record if "batch_size" in str(w.message)]
    assert len(clipped) == 1


@pytest.mark.parametrize("action", ["always", "ignore", "error"])
def test_ctrl_c_in_a_fold_fit_is_still_said(monkeypatch, action):
    # said under the caller's own filters (a forced "default" had overridden them)
    from skae import _engine

    X = np.random.default_rng(0).normal(size=(40, 5))
    inner = Autoencoder(n_components=2, max_iter=3, random_state=0)
    original, calls = _engine._after_epoch, []

    def interrupted_once(*args):
        calls.append(1)
        if len(calls) == 1:  # the first fold's first epoch
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(_engine, "_after_epoch", interrupted_once)
    detector = AutoencoderOutlierDetector(inner, cv=2, random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warnings.filterwarnings(action, "Training interrupted")
        if action == "error":
            with pytest.raises(UserWarning, match="interrupted by user"):
                detector.fit(X)
            return
        detector.fit(X)
    said = [w for w in record if "interrupted by user" in str(w.message)]
    assert len(said) == (action == "always")


def test_scoring_follows_the_fitted_inner_model_not_a_later_set_params(fitted):
    # a list (validated input) was checked against the estimator set since,
    # an ndarray was not: only the list's predict refused an imputer
    from skae import AutoencoderImputer

    detector, X = fitted
    changed = copy.deepcopy(detector).set_params(estimator=AutoencoderImputer())
    expected = detector.predict(X[:5])
    np.testing.assert_array_equal(changed.predict(X[:5].tolist()), expected)
    np.testing.assert_array_equal(changed.predict(X[:5]), expected)


def test_a_global_polars_output_fits_the_same_detector():
    """The codes the detector's density is fitted on are numpy whatever the
    global output (under polars they went through a DataFrame and the
    fitted attributes differed in the last bits)."""
    pytest.importorskip("polars")
    from sklearn import config_context

    X = np.random.default_rng(0).normal(size=(80, 5))
    inner = Autoencoder(n_components=2, max_iter=2, early_stopping=False, random_state=0)
    plain = AutoencoderOutlierDetector(inner, cv=2, random_state=0).fit(X)
    with config_context(transform_output="polars"):
        framed = AutoencoderOutlierDetector(inner, cv=2, random_state=0).fit(X)
    np.testing.assert_array_equal(framed.code_location_, plain.code_location_)
    np.testing.assert_array_equal(framed.code_precision_, plain.code_precision_)


READ_ONLY_SCRIPT = """
import sys, warnings
import joblib, numpy as np
from skae import Autoencoder, AutoencoderOutlierDetector

X = np.random.default_rng(0).normal(size=(60, 5))
inner = Autoencoder(n_components=2, max_iter=2, early_stopping=False, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fitted = AutoencoderOutlierDetector(inner, cv=2, random_state=0).fit(X)
joblib.dump(fitted, sys.argv[1])
loaded = joblib.load(sys.argv[1], mmap_mode="r")
assert not loaded.code_precision_.flags.writeable
warnings.simplefilter("error")
np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))
"""


def test_a_detector_loaded_as_a_memory_map_scores_quietly(tmp_path):
    """joblib's ``mmap_mode="r"`` gives the fitted arrays read-only; torch
    warned of "undefined behavior" sharing them. In a new process: torch
    warns once per process, and an earlier test may have used it up."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", READ_ONLY_SCRIPT, str(tmp_path / "detector.joblib")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_fold_models_that_end_degenerate_are_reported():
    # every fold model diverged to a constant output and set offset_ (0.9 %
    # of new inliers flagged at contamination=0.1); their warnings were kept
    # from the user, and the final fit said nothing of it
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(200, 6))
    inner = Autoencoder(init="random", learning_rate=0.3, max_iter=20, random_state=1)
    with pytest.warns(UserWarning, match="of the 5 fold models that cross-fit offset_ reconstruct"):
        AutoencoderOutlierDetector(inner, random_state=1).fit(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "fold models")
        AutoencoderOutlierDetector(random_state=1).fit(X)
