"""The scores of :class:`~skae.AutoencoderOutlierDetector`: the density
family (``score_by="density"`` and ``"satterthwaite"``), a Gaussian on the
code and one on the residual, the residual's variance from out-of-fold rows;
and the reconstruction score of rows a bounded loss gives no likelihood."""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn import config_context
from sklearn.base import clone
from sklearn.covariance import LedoitWolf
from sklearn.model_selection import KFold

from ._device import as_tensor
from ._losses import UNIT_INTERVAL_LOSSES
from ._progress import NO_BETTER_THAN_MEAN, fit_quietly
from ._rows import ArrayRows, block_rows, root_mean_square
from ._validation import UNIT_INTERVAL_SLACK
from ._warnings import user_stacklevel

#: The values of ``score_by`` that score by the Gaussian on the code and the
#: residual; they differ only in how ``noise_variance_`` is estimated.
DENSITY_SCORES = ("density", "satterthwaite")

#: The fitted attributes of the density scores.
DENSITY_ATTRIBUTES = ("noise_variance_", "code_location_", "code_precision_")


def satterthwaite_variance(residuals: np.ndarray) -> float:
    """``tr(C^2) / tr(C)`` for ``C = R'R / n``, the second moment of the
    ``residuals`` ``R`` (rows by features): Satterthwaite's scale, with
    which ``|r|^2`` has the mean and variance of that scale times a
    chi-square with ``tr(C)^2 / tr(C^2)`` degrees of freedom (the residual's
    effective number of independent features). It is at least ``tr(C) / p``
    (the mean squared residual per feature), equal where ``C`` is a
    multiple of the identity: correlated residual features count once, not
    once per feature."""
    squares = float(np.square(residuals).sum())
    if squares == 0.0:
        return 0.0
    n_rows, n_features = residuals.shape
    # ||R'R||_F = ||RR'||_F: the Gram of the shorter side
    gram = residuals.T @ residuals if n_features <= n_rows else residuals @ residuals.T
    return float(np.square(gram).sum()) / (n_rows * squares)


def far_out_rows(errors: np.ndarray, groups=()) -> np.ndarray:
    """Which rows' squared reconstruction ``errors`` lie beyond Tukey's
    far-out fence, ``Q3 + 3 IQR``, of the errors' logarithms, or beyond the
    fence of their own group's (each of ``groups`` an index array: the rows
    one fold model scored, at one scale): rows no noise model of the others
    explains (a corrupted row, a sentinel value), left out of
    ``noise_variance_`` and of the code's Gaussians: a mean over them let one
    sentinel row set the noise of all, and the residual term of every score
    fell to nothing (:ref:`outliers`). No row where the logarithms'
    quartiles coincide (no spread to judge by) or are not finite."""
    logs = np.log(np.maximum(errors, np.finfo(np.float64).tiny))
    far = _beyond_fence(logs)
    for group in groups:
        far[group] |= _beyond_fence(logs[group])
    return far


def _beyond_fence(logs):
    with np.errstate(invalid="ignore"):  # inf - inf: no fence
        low, high = np.quantile(logs, [0.25, 0.75])
        fence = high + 3.0 * (high - low)
    if not (np.isfinite(fence) and high > low):
        return np.zeros(len(logs), dtype=bool)
    return logs > fence


#: The ratio of the mean squares of two folds' training rows past which the
#: fence is judged within each fold too: one row dominates them (a sentinel),
#: and the models that trained on it inflated all their rows' errors alike.
FOLD_SCALE_RATIO = 100.0


