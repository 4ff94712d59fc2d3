"""Saving and loading fitted estimators.

- skae's native format (``skae._persistence.save``/``load``): round trips give
  bit-identical outputs, attributes and continued training for every estimator
  (tied weights, greedy pretraining, early stopping, a DataFrame with feature
  names included); version changes warn; unknown classes, unknown members and
  malicious pickles are refused without running them;
- ``skops.io``: fitted and unfitted estimators round-trip trusting only skae's classes;
- pickle and joblib (and the native format) read back in a fresh process.
"""

import copy
import hashlib
import io
import json
import os
import pickle
import random
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import safetensors.numpy
import torch
from _family import ESTIMATORS
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

from skae import (
    Autoencoder,
    AutoencoderImputer,
    AutoencoderOutlierDetector,
    ContractiveAutoencoder,
    ConvolutionalAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    VariationalAutoencoder,
)
from skae._persistence import ARRAYS, METADATA, load, save

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TINY = dict(hidden_layer_sizes=(6,), max_iter=2, device="cpu", random_state=0)
N_FEATURES = 16

CASES = {
    **{cls.__name__: (cls, {}) for cls in ESTIMATORS},
    "Autoencoder-tied": (Autoencoder, dict(tied_weights=True, hidden_layer_sizes=(8, 4))),
    "Autoencoder-greedy": (Autoencoder, dict(pretraining="greedy", hidden_layer_sizes=(8, 4))),
    "SparseAutoencoder-tied-greedy": (
        SparseAutoencoder,
        dict(tied_weights=True, pretraining="greedy", hidden_layer_sizes=(8, 4)),
    ),
    "ContractiveAutoencoder-early-stopping": (
        ContractiveAutoencoder,
        dict(early_stopping=True, validation_fraction=0.2),
    ),
    "VariationalAutoencoder-bernoulli": (VariationalAutoencoder, dict(loss="bernoulli")),
    "ConvolutionalAutoencoder-image": (
        ConvolutionalAutoencoder,
        dict(image_shape=(4, 4), channels=(2, 3), hidden_layer_sizes=(5,)),
    ),
}
CASE_IDS = list(CASES)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((50, N_FEATURES)), rng.random((30, N_FEATURES))


def make(case):
    cls, params = CASES[case]
    return cls(**{**TINY, **params})


@pytest.fixture(scope="module")
def fitted(data):
    """case -> (estimator fitted on the training data, a saved copy's bytes);
    fitted once per module and never modified by the tests."""
    X, _ = data
    cache = {}

    def get(case):
        if case not in cache:
            est = make(case).fit(X)
            buffer = io.BytesIO()
            save(est, buffer)
            cache[case] = est, buffer.getvalue()
        return cache[case]

    return get


def assert_module_states_equal(a, b):
    state_a, state_b = a.module_.state_dict(), b.module_.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert state_a[key].dtype == state_b[key].dtype, key
        assert torch.equal(state_a[key], state_b[key]) or (
            state_a[key].isnan().all() and state_b[key].isnan().all()
        ), key


def assert_same_outputs(a, b, X):
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        Z = a.transform(Xd)
        np.testing.assert_array_equal(b.transform(Xd), Z)
        np.testing.assert_array_equal(b.inverse_transform(Z), a.inverse_transform(Z))
        np.testing.assert_array_equal(b.score_samples(Xd), a.score_samples(Xd))
    if isinstance(a, VariationalAutoencoder):
        np.testing.assert_array_equal(b.sample(7, random_state=3), a.sample(7, random_state=3))


FITTED_ATTRIBUTES = [
    "n_features_in_",
    "n_iter_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "batch_size_",
    "pretraining_loss_curves_",
    "image_shape_",
    "_n_features_out",
    "device_",
]


def read(payload):
    """The members of a skae archive, as {name: bytes}."""
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def params(document):
    """The parameters in a skae document."""
    return document["params"]["__dict__"]


def attributes(document):
    """The fitted attributes in a skae document."""
    return document["state"]["__dict__"]["attributes"]["__dict__"]


def optimizer(document):
    """The saved optimiser in a skae document."""
    return attributes(document)["_optimizer_"]["__dict__"]


def swap(mapping, a, b):
    mapping[a], mapping[b] = mapping[b], mapping[a]


def tamper(payload, edit):
    """A copy of the archive whose JSON document went through ``edit(document)``."""
    members = read(payload)
    document = json.loads(members[METADATA])
    edit(document)
    members[METADATA] = json.dumps(document).encode()
    return write(members)


# ------------------------------------------------------------ round trips


