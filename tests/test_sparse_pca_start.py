"""The default SparseAutoencoder (init="pca", an L1 code): its non-linear
units stay alive and sparse beside PCA's code, and the fit stays never worse
than its PCA start on the validation rows."""

import warnings

import pytest
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


@pytest.mark.parametrize("seed", [0, 1])
def test_default_sparse_fit_keeps_live_sparse_units_and_beats_its_pca_start(seed):
    """On digits at n_components=8 the non-linear units pay (the fit beats
    PCA's held-out error): they end alive (no dead-unit warning, at most a
    quarter of them dead), sparse (zeros in the code) and open (the gate
    through which they join PCA's code is away from zero), and the kept
    weights score no worse than the start on the validation rows. Before the
    L1 code beside the PCA start got the centred bias and the leaky gradient,
    all 8 died in the first epoch on every seed."""
    X = load_digits().data[:600] / 16
    est = SparseAutoencoder(n_components=8, random_state=seed, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Warning)
        est.fit(X)
    codes = nonlinear_code(est, X)
    dead = (~(codes > 0).any(axis=0)).sum()
    assert dead <= 2, dead
    assert 0.2 < (codes == 0).mean() < 0.95
    assert abs(est.module_.encoder_gate.item()) > 0.05
    assert est.best_epoch_ > 0
    assert est.best_validation_score_ > est.init_validation_score_


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
