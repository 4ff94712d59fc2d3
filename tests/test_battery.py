"""A battery over the surfaces of the last round (issue 23, item 4): sparse
input in its odd forms, tensors of another dtype or device, ONNX export of
models it cannot export, threads, a torchrun rank that dies mid-fit, and
hostile ``.skae`` files (each refused before it is read, in bounded memory)."""

import io
import json
import logging
import re
import stat
import struct
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.exceptions import NotFittedError

import skae
from skae import Autoencoder, SparseAutoencoder

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TINY = dict(n_components=3, hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu")
RNG = np.random.default_rng(0)
X = RNG.uniform(size=(40, 6))


@pytest.fixture(scope="module")
def fitted():
    return Autoencoder(**TINY).fit(X)


# ----------------------------------------------------------------- .skae files


def saved(estimator):
    buffer = io.BytesIO()
    skae.save(estimator, buffer)
    return buffer.getvalue()


def members_of(payload):
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def safetensors_bytes(header, body_size=0):
    """A safetensors prefix declaring ``header``'s arrays; body not included."""
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text


def bomb(payload, inflated_bytes):
    """``payload`` with ``arrays.safetensors`` replaced by a deflated member
    that inflates to ``inflated_bytes`` of zeros after a valid header."""
    members = members_of(payload)
    n = inflated_bytes // 4
    head = safetensors_bytes(
        {"module_/weight": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("skae.json", members["skae.json"])
        info = zipfile.ZipInfo("arrays.safetensors")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as stream:
            stream.write(head)
            chunk = bytes(1 << 24)
            for _ in range(4 * n // len(chunk)):
                stream.write(chunk)
    return out.getvalue()


def peak_load_bytes(data):
    """(the error load raised, the peak of Python's allocations meanwhile)."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as caught:
            skae.load(io.BytesIO(data))
        return caught.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zip_bomb_is_refused_before_it_is_inflated(fitted):
    """A few hundred KB inflating to 512 MiB of zeros: refused from its
    declared size, with allocations far below what it would inflate to."""
    data = bomb(saved(fitted), 512 << 20)
    assert len(data) < 2 << 20
    error, peak = peak_load_bytes(data)
    assert "more than" in str(error) and "arrays.safetensors" in str(error)
    assert peak < 8 << 20, peak


def test_member_that_lies_about_its_size_is_read_with_a_cap(fitted, monkeypatch):
    """A member whose directory entry declares a small size but that
    inflates further is cut off at the cap, not read whole."""
    import skae._archive

    monkeypatch.setattr(skae._archive, "ARRAY_MARGIN_BYTES", 1 << 20)
    data = bomb(saved(fitted), 64 << 20)
    real_getinfo = zipfile.ZipFile.getinfo

    def lying_getinfo(self, name):
        info = real_getinfo(self, name)
        if name == "arrays.safetensors":
            info.file_size = 1000  # what a forged directory would say
        return info

    monkeypatch.setattr(zipfile.ZipFile, "getinfo", lying_getinfo)
    error, peak = peak_load_bytes(data)
    assert "arrays.safetensors" in str(error) and "corrupt" in str(error)
    assert peak < 8 << 20, peak


def test_huge_declared_shape_is_refused_before_the_data_is_read(fitted):
    members = members_of(saved(fitted))
    n = 10**12
    header = {"module_/weight": {"dtype": "F64", "shape": [n, n], "data_offsets": [0, 8]}}
    members["arrays.safetensors"] = safetensors_bytes(header) + bytes(8)
    with pytest.raises(ValueError, match="declares arrays of .* bytes, more than"):
        skae.load(io.BytesIO(write(members)))


def write(members, infos=()):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for info, data in infos:
            archive.writestr(info, data)
    return out.getvalue()


@pytest.mark.parametrize("name", ["sub/skae.json", "/skae.json", "..\\skae.json", "C:skae.json"])
def test_member_name_that_is_a_path_is_refused(fitted, name):
    members = members_of(saved(fitted))
    members[name] = members["skae.json"]
    with pytest.raises(ValueError, match="is a path"):
        skae.load(io.BytesIO(write(members)))


def test_symlink_member_is_refused(fitted):
    members = members_of(saved(fitted))
    arrays = members.pop("arrays.safetensors")
    link = zipfile.ZipInfo("arrays.safetensors")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(ValueError, match="symbolic link"):
        skae.load(io.BytesIO(write(members, [(link, arrays)])))


def test_many_members_are_refused_before_the_directory_is_parsed(fitted):
    members = members_of(saved(fitted))
    members.update({f"m{i}": b"" for i in range(2000)})
    with pytest.raises(ValueError, match="declares 2002 members"):
        skae.load(io.BytesIO(write(members)))


def test_a_million_members_declared_are_refused(fitted, monkeypatch):
    """The end record of a zip64 archive of 10^6 members says 0xFFFF; the
    refusal comes before zipfile builds a million ZipInfo objects."""
    data = bytearray(saved(fitted))
    at = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, at + 8, 0xFFFF, 0xFFFF)
    called = []
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: called.append(1))
    with pytest.raises(ValueError, match="declares 65535 members"):
        skae.load(io.BytesIO(bytes(data)))
    assert called == []


def test_a_real_file_still_loads_from_a_path_and_a_buffer(fitted, tmp_path):
    path = tmp_path / "model.skae"
    skae.save(fitted, path)
    for source in (path, str(path), io.BytesIO(path.read_bytes())):
        assert_allclose(skae.load(source).transform(X), fitted.transform(X), rtol=0, atol=0)


# ----------------------------------------------------------------- ONNX


def test_to_onnx_bad_opset_shows_skae_message_only(fitted, caplog):
    pytest.importorskip("onnxscript")
    from skae.onnx import to_onnx

    caplog.set_level(logging.WARNING)  # what would reach stderr unconfigured
    with pytest.raises(ValueError, match="could not produce opset 13"):
        to_onnx(fitted, opset=13)
    noisy = [r for r in caplog.records if r.name.startswith(("torch.onnx", "onnxscript"))]
    assert [r.getMessage() for r in noisy] == []


def test_to_onnx_of_an_unfitted_model_is_refused():
    pytest.importorskip("onnxscript")
    from skae.onnx import to_onnx

    with pytest.raises(NotFittedError, match="Autoencoder"):
        to_onnx(Autoencoder(**TINY))


def test_to_onnx_of_a_swapped_module_is_refused_clearly():
    pytest.importorskip("onnxscript")
    from skae.onnx import to_onnx

    est = Autoencoder(**TINY).fit(X)
    est.module_ = torch.nn.Linear(6, 3)
    with pytest.raises((TypeError, ValueError), match="module_"):
        to_onnx(est)


# ------------------------------------------------------- no silent failures


def test_sparse_fit_with_most_code_units_dead_warns_naming_the_fixes():
    """An L1 code that ends with more than half its units zero on every
    training row warns, saying how many are dead and what to change."""
    from sklearn.datasets import load_digits

    digits = load_digits().data[:300] / 16
    # the network alone (without the PCA start's linear path beside it)
    start = {"init": "random"} if "init" in SparseAutoencoder().get_params() else {}
    est = SparseAutoencoder(
        n_components=8, sparsity_weight=3.0, max_iter=5, random_state=0, device="cpu", **start
    )
    with pytest.warns(Warning) as record:
        est.fit(digits)
    messages = [str(w.message) for w in record if "code units" in str(w.message)]
    assert messages, [str(w.message) for w in record]
    assert re.search(r"(Every one of the 8|[5-7] of the 8) code units", messages[0])
    assert "Lower sparsity_weight (now 3.0)" in messages[0]


def test_sparse_fit_with_live_units_does_not_warn_about_them():
    with warnings.catch_warnings():
        warnings.simplefilter("error", Warning)
        warnings.filterwarnings("ignore", "Stochastic Optimizer")
        SparseAutoencoder(**{**TINY, "sparsity_weight": 0.0}).fit(X)