@pytest.mark.parametrize("case", CASE_IDS)
def test_save_load_round_trip_is_bit_identical(case, fitted, data, tmp_path):
    est, _ = fitted(case)
    X, X_new = data
    path = tmp_path / "model.skae"
    save(est, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same versions, same device: no warning
        restored = load(path)

    assert type(restored) is type(est)
    assert restored is not est
    params, restored_params = est.get_params(), restored.get_params()
    assert restored_params == params
    assert {k: type(v) for k, v in restored_params.items()} == {
        k: type(v) for k, v in params.items()
    }
    for name in FITTED_ATTRIBUTES:
        assert hasattr(restored, name) == hasattr(est, name), name
        if hasattr(est, name):
            assert getattr(restored, name) == getattr(est, name), name
    assert_module_states_equal(est, restored)
    assert_same_outputs(est, restored, np.vstack([X, X_new]))
    np.testing.assert_array_equal(restored.get_feature_names_out(), est.get_feature_names_out())

    if getattr(est, "tied_weights", False):
        # the decoder's weights are the encoder's again, not copies
        pairs = restored.module_.layer_pairs()
        assert pairs
        for pair in pairs:
            encoder_weight = next(m for m in pair.encoder if hasattr(m, "weight")).weight
            # an inner pair's decoder ends with the hidden activation
            decoder = next(m for m in pair.decoder.modules() if hasattr(m, "weight"))
            assert decoder.weight is encoder_weight


@pytest.mark.parametrize("case", CASE_IDS)
def test_partial_fit_after_load_continues_like_the_original(case, fitted, data):
    # the optimiser's moments and the estimator's random generator travel in the
    # file, so the next steps are the original's, bit for bit
    est, payload = fitted(case)
    _, X_new = data
    original = copy.deepcopy(est)
    restored = load(io.BytesIO(payload))
    assert set(read(payload)) == {METADATA, ARRAYS}
    original.partial_fit(X_new)
    restored.partial_fit(X_new)
    assert restored.n_iter_ == original.n_iter_ == est.n_iter_ + 1
    assert restored.loss_curve_ == original.loss_curve_
    assert_module_states_equal(original, restored)
    np.testing.assert_array_equal(restored.transform(X_new), original.transform(X_new))
    # and the copy still saves and loads
    again = load(io.BytesIO(_saved(restored)))
    np.testing.assert_array_equal(again.transform(X_new), original.transform(X_new))


def _saved(est):
    buffer = io.BytesIO()
    save(est, buffer)
    return buffer.getvalue()


def test_round_trip_of_estimator_trained_only_with_partial_fit(data):
    X, X_new = data
    est = Autoencoder(**TINY).partial_fit(X)
    restored = load(io.BytesIO(_saved(est)))
    assert restored.n_iter_ == 1
    assert_same_outputs(est, restored, X_new)
    est.partial_fit(X_new)
    restored.partial_fit(X_new)
    np.testing.assert_array_equal(restored.transform(X), est.transform(X))


def test_save_after_unpickling_keeps_the_optimizer_state(fitted, data):
    # an unpickled estimator rebuilds its optimiser with the moments
    est, _ = fitted("Autoencoder")
    _, X_new = data
    unpickled = pickle.loads(pickle.dumps(est))
    restored = load(io.BytesIO(_saved(unpickled)))
    original = copy.deepcopy(est)
    original.partial_fit(X_new)
    restored.partial_fit(X_new)
    np.testing.assert_array_equal(restored.transform(X_new), original.transform(X_new))


def test_round_trip_keeps_feature_names_and_pandas_output(data, tmp_path):
    pd = pytest.importorskip("pandas")
    X, X_new = data
    columns = [f"pixel{i}" for i in range(N_FEATURES)]
    frame = pd.DataFrame(X, columns=columns)
    est = DenoisingAutoencoder(**TINY).fit(frame).set_output(transform="pandas")
    save(est, tmp_path / "frame.skae")
    restored = load(tmp_path / "frame.skae")
    assert isinstance(restored.feature_names_in_, np.ndarray)
    assert restored.feature_names_in_.dtype == object
    np.testing.assert_array_equal(restored.feature_names_in_, columns)
    new_frame = pd.DataFrame(X_new, columns=columns)
    out, expected = restored.transform(new_frame), est.transform(new_frame)
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_frame_equal(out, expected)
    # the names are checked on the loaded estimator as on the original
    with pytest.raises(ValueError, match="feature names"):
        restored.transform(new_frame.rename(columns={"pixel0": "other"}))


def test_load_leaves_global_random_states_untouched(fitted):
    _, payload = fitted("Autoencoder-tied")
    np.random.seed(5)  # noqa: NPY002
    torch.manual_seed(5)
    random.seed(5)
    numpy_state, torch_state, python_state = (
        np.random.get_state()[1].copy(),  # noqa: NPY002
        torch.random.get_rng_state(),
        random.getstate(),
    )
    load(io.BytesIO(payload))
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert random.getstate() == python_state


def test_model_fitted_on_cuda_loads_on_the_cpu_with_a_warning(fitted, data, monkeypatch):
    est, payload = fitted("Autoencoder")
    X, _ = data

    def on_cuda(document):
        attributes(document)["device_"] = "cuda:0"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="fitted on 'cuda:0', which is not available here"):
        restored = load(io.BytesIO(tamper(payload, on_cuda)))
    assert restored.device_ == torch.device("cpu")
    np.testing.assert_array_equal(restored.transform(X), est.transform(X))


# --------------------------------------------------- what save refuses


def test_save_refuses_random_state_instance(data):
    X, _ = data
    est = Autoencoder(**{**TINY, "random_state": np.random.RandomState(0)}).fit(X)
    match = "plain data only, but parameter 'random_state'.*set_params"
    with pytest.raises(TypeError, match=match):
        save(est, io.BytesIO())
    est.set_params(random_state=0)
    assert load(io.BytesIO(_saved(est))).random_state == 0


def test_save_refuses_unfitted_estimator_and_foreign_classes(data):
    X, _ = data
    with pytest.raises(NotFittedError):
        save(Autoencoder(**TINY), io.BytesIO())

    class MyAutoencoder(Autoencoder):
        pass

    with pytest.raises(TypeError, match="instances of skae's estimator classes"):
        save(MyAutoencoder(**TINY).fit(X), io.BytesIO())
    from sklearn.decomposition import PCA

    with pytest.raises(TypeError, match="instances of skae's estimator classes"):
        save(PCA(2).fit(X), io.BytesIO())


def test_save_stores_torch_device_parameter(data):
    X, _ = data
    est = Autoencoder(**{**TINY, "device": torch.device("cpu")}).fit(X)
    restored = load(io.BytesIO(_saved(est)))
    assert restored.device == torch.device("cpu")
    assert isinstance(restored.device, torch.device)


# --------------------------------------------------- what load refuses


@pytest.mark.parametrize("package", ["skae", "torch", "scikit-learn"])
def test_load_warns_when_versions_differ(package, fitted, data):
    est, payload = fitted("VariationalAutoencoder")
    X, _ = data
    running = json.loads(read(payload)[METADATA])["versions"][package]

    def older(document):
        document["versions"][package] = "0.0.1"

    with pytest.warns(UserWarning) as record:
        restored = load(io.BytesIO(tamper(payload, older)))
    messages = [str(w.message) for w in record]
    assert messages == [
        f"This VariationalAutoencoder was saved with {package} 0.0.1 and is loaded with "
        f"{package} {running}; its results may differ."
    ]
    np.testing.assert_array_equal(restored.transform(X), est.transform(X))


