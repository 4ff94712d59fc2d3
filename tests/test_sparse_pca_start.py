"""The default SparseAutoencoder (init="pca", an L1 code): its non-linear
units stay alive and sparse beside PCA's code, and the fit stays never worse
than its PCA start on the validation rows."""

import warnings

import torch
from sklearn.datasets import load_digits

from skae import SparseAutoencoder
from skae._activations import NEGATIVE_GRADIENT_SLOPE, LeakyGradientReLU
from skae._sparse import PCA_START_GRADIENT_SLOPE


def nonlinear_code(est, X):
    """The non-linear path's ReLU units on the rows of ``X``."""
    rows = torch.as_tensor(X, dtype=torch.float32)
    with torch.inference_mode():
        return est.module_.encode_parts(rows)[1].numpy()


def sparse_fit_outcome(seed):
    """Whether a default fit on digits at n_components=8 keeps its non-linear
    units alive (no dead-unit warning, at most a quarter of them dead),
    sparse (zeros in the code) and open (the gate through which they join
    PCA's code away from zero), with kept weights that beat the start on the
    validation rows; and any other warning it gave (none expected)."""
    X = load_digits().data[:600] / 16
    est = SparseAutoencoder(n_components=8, random_state=seed, device="cpu")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est.fit(X)
    others = [str(w.message) for w in record if "dead" not in str(w.message)]
    codes = nonlinear_code(est, X)
    alive = (
        (~(codes > 0).any(axis=0)).sum() <= 2
        and 0.2 < (codes == 0).mean() < 0.95
        and abs(est.module_.encoder_gate.item()) > 0.05
        and est.best_epoch_ > 0
        and est.best_validation_score_ > est.init_validation_score_
        and len(record) == len(others)
    )
    return alive, others


def test_default_sparse_fits_keep_live_sparse_units_and_beat_their_pca_start():
    """The non-linear units pay on digits, on most seeds: before the L1 code
    beside the PCA start got the centred bias and the leaky gradient, all 8
    died in the first epoch on every seed. Now about one fit in ten still
    loses most of them (and warns): seed 0 did with MKL_CBWR=COMPATIBLE's
    rounding, while seeds 0-7 kept them with this machine's; so at least 4
    of 5 seeds, not each."""
    outcomes = [sparse_fit_outcome(seed) for seed in range(5)]
    assert sum(alive for alive, _ in outcomes) >= 4, outcomes
    assert not [message for _, others in outcomes for message in others]


def test_the_code_units_beside_the_pca_start_leak_more_gradient():
    """Beside PCA's code the ReLU units pass 0.1 below zero (the reconstruction
    pulls weakly on units that add little to PCA's code), from a random start
    0.01; both are exact ReLUs forward."""
    slopes = {}
    for init in ("pca", "random"):
        module = SparseAutoencoder(n_components=3, init=init)._build_module(64)
        relu = module.encoder[-1]
        assert isinstance(relu, LeakyGradientReLU)
        slopes[init] = relu.negative_slope
    assert slopes == {"pca": PCA_START_GRADIENT_SLOPE, "random": NEGATIVE_GRADIENT_SLOPE}