def fold_groups(X, folds):
    """The held-out rows of each fold where the folds' training rows differ
    in mean square by ``FOLD_SCALE_RATIO`` or more (a sentinel of 1e30 among
    standardised rows, which a fence of all rows' errors no longer reached),
    for :func:`far_out_rows`; none otherwise, so that a few rows of a fold
    are not judged on their own quartiles."""
    if sp.issparse(X):
        squares = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
    elif torch.is_tensor(X):
        squares = X.double().square().sum(dim=1).cpu().numpy()
    else:  # block by block: X may be a memory map
        step = block_rows(X.shape[1])
        blocks = range(0, X.shape[0], step)
        squares = np.concatenate(
            [np.square(X[i : i + step], dtype=np.float64).sum(1) for i in blocks]
        )
    means = [squares[rows].mean() for rows, _ in folds if len(rows)]
    if not means or not min(means) * FOLD_SCALE_RATIO <= max(means):
        return []
    return [held for _, held in folds]


def distances_without_far_out(fits, X, parts, inside):
    """The code term (``parts[:, 1]``) of the held-out rows of each fold
    ``(model, fitted_rows, held_out)`` whose fitted rows hold a far-out row
    (not ``inside``), again with the fold's code Gaussian fitted without
    them, in place: the final model's leaves them out, and a threshold set
    on code terms of a wider Gaussian flagged more than ``contamination``
    of new inliers."""
    for model, fitted_rows, held_out in fits:
        if inside[fitted_rows].all():
            continue
        codes = fit_code_density(model, X[fitted_rows[inside[fitted_rows]]])
        parts[held_out, 1] = error_and_distance(model, codes, X[held_out])[:, 1]


def _mixed(bits):
    """splitmix64's finaliser of uint64 ``bits``: every input bit moves
    about half the output bits (a plain weighted sum of float bits had
    collided on values with zero low mantissa bits, such as digits' k/16)."""
    bits = bits ^ (bits >> np.uint64(30))
    bits = bits * np.uint64(0xBF58476D1CE4E5B9)
    bits = bits ^ (bits >> np.uint64(27))
    bits = bits * np.uint64(0x94D049BB133111EB)
    return bits ^ (bits >> np.uint64(31))