@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_a_version_warning_names_the_line_that_loads(how, tmp_path, monkeypatch):
    # it named a line of pickle.py when joblib.load read the pickle
    import skae._state

    X = load_digits().data[:100] / 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = Autoencoder(n_components=2, max_iter=2, random_state=0, device="cpu").fit(X)
    joblib.dump(est, tmp_path / "model.joblib")
    blob = pickle.dumps(est)
    running = skae._state.running_versions()
    monkeypatch.setattr(skae._state, "running_versions", lambda: {**running, "skae": "9.9.9"})
    with pytest.warns(UserWarning, match="saved with skae") as record:
        if how == "pickle":
            pickle.loads(blob)
        else:
            joblib.load(tmp_path / "model.joblib")
    assert [w.filename for w in record if "saved with" in str(w.message)] == [__file__]


@pytest.mark.parametrize(
    "name", ["PCA", "BaseAutoencoder", "os.system", "builtins.eval", "", "Autoencoder "]
)
def test_load_refuses_class_that_is_not_a_skae_estimator(name, fitted):
    _, payload = fitted("Autoencoder")

    def rename(document):
        document["class"] = name

    with pytest.raises(ValueError, match="not one of skae's estimators"):
        load(io.BytesIO(tamper(payload, rename)))


@pytest.mark.parametrize(
    "edit",
    [
        lambda members: members.update({"extra.bin": b"\x00"}),
        lambda members: members.update({"data.pkl": pickle.dumps([1, 2, 3])}),
        lambda members: members.update({"../skae.json": members[METADATA]}),
        lambda members: members.pop(ARRAYS),
        lambda members: members.pop(METADATA),
    ],
    ids=["extra-member", "extra-pickle", "path-traversal-name", "no-weights", "no-json"],
)
def test_load_refuses_archive_with_unexpected_members(edit, fitted):
    _, payload = fitted("Autoencoder")
    members = read(payload)
    edit(members)
    with pytest.raises(ValueError, match="is not a skae file.*nothing else"):
        load(io.BytesIO(write(members)))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: params(d).update(evil=1), "parameters \\['evil'\\]"),
        (lambda d: params(d).update(n_components=-3), "n_components"),
        (lambda d: params(d).update(activation={"__reduce__": "os.system"}), "Unexpected value"),
        (lambda d: attributes(d).update(evil=1), "fitted attribute names"),
        (lambda d: attributes(d).update(module_=1), "does not fit"),
        (lambda d: attributes(d).update(n_features_in_=5), "the module expects"),
        (lambda d: attributes(d).update(n_features_in_=True), "n_features_in_"),
        (lambda d: attributes(d).update(device_=3), "device_"),
        (
            lambda d: attributes(d)["_rng_"]["__dict__"].update(bit_generator="os.system"),
            "random generator",
        ),
        (
            lambda d: attributes(d)["_optimizer_"]["__dict__"].update(kind="os.system"),
            "optimiser state does not fit",
        ),
        (
            lambda d: optimizer(d)["param_groups"][0]["__dict__"]["params"].__setitem__(2, 0),
            "indices",
        ),
        (lambda d: swap(optimizer(d)["state"]["__dict__"], "0", "2"), "is not of shape"),
        # refused from the shapes alone, before a network of 1e12 inputs is built
        (lambda d: attributes(d).update(n_features_in_=10**12), "has shape"),
        (lambda d: attributes(d).update(best_loss_={"__array__": []}), "not one skae writes"),
        (lambda d: d.update(format_version=99), "format version 99"),
        (
            lambda d: d.update(output_config={"__dict__": {"transform": "bogus"}}),
            "Unexpected output configuration",
        ),
        (lambda d: d["state"]["__dict__"].update(version=99), "fitted state has version 99"),
        (lambda d: d.update(code="import os"), "expected"),
        (
            lambda d: attributes(d)["module_"]["__dict__"].update(
                aliases={"__dict__": {"decoder.0.weight": "encoder.0.weight"}}
            ),
            "tied weights",
        ),
        (lambda d: attributes(d).update(n_iter_="5"), "n_iter_ must be a non-negative int"),
        (lambda d: attributes(d).update(loss_curve_=[1.0, "x"]), "loss_curve_ must be a list"),
        (lambda d: attributes(d).update(validation_scores_=["x"]), "validation_scores_ must"),
        (lambda d: attributes(d).update(batch_size_=0), "batch_size_ must be a positive int"),
        (lambda d: attributes(d).update(best_epoch_=-1), "best_epoch_ must be a non-negative"),
        (lambda d: attributes(d).update(best_loss_="low"), "best_loss_ must be a number"),
    ],
    ids=[
        "unknown-param",
        "invalid-param",
        "tagged-object",
        "not-a-fitted-name",
        "not-a-module-state",
        "wrong-n-features",
        "bool-n-features",
        "device-not-a-name",
        "unknown-bit-generator",
        "unknown-optimizer",
        "optimizer-parameter-twice",
        "optimizer-moments-swapped",
        "huge-width",
        "malformed-array-tag",
        "newer-format",
        "unknown-output",
        "newer-state",
        "unknown-entry",
        "aliases-not-in-module",
        "n-iter-a-string",
        "loss-curve-with-text",
        "validation-scores-of-text",
        "batch-size-zero",
        "best-epoch-negative",
        "best-loss-a-string",
    ],
)
def test_load_refuses_tampered_document(edit, match, fitted):
    _, payload = fitted("Autoencoder")
    with pytest.raises(ValueError, match=match):
        load(io.BytesIO(tamper(payload, edit)))


def test_load_refuses_feature_names_that_disagree_with_the_width(data):
    # every load path imports through one schema: pickle stands for them all
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(data[0], columns=[f"c{i}" for i in range(N_FEATURES)])
    est = make("Autoencoder").fit(X)
    state = est.__getstate__()
    state["_skae_fitted_state"]["attributes"]["feature_names_in_"] = est.feature_names_in_[:-1]
    with pytest.raises(ValueError, match=f"feature_names_in_ names {N_FEATURES - 1} columns"):
        Autoencoder().__setstate__(state)
    state["_skae_fitted_state"]["attributes"]["feature_names_in_"] = np.arange(N_FEATURES)
    with pytest.raises(ValueError, match="feature_names_in_ must be a 1-D array of column"):
        Autoencoder().__setstate__(state)


