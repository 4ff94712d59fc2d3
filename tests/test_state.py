"""The fitted state's one schema (skae._state): every load path (unpickling,
copy.deepcopy, skae.load) runs the same checks, among them that the saved
weights fit the network the saved build parameters and width describe; the
torch-only modules import no scikit-learn."""

import copy
import io
import json
import pickle
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import skae
from skae import Autoencoder, ConvolutionalAutoencoder, VariationalAutoencoder
from skae._device import _CONVERTED
from skae._state import STATE_VERSION, export_state, warn_on_version_change

FAST = dict(max_iter=1, random_state=0, device="cpu", early_stopping=False)


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:120] / 16


@pytest.fixture(scope="module")
def models(X):
    return {
        "mlp": Autoencoder(n_components=3, hidden_layer_sizes=(8,), **FAST).fit(X),
        "tied": Autoencoder(n_components=3, hidden_layer_sizes=(8,), tied_weights=True, **FAST).fit(
            X
        ),
        "vae": VariationalAutoencoder(n_components=2, hidden_layer_sizes=(8,), **FAST).fit(X),
        "conv": ConvolutionalAutoencoder(
            n_components=3, image_shape=(8, 8), channels=(2,), **FAST
        ).fit(X),
    }


@pytest.mark.slow  # a fresh Python process, importing torch
def test_torch_only_modules_import_no_scikit_learn():
    """Imported without the package's __init__ (which imports the estimators),
    the torch-only layer leaves scikit-learn out of sys.modules."""
    package = Path(skae.__file__).parent
    code = f"""
import importlib, sys, types
package = types.ModuleType("skae")
package.__path__ = [{str(package)!r}]
sys.modules["skae"] = package
for name in ("_device", "_random", "_rows", "_optim", "_state", "_settings", "_engine"):
    importlib.import_module("skae." + name)
print(sorted(m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# One edit per field that shapes a network: (model, field, edited value).
SHAPING_EDITS = [
    ("mlp", "n_components", 4),
    ("mlp", "hidden_layer_sizes", (9,)),
    ("mlp", "hidden_layer_sizes", (8, 8)),
    ("mlp", "tied_weights", True),
    ("tied", "tied_weights", False),
    ("vae", "n_components", 3),
    ("vae", "hidden_layer_sizes", (6,)),
    ("conv", "n_components", 2),
    ("conv", "channels", (3,)),
    ("conv", "kernel_size", 5),
    # an image_shape whose layers have the same shapes, such as (2, 32) for
    # (8, 8) here, cannot be told from the weights
    ("conv", "image_shape", (4, 4, 4)),
]
EDIT_IDS = [f"{model}-{field}-{value}" for model, field, value in SHAPING_EDITS]


def _tampered_pickle_state(est, edit):
    state = est.__getstate__()
    state["_skae_fitted_state"] = copy.deepcopy(state["_skae_fitted_state"])
    edit(state["_skae_fitted_state"]["attributes"])
    return state


def _tampered_file(est, edit):
    """A skae file of ``est`` whose JSON state was edited (plain data there)."""
    buffer = io.BytesIO()
    skae.save(est, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members["skae.json"])
    edit(_plain(_plain(document["state"])["attributes"]), document["state"])
    members["skae.json"] = json.dumps(document).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    out.seek(0)
    return out


def _plain(encoded):
    return encoded["__dict__"]


def _encoded(value):
    return {"__tuple__": list(value)} if isinstance(value, tuple) else value


@pytest.mark.parametrize("model, field, value", SHAPING_EDITS, ids=EDIT_IDS)
def test_every_load_path_refuses_build_params_that_disagree_with_the_weights(
    models, model, field, value
):
    est = models[model]
    message = rf"saved weights do not fit the network .*{field}={value!r}".replace("(", r"\(")
    message = message.replace(")", r"\)")

    def edit(attributes):
        attributes["_build_params_"] = {**attributes["_build_params_"], field: value}

    state = _tampered_pickle_state(est, edit)
    with pytest.raises(ValueError, match=message):  # pickle.loads and copy.deepcopy
        type(est).__new__(type(est)).__setstate__(state)

    def edit_file(attributes, encoded_state):
        build = _plain(attributes["_build_params_"])
        build[field] = _encoded(value)

    with pytest.raises(ValueError, match=message):
        skae.load(_tampered_file(est, edit_file))


@pytest.mark.parametrize("model", ["mlp", "vae", "conv"])
def test_every_load_path_refuses_a_width_that_disagrees_with_the_weights(models, model):
    est = models[model]
    width = est.n_features_in_ // 2
    message = rf"n_features_in_={width}"

    def edit(attributes):
        attributes["n_features_in_"] = width

    with pytest.raises(ValueError, match=message):
        type(est).__new__(type(est)).__setstate__(_tampered_pickle_state(est, edit))
    with pytest.raises(ValueError, match=message):
        skae.load(
            _tampered_file(est, lambda attributes, _: attributes.update(n_features_in_=width))
        )


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda a: a.update(n_features_in_="64"), "n_features_in_ must be a positive int"),
        (lambda a: a.pop("module_"), r"lacks \['module_'\]"),
        # what continued training reads: such states loaded, then partial_fit
        # failed with an AttributeError
        (lambda a: a.pop("n_iter_"), r"lacks \['n_iter_'\]"),
        (lambda a: a.pop("loss_curve_"), r"lacks \['loss_curve_'\]"),
        (lambda a: a.pop("validation_scores_"), r"lacks \['validation_scores_'\]"),
        (lambda a: a.pop("_rng_"), r"lacks \['_rng_'\]"),
        (lambda a: a.update(device_=0), "device_ must be a device name"),
        (lambda a: a.update(_rng_=[1]), "_rng_ must be a mapping"),
        (lambda a: a.update(_rng_=None), "_rng_ must be a mapping"),
        (lambda a: a.update(module_={"weights": {}}), "module_ does not fit a module"),
        (lambda a: a["_build_params_"].update(n_layers=2), r"hold parameters \['n_layers'\]"),
        (lambda a: a["_build_params_"].update(n_components=0), "build_params are not valid"),
    ],
    ids=[
        "width-type",
        "no-module",
        "no-n_iter",
        "no-loss_curve",
        "no-validation_scores",
        "no-rng",
        "device",
        "rng",
        "rng-none",
        "weights-form",
        "unknown-param",
        "invalid",
    ],
)
def test_unpickling_runs_the_checks_that_load_runs(models, edit, match):
    """Before the schema, only skae.load ran these checks."""
    est = models["mlp"]

    def edit_copy(attributes):
        attributes["_build_params_"] = dict(attributes["_build_params_"])
        edit(attributes)

    with pytest.raises(ValueError, match=match):
        Autoencoder.__new__(Autoencoder).__setstate__(_tampered_pickle_state(est, edit_copy))


def _edit_group(key, value):
    def edit(attributes):
        group = attributes["_optimizer_"]["param_groups"][0]
        group.pop(key) if value is _REMOVE else group.update({key: value})

    return edit


def _edit_step(value):
    def edit(attributes):
        attributes["_optimizer_"]["state"]["0"]["step"] = np.array(value, dtype=np.float32)

    return edit


_REMOVE = object()
OPTIMIZER_EDITS = {
    "lr-str": (_edit_group("lr", "x"), "its lr is 'x'"),
    "lr-negative": (_edit_group("lr", -1.0), "its lr is -1.0"),
    "lr-nan": (_edit_group("lr", float("nan")), "its lr is nan"),
    "lr-missing": (_edit_group("lr", _REMOVE), "has no 'lr'"),
    "eps-str": (_edit_group("eps", "x"), "its eps is 'x'"),
    "weight_decay-list": (_edit_group("weight_decay", [1]), r"its weight_decay is \[1\]"),
    "betas-str": (_edit_group("betas", "ab"), "its betas is 'ab'"),
    "betas-three": (_edit_group("betas", [0.9, 0.99, 0.5]), "its betas is"),
    "betas-one": (_edit_group("betas", [0.9, 1.5]), "its betas is"),
    "amsgrad-str": (_edit_group("amsgrad", "yes"), "its amsgrad is 'yes'"),
    # flags skae never sets: amsgrad's moment is never saved, a differentiable
    # step is not fused (each loaded, and the first step failed)
    "amsgrad-true": (_edit_group("amsgrad", True), "its amsgrad is True"),
    "differentiable-true": (_edit_group("differentiable", True), "its differentiable is True"),
    "moment-missing": (
        lambda a: a["_optimizer_"]["state"]["0"].pop("exp_avg_sq"),
        r"moments of parameter 0 lack \['exp_avg_sq'\]",
    ),
    "step-negative": (_edit_step(-5.0), "step count of parameter 0 is not one count"),
    "step-nan": (_edit_step(float("nan")), "step count of parameter 0 is not one count"),
    "plateau-str": (lambda a: a.update(_plateau_progress_="x"), "_plateau_progress_ must map"),
    "plateau-best-str": (
        lambda a: a["_plateau_progress_"].update(best="x"),
        "_plateau_progress_ must map",
    ),
}


@pytest.mark.parametrize("case", OPTIMIZER_EDITS)
def test_optimizer_and_schedule_state_that_cannot_train_is_refused(X, case):
    """Such states loaded, then failed in the first step of partial_fit with
    torch's or Python's own error (a negative step count blamed the data)."""
    est = Autoencoder(
        n_components=2, max_iter=2, learning_rate_schedule="plateau", random_state=0, device="cpu"
    ).fit(X)
    edit, match = OPTIMIZER_EDITS[case]

    def edit_copy(attributes):
        attributes["_optimizer_"] = copy.deepcopy(attributes["_optimizer_"])
        attributes["_plateau_progress_"] = dict(attributes["_plateau_progress_"])
        edit(attributes)

    with pytest.raises(ValueError, match=match):
        Autoencoder.__new__(Autoencoder).__setstate__(_tampered_pickle_state(est, edit_copy))


@pytest.mark.parametrize(
    "optimizer, flags",
    [
        ("adam", ["decoupled_weight_decay", "differentiable", "fused", "capturable"]),
        ("sgd", ["fused", "differentiable", "maximize"]),
    ],
)
def test_optimizer_state_of_another_torch_without_some_flags_loads_and_trains(X, optimizer, flags):
    """torch fills in the flags a state lacks (older releases had fewer);
    the settings check had refused such states, which loaded before it."""
    params = dict(n_components=2, max_iter=2, optimizer=optimizer, random_state=0, device="cpu")
    est = Autoencoder(**params).fit(X)

    def without_flags(attributes):
        attributes["_optimizer_"] = copy.deepcopy(attributes["_optimizer_"])
        for group in attributes["_optimizer_"]["param_groups"]:
            for flag in flags:
                group.pop(flag)

    restored = Autoencoder.__new__(Autoencoder)
    restored.__setstate__(_tampered_pickle_state(est, without_flags))
    restored.partial_fit(X)
    # fused filled in as None: another of the optimiser's kernels, apart in rounding
    expected = copy.deepcopy(est).partial_fit(X).transform(X)
    np.testing.assert_allclose(restored.transform(X), expected, rtol=1e-6, atol=1e-9)


def test_state_round_trips_through_every_path(models, X):
    est = models["tied"]
    expected = est.transform(X)
    copies = [pickle.loads(pickle.dumps(est)), copy.deepcopy(est)]
    buffer = io.BytesIO()
    skae.save(est, buffer)
    copies.append(skae.load(io.BytesIO(buffer.getvalue())))
    for restored in copies:
        np.testing.assert_array_equal(restored.transform(X), expected)  # same process
        assert restored._build_params_ == est._build_params_
    state = export_state(est._fitted_attributes())
    assert state["version"] == STATE_VERSION
    assert set(state["attributes"]["module_"]) == {"weights", "aliases"}
    assert state["attributes"]["module_"]["aliases"]  # tied weights are stored once


def test_one_version_policy_for_pickles_and_files(models, monkeypatch):
    """A pickle and a file written under another skae warn with the same message."""
    est = models["mlp"]
    payload = pickle.dumps(est)
    buffer = io.BytesIO()
    skae.save(est, buffer)
    written_by = skae.__version__
    monkeypatch.setattr(skae, "__version__", "999.0")
    expected = (
        f"This Autoencoder was saved with skae {written_by} and is loaded with skae 999.0; "
        "its results may differ."
    )
    for load in (lambda: pickle.loads(payload), lambda: skae.load(io.BytesIO(buffer.getvalue()))):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            load()
        assert [str(w.message) for w in record] == [expected]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_on_version_change({}, "Autoencoder")  # nothing known: nothing to say


def _float64_copy(est):
    cached = _CONVERTED.get(est.module_)
    return None if cached is None else cached.copy


def test_float64_inference_module_is_cached_and_follows_module(X):
    """float64 inference reuses one float64 copy of module_ until module_
    changes (fit, partial_fit, set_params then fit, weights changed in place),
    and keeps it outside the estimator (transform leaves __dict__ as it was)."""
    est = Autoencoder(n_components=3, hidden_layer_sizes=(8,), **FAST).fit(X)
    before = dict(est.__dict__)
    codes = est.transform(X)
    assert est.__dict__ == before
    first = _float64_copy(est)
    assert first is not None and next(first.parameters()).dtype == torch.float64
    np.testing.assert_array_equal(est.transform(X), codes)  # same process, same copy
    assert _float64_copy(est) is first
    reference = copy.deepcopy(est.module_).to(torch.float64)
    with torch.no_grad():
        expected = reference.encode(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(codes, expected)
    for change in (
        lambda: est.fit(X),
        lambda: est.partial_fit(X),
        lambda: est.set_params(n_components=2).fit(X),
    ):
        change()
        assert _float64_copy(est) is None
        est.transform(X)
        assert _float64_copy(est) is not first
        first = _float64_copy(est)
    assert est.transform(X).shape == (len(X), 2)
    with torch.no_grad():  # weights changed in place: a new copy
        next(est.module_.parameters()).add_(1.0)
    est.transform(X)
    assert _float64_copy(est) is not first


def test_float64_inference_module_is_not_pickled(X):
    est = Autoencoder(n_components=3, hidden_layer_sizes=(8,), **FAST).fit(X)
    codes = est.transform(X)
    for restored in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        assert _float64_copy(restored) is None
        np.testing.assert_array_equal(restored.transform(X), codes)
