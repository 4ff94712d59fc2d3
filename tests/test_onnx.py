"""ONNX export: every estimator's transform and inverse_transform through
onnxruntime, Pipelines and ColumnTransformers through skl2onnx, and the
optional packages kept out of ``import skae``."""

import logging
import subprocess
import sys
import warnings

import numpy as np
import pytest
from _family import ESTIMATORS
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import Autoencoder, ConvolutionalAutoencoder

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
pytest.importorskip("onnxscript")

from skae.onnx import register_converters, to_onnx  # noqa: E402

SMALL = dict(n_components=4, max_iter=3, random_state=0, device="cpu")
MLP = dict(hidden_layer_sizes=(16,), **SMALL)


def small(cls):
    """A tiny instance of a family member, for the 8x8 digits."""
    if cls is ConvolutionalAutoencoder:
        return cls(image_shape=(8, 8), **SMALL)
    return cls(**MLP)


#: onnxruntime against skae, relative to the largest magnitude of skae's output
RTOL_SCALE = 1e-5


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16).astype(np.float32), y[:300]


def fit_quietly(estimator, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few epochs: ConvergenceWarning
        return estimator.fit(X, y)


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def assert_close_to_scale(actual, expected, rtol=RTOL_SCALE):
    assert actual.shape == expected.shape
    scale = np.abs(expected).max()
    assert np.abs(actual - expected).max() <= rtol * scale


@pytest.mark.parametrize("method", ["transform", "inverse_transform"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_to_onnx_matches_skae(cls, method, digits):
    X, _ = digits
    est = fit_quietly(small(cls), X)
    # the default start: the export carries the PCA start's linear path too
    assert est.init == "pca"
    before_training = est.module_.training
    data = X if method == "transform" else est.transform(X)
    before = getattr(est, method)(data)
    model = to_onnx(est, method=method)
    # the export works on a copy: the estimator's module is untouched
    np.testing.assert_array_equal(getattr(est, method)(data), before)
    assert est.module_.training == before_training
    onnx.checker.check_model(model, full_check=True)

    (graph_input,), (graph_output,) = model.graph.input, model.graph.output
    names = ("X", "Z") if method == "transform" else ("Z", "X_reconstructed")
    assert (graph_input.name, graph_output.name) == names
    in_dims = graph_input.type.tensor_type.shape.dim
    out_dims = graph_output.type.tensor_type.shape.dim
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert in_dims[0].dim_param == "N" and out_dims[0].dim_param == "N"
    assert in_dims[1].dim_value == data.shape[1]
    assert out_dims[1].dim_value == (4 if method == "transform" else 64)
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["skae.estimator"] == cls.__name__ and metadata["skae.method"] == method

    runner = session(model)
    for n_rows in (1, len(data)):
        (out,) = runner.run(None, {names[0]: data[:n_rows]})
        expected = getattr(est, method)(data[:n_rows])
        assert out.dtype == np.float32
        assert_close_to_scale(out, expected)


def test_pipeline_gives_the_same_labels_and_probabilities(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), Autoencoder(**MLP), LogisticRegression(max_iter=500))
    fit_quietly(pipe, X, y)
    register_converters()
    model = skl2onnx.to_onnx(pipe, X[:1], options={LogisticRegression: {"zipmap": False}})
    onnx.checker.check_model(model, full_check=True)
    labels, probabilities = session(model).run(None, {"X": X})
    np.testing.assert_array_equal(labels, pipe.predict(X))
    np.testing.assert_allclose(probabilities, pipe.predict_proba(X), rtol=0, atol=1e-4)
    (one_label, _), expected = session(model).run(None, {"X": X[:1]}), pipe.predict(X[:1])
    np.testing.assert_array_equal(one_label, expected)


def test_column_transformer_with_float64_input(digits):
    # float64 pipelines run the skae step in float32 between two casts
    X, _ = digits
    X = X.astype(np.float64)
    columns = ColumnTransformer(
        [
            ("codes", ConvolutionalAutoencoder(image_shape=(4, 8), **SMALL), list(range(32))),
            ("scaled", StandardScaler(), list(range(32, 64))),
        ]
    )
    fit_quietly(columns, X)
    register_converters()
    model = skl2onnx.to_onnx(columns, X[:1])
    onnx.checker.check_model(model, full_check=True)
    (out,) = session(model).run(None, {"X": X})
    expected = columns.transform(X)
    assert out.dtype == np.float64 and out.shape == (len(X), 4 + 32)
    assert_close_to_scale(out[:, :4], expected[:, :4])
    np.testing.assert_allclose(out[:, 4:], expected[:, 4:], atol=1e-10)


def test_register_converters_twice_is_harmless(digits):
    X, _ = digits
    pipe = fit_quietly(make_pipeline(StandardScaler(), Autoencoder(**MLP)), X[:200])
    register_converters()
    register_converters()
    (out,) = session(skl2onnx.to_onnx(pipe, X[:1].astype(np.float32))).run(
        None, {"X": X.astype(np.float32)}
    )
    assert_close_to_scale(out, pipe.transform(X.astype(np.float32)))


class WiderCodes(Autoencoder):
    """A user's subclass: skl2onnx, which looks converters up by exact type,
    had refused a pipeline holding it ("Unable to find a shape calculator")."""


def test_register_converters_covers_subclasses_defined_before_the_call(digits):
    X, _ = digits
    X = X.astype(np.float32)
    pipe = fit_quietly(make_pipeline(StandardScaler(), WiderCodes(**MLP)), X[:200])
    register_converters()
    (out,) = session(skl2onnx.to_onnx(pipe, X[:1])).run(None, {"X": X})
    assert_close_to_scale(out, pipe.transform(X))


def test_unfitted_estimator_raises_not_fitted():
    with pytest.raises(NotFittedError):
        to_onnx(Autoencoder())


def test_bad_method_raises_value_error(digits):
    X, _ = digits
    est = fit_quietly(Autoencoder(**MLP), X[:50])
    with pytest.raises(ValueError, match="method must be one of"):
        to_onnx(est, method="predict")
    # a list is not hashable: it had raised Python's own TypeError
    with pytest.raises(ValueError, match="method must be one of"):
        to_onnx(est, method=["transform"])
    with pytest.raises(TypeError, match="opset must be an int"):
        to_onnx(est, opset="18")


def test_opset_as_a_numpy_int_exports(digits):
    # numpy's ints are ints to scikit-learn; the check had refused them
    X, _ = digits
    est = fit_quietly(Autoencoder(**MLP), X[:50])
    model = to_onnx(est, opset=np.int64(18))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 18


def test_not_a_skae_estimator_raises_type_error():
    with pytest.raises(TypeError, match="exports skae's autoencoders.*got StandardScaler"):
        to_onnx(StandardScaler().fit(np.eye(3)))


def test_detector_and_imputer_raise_type_error_naming_what_exports():
    from skae import AutoencoderImputer, AutoencoderOutlierDetector

    with pytest.raises(TypeError, match=r"to_onnx\(detector.estimator_\)"):
        to_onnx(AutoencoderOutlierDetector())
    with pytest.raises(TypeError, match="the imputer is not exported"):
        to_onnx(AutoencoderImputer())


def test_opset_the_exporter_cannot_reach_raises_with_skae_message_only(digits, caplog, capfd):
    # torch 2.13's exporter implements opset >= 18; its version converter
    # cannot take these graphs down to 13
    X, _ = digits
    est = fit_quietly(Autoencoder(**MLP), X[:50])
    caplog.set_level(logging.WARNING)  # what would reach stderr unconfigured
    with pytest.raises(ValueError, match="could not produce opset 13"):
        to_onnx(est, opset=13)
    noisy = [r for r in caplog.records if r.name.startswith(("torch.onnx", "onnxscript"))]
    assert [r.getMessage() for r in noisy] == []
    assert capfd.readouterr().err == ""  # no traceback printed either


@pytest.mark.slow  # a fresh Python process, importing torch and skae
def test_import_skae_does_not_import_onnx():
    code = (
        "import sys, skae\n"
        "names = ['onnx', 'onnxruntime', 'onnxscript', 'skl2onnx', 'skae.onnx']\n"
        "print([n for n in names if n in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