def test_load_refuses_weights_of_another_architecture(fitted):
    _, payload = fitted("Autoencoder")
    members = read(payload)
    members[ARRAYS] = read(fitted("Autoencoder-greedy")[1])[ARRAYS]
    with pytest.raises(ValueError, match="Unexpected value|the module expects"):
        load(io.BytesIO(write(members)))
    # the same names with other shapes
    arrays = safetensors.numpy.load(read(payload)[ARRAYS])
    arrays = {key: np.zeros(value.shape + (1,), value.dtype) for key, value in arrays.items()}
    members[ARRAYS] = safetensors.numpy.save(arrays)
    with pytest.raises(ValueError, match="the module expects|does not fit"):
        load(io.BytesIO(write(members)))


def test_load_refuses_an_array_the_document_never_refers_to(fitted):
    # it loaded silently: the member's tensors were looked up, never counted
    _, payload = fitted("Autoencoder")
    members = read(payload)
    arrays = safetensors.numpy.load(members[ARRAYS])
    members[ARRAYS] = safetensors.numpy.save({**arrays, "smuggled": np.zeros(1000, np.float32)})
    with pytest.raises(ValueError, match=r"1 array\(s\) its document never refers to \('smuggled'"):
        load(io.BytesIO(write(members)))


# ------------------------------------------------- malicious payloads


class Payload:
    """Unpickling this creates ``path`` (as an attacker's code would)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def live_payload(tmp_path, dump=pickle.dumps):
    """Bytes whose unpickling creates ``tmp_path / "pwned"``; checked to be live
    on a decoy path first, so the tests below would notice a loader that runs it."""
    decoy = tmp_path / "decoy"
    if dump is pickle.dumps:
        pickle.loads(dump(Payload(decoy))).close()
    else:
        torch_buffer = io.BytesIO(dump(Payload(decoy)))
        torch.load(torch_buffer, weights_only=False).close()
    assert decoy.exists()
    marker = tmp_path / "pwned"
    return dump(Payload(marker)), marker


def torch_dumps(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("dump", [pickle.dumps, torch_dumps], ids=["pickle", "torch.save"])
@pytest.mark.parametrize("member", [ARRAYS, METADATA])
def test_load_does_not_run_pickle_smuggled_into_a_member(member, dump, fitted, tmp_path):
    _, payload = fitted("Autoencoder")
    evil, marker = live_payload(tmp_path, dump)
    members = read(payload)
    members[member] = evil
    path = tmp_path / "evil.skae"
    path.write_bytes(write(members))
    with pytest.raises(ValueError, match=f"{member}.*not a"):
        load(path)
    assert not marker.exists()


@pytest.mark.parametrize("dump", [pickle.dumps, torch_dumps], ids=["pickle", "torch.save"])
def test_load_does_not_run_a_pickle_given_as_the_file(dump, tmp_path):
    evil, marker = live_payload(tmp_path, dump)
    path = tmp_path / "evil.skae"
    path.write_bytes(evil)
    # torch.save writes a zip: it is refused for its members, a raw pickle for not being a zip
    with pytest.raises(ValueError, match="is not a skae file"):
        load(path)
    assert not marker.exists()


# ----------------------------------------------------------------- skops


@pytest.mark.parametrize("case", CASE_IDS)
def test_skops_round_trips_a_fitted_estimator_trusting_only_its_class(case, fitted, data, tmp_path):
    # the pickled state is plain data and numpy arrays (no tensor, module or
    # torch.device), so skops.io needs to trust skae's own class and nothing else
    sio = pytest.importorskip("skops.io")
    X, X_new = data
    est, _ = fitted(case)
    path = tmp_path / "model.skops"
    sio.dump(est, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted == [f"{type(est).__module__}.{type(est).__name__}"]
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)
    restored = sio.load(path, trusted=untrusted)
    assert type(restored) is type(est)
    assert restored.get_params() == est.get_params()
    assert_module_states_equal(restored, est)
    for name in FITTED_ATTRIBUTES:
        assert getattr(restored, name, None) == getattr(est, name, None), name
    assert_same_outputs(est, restored, X_new)
    # training goes on where it stopped: same optimiser moments, same random
    # stream as a twin that was never pickled
    twin = make(case).fit(X)
    twin.partial_fit(X)
    restored.partial_fit(X)
    assert_module_states_equal(restored, twin)


def test_skops_keeps_feature_names_and_output_config(data, tmp_path):
    sio = pytest.importorskip("skops.io")
    pd = pytest.importorskip("pandas")
    X, X_new = data
    columns = [f"f{i}" for i in range(N_FEATURES)]
    est = make("Autoencoder").set_output(transform="pandas").fit(pd.DataFrame(X, columns=columns))
    path = tmp_path / "model.skops"
    sio.dump(est, path)
    restored = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert list(restored.feature_names_in_) == columns
    frame = pd.DataFrame(X_new, columns=columns)
    pd.testing.assert_frame_equal(restored.transform(frame), est.transform(frame))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=[cls.__name__ for cls in ESTIMATORS])
def test_skops_round_trips_an_unfitted_estimator_trusting_only_its_class(cls, data, tmp_path):
    # what skops can hold is the configuration: after trusting the skae class
    # (and torch.device when the device is one), fitting the copy gives the
    # original's transform bit for bit
    sio = pytest.importorskip("skops.io")
    X, _ = data
    path = tmp_path / "model.skops"
    est = cls(**TINY)
    sio.dump(est, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted == [f"{cls.__module__}.{cls.__name__}"]
    assert all(name.startswith("skae.") for name in untrusted)
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)
    restored = sio.load(path, trusted=untrusted)
    assert type(restored) is cls
    assert restored.get_params() == est.get_params()
    np.testing.assert_array_equal(restored.fit(X).transform(X), est.fit(X).transform(X))

    with_device = cls(**{**TINY, "device": torch.device("cpu")})
    sio.dump(with_device, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted == [f"{cls.__module__}.{cls.__name__}", "torch.device"]
    assert sio.load(path, trusted=untrusted).device == torch.device("cpu")


# ------------------------------------------- pickle and joblib, fresh process

CHECKSUM_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, pickle, sys, warnings
    import joblib, numpy as np
    warnings.simplefilter("error")  # a fresh process loads them silently
    from skae._persistence import load

    folder = sys.argv[1]
    X = np.load(folder + "/X.npy")
    readers = {"pickle": lambda f: pickle.load(f), "joblib": joblib.load, "skae": load}
    out = {}
    for name in json.loads(open(folder + "/names.json").read()):
        for kind, read in readers.items():
            with open(f"{folder}/{name}.{kind}", "rb") as f:
                est = read(f)
            out[f"{name}.{kind}"] = hashlib.sha256(est.transform(X).tobytes()).hexdigest()
    print(json.dumps(out))
    """
)


