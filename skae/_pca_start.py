"""PCA, the starting point of every ``init="pca"`` network.

:func:`pca_start` fits scikit-learn's PCA to the rows an estimator is fitted
on and returns its mean and components, which
:meth:`skae.nn.EncoderDecoder.start_at_pca` puts in the module's linear path.
It is a start, not the answer: on more than ``MAX_PCA_ROWS`` rows it reads a
random subsample of them (of a large memory map, about ``MAX_WHOLE_VALUES``
values, block by block, with ``IncrementalPCA``), so that its cost and memory
stay a small share of the fit's.
"""

import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import ArpackError
from sklearn import config_context
from sklearn.decomposition import PCA, IncrementalPCA
from torch import nn

from ._rows import far_from_zero, read_in_batches
from ._warnings import user_stacklevel

#: At most this many rows go into the PCA start; more are subsampled.
MAX_PCA_ROWS = 100_000
#: A memory map with more values than this is read block by block
#: (``IncrementalPCA``) rather than whole.
MAX_WHOLE_VALUES = 2**23
#: Values per block read from a memory map (2 MB in float64).
BLOCK_VALUES = 2**18


#: Rows (at most) on which :func:`_fitted` measures the spread along each
#: component, and the multiple of the rows' rounding (their dtype's eps
#: times their root mean square norm) below which a component has none.
NULL_CHECK_ROWS, NULL_ROUNDINGS = 2048, 100


class PCAStart(NamedTuple):
    """What :meth:`skae.nn.EncoderDecoder.start_at_pca` takes, in the data's
    units: ``mean`` (n_features,), orthonormal ``components`` (r, n_features)
    and ``residual_variance``, the mean squared error per value of PCA's
    reconstruction of the rows."""

    mean: np.ndarray
    components: np.ndarray
    residual_variance: float


def pca_start(X, n_components, seed, scale=1.0):
    """The :class:`PCAStart` of PCA on the rows of validated ``X``; see
    :func:`_pca_start`. scikit-learn's array API dispatch is switched off
    for it: the rows are numpy here, and the start must not depend on how
    the caller's arrays were dispatched. On rows that do not vary, PCA's
    ``explained_variance_ratio_`` (not used) is 0 / 0: numpy's warning of it
    is silenced."""
    with config_context(array_api_dispatch=False), np.errstate(divide="ignore", invalid="ignore"):
        return _pca_start(X, n_components, seed, scale)


