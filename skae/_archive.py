"""Guards for reading a ``.skae`` zip archive that may be hostile: every
check here runs before a member is read, and members are read with a cap, so
that a small file cannot make :func:`skae.load` allocate more than the model
it describes (a zip bomb, a safetensors header declaring huge shapes, a
central directory of a million members, a symlink or a path as a member name).
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
import zipfile
import zlib
from contextlib import contextmanager

#: a skae archive holds two or three members; more are refused before
#: :class:`zipfile.ZipFile` parses the central directory
MAX_MEMBERS = 8
#: the central directory of a few short names takes well under this
MAX_DIRECTORY_BYTES = 64 * 1024
#: the JSON document (parameters, fitted attributes other than arrays,
#: feature names): far above any real one
MAX_METADATA_BYTES = 64 * 1024 * 1024
#: the arrays a model needs beyond its module's weights and the optimiser's
#: moments (a detector's calibration scores, generator states), and the
#: safetensors header
ARRAY_MARGIN_BYTES = 64 * 1024 * 1024
#: The most an arrays member may inflate, beyond one megabyte: skae.save
#: stores it uncompressed, and float weights barely compress (1.1 times);
#: a member of zeros deflates a thousandfold, under a budget that a build
#: record edited to describe a huge network would raise.
MAX_INFLATION = 16
#: bytes per element in safetensors' dtypes
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2,
    "F16": 2, "BF16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip

_END_OF_DIRECTORY = b"PK\x05\x06"
_END_RECORD = struct.Struct("<4s4H2LH")


def check_directory(fileobj, name):
    """Refuse an archive whose end-of-directory record declares more than
    :data:`MAX_MEMBERS` members or a central directory larger than
    :data:`MAX_DIRECTORY_BYTES`, reading only the file's last 64 KiB."""
    fileobj.seek(0, os.SEEK_END)
    size = fileobj.tell()
    tail_size = min(size, _END_RECORD.size + 65535)
    fileobj.seek(size - tail_size)
    tail = fileobj.read(tail_size)
    fileobj.seek(0)
    at = tail.rfind(_END_OF_DIRECTORY)
    if at < 0 or len(tail) - at < _END_RECORD.size:
        raise ValueError(f"{name!r} is not a skae file: it is not a zip archive.")
    fields = _END_RECORD.unpack(tail[at : at + _END_RECORD.size])
    members, directory_bytes = fields[4], fields[5]
    if members > MAX_MEMBERS or directory_bytes > MAX_DIRECTORY_BYTES:
        raise ValueError(
            f"{name!r} is not a skae file: its directory declares {members} members in "
            f"{directory_bytes} bytes; a skae file holds at most {MAX_MEMBERS}. "
            "Refusing to read it."
        )


def check_members(archive, name):
    """Refuse symlinks and member names that are paths, before reading any."""
    for info in archive.infolist():
        member = info.filename
        if "/" in member or "\\" in member or member in ("", ".", "..") or ":" in member:
            raise ValueError(
                f"{name!r} is not a skae file: the member name {member!r} is a path; "
                "a skae file holds members with plain names, nothing else."
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ValueError(
                f"{name!r} is not a skae file: the member {member!r} is a symbolic link. "
                "Refusing to read it."
            )


def read_capped(archive, member, limit):
    """The bytes of ``member``, refusing one that declares, or inflates to,
    more than ``limit`` bytes (the declared size can lie: the read stops at
    ``limit + 1`` bytes whatever it says)."""
    declared = archive.getinfo(member).file_size
    if declared > limit:
        raise _too_large(member, declared, limit)
    with _reading(archive, member) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(member, f"more than {limit}", limit)
    return data


@contextmanager
def _reading(archive, member):
    """``member`` opened for reading; a corrupt one (bad CRC, a deflate
    stream that breaks off, a flag or method flipped to one zipfile cannot
    read, such as encryption) is a ValueError naming it."""
    try:
        with archive.open(member) as stream:
            yield stream
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ValueError(f"The member {member!r} is corrupt: {exc}") from exc


def _file_size(archive):
    """The bytes of ``archive``'s file, whatever its directory declares."""
    here = archive.fp.tell()
    size = archive.fp.seek(0, os.SEEK_END)
    archive.fp.seek(here)
    return size


def _too_large(member, size, limit):
    return ValueError(
        f"The member {member!r} holds {size} bytes, more than the {limit} bytes the "
        "model's parameters need (weights, optimiser moments and a margin). Refusing "
        "to read it."
    )


def read_arrays_capped(archive, member, limit):
    """The bytes of a safetensors member whose header declares at most
    ``limit`` bytes of data, or the bytes it stores uncompressed in the file,
    as skae.save stores it (arrays that grow with the data, such as a large
    detector's calibration scores, take no more memory than the file's own
    bytes); its shapes checked before the data is read."""
    info = archive.getinfo(member)
    if info.compress_type == zipfile.ZIP_STORED:  # no more than the file holds
        limit = max(limit, min(info.compress_size, _file_size(archive)))
    declared = info.file_size
    if declared > limit:
        raise _too_large(member, declared, limit)
    if declared > MAX_INFLATION * info.compress_size + 2**20:
        raise ValueError(
            f"The member {member!r} inflates from {info.compress_size} to {declared} bytes, "
            f"more than {MAX_INFLATION} times: skae.save stores the arrays uncompressed, "
            "and weights do not compress that far. Refusing to read it."
        )
    with _reading(archive, member) as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise ValueError(f"The member {member!r} is not a safetensors file: too short.")
        (header_bytes,) = struct.unpack("<Q", prefix)
        if header_bytes > min(limit, ARRAY_MARGIN_BYTES):
            raise ValueError(
                f"The member {member!r} is not a safetensors file of this model: its header "
                f"declares {header_bytes} bytes. Refusing to read it."
            )
        header = stream.read(header_bytes)
        _check_declared_shapes(header, member, limit)
        data = stream.read(limit + 1 - 8 - len(header))
    if 8 + len(header) + len(data) > limit:
        raise _too_large(member, f"more than {limit}", limit)
    return prefix + header + data


def _check_declared_shapes(header, member, limit):
    try:
        entries = json.loads(header.decode("utf-8"))
        total = 0
        for key, entry in entries.items():
            if key == "__metadata__":
                continue
            count = math.prod(int(n) for n in entry["shape"])
            total += count * DTYPE_BYTES.get(entry["dtype"], 8)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"The member {member!r} is not a safetensors file: {exc}") from exc
    if total > limit:
        raise ValueError(
            f"The member {member!r} declares arrays of {total} bytes, more than the {limit} "
            "bytes the model's parameters need (weights, optimiser moments and a margin). "
            "Refusing to read it."
        )