@pytest.mark.slow  # a fresh Python process, importing torch and skae
def test_pickle_joblib_and_skae_files_load_identically_in_a_fresh_process(fitted, data, tmp_path):
    X, X_new = data
    X_all = np.vstack([X, X_new]).astype(np.float32)
    np.save(tmp_path / "X.npy", X_all)
    expected = {}
    for name in CASE_IDS:
        est, payload = fitted(name)
        with open(tmp_path / f"{name}.pickle", "wb") as f:
            pickle.dump(est, f)
        joblib.dump(est, tmp_path / f"{name}.joblib")
        (tmp_path / f"{name}.skae").write_bytes(payload)
        digest = hashlib.sha256(est.transform(X_all).tobytes()).hexdigest()
        expected.update({f"{name}.{kind}": digest for kind in ("pickle", "joblib", "skae")})
    (tmp_path / "names.json").write_text(json.dumps(CASE_IDS))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", CHECKSUM_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected


# -------------------------------------------------- files of format 1

FORMAT_1 = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize(
    "name, cls", [("autoencoder", Autoencoder), ("convolutional", ConvolutionalAutoencoder)]
)
def test_files_of_format_1_load_and_continue(name, cls):
    """Files written by skae 0.1.0 (format 1: its weights and optimiser in two
    members, the convolutional channel counts as hidden_layer_sizes) load,
    encode as they did there, and train on."""
    X = load_digits().data[:200] / 16
    with pytest.warns(UserWarning, match="saved with skae 0.1.0"):
        est = load(FORMAT_1 / f"{name}_format1.skae")
    assert type(est) is cls
    expected = np.load(FORMAT_1 / f"{name}_format1_transform.npy")
    # saved by skae 0.1.0 on another machine: float32 layers whose matmul kernels
    # (and so summation order) differ by CPU, a few float32 ulps (eps 1.2e-7) per
    # layer, so rtol 1e-5; atol 1e-6 for codes near zero (an Intel CPU: 5e-17)
    np.testing.assert_allclose(est.transform(X[:20]), expected, rtol=1e-5, atol=1e-6)
    if cls is ConvolutionalAutoencoder:
        assert est.channels == (4,) and est.hidden_layer_sizes == ()
        assert est.image_shape_ == (1, 8, 8)
    else:
        assert est.tied_weights and est._optimizer_ is not None
    n_iter = est.n_iter_
    est.partial_fit(X)
    assert est.n_iter_ == n_iter + 1
    assert np.isfinite(est.transform(X)).all()
    # and saved again, in the current format
    buffer = io.BytesIO()
    save(est, buffer)
    assert set(read(buffer.getvalue())) == {METADATA, ARRAYS}
    np.testing.assert_array_equal(load(buffer).transform(X), est.transform(X))


def test_file_of_an_unknown_format_version_is_refused_with_the_version():
    members = read((FORMAT_1 / "autoencoder_format1.skae").read_bytes())
    document = json.loads(members[METADATA])
    document["format_version"] = 4
    members[METADATA] = json.dumps(document).encode()
    with pytest.raises(ValueError, match="format version 4; this skae reads versions 1, 2 and 3"):
        load(io.BytesIO(write(members)))


def test_older_files_with_parameters_set_since_the_fit_load_with_a_warning(fitted, data):
    """skae.save of formats 1 and 2 wrote models whose parameters were set
    after the fit (the network the fit's, as a pickle keeps it): such files
    load as they did, saying so; format 3 refuses them (a hand edit)."""
    X, X_new = data
    est, payload = fitted("Autoencoder")
    members = read(payload)
    document = json.loads(members[METADATA])
    params(document)["n_components"] = 5
    for version, refused in ((2, False), (3, True)):
        document["format_version"] = version
        members[METADATA] = json.dumps(document).encode()
        if refused:
            with pytest.raises(ValueError, match="n_components=5 .*refusing to load"):
                load(io.BytesIO(write(members)))
            continue
        with pytest.warns(UserWarning, match=r"n_components=5 \(the fit's: 2\), set after the fit"):
            restored = load(io.BytesIO(write(members)))
        assert restored.n_components == 5
        np.testing.assert_array_equal(restored.transform(X_new), est.transform(X_new))
    # format 1 (skae 0.1.0), with a build record apart from its parameters
    members = read((FORMAT_1 / "autoencoder_format1.skae").read_bytes())
    document = json.loads(members[METADATA])
    document["build_params"] = {k: v for k, v in document["params"].items() if k != "random_state"}
    document["params"]["n_components"] = 5
    members[METADATA] = json.dumps(document).encode()
    with pytest.warns(UserWarning, match=r"n_components=5 \(the fit's: 3\)"):
        restored = load(io.BytesIO(write(members)))
    assert restored.n_components == 5
    assert restored.transform(load_digits().data[:5] / 16).shape == (5, 3)  # the fit's width


# ------------------------------------------------- pickled state, edge cases


@pytest.mark.parametrize("case", CASE_IDS)
def test_pickle_after_set_params_keeps_the_fitted_model(case, fitted, data, tmp_path):
    """The module is rebuilt from the parameters fit built it with, not from
    any set since, by pickle and deepcopy (scikit-learn's semantics: the
    parameters describe the next fit); skae.save refuses such a model, whose
    file would say what its weights are not."""
    X, X_new = data
    est = copy.deepcopy(fitted(case)[0])
    expected = est.transform(X_new)
    changes = {"hidden_layer_sizes": (5, 3), "activation": "tanh", "n_components": 4}
    if isinstance(est, ConvolutionalAutoencoder):
        changes.update(image_shape=(2, 8), channels=(3,))
    if isinstance(est, VariationalAutoencoder):
        changes["loss"] = "bernoulli" if est.loss == "gaussian" else "gaussian"
    est.set_params(**changes)
    np.testing.assert_array_equal(est.transform(X_new), expected)  # the live model
    restored = [pickle.loads(pickle.dumps(est)), copy.deepcopy(est)]
    with pytest.raises(ValueError, match="set after the fit"):
        save(est, tmp_path / "model.skae")
    assert not (tmp_path / "model.skae").exists()
    for copy_ in restored:
        np.testing.assert_array_equal(copy_.transform(X_new), expected)
        assert copy_.get_params() == est.get_params()
    # a later refit builds from the new parameters
    refitted = restored[0].fit(X)
    assert refitted.transform(X_new).shape[1] == 4