def _pca_start(X, n_components, seed, scale):
    """The :class:`PCAStart` of PCA on the rows of validated ``X`` (numpy, a
    memory map, a CSR matrix or a torch tensor), in float64:
    ``components`` has ``min(n_components, n_samples, n_features)`` rows.

    The PCA runs on ``X / scale`` (the module's ``input_scale``: values near
    1, which float32 arithmetic cannot overflow however large X's), dense
    float32 rows far from zero in float64, and its mean and variance are
    given back in X's units.

    Dense rows get ``PCA(svd_solver="auto")``, the estimator a user would
    swap out, so that on small data the start is that PCA exactly. A sparse
    matrix is centred implicitly (``svd_solver="arpack"``, not densified
    whole), so that the model's mean and components are those of a PCA and
    not of an uncentred ``TruncatedSVD``; where ``n_components`` reaches its
    rows or columns, which ARPACK cannot find, its (subsampled) rows are
    densified for the dense solver.
    """
    rng = np.random.default_rng(seed)
    n_samples, n_features = X.shape
    rows = None
    if n_samples > MAX_PCA_ROWS:
        rows = np.sort(rng.choice(n_samples, MAX_PCA_ROWS, replace=False))
    n_rows = n_samples if rows is None else len(rows)
    rank = min(n_components, n_rows, n_features)
    if n_rows < 2:  # no direction to find: the mean alone
        mean = _dense(X if rows is None else X[rows]).mean(axis=0, dtype=np.float64)
        return PCAStart(mean, np.zeros((0, n_features)), 0.0)
    blocks = isinstance(X, np.ndarray) and read_in_batches(X)  # as training reads X
    if blocks and n_rows * n_features > MAX_WHOLE_VALUES:
        # a subsample of about MAX_WHOLE_VALUES values, read block by block (an
        # in-memory array too big to copy had been copied whole in float64)
        kept = min(n_samples, max(2 * rank, MAX_WHOLE_VALUES // n_features))
        rows = np.sort(rng.choice(n_samples, kept, replace=False))
        return _incremental_pca(X, rows, rank, scale)
    X = X if rows is None else X[rows]
    random_state = int(rng.integers(2**31 - 1))
    if sp.issparse(X) and rank < min(X.shape):
        pca = PCA(rank, svd_solver="arpack", random_state=random_state)
        try:
            scaled = X / scale
            return _fitted(pca.fit(scaled), scale, scaled)
        except ArpackError:
            if _has_variance(X):
                raise
            # ARPACK finds no direction in rows that do not vary: the mean
            # alone, as the dense solvers give (directions of no variance)
            return PCAStart(
                np.asarray(X.mean(axis=0), dtype=np.float64).ravel(), np.zeros((0, n_features)), 0.0
            )
    pca = PCA(rank, random_state=random_state)
    dense = _dense(X)
    # float32 rows far from zero in float64: PCA's covariance of them lost
    # their variation to the offset (digits / 16 + 1000: a start at 2.6 times
    # the float64 PCA's held-out error; scikit-learn's own, 1.3). Other float32
    # rows stay float32: a float64 copy would double the start's memory.
    precise = dense.dtype != np.float64 and _far_from_zero(dense)
    scaled = (dense.astype(np.float64) if precise else dense) / scale
    return _fitted(pca.fit(scaled), scale, scaled, np.finfo(dense.dtype).eps)


def _far_from_zero(rows):
    """Whether dense ``rows`` lie far from zero against their spread, as the
    fit's warning judges (:func:`~skae._rows.far_from_zero`), on at most
    ``NULL_CHECK_ROWS`` of them, in float64."""
    sample = rows[:: _null_check_step(rows.shape[0])].astype(np.float64)
    spread = np.sqrt(np.mean((sample - sample.mean(axis=0)) ** 2))
    return bool(far_from_zero(np.sqrt(np.mean(sample**2)), spread))


def _has_variance(X):
    """Whether any column of a sparse X varies (its implicit zeros count)."""
    X = sp.csr_array(X)
    return bool(np.any(X.max(axis=0).toarray() != X.min(axis=0).toarray()))


def _dense(X):
    """Rows as a numpy array (a torch tensor is copied to the CPU)."""
    if isinstance(X, torch.Tensor):
        return X.detach().cpu().numpy()
    # C order: PCA's SVD of a Fortran-ordered copy of the same values differs in
    # the last bits, which training then magnifies (odd layouts fit like plain ones)
    return X.toarray() if sp.issparse(X) else np.ascontiguousarray(X)


def _null_check_step(n_rows):
    """The step through ``n_rows`` rows that keeps at most ``NULL_CHECK_ROWS``."""
    return max(1, -(-n_rows // NULL_CHECK_ROWS))


def _fitted(pca, scale, rows, eps=None):
    """The start of a PCA fitted on ``rows`` (X divided by ``scale``), in X's
    units, without the components along which the rows do not vary beyond
    their rounding (``eps``: X's dtype's, by default ``rows``'): such a
    direction is arbitrary (rows that are all alike, or fewer directions
    than components), and a code unit carrying it
    reconstructed new rows' deviations along it, which no training row had
    (a detector fitted on identical rows took a row 50 units off for an
    inlier). Their units start at zero. The spread along each component is
    measured on at most ``NULL_CHECK_ROWS`` of the rows, in float64, as the
    solvers' own variances of such directions are their rounding (1e-8 of
    the largest from the covariance's eigenvectors)."""
    n_features = pca.components_.shape[1]
    # noise_variance_: the mean of the variances PCA leaves out, of which
    # there are min(n_samples, n_features) - n_components (scikit-learn's
    # rule; fewer rows than features leave n_samples - 1 at most)
    left_out = min(pca.n_samples_, n_features) - pca.n_components_
    residual = float(pca.noise_variance_) * left_out / n_features
    mean = pca.mean_.astype(np.float64) * scale
    components = pca.components_.astype(np.float64)
    spread, size = _spread_and_size(rows[:: _null_check_step(rows.shape[0])], pca.mean_, components)
    eps = np.finfo(rows.dtype).eps if eps is None else eps
    kept = spread > NULL_ROUNDINGS * eps * size
    return PCAStart(mean, components[kept], residual * scale**2)


def _spread_and_size(sample, mean, components):
    """The root mean square of the ``sample`` rows' deviations from ``mean``
    along each of the ``components``, and of the rows' norms, in float64. A
    sparse sample stays sparse (its projections are dense, one column per
    component): densified, a wide vocabulary's rows had taken hundreds of MB."""
    if sp.issparse(sample):
        sample = sp.csr_array(sample, dtype=np.float64)
        projected = sample @ components.T - mean @ components.T
        squares = np.asarray(sample.multiply(sample).sum(axis=1)).ravel()
    else:
        sample = _dense(sample).astype(np.float64)
        projected = (sample - mean) @ components.T
        squares = np.sum(sample**2, axis=1)
    return np.sqrt(np.mean(projected**2, axis=0)), np.sqrt(np.mean(squares))


def _incremental_pca(X, rows, rank, scale):
    """PCA of a memory map's rows (all, or the sorted subsample ``rows``), read
    one block at a time."""
    rows = np.arange(X.shape[0]) if rows is None else rows
    step = max(BLOCK_VALUES // X.shape[1], rank)
    starts = list(range(0, len(rows), step))
    if len(starts) > 1 and len(rows) - starts[-1] < rank:
        starts.pop()  # IncrementalPCA needs rank rows per batch: the last joins
    pca = IncrementalPCA(rank)
    for start, stop in zip(starts, [*starts[1:], len(rows)], strict=True):
        pca.partial_fit(np.asarray(X[rows[start:stop]]) / scale)
    # IncrementalPCA's noise_variance_ is that of its last batch's SVD (0.061
    # where PCA gives 1.89): the total variance less the explained, as PCA's
    n_seen, n_features = pca.n_samples_seen_, X.shape[1]
    total = float(pca.var_.sum()) * n_seen / max(n_seen - 1, 1)
    left = max(total - float(pca.explained_variance_.sum()), 0.0)
    pca.n_samples_ = n_seen  # as PCA's, which _fitted reads
    pca.noise_variance_ = left / max(min(n_seen, n_features) - rank, 1)
    # the rows _fitted measures on, read alone (not the whole subsample again)
    return _fitted(pca, scale, np.asarray(X[rows[:: _null_check_step(len(rows))]]) / scale)


def warn_too_few_rows_for_pca(estimator, shape, incremental):
    """Warn where the rows a fresh fit starts from (of ``shape``: the first
    ``partial_fit`` chunk where ``incremental``) are too few for
    ``init="pca"`` to start every code unit: their centred rows span at most
    ``n_rows - 1`` directions, and the units beyond start at zero on both
    linear paths, a saddle that training leaves only slowly (as
    ``IncrementalPCA`` refuses such a first batch, and ``PCA`` more
    components than rows)."""
    if getattr(estimator, "init", None) != "pca":  # the imputer has no PCA start
        return
    n_rows, n_features = shape
    wanted = min(estimator.n_components, n_features)
    if n_rows - 1 < wanted:
        rows = "the first partial_fit chunk has" if incremental else "the fit was given"
        advice = "Pass a first chunk of" if incremental else "Lower n_components, pass"
        warnings.warn(
            f"{type(estimator).__name__}: {rows} {n_rows} row{'s' * (n_rows != 1)}, whose PCA "
            f"spans at most {max(n_rows - 1, 0)} of the n_components={wanted} directions; the "
            f"others start at zero and train slowly. {advice} more than {wanted} rows, or use "
            "init='random'.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


#: Where :func:`linearise_logistic_output` clips the column means: a column
#: always 0 (or 1) has no finite logit, and no slope there.
LOGISTIC_CLIP = 0.01


def linearise_logistic_output(module):
    """Where ``module``'s output is logistic (``loss="bce"``, ``"bernoulli"``)
    and its linear decoder untied, make its PCA start's reconstruction PCA's
    to first order: ``sigmoid(logit(m) + (x_hat - m) / (m (1 - m)))`` in each
    column, ``m`` its mean clipped to [``LOGISTIC_CLIP``, 1 - ``LOGISTIC_CLIP``]
    and ``x_hat`` PCA's reconstruction. The logistic of ``x_hat`` itself, 0.5
    to 0.73 for pixels in [0, 1], had started at 6.6 times PCA's held-out
    error on digits at k = 8 (1.07 times so). Tied weights keep that start."""
    decoder = module.linear_decoder
    if not isinstance(module.output_activation, nn.Sigmoid) or type(decoder) is not nn.Linear:
        return
    with torch.no_grad():
        mean = decoder.bias.clamp(LOGISTIC_CLIP, 1 - LOGISTIC_CLIP)
        decoder.weight.div_((mean * (1 - mean))[:, None])
        decoder.bias.copy_(torch.logit(mean))