class _AnyArray(dict):
    """Stands for the arrays while the document alone is decoded."""

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return None


def array_budget(metadata, classes, decode):
    """The most bytes the arrays of the model ``metadata`` describes can
    take: its module's weights and two optimiser moments per weight, at 8
    bytes each, with slack, plus :data:`ARRAY_MARGIN_BYTES`. The module is
    built on torch's meta device, which allocates nothing. A document that
    does not describe a module gets the margin alone (loading it fails
    later, with the checks' own message)."""
    try:
        cls = classes[metadata["class"]]
        params = decode(metadata["params"], "params", _AnyArray())
        state = decode(metadata["state"], "state", _AnyArray())
        elements = _module_elements(cls, params, state, classes)
    except Exception:  # noqa: BLE001 -- any malformed document: load's checks say what
        elements = 0
    return ARRAY_MARGIN_BYTES + 4 * 8 * elements


def _module_elements(cls, params, state, classes):
    import torch

    inner = state.get("estimator_")  # a detector: its inner estimator's module
    if isinstance(inner, dict) and "class" in inner:
        return _module_elements(classes[inner["class"]], inner["params"], inner["state"], classes)
    attributes = state["attributes"]
    with torch.device("meta"):
        module = cls(**params)._architecture(
            attributes["_build_params_"], attributes["n_features_in_"]
        )
    return sum(tensor.numel() for tensor in module.state_dict().values())


def checked_file(path, *, writing):
    """``path`` as :func:`skae.save` (``writing``) or :func:`skae.load` takes
    it: a path (``str``, ``os.PathLike`` or ``bytes``, as ``open`` takes;
    made a ``str``, as zipfile would take bytes for a file object) or a
    binary file object (seekable, to read: a zip archive is read from its
    end). Anything else is refused naming what it is: text-mode files,
    non-seekable streams and a file's contents as bytes had failed inside
    zipfile or ``open`` (UnicodeDecodeError, "embedded null byte")."""
    call, wanted = ("skae.save", "wb") if writing else ("skae.load", "rb")
    takes = f"{call} takes a path or a file object opened in binary mode ({wanted!r})"
    if isinstance(path, bytes) and b"\0" in path:
        raise TypeError(
            f"{takes}; got bytes that are no path (a file's contents?): pass "
            "io.BytesIO(data) to read them."
        )
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsdecode(path)
    # text mode: an encoding (every io.TextIOBase has one), or a mode without
    # "b", a wrapper's (NamedTemporaryFile) too
    mode = getattr(path, "mode", "b")
    text = hasattr(path, "encoding") or isinstance(mode, str) and "b" not in mode
    if not hasattr(path, "write" if writing else "read") or text:
        raise TypeError(f"{takes}; got {type(path).__module__}.{type(path).__qualname__}.")
    if not writing and not (hasattr(path, "seekable") and path.seekable()):
        raise ValueError(
            f"{takes} and seekable (a zip archive is read from its end); this one is not: "
            "read it into io.BytesIO first."
        )
    return path