def row_hashes(X) -> np.ndarray:
    """A 64-bit hash of each row of X (numpy, a memory map or CSR): the sum
    over the columns of a mixed hash of (column, value), the same for equal
    rows (-0.0 as 0.0, a CSR matrix's explicit zeros and duplicate entries
    as the canonical matrix's, float32 as its float64 value), different for
    different rows but by chance. Read a block at a time."""
    keys = _mixed(np.arange(1, X.shape[1] + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    with np.errstate(over="ignore"):  # uint64 arithmetic modulo 2**64

        def terms(values, columns):  # 0 for a zero, as a CSR matrix's implicit zeros
            bits = (np.asarray(values, dtype=np.float64) + 0.0).view(np.uint64)
            return np.where(bits == 0, np.uint64(0), _mixed(bits ^ keys[columns]))

        out = np.empty(X.shape[0], dtype=np.uint64)
        step = max(1, 2**20 // max(X.shape[1], 1))
        for start in range(0, X.shape[0], step):
            block = X[start : start + step]
            if sp.issparse(block):
                block = sp.csr_matrix(block, copy=True)
                block.sum_duplicates()
                summed = np.add.reduceat(
                    np.r_[terms(block.data, block.indices), np.uint64(0)], block.indptr[:-1]
                )
                out[start : start + step] = np.where(np.diff(block.indptr) > 0, summed, 0)
            else:
                columns = np.arange(X.shape[1])
                out[start : start + step] = terms(block, columns).sum(axis=1, dtype=np.uint64)
    return out


def out_of_fold_splits(X, n_splits, seed):
    """``KFold(n_splits, shuffle=True, random_state=seed)``'s (fitted rows,
    held-out rows) of X; where X repeats a row, the folds split the distinct
    rows, every copy of one in one fold: a copy among the fitted rows made
    a held-out row's score in-sample, and rows repeated three times flagged
    2-3 times ``contamination`` of new inliers. KFold over the rows where
    the distinct rows are fewer than 2 per fold (as ``fit`` asks of rows)."""
    folds = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, groups = np.unique(row_hashes(X), return_inverse=True)
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    if n_groups == X.shape[0] or n_groups < 2 * n_splits:
        yield from folds.split(np.empty((X.shape[0], 0)))
        return
    for _, held_groups in folds.split(np.empty((n_groups, 0))):
        held = np.isin(groups, held_groups)
        yield np.flatnonzero(~held), np.flatnonzero(held)


#: Rounds of refits without the far-out rows (each round's errors may unmask
#: rows a spoiled model had hidden, or clear rows it had made look far out).
FAR_OUT_ROUNDS = 2


def fit_folds(template, X, folds, score_by):
    """Fit a clone of ``template`` on the fitted rows of each fold
    ``(fitted_rows, held_out)`` and score its held-out rows; then, while rows
    are :func:`far_out_rows` (where :func:`fold_groups` says so, by their
    fold's errors alone too: one model's, at one scale), refit each fold
    model whose training rows differ from its fold's rows inside the fence,
    at most ``FAR_OUT_ROUNDS`` times: one sentinel row of 1e10 among
    standardised ones took the float32 precision of the rows beside it, and
    every new inlier was flagged.
    Returns ``parts`` (per row, the squared error and the code distance, or
    for ``score_by="reconstruction"`` the score), the residuals for
    ``"satterthwaite"`` (else None), the fits ``(model, fitted_rows,
    held_out)`` and which rows are inside the fence (the final model's)."""
    parts, folds = np.empty((X.shape[0], 2), dtype=np.float64), list(folds)
    kept = np.empty(X.shape, dtype=np.float64) if score_by == "satterthwaite" else None
    degenerate = {}  # fold -> whether its model said it bought nothing

    def fit(fold, fitted_rows, held_out):
        model, said = fit_quietly(clone(template), X[fitted_rows])  # the final fit says it
        degenerate[fold] = any(NO_BETTER_THAN_MEAN in message for message in said)
        if score_by in DENSITY_SCORES:
            codes = fit_code_density(model, X[fitted_rows])
            parts[held_out] = error_and_distance(model, codes, X[held_out])
        else:
            parts[held_out, 1] = reconstruction_scores(model, X[held_out])
            parts[held_out, 0] = squared_errors(model, X[held_out])
        if kept is not None:
            kept[held_out] = residuals(model, X[held_out])
        return model, fitted_rows, held_out

    fits = [fit(fold, *rows) for fold, rows in enumerate(folds)]
    groups = fold_groups(X, folds)
    for _ in range(FAR_OUT_ROUNDS):
        inside = ~far_out_rows(parts[:, 0], groups)
        wanted = [rows[inside[rows]] for rows, _ in folds]
        stale = [i for i, rows in enumerate(wanted) if not np.array_equal(fits[i][1], rows)]
        for i in stale:
            fits[i] = fit(i, wanted[i], folds[i][1])
        if not stale:
            break
    else:
        inside = ~far_out_rows(parts[:, 0], groups)
    warn_of_degenerate_folds(sum(degenerate.values()), len(fits))
    return parts, kept, fits, inside


def warn_of_degenerate_folds(n_degenerate, n_folds):
    """Say where ``n_degenerate`` fold models ended no better than their
    column means: ``offset_`` is a quantile of their scores, and five such
    models had set a threshold that flagged 0.9 % of new inliers at
    ``contamination=0.1`` while the final fit, trained on more rows, said
    nothing of it."""
    if n_degenerate:  # not in the final model's words, which say it of the final fit
        warnings.warn(
            f"AutoencoderOutlierDetector: {n_degenerate} of the {n_folds} fold models that "
            "cross-fit offset_ reconstruct their training rows no better than those rows' "
            "mean, so the share of new inliers it flags may be far from contamination. "
            "Check the inner estimator's settings (its own fit on X says why).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def squared_errors(model, X) -> np.ndarray:
    """Each row's squared reconstruction error under the fitted ``model``, in
    float64 and X's units (computed in those of :func:`error_unit`, at most
    the largest value of X's dtype, which the model's check of its output
    lets through): for :func:`far_out_rows` alone."""

    def error(module, x):
        error = (module.decode(module.encode(x)) - x).double().square().sum(dim=1)
        limit = torch.finfo(x.dtype).max
        return torch.nan_to_num(error / error_unit(module), nan=limit).clamp(max=limit)

    errors = np.asarray(model._inference(X, error, "transform"), dtype=np.float64)
    return errors * error_unit(model.module_)  # in X's units: one fence for every fold


def residuals(model, X) -> np.ndarray:
    """Each row's residual (reconstruction minus row) under the fitted
    ``model``, in float64."""

    def residual(module, x):
        return module.decode(module.encode(x)) - x

    return np.asarray(model._inference(X, residual, "transform"), dtype=np.float64)


def fit_code_density(model, X) -> dict[str, np.ndarray]:
    """The Gaussian of the codes of a fitted ``model`` on its training rows
    ``X``, shrunk by Ledoit-Wolf: ``code_location_`` and ``code_precision_``."""
    with config_context(transform_output="default"):  # numpy, whatever the global
        codes = model.transform(X)
    shrunk = LedoitWolf().fit(np.asarray(codes, dtype=np.float64))
    return {"code_location_": shrunk.location_, "code_precision_": shrunk.precision_}


def _error_and_distance(location, precision):
    """``fn(module, x)``: each row's squared reconstruction error (summed over
    the features) in units of :func:`error_unit` (near 1 at any data scale,
    where in X's units it fell below float32's range for float32 data near
    1e-25 and read as 0) and the squared Mahalanobis distance of its code,
    both computed in float64: the precision goes as the inverse square of
    the data's scale, past float32's range (to inf) for float32 data at
    1e-19 and below."""

    def error_and_distance(module, x):
        def tensor(array):  # copies a read-only array (joblib's memory map)
            return as_tensor(array, x.device, torch.float64)

        code = module.encode(x)
        error = (module.decode(code) - x).double().square().sum(dim=1)
        error = error / error_unit(module)
        centred = code.double() - tensor(location)
        return error, ((centred @ tensor(precision)) * centred).sum(dim=1)

    return error_and_distance


def error_and_distance(model, codes, X) -> np.ndarray:
    """Columns: :func:`_error_and_distance` of each row of ``X`` under the
    fitted ``model`` and its :func:`fit_code_density` ``codes``, in float64
    (the error back in X's units)."""
    fn = _error_and_distance(codes["code_location_"], codes["code_precision_"])

    def stacked(module, x):  # a row past x's dtype: its largest value, not a failed fit
        limit = torch.finfo(x.dtype).max
        both = torch.stack(fn(module, x), dim=1)
        return torch.nan_to_num(both, nan=limit, posinf=limit).clamp(max=limit)

    both = np.array(model._inference(X, stacked, "transform"), dtype=np.float64)
    both[:, 0] *= error_unit(model.module_)
    return both


def error_unit(module):
    """The square of the scale the module's layers see the data at
    (``input_scale``; 1 for a module without one): the unit the squared
    errors travel in, whatever the module's loss is computed in."""
    return float(getattr(module, "input_scale", 1.0)) ** 2


def reconstruction_scores(model, X):
    """``model.score_samples`` of each row of X (numpy or CSR), under
    :func:`overflow_free`, but -inf for a row with values outside [0, 1]
    where the model's loss ("bce", "bernoulli") models values in it: no
    likelihood, an outlier, where the model itself refuses the whole call. A
    tensor goes to the model as it is."""

    def scores(rows):
        return model._inference(rows, overflow_free(model._scored_batch), "score_samples")

    if model._build_params_.get("loss") not in UNIT_INTERVAL_LOSSES or torch.is_tensor(X):
        return scores(X)
    low, high = X.min(axis=1), X.max(axis=1)  # CSR: implicit zeros count
    if sp.issparse(X):
        low, high = low.toarray().ravel(), high.toarray().ravel()
    inside = (low >= -UNIT_INTERVAL_SLACK) & (high <= 1 + UNIT_INTERVAL_SLACK)
    if inside.all():
        return scores(X)
    result = np.full(X.shape[0], -np.inf, dtype=X.dtype)
    if inside.any():
        result[inside] = scores(X[inside])
    return result


def overflow_free(fn):
    """``fn(module, x)``, each row's score, with a score that is not finite
    in x's dtype (a row whose values overflow the model's arithmetic: far
    outside the training data's scale) at that dtype's lowest finite value,
    which the model's check of its output lets through: one such row had
    made the whole call raise. :func:`overflow_as_outliers` makes it -inf."""

    def scored(module, x):
        score, limits = fn(module, x), torch.finfo(x.dtype)
        score = score.clamp(max=limits.max)  # a likelihood so high is no outlier
        return torch.where(score >= limits.min, score, limits.min)  # NaN too

    return scored


def overflow_as_outliers(scores):
    """``scores`` (numpy or a tensor) with :func:`overflow_free`'s stand-ins
    at -inf (outliers), in place, and a warning that counts them."""
    lowest = (torch.finfo if torch.is_tensor(scores) else np.finfo)(scores.dtype).min
    overflowed = scores == lowest
    if overflowed.any():
        scores[overflowed] = -np.inf
        warnings.warn(
            f"AutoencoderOutlierDetector: {int(overflowed.sum())} of {len(scores)} rows "
            "give no finite score: they overflow the inner model's arithmetic (values "
            "far outside the training data's scale), or hold NaN or inf (unchecked "
            "under scikit-learn's assume_finite=True); they are scored -inf, as outliers.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return scores


def noise_floor(X):
    """The least ``noise_variance_`` of a detector fitted on X (numpy or CSR):
    the square of X's rounding, ``eps**2`` times the mean square of its
    values (summed in float64, a CSR matrix's implicit zeros counted), at
    least float64's ``tiny``, the arithmetic the scores divide by it in; 1
    where X is all zeros, which has no scale (as ``input_scale`` takes it).
    On rows the model reconstructs exactly (identical rows) it was ``tiny``,
    and any other row's score overflowed; float32's ``tiny`` floored float32
    data at 1e-20, whose rounding is far smaller, off its residual term."""
    if sp.issparse(X):
        square = float(np.square(X.data, dtype=np.float64).sum()) / (X.shape[0] * X.shape[1])
    else:  # block by block: X may be a memory map
        square = root_mean_square(ArrayRows(X, torch.float64)) ** 2
    rounding = float(np.finfo(X.dtype).eps) ** 2 * square
    return max(rounding, float(np.finfo(np.float64).tiny)) if square > 0 else 1.0


def density_scores(model, density, X, *, plain=False) -> np.ndarray:
    """``-(|r|^2 / noise_variance_ + (z - location)' precision (z -
    location)) / 2`` for each row of ``X``, with ``z`` its code and ``r`` its
    residual under the fitted ``model``: a Gaussian log-likelihood up to a
    constant, in X's float dtype. ``density``: the detector's attributes.
    ``plain``: X passed :func:`~skae._validation.plain_rows` for the model's
    features (a small call skips the model's own check of it)."""
    noise = density["noise_variance_"]
    fn = _error_and_distance(density["code_location_"], density["code_precision_"])

    @overflow_free
    def score(module, x):
        error, distance = fn(module, x)  # the error in error_unit's units, as the noise is here
        return -0.5 * (error / (noise / error_unit(module)) + distance)

    if plain:  # checked by plain_rows already: straight to the network
        return model._apply(score, X)
    return model._inference(X, score, "score_samples")


#: The fitted attributes of the detector itself that a saved state holds.
DETECTOR_ATTRIBUTES = {
    "offset_",
    "calibration_scores_",
    "n_features_in_",
    "feature_names_in_",
    *DENSITY_ATTRIBUTES,
}


def checked_attributes(attributes):
    """The saved detector attributes, refused unless they are the detector's
    own (one named after a method or a parameter had replaced it), with a
    finite threshold and a row of calibration scores, none NaN."""
    unknown = sorted(set(attributes) - DETECTOR_ATTRIBUTES)
    if unknown:
        raise ValueError(
            f"The file's detector state holds {unknown}, which a fitted "
            "AutoencoderOutlierDetector does not have."
        )
    try:
        offset = float(attributes["offset_"])
        scores = np.asarray(attributes["calibration_scores_"], dtype=np.float64)
    except (TypeError, ValueError):
        offset, scores = math.nan, np.empty(0)
    if not math.isfinite(offset):
        raise ValueError("The file's detector attribute offset_ is not a finite number.")
    if scores.ndim != 1 or not scores.size or np.isnan(scores).any():
        raise ValueError(
            "The file's detector attribute calibration_scores_ is not a row of numbers without NaN."
        )
    names = attributes.get("feature_names_in_")
    if names is not None and not (
        isinstance(names, np.ndarray)
        and names.shape == (attributes["n_features_in_"],)
        and all(isinstance(name, str) for name in names)
    ):
        raise ValueError(
            "The file's detector attribute feature_names_in_ is not a 1-D array of "
            "n_features_in_ column names."
        )
    return {**attributes, "offset_": offset, "calibration_scores_": scores}


def checked_density(attributes, estimator):
    """The saved ``score_by="density"`` attributes, refused unless their
    shapes fit the inner estimator's code size and the noise is positive."""
    n_codes = estimator._n_features_out
    shapes = {
        "noise_variance_": (),
        "code_location_": (n_codes,),
        "code_precision_": (n_codes, n_codes),
    }
    arrays = {}
    for name, shape in shapes.items():
        array = np.asarray(attributes[name], dtype=np.float64)
        if array.shape != shape:
            raise ValueError(
                f"The file's detector attribute {name} has shape {array.shape}; "
                f"its inner estimator needs {shape}."
            )
        arrays[name] = array
    noise = float(arrays["noise_variance_"])
    if not (np.isfinite(noise) and noise > 0):
        raise ValueError("The file's detector attribute noise_variance_ is not positive.")
    return {**arrays, "noise_variance_": noise}


def warn_if_code_covers_input(estimator, n_features, score_by):
    """Warn where ``score_by="reconstruction"`` meets an inner code at least
    as wide as the input from the PCA start, which copies every row: every
    score is then a rounding error and the threshold sits on noise (300 rows
    of one feature: outliers at 20 deviations were inliers)."""
    n_components = getattr(estimator, "n_components", 0)
    copies = getattr(estimator, "init", None) == "pca"  # a random start's code is no copy
    if copies and score_by == "reconstruction" and n_components >= n_features:
        warnings.warn(
            f"AutoencoderOutlierDetector: score_by='reconstruction' with a code of "
            f"n_components={n_components} for {n_features} features reconstructs every "
            "row, so the scores cannot tell rows apart. Use a narrower code, or "
            "score_by='density', which also scores the code.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def warn_if_rows_identical(X):
    """Warn where every training row of a validated X (numpy, scipy.sparse or
    a tensor) is the same row: it gives no spread to set a threshold by, so
    every row equal to it is an inlier and any row that differs, by however
    little, an outlier (a detector of such data had said nothing)."""
    if sp.issparse(X):
        same = (X.min(axis=0).toarray() == X.max(axis=0).toarray()).all()
    else:
        same = (X == X[:1]).all()
    if X.shape[0] > 1 and bool(same):
        warnings.warn(
            f"AutoencoderOutlierDetector: the {X.shape[0]} training rows are all the same "
            "row, which gives no spread to set a threshold by: rows equal to it are "
            "inliers and any row that differs from it is an outlier.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