# A parameter that shapes what fit built: (case, parameter, another value).
SHAPING_PARAMS = [
    ("Autoencoder", "n_components", 9),
    ("Autoencoder", "hidden_layer_sizes", (6, 3)),
    ("Autoencoder", "activation", "tanh"),
    ("Autoencoder", "init", "random"),
    ("Autoencoder-tied", "tied_weights", False),
    ("VariationalAutoencoder", "loss", "bernoulli"),
    ("SparseAutoencoder", "sparsity", "kl"),
    ("ConvolutionalAutoencoder-image", "image_shape", (2, 8)),
    ("ConvolutionalAutoencoder-image", "channels", (3,)),
    ("ConvolutionalAutoencoder-image", "kernel_size", 5),
]


def _json(value):
    return {"__tuple__": list(value)} if isinstance(value, tuple) else value


@pytest.mark.parametrize("case, name, value", SHAPING_PARAMS)
def test_a_file_whose_shaping_parameter_was_edited_is_refused(case, name, value, fitted):
    """A hand edit of the file's parameters had loaded a model that said
    n_components=9 and returned 8 columns."""
    est, payload = fitted(case)
    assert getattr(est, name) != value
    members = read(payload)
    document = json.loads(members[METADATA])
    params(document)[name] = _json(value)
    members[METADATA] = json.dumps(document).encode()
    with pytest.raises(ValueError, match=rf"has {name}=.*the fit's: .*refusing to load"):
        load(io.BytesIO(write(members)))


@pytest.mark.parametrize("case, name, value", SHAPING_PARAMS)
def test_saving_a_model_whose_shaping_parameter_was_set_since_the_fit(
    case, name, value, fitted, data
):
    X, X_new = data
    est = copy.deepcopy(fitted(case)[0])
    expected = est.transform(X_new)
    fitted_value = est.get_params()[name]
    est.set_params(**{name: value})
    buffer = io.BytesIO()
    with pytest.raises(ValueError, match=rf"skae.save: .* has {name}=.*set after the fit"):
        save(est, buffer)
    assert buffer.getvalue() == b""  # nothing written
    np.testing.assert_array_equal(est.transform(X_new), expected)  # the model as it was
    save(est.set_params(**{name: fitted_value}), buffer)  # with the fit's value back
    np.testing.assert_array_equal(load(io.BytesIO(buffer.getvalue())).transform(X_new), expected)


def _file_with(est, edit):
    """``est`` saved, its document edited by ``edit``, as bytes."""
    buffer = io.BytesIO()
    save(est, buffer)
    members = read(buffer.getvalue())
    document = json.loads(members[METADATA])
    edit(document)
    members[METADATA] = json.dumps(document).encode()
    return write(members)


def test_a_detector_file_with_feature_names_that_do_not_fit_is_refused(data):
    # two names for 16 columns loaded, and predict failed on their mismatch
    detector = AutoencoderOutlierDetector(make("Autoencoder"), cv=2).fit(data[0])
    names = {"__ndarray__": ["a", "b"], "dtype": "<U1"}

    def edit(document):
        document["state"]["__dict__"]["attributes"]["__dict__"]["feature_names_in_"] = names

    with pytest.raises(ValueError, match="feature_names_in_ is not a 1-D array of n_features_in_"):
        load(io.BytesIO(_file_with(detector, edit)))


def test_an_imputer_with_add_indicator_but_no_indicator_is_neither_saved_nor_loaded(data):
    # set_params(add_indicator=True) after a fit without it saved a file whose
    # transform failed on the missing indicator_ (an AttributeError)
    X = data[0].copy()
    X[::4, 1] = np.nan
    imputer = AutoencoderImputer(**TINY).fit(X)
    payload = _file_with(imputer, lambda document: params(document).update(add_indicator=True))
    with pytest.raises(ValueError, match=r"add_indicator=True \(no indicator fitted\)"):
        load(io.BytesIO(payload))
    with pytest.raises(ValueError, match=r"skae.save: .*add_indicator=True"):
        save(copy.deepcopy(imputer).set_params(add_indicator=True), io.BytesIO())


@pytest.mark.parametrize(
    "detector", [False, True, "inner"], ids=["autoencoder", "detector", "inner"]
)
def test_saving_a_model_with_a_parameter_set_invalid_since_the_fit(detector, fitted, data):
    """set_params validates nothing (scikit-learn's convention) and load
    validates the parameters (a detector's inner model's too): save refuses
    what load would, writing nothing."""
    if detector:
        est = AutoencoderOutlierDetector(make("Autoencoder"), cv=2).fit(data[0])
        if detector == "inner":
            est.estimator_.set_params(max_iter=0)
            match = "'max_iter' parameter of Autoencoder"
        else:
            est.set_params(contamination=0.9)
            match = "'contamination' parameter of AutoencoderOutlierDetector"
    else:
        est = copy.deepcopy(fitted("Autoencoder")[0]).set_params(max_iter=0)
        match = "'max_iter' parameter of Autoencoder"
    buffer = io.BytesIO()
    with pytest.raises(ValueError, match=match):
        save(est, buffer)
    assert buffer.getvalue() == b""


def test_unpickling_a_pickle_from_before_a_parameter_existed(fitted, data):
    """A pickle written before ``deterministic`` existed loads with the default."""
    X, X_new = data
    est, _ = fitted("Autoencoder")
    old_state = est.__getstate__()
    del old_state["deterministic"]
    restored = Autoencoder.__new__(Autoencoder)
    restored.__setstate__(old_state)
    assert restored.deterministic is False
    assert restored.get_params() == est.get_params()
    np.testing.assert_array_equal(restored.transform(X_new), est.transform(X_new))
    twin = copy.deepcopy(est)
    np.testing.assert_array_equal(
        restored.partial_fit(X).transform(X_new), twin.partial_fit(X).transform(X_new)
    )


