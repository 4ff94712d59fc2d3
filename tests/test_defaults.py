"""The defaults chosen with benchmarks/bench_defaults.py (issue 15) do what
their docstrings promise on digits: a default fit stops on its own, its codes
beat PCA's at 8 components, and the scale of X does not matter."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import Autoencoder, DenoisingAutoencoder
from skae._evaluation import evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, random_state=0, stratify=y)


def accuracy_and_error(model, digits, scale=1.0):
    """skae's evaluation protocol on digits: held-out accuracy of a logistic
    regression on the codes, and held-out squared error per image in the units
    of X (times ``scale``)."""
    X_train, X_test, y_train, y_test = digits
    result = evaluate(model, X_train * scale, y_train, X_test * scale, y_test)
    return result["accuracy"], result["error"]


@pytest.fixture(scope="module")
def default_fit(digits):
    """``default_fit(cls)``: the class's default model at 8 components, fitted
    on digits once per module (no test changes it), with its accuracy and
    error. A ConvergenceWarning is an error: the fit must stop on its own."""
    fits = {}

    def fitted(cls):
        if cls not in fits:
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)
                model = cls(n_components=8, random_state=0, device="cpu")
                fits[cls] = model, accuracy_and_error(model, digits)
        return fits[cls]

    return fitted


@pytest.mark.parametrize("cls", [Autoencoder, DenoisingAutoencoder])
def test_default_fit_stops_on_its_own_and_beats_pca_at_8_components(cls, digits, default_fit):
    model, (accuracy, error) = default_fit(cls)
    assert model.early_stopping and model.n_iter_ < model.max_iter
    assert model.batch_size_ == 64
    pca_accuracy, pca_error = accuracy_and_error(PCA(n_components=8), digits)
    assert accuracy > pca_accuracy
    assert error < pca_error


def test_codes_of_pixels_in_0_255_classify_as_well_as_of_0_1(digits, default_fit):
    """PCA needs no scaler before it; with its defaults, neither does the
    Autoencoder (measured on MNIST too, README). Not the denoising model: its
    noise_level is in the units of X (on digits 0.924 against 0.938)."""
    unit = default_fit(Autoencoder)[1]
    raw = accuracy_and_error(
        Autoencoder(n_components=8, random_state=0, device="cpu"), digits, 255.0
    )
    assert abs(raw[0] - unit[0]) <= 0.01
    assert np.isfinite(raw[1])
