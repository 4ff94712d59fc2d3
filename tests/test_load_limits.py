"""Files and states edited by hand: each is refused with a message naming
what is wrong, before it can allocate what it declares or load a model that
fails later (the detector's and the imputer's own attributes, the imputer's
build record, JSON nested past Python's stack, counts past int64)."""

import copy
import io
import json
import warnings
import zipfile

import numpy as np
import pytest
import torch

import skae._archive
from skae import Autoencoder, AutoencoderImputer, AutoencoderOutlierDetector
from skae._persistence import ARRAYS, METADATA, load, save

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")

X = np.random.default_rng(0).random((60, 6))
SMALL = dict(hidden_layer_sizes=(4,), max_iter=2, random_state=0, device="cpu")


def saved(est):
    buffer = io.BytesIO()
    save(est, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def archive(members, compressed=()):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, content in members.items():
            kind = zipfile.ZIP_DEFLATED if name in compressed else zipfile.ZIP_STORED
            out.writestr(name, content, compress_type=kind)
    return io.BytesIO(buffer.getvalue())


def edited(members, edit):
    document = json.loads(members[METADATA])
    edit(document["state"]["__dict__"]["attributes"]["__dict__"])
    return {**members, METADATA: json.dumps(document).encode()}


@pytest.fixture(scope="module")
def autoencoder():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return saved(Autoencoder(n_components=2, **SMALL).fit(X))


def test_a_build_record_of_a_huge_network_without_its_weights_builds_nothing(
    autoencoder, monkeypatch
):
    # the weights' names were compared only after the network was built: a
    # 1 KB file had a network of its declared width allocated
    def edit(attributes):
        attributes["_build_params_"]["__dict__"]["hidden_layer_sizes"] = {"__tuple__": [3000]}
        attributes["module_"]["__dict__"]["weights"]["__dict__"] = {}
        attributes["_optimizer_"] = None

    built, architecture = [], Autoencoder._architecture

    def recording(self, *args):
        built.append(torch.get_default_device().type)
        return architecture(self, *args)

    monkeypatch.setattr(Autoencoder, "_architecture", recording)
    with pytest.raises(ValueError, match=r"do not fit the module: missing \['code_scale'"):
        load(archive(edited(autoencoder, edit)))
    assert built and set(built) == {"meta"}


def test_an_arrays_member_that_inflates_far_is_refused(autoencoder):
    # skae.save stores the arrays uncompressed; zeros deflate a thousandfold
    members = {**autoencoder, ARRAYS: autoencoder[ARRAYS] + bytes(20 * 2**20)}
    with pytest.raises(ValueError, match="inflates from .* more than 16 times"):
        load(archive(members, compressed={ARRAYS}))
    # the same arrays compressed, as a zip tool may store them, load
    assert isinstance(load(archive(autoencoder, compressed={ARRAYS})), Autoencoder)


def test_arrays_stored_in_the_file_load_past_the_weights_budget(detector, monkeypatch):
    # a detector's calibration scores grow with its rows, which the budget
    # (weights and a margin) did not count: a detector of 9 million rows saved
    # and was then refused by load; the bytes a file stores cost no inflation
    monkeypatch.setattr(skae._archive, "ARRAY_MARGIN_BYTES", 64 * 1024)
    large = copy.deepcopy(detector)
    large.calibration_scores_ = np.sort(np.random.default_rng(0).normal(size=50_000))
    buffer = io.BytesIO()
    save(large, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(load(buffer).calibration_scores_, large.calibration_scores_)


@pytest.mark.parametrize(
    "offset, value, raised",
    [(10, 99, "compression method"), (8, 1, "encrypted")],
    ids=["unknown-method", "encrypted-flag"],
)
def test_a_directory_entry_zipfile_cannot_read_is_a_value_error(autoencoder, offset, value, raised):
    # zipfile raises NotImplementedError and RuntimeError for these, which
    # escaped load's promise of a ValueError for a file skae did not write
    data = bytearray(archive(autoencoder).getvalue())
    data[data.index(b"PK\x01\x02") + offset] = value
    with pytest.raises(ValueError, match=f"is corrupt: .*{raised}"):
        load(io.BytesIO(bytes(data)))


def test_a_stored_member_whose_directory_lies_about_its_size_is_refused(autoencoder):
    # "stored in the file" is what the file holds, not what its directory says:
    # a 12 KB file declaring a 1 TB stored member had load allocate it
    declared = 2**40
    header = json.dumps(
        {"x": {"dtype": "U8", "shape": [declared - 200], "data_offsets": [0, declared - 200]}}
    ).encode()
    members = {**autoencoder, ARRAYS: len(header).to_bytes(8, "little") + header + bytes(1000)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, content in members.items():
            out.writestr(name, content, compress_type=zipfile.ZIP_STORED)
        info = out.getinfo(ARRAYS)
        info.file_size = info.compress_size = declared  # the directory lies (zip64)
    with pytest.raises(ValueError, match=f"holds {declared} bytes, more than"):
        load(io.BytesIO(buffer.getvalue()))


def test_json_nested_past_the_stack_is_a_value_error(autoencoder):
    members = {**autoencoder, METADATA: b"[" * 100_000 + b"]" * 100_000}
    with pytest.raises(ValueError, match="is not a JSON document"):
        load(archive(members))


def test_a_count_past_int64_is_refused_by_name(autoencoder):
    members = edited(autoencoder, lambda attributes: attributes.update(n_features_in_=2**63))
    with pytest.raises(ValueError, match=r"n_features_in_ must be a positive int below 2\*\*62"):
        load(archive(members))


@pytest.fixture(scope="module")
def detector():
    inner = Autoencoder(n_components=2, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoencoderOutlierDetector(inner, cv=2, random_state=0).fit(X)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda a: a.update(offset_="abc"), "offset_ is not a finite number"),
        (lambda a: a.update(offset_=float("nan")), "offset_ is not a finite number"),
        (lambda a: a.update(predict=1), r"holds \['predict'\], which a fitted"),
        (lambda a: a.update(contamination="lots"), r"holds \['contamination'\]"),
    ],
    ids=["offset-text", "offset-nan", "method-name", "parameter-name"],
)
def test_a_detector_file_with_foreign_or_broken_attributes_is_refused(detector, edit, match):
    # they had loaded, replacing a method or a parameter, or failed in predict
    with pytest.raises(ValueError, match=match):
        load(archive(edited(saved(detector), edit)))


@pytest.mark.parametrize("scores", [[float("nan")] * 5, [[0.0, 1.0]] * 3], ids=["nan", "2-d"])
def test_a_detector_file_with_broken_calibration_scores_is_refused(detector, scores):
    members = edited(saved(detector), lambda a: a.update(calibration_scores_=scores))
    with pytest.raises(ValueError, match="calibration_scores_ is not a row of numbers"):
        load(archive(members))


@pytest.fixture(scope="module")
def imputer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoencoderImputer(add_indicator=True, **SMALL).fit(np.where(X < 0.2, np.nan, X))


@pytest.mark.parametrize(
    "name, value, match",
    [
        ("statistics_", np.zeros(3), r"statistics_ of shape \(3,\)"),
        ("statistics_", np.r_[np.nan, np.zeros(5)], "not NaN .* exactly at its _empty_features_"),
        ("_empty_features_", np.zeros(6), r"\(float64\); .* booleans"),
        ("_indicator_features_", np.array([0, 0]), r"indicator features \[0, 0\] are not"),
        ("_indicator_features_", np.array([-1]), r"indicator features \[-1\] are not"),
    ],
    ids=["short", "nan-not-empty", "float-mask", "repeated", "negative"],
)
def test_an_imputer_state_whose_columns_do_not_fit_is_refused(imputer, name, value, match):
    # they had loaded and failed in transform, or changed its output's width
    state = imputer.__getstate__()
    state["_skae_fitted_state"]["attributes"][name] = value
    with pytest.raises(ValueError, match=match):
        AutoencoderImputer().__setstate__(state)


def test_an_imputer_build_record_is_validated_as_the_autoencoders_are(imputer):
    def edit(attributes):
        attributes["_build_params_"]["__dict__"]["activation"] = "bogus"

    with pytest.raises(ValueError, match="build_params are not valid: The 'activation'"):
        load(archive(edited(saved(imputer), edit)))