def test_unpickling_the_pickle_layout_of_skae_0_1_is_refused_with_a_message(fitted):
    """skae 0.1.0 pickled the weights as ``_module_weights``; this layout is
    refused with a message naming skae.save (whose files of 0.1.0 load)."""
    est, _ = fitted("Autoencoder")
    old_state = {k: v for k, v in est.__getstate__().items() if not k.startswith("_skae_fitted")}
    old_state.update(_module_weights={}, _skae_version="0.1.0")
    with pytest.raises(ValueError, match=r"pickled by skae 0\.1\.0.*skae\.save"):
        Autoencoder.__new__(Autoencoder).__setstate__(old_state)


def test_pickle_holds_plain_data_only(fitted):
    """The fitted state in a pickle is plain data and CPU numpy arrays: no
    torch object, so it unpickles without torch's pickle hooks."""
    allowed = (type(None), bool, int, float, str, np.ndarray, np.generic)

    def walk(value, where):
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, str), where
                walk(item, f"{where}/{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{where}/{i}")
        else:
            assert isinstance(value, allowed), (where, type(value))

    for case in CASE_IDS:
        est, _ = fitted(case)
        state = est.__getstate__()["_skae_fitted_state"]
        assert set(state["attributes"]) == {k for k in vars(est) if k.endswith("_")}
        walk(state, case)


@pytest.mark.parametrize("case", ["Autoencoder", "VariationalAutoencoder"])
def test_failed_partial_fit_after_unpickling_keeps_the_optimiser_moments(case, fitted, data):
    """After unpickling, the optimiser moments wait as a state dict; a
    partial_fit that fails must not leave them spoilt for the next call."""
    X, X_new = data
    payload = pickle.dumps(fitted(case)[0])
    est = pickle.loads(payload)
    with pytest.raises(ValueError, match="non-finite"):
        est.partial_fit(X * 1e30)
    est.partial_fit(X)
    reference = pickle.loads(payload).partial_fit(X)
    assert_module_states_equal(est, reference)
    assert np.isfinite(est.transform(X_new)).all()


@pytest.mark.parametrize("how", ["pickle", "skae.save"])
def test_optimizer_changed_after_fit_changes_the_restored_one_alike(how, data, tmp_path):
    """partial_fit steps with the optimiser set now (a new one where its kind
    changed), on the live estimator and on a restored copy alike."""
    X, X_new = data
    est = make("Autoencoder").fit(X).set_params(optimizer="sgd")
    if how == "pickle":
        restored = pickle.loads(pickle.dumps(est))
    else:
        save(est, tmp_path / "model.skae")
        restored = load(tmp_path / "model.skae")
    assert restored.get_params()["optimizer"] == "sgd"
    est.partial_fit(X)
    restored.partial_fit(X)
    assert type(restored._optimizer_) is type(est._optimizer_) is torch.optim.SGD
    assert_module_states_equal(restored, est)


def test_n_components_changed_after_fit_keeps_the_code_width(data):
    X, X_new = data
    est = make("VariationalAutoencoder").fit(X)
    est.set_params(n_components=4)
    with pytest.raises(ValueError, match="n_components=4 was set after the fit"):
        est.partial_fit(X)  # it continues the fitted network
    codes = est.transform(X_new)
    assert codes.shape[1] == 2  # the module's, not the new parameter's
    assert est.inverse_transform(codes).shape == X_new.shape
    assert len(est.get_feature_names_out()) == codes.shape[1]
    assert est.sample(3).shape == (3, N_FEATURES)


def test_build_params_are_a_snapshot_of_the_fit_time_values(data):
    X, X_new = data
    sizes = [6]
    est = Autoencoder(**{**TINY, "hidden_layer_sizes": sizes}).fit(X)
    expected = est.transform(X_new)
    sizes.append(3)  # the caller mutates the list it passed
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(X_new), expected)


def test_file_records_the_build_params_of_fit_time(fitted, data):
    X, X_new = data
    est, _ = fitted("Autoencoder")
    changed = copy.deepcopy(est).set_params(max_iter=7)  # the next fit's, not the network's
    buffer = io.BytesIO()
    save(changed, buffer)
    document = json.loads(read(buffer.getvalue())[METADATA])
    assert attributes(document)["_build_params_"]["__dict__"]["max_iter"] == TINY["max_iter"]
    assert params(document)["max_iter"] == 7
    restored = load(io.BytesIO(buffer.getvalue()))
    assert restored.max_iter == 7
    np.testing.assert_array_equal(restored.transform(X_new), est.transform(X_new))


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda d: attributes(d)["_build_params_"]["__dict__"].update(n_layers=3),
            r"build_params hold parameters \['n_layers'\]",
        ),
        (
            lambda d: attributes(d)["_build_params_"]["__dict__"].update(n_components=-1),
            "build_params are not valid",
        ),
        (lambda d: attributes(d).update(_build_params_=[1, 2]), "build_params"),
    ],
    ids=["unknown-name", "invalid-value", "not-a-mapping"],
)
def test_load_refuses_bad_build_params(edit, match, fitted):
    _, payload = fitted("Autoencoder")
    with pytest.raises(ValueError, match=match):
        load(io.BytesIO(tamper(payload, edit)))


# ---- pickling (moved from tests/test_estimators.py)

#: the settings these tests were written with in tests/test_estimators.py
PICKLING = dict(hidden_layer_sizes=(16,), max_iter=5, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def digits_X():
    from sklearn.datasets import load_digits

    return load_digits().data / 16.0


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_pickle_and_joblib_round_trip(Estimator, digits_X):
    X = digits_X
    est = Estimator(**PICKLING).fit(X)
    expected = est.transform(X)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.transform(X), expected)
    np.testing.assert_array_equal(restored.score_samples(X), est.score_samples(X))
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).transform(X), expected)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_partial_fit_after_pickle_continues_like_the_original(Estimator, digits_X):
    # the optimiser's state travels with the pickle: the copy and the original
    # take identical next steps
    X = digits_X
    est = Estimator(**PICKLING)
    est.partial_fit(X[:500])
    copy = pickle.loads(pickle.dumps(est))
    est.partial_fit(X[500:1000])
    copy.partial_fit(X[500:1000])
    np.testing.assert_array_equal(copy.transform(X), est.transform(X))


def test_estimator_fitted_on_cuda_unpickles_on_cpu_only_machine(digits_X, monkeypatch):
    # simulates a model fitted on CUDA (device_ says so) loaded where CUDA is absent
    X = digits_X
    est = Autoencoder(**PICKLING).fit(X)
    expected = est.transform(X)
    est.device_ = torch.device("cuda")
    payload = pickle.dumps(est)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        restored = pickle.loads(payload)
    assert restored.device_ == torch.device("cpu")
    np.testing.assert_array_equal(restored.transform(X), expected)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_estimator_cuda_fit_transform_and_cpu_unpickle(Estimator, digits_X, monkeypatch):
    X = digits_X
    est = Estimator(hidden_layer_sizes=(16,), max_iter=5, random_state=0, device="cuda").fit(X)
    assert est.device_.type == "cuda"
    codes = est.transform(X)
    assert codes.shape == (X.shape[0], est.n_components)
    payload = pickle.dumps(est)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        restored = pickle.loads(payload)
    np.testing.assert_allclose(restored.transform(X), codes, rtol=1e-5, atol=1e-6)


def test_estimator_unpickling_across_skae_versions_warns(digits_X, monkeypatch):
    import skae

    X = digits_X
    est = Autoencoder(**PICKLING).fit(X)
    payload = pickle.dumps(est)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same version: no warning at all
        restored = pickle.loads(payload)
    assert "_skae_version" not in vars(restored)
    pickled_by = skae.__version__
    monkeypatch.setattr(skae, "__version__", "999.0")
    with pytest.warns(UserWarning, match=rf"with skae {pickled_by} and is loaded with skae 999\.0"):
        restored = pickle.loads(payload)
    np.testing.assert_array_equal(restored.transform(X), est.transform(X))


# ---- pickling (moved from tests/test_family.py)


@pytest.mark.parametrize(
    "Estimator",
    [cls for cls in ESTIMATORS if "tied_weights" in cls().get_params()],
    ids=lambda cls: cls.__name__,
)
def test_tied_weights_share_storage_after_unpickling(Estimator, digits_X):
    X_train, X_test = digits_X[:1300], digits_X[1300:]
    params = dict(
        n_components=4, hidden_layer_sizes=(16,), max_iter=2, random_state=0, device="cpu"
    )
    tied = Estimator(tied_weights=True, **params).fit(X_train)
    restored = pickle.loads(pickle.dumps(tied))
    encoders = [m for m in restored.module_.encoder if isinstance(m, torch.nn.Linear)]
    decoders = [m for m in restored.module_.decoder if hasattr(m, "weight")]
    assert len(encoders) == len(decoders) == 2
    for e, d in zip(encoders, reversed(decoders), strict=True):
        assert d.weight is e.weight and d.weight.data_ptr() == e.weight.data_ptr()
    np.testing.assert_array_equal(restored.transform(X_test), tied.transform(X_test))


def test_a_state_of_version_2_loads_without_its_optimizer_moments(data):
    # before state version 3 the optimiser stepped on the loss in X's units:
    # its moments are input_scale**2 (and **4) times those it takes now, and
    # Adam's epsilon was scaled alike, so partial_fit starts a new optimiser
    X = data[0] * 100.0  # an input scale far from 1
    est = make("Autoencoder").fit(X)
    state = est.__getstate__()
    assert state["_skae_fitted_state"]["version"] == 3
    state["_skae_fitted_state"]["version"] = 2
    old = Autoencoder()
    old.__setstate__(copy.deepcopy(state))
    assert old._optimizer_ is None
    np.testing.assert_array_equal(old.transform(X), est.transform(X))
    old.partial_fit(X)
    assert old._optimizer_.param_groups[0]["eps"] == 1e-8
    state["_skae_fitted_state"]["version"] = 3  # the current version keeps it
    current = Autoencoder()
    current.__setstate__(state)
    assert current._optimizer_ is not None


class _Unseekable(io.RawIOBase):
    """A readable stream that cannot seek (a pipe, a socket)."""

    def __init__(self, data):
        self.data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buffer):
        return self.data.readinto(buffer)


def test_save_and_load_name_a_wrong_target(fitted, data, tmp_path):
    # a text-mode file, a file's contents as bytes, a stream that cannot seek
    # had failed inside zipfile or open (UnicodeDecodeError, "embedded null
    # byte", io.UnsupportedOperation)
    est, saved = fitted("Autoencoder")
    path = tmp_path / "model.skae"
    binary = "a file object opened in binary mode"
    with open(tmp_path / "text.skae", "w") as text, pytest.raises(TypeError, match=binary):
        save(est, text)
    with pytest.raises(TypeError, match=r"got builtins.NoneType"):
        save(est, None)
    path.write_bytes(saved)
    with open(path) as text, pytest.raises(TypeError, match=r"\('rb'\); got _io.TextIOWrapper"):
        load(text)
    with pytest.raises(TypeError, match=r"bytes that are no path .*io.BytesIO\(data\)"):
        load(saved)
    with pytest.raises(ValueError, match="seekable .*read it into io.BytesIO first"):
        load(_Unseekable(saved))
    # text mode behind a wrapper (NamedTemporaryFile) is text mode too
    import tempfile

    with tempfile.NamedTemporaryFile("w+") as text, pytest.raises(TypeError, match=binary):
        save(est, text)
    with tempfile.NamedTemporaryFile("w+b") as file:
        save(est, file)
        file.seek(0)
        np.testing.assert_array_equal(load(file).transform(data[1]), est.transform(data[1]))
    # a path as bytes is a path, as open takes it, both ways
    save(est, os.fsencode(tmp_path / "again.skae"))
    restored = load(os.fsencode(tmp_path / "again.skae"))
    np.testing.assert_array_equal(restored.transform(data[1]), est.transform(data[1]))
