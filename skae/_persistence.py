"""Save and load fitted skae estimators in a native format that holds data only.

A skae file is a zip archive with exactly these members:

``skae.json``
    The format and its version, the class name, the constructor parameters,
    the estimator's fitted state (what :meth:`BaseAutoencoder._export_state`
    gives: plain data, with each numeric array replaced by a reference into
    the next member), the output configuration and the versions of skae,
    torch, scikit-learn and numpy that wrote the file.
``arrays.safetensors``
    The state's numeric arrays (the module's weights, with tied weights stored
    once; the optimiser's moments), in the safetensors format (a JSON header
    and raw little-endian numbers).

Reading one never executes code from the file: there is no pickle anywhere,
only :func:`json.loads`, :func:`safetensors.numpy.load` and constructors of
skae's own public classes chosen from a fixed list. The fitted state goes
through the same :meth:`~BaseAutoencoder._import_state` as an unpickled one.

Format version 1 (skae 0.1.0: ``weights.safetensors`` and an optional
``optimizer.safetensors``, the fitted attributes listed by name) is read and
converted; any other version is refused with a message naming it.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import zipfile
from numbers import Integral
from typing import BinaryIO

import numpy as np
import safetensors
import safetensors.numpy
import torch
from sklearn.utils.validation import check_is_fitted

from ._archive import (
    MAX_METADATA_BYTES,
    array_budget,
    check_directory,
    check_members,
    checked_file,
    read_arrays_capped,
    read_capped,
)
from ._base import BaseAutoencoder
from ._state import check_state, running_versions, warn_on_version_change
from ._validation import check_params_as_fitted

__all__ = ["load", "save"]

FORMAT = "skae"
#: 3: format 2 whose parameters that shape the network are the fit's (save
#: refuses others); a file of format 1 or 2 may hold ones set since the fit.
FORMAT_VERSION = 3
METADATA = "skae.json"
ARRAYS = "arrays.safetensors"
MEMBERS = {METADATA, ARRAYS}
ENTRIES = {"format", "format_version", "class", "params", "state", "output_config", "versions"}

OUTPUTS = ("default", "pandas", "polars")  #: set_output(transform=...)'s values

#: dtype kinds of arrays stored in safetensors (bool, int, uint, float) and
#: of arrays stored in the JSON document (unicode, and object holding strings).
NUMERIC_KINDS = set("biuf")
TEXT_KINDS = set("UO")


def save(estimator: BaseAutoencoder, path: str | os.PathLike[str] | BinaryIO) -> None:
    """Save a fitted skae estimator to a file that :func:`load` reads back safely.

    The file is a zip archive holding a JSON document (class name, parameters,
    the estimator's fitted state as plain data, versions) and the state's
    arrays (the module's weights, the optimiser's moments) in the safetensors
    format. Unlike a pickle, loading it cannot run code.

    Parameters
    ----------
    estimator : skae estimator
        A fitted instance of one of skae's public estimator classes (not a
        subclass of one). Its parameters must be plain data: numbers, strings,
        booleans, None, tuples and lists of those, a ``torch.device``.
    path : str, path-like or file-like object
        Where to write the archive; an existing file is overwritten. A
        file-like object must be opened for binary writing.

    Raises
    ------
    TypeError
        If ``estimator`` is not an instance of a public skae estimator class,
        a parameter is not plain data (a ``numpy.random.RandomState`` as
        ``random_state``), or ``path`` is no path nor binary file object.
    ValueError
        If a parameter set since the fit is not valid (as ``fit`` would
        say), which :func:`load` could not rebuild the estimator with; or
        one that shapes the network (or the imputer's columns), such as
        ``n_components``, was set since the fit: the file would describe a
        network its weights are not (:func:`load` refuses such an edit).
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import Autoencoder, load, save
    >>> X = load_digits().data / 16
    >>> ae = Autoencoder(n_components=4, hidden_layer_sizes=(16,), max_iter=3,
    ...                  random_state=0, device="cpu").fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "autoencoder.skae")
    ...     save(ae, path)
    ...     restored = load(path)
    >>> np.array_equal(restored.transform(X), ae.transform(X))
    True
    """
    _check_savable(estimator)
    arrays = {}
    document = json.dumps(_document(estimator, arrays), indent=1, sort_keys=True)
    with zipfile.ZipFile(checked_file(path, writing=True), "w") as archive:
        archive.writestr(METADATA, document.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
        # raw floats do not compress; storing them keeps save and load fast
        archive.writestr(ARRAYS, safetensors.numpy.save(arrays))


def _check_savable(estimator):
    """A TypeError unless ``estimator`` is an instance of one of skae's
    estimator classes (not of a subclass); NotFittedError if not fitted."""
    classes = _estimator_classes()
    if classes.get(type(estimator).__name__) is not type(estimator):
        raise TypeError(
            f"skae.save stores instances of skae's estimator classes "
            f"({', '.join(sorted(classes))}); got an instance of "
            f"{type(estimator).__module__}.{type(estimator).__qualname__}."
        )
    check_is_fitted(estimator)
    # load validates them: a value set since the fit (set_params validates
    # nothing) had made a file that load refused; a detector's inner model's too
    for model in (estimator, getattr(estimator, "estimator_", None)):
        if model is not None:
            model._validate_params()
    check_params_as_fitted(estimator, saving=True)


def _document(estimator, arrays):
    """The JSON document of ``estimator``, its numeric arrays put in ``arrays``."""
    params = estimator.get_params(deep=False)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": type(estimator).__name__,
        "params": {"__dict__": {k: _encode(v, f"parameter {k!r}") for k, v in params.items()}},
        "state": _encode(estimator._export_state(), "state", arrays),
        "output_config": _encode(getattr(estimator, "_sklearn_output_config", None), "output"),
        "versions": _versions(),
    }


def load(path: str | os.PathLike[str] | BinaryIO) -> BaseAutoencoder:
    """Load an estimator written by :func:`save`, without executing code from the file.

    The estimator is rebuilt as ``Class(**params)`` for one of skae's public
    estimator classes, its module built as ``fit`` builds it and the stored
    weights copied in: it gives bit-identical outputs (``sample`` with the
    same ``random_state`` too) to the saved one under the same library
    versions and device, and ``partial_fit`` continues as it would have
    (optimiser and generator restored). Format 1 files (skae 0.1.0) load.

    Parameters
    ----------
    path : str, path-like or file-like object
        A file written by :func:`save`. A file-like object must be opened for
        binary reading and be seekable.

    Returns
    -------
    estimator : skae estimator
        The fitted estimator, on the device it was fitted on when that device
        exists here, else on the CPU (with a warning).

    Raises
    ------
    TypeError
        If ``path`` is no path nor binary file object (a file's bytes: use io.BytesIO).
    ValueError
        If a file object cannot seek, or the file is not a skae archive, has
        members other than the expected ones, has a format version this skae
        does not read, names a class that is not a public skae estimator, or
        holds parameters, attributes or weights that do not fit together (a
        parameter that shapes the network other than the fit's value).

    Warns
    -----
    UserWarning
        When the file was written under another version of skae, torch or
        scikit-learn (naming both versions), or when the model was fitted on
        CUDA and CUDA is not available here.

    See Also
    --------
    save : Write the file.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import VariationalAutoencoder, load, save
    >>> X = load_digits().data / 16
    >>> vae = VariationalAutoencoder(n_components=2, hidden_layer_sizes=(16,),
    ...                              max_iter=3, random_state=0, device="cpu").fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "vae.skae")
    ...     save(vae, path)
    ...     restored = load(path)
    >>> np.array_equal(restored.sample(3, random_state=1), vae.sample(3, random_state=1))
    True
    """
    return _rebuilt(*_read_archive(checked_file(path, writing=False)))


def _rebuilt(metadata, arrays):
    """The estimator a checked document and its arrays describe."""
    classes = _estimator_classes()
    name = metadata["class"]
    if not isinstance(name, str) or name not in classes:
        raise ValueError(
            f"The file names the class {name!r}, which is not one of skae's estimators "
            f"({', '.join(sorted(classes))}); refusing to load it."
        )
    cls = classes[name]
    warn_on_version_change(metadata["versions"], name)

    # a document skae did not write can fail anywhere in its reading: with
    # the ValueError load promises, whatever the error it met
    malformed = (KeyError, TypeError, RuntimeError, AttributeError, IndexError, OverflowError)
    try:
        params = _decode(metadata["params"], "params", arrays)
        state = _decode(metadata["state"], "state", arrays)
    except malformed as exc:
        raise ValueError(f"The file's document is not one skae writes: {exc!r}") from exc
    _check_params(params, cls, name, "The file holds parameters")
    estimator = cls(**params)
    estimator._validate_params()
    try:
        estimator._import_state(state)
    except malformed as exc:
        raise ValueError(f"The file's fitted state does not fit {name}: {exc!r}") from exc
    check_params_as_fitted(estimator, saving=False, edited=metadata["format_version"] > 2)
    output_config = _decode(metadata["output_config"], "output_config", arrays)
    if output_config:
        known = isinstance(output_config, dict) and set(output_config) == {"transform"}
        if not known or output_config["transform"] not in OUTPUTS:
            raise ValueError(f"Unexpected output configuration {output_config!r}.")
        estimator.set_output(**output_config)
    unused = sorted(set(arrays) - set(_array_references(metadata)))
    if unused:  # skae writes the arrays its document refers to, and only those
        raise ValueError(
            f"The file's arrays member holds {len(unused)} array(s) its document never "
            f"refers to ({', '.join(map(repr, unused[:3]))}); refusing to load it."
        )
    return estimator


def _check_params(params, cls, name, holder):
    """Refuse parameter names that ``cls`` does not have, before calling it."""
    if not isinstance(params, dict):
        raise ValueError(f"{holder} that are not a mapping: {params!r}.")
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise ValueError(f"{holder} {unknown} that {name} does not have.")


def _check_state(state, cls, name):
    """What :meth:`_import_state` relies on (:func:`skae._state.check_state`,
    which every load path runs), for a caller that checks before building."""
    check_state(state, name)


# ------------------------------------------------------------ plain data


def _encode(value, where, arrays=None):
    """``value`` as JSON data; tuples, devices, dicts and arrays become tagged
    objects. With ``arrays``, numeric arrays go there instead, referenced by key."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (Integral, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{where}/{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{where}/{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, BaseAutoencoder):  # an unfitted inner estimator (a parameter)
        if _estimator_classes().get(type(value).__name__) is not type(value):
            raise TypeError(f"skae.save stores skae's own estimator classes; {where} is not one.")
        params = value.get_params(deep=False)
        return {"__estimator__": type(value).__name__, "params": _encode(params, where)}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, f"{where}/{k}", arrays) for k, v in value.items()}}
    if isinstance(value, np.ndarray) and arrays is not None and value.dtype.kind in NUMERIC_KINDS:
        key = where
        arrays[key] = np.array(value, order="C", copy=not value.flags.c_contiguous)
        return {"__array__": key}
    if isinstance(value, np.ndarray) and value.dtype.kind in NUMERIC_KINDS | TEXT_KINDS:
        if value.dtype.kind == "O" and not all(isinstance(v, str) for v in value.flat):
            raise TypeError(f"{where} is an object array that does not hold only strings.")
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    hint = ""
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        hint = " Set it to an int or None with set_params before saving."
    raise TypeError(
        f"skae.save stores plain data only, but {where} is {value!r} "
        f"(of type {type(value).__module__}.{type(value).__qualname__}).{hint}"
    )


def _array_references(value):
    """The keys of the arrays member that the document ``value`` refers to."""
    if isinstance(value, list):
        for item in value:
            yield from _array_references(item)
    elif isinstance(value, dict):
        if set(value) == {"__array__"} and isinstance(value["__array__"], str):
            yield value["__array__"]
        for item in value.values():
            yield from _array_references(item)


def _decode(value, where, arrays):
    """The inverse of :func:`_encode`; anything it cannot have written is refused."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, where, arrays) for v in value]
    tag = set(value) if isinstance(value, dict) else None
    if tag == {"__tuple__"} and isinstance(value["__tuple__"], list):
        return tuple(_decode(v, where, arrays) for v in value["__tuple__"])
    if tag == {"__device__"} and isinstance(value["__device__"], str):
        try:
            return torch.device(value["__device__"])
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ValueError(f"Bad device in {where}: {value['__device__']!r}.") from exc
    name = value.get("__estimator__") if tag == {"__estimator__", "params"} else None
    if isinstance(name, str) and name in _estimator_classes():
        cls = _estimator_classes()[value["__estimator__"]]
        params = _decode(value["params"], where, arrays)
        _check_params(params, cls, cls.__name__, f"{where} holds parameters")
        return cls(**params)
    if tag == {"__dict__"} and isinstance(value["__dict__"], dict):
        return {k: _decode(v, f"{where}/{k}", arrays) for k, v in value["__dict__"].items()}
    if tag == {"__array__"} and value["__array__"] in arrays:
        return arrays[value["__array__"]]
    if tag == {"__ndarray__", "dtype"} and isinstance(value["dtype"], str):
        return _decode_array(value["__ndarray__"], value["dtype"], where)
    raise ValueError(f"Unexpected value in {where}: {value!r}.")


def _decode_array(data, dtype, where):
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"Bad dtype in {where}: {dtype!r}.") from exc
    if dtype.kind not in NUMERIC_KINDS | TEXT_KINDS or not isinstance(data, list):
        raise ValueError(f"Unexpected array in {where}.")
    if dtype.kind == "O" and not all(isinstance(v, str) for v in data):
        raise ValueError(f"An object array in {where} holds values other than strings.")
    return np.asarray(data, dtype=dtype)


# ----------------------------------------------------------------- reading


def _read_archive(path):
    """(metadata in the current format, arrays) from a skae archive."""
    with _opened(path) as fileobj:
        check_directory(fileobj, path)
        try:
            archive = zipfile.ZipFile(fileobj)
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{path!r} is not a skae file: it is not a zip archive.") from exc
        with archive:
            return _read_members(archive, path)


def _opened(path):
    """A binary file object for ``path``, closed afterwards only if opened here."""
    if hasattr(path, "read"):
        return contextlib.nullcontext(path)
    return open(path, "rb")


def _read_members(archive, path):
    """(metadata in the current format, arrays), each member read with a
    cap: the document's, then the arrays' from what the document describes."""
    check_members(archive, path)
    names = archive.namelist()
    if METADATA not in names:
        raise ValueError(
            f"{path!r} is not a skae file: it holds {sorted(names)}, but a skae file holds "
            f"{sorted(MEMBERS)}, nothing else."
        )
    metadata = _read_metadata(read_capped(archive, METADATA, MAX_METADATA_BYTES))
    expected = MEMBERS if metadata["format_version"] != 1 else FORMAT_1_MEMBERS
    required = MEMBERS if metadata["format_version"] != 1 else {METADATA, WEIGHTS}
    if len(names) != len(set(names)) or not required <= set(names) <= expected:
        raise ValueError(
            f"{path!r} is not a skae file: it holds {sorted(names)}, but a skae file of "
            f"format version {metadata['format_version']} holds {sorted(required)}"
            f"{f' and optionally {sorted(expected - required)}' if expected - required else ''}"
            ", nothing else."
        )
    budget = array_budget(metadata, _estimator_classes(), _decode)
    members = {
        name: _read_arrays(read_arrays_capped(archive, name, budget), name)
        for name in names
        if name != METADATA
    }
    if metadata["format_version"] == 1:
        return _from_format_1(metadata, members)
    if set(metadata) != ENTRIES:
        raise ValueError(
            f"The member {METADATA!r} has entries {sorted(metadata)}; expected {sorted(ENTRIES)}."
        )
    if not isinstance(metadata["versions"], dict):
        raise ValueError(f"The member {METADATA!r} has malformed 'versions'.")
    return metadata, members[ARRAYS]


def _read_metadata(data):
    try:
        metadata = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: nested deeper than Python's stack (skae nests a few levels)
        raise ValueError(f"The member {METADATA!r} is not a JSON document: {exc}") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"The member {METADATA!r} is not a skae document.")
    if metadata.get("format_version") not in (1, 2, FORMAT_VERSION):
        raise ValueError(
            f"The file has format version {metadata.get('format_version')!r}; this skae "
            f"reads versions 1, 2 and {FORMAT_VERSION}. Load it with the skae version that wrote "
            f"it ({metadata.get('versions', {}).get('skae', 'unknown')})."
        )
    return metadata


def _read_arrays(data, member):
    try:
        return safetensors.numpy.load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError and others
        raise ValueError(f"The member {member!r} is not a safetensors file: {exc}") from exc


# ----------------------------------------------------------- format 1


WEIGHTS = "weights.safetensors"
OPTIMIZER = "optimizer.safetensors"
FORMAT_1_MEMBERS = {METADATA, WEIGHTS, OPTIMIZER}
FORMAT_1_ENTRIES = ENTRIES - {"state"} | {"attributes", "device", "aliases", "optimizer", "rng"}


def _from_format_1(metadata, members):
    """A format 1 document and members as (format 2 document, arrays).

    Format 1 listed the fitted attributes by name (with ``_n_features_out``,
    ``_optimizer_kind`` and ``image_shape_``, now derived), kept the weights and
    the optimiser's tensors in two members, and named the convolutional
    estimator's channel counts ``hidden_layer_sizes``.
    """
    if set(metadata) - {"build_params"} != FORMAT_1_ENTRIES:
        raise ValueError(
            f"The member {METADATA!r} has entries {sorted(metadata)}; expected "
            f"{sorted(FORMAT_1_ENTRIES)}."
        )
    weights = members[WEIGHTS]
    params, attributes, build_params = (
        _decode_mapping(metadata.get(entry, {}), entry)
        for entry in ("params", "attributes", "build_params")
    )
    build_params = build_params or {k: v for k, v in params.items() if k != "random_state"}
    if metadata["class"] == "ConvolutionalAutoencoder":
        for mapping in (params, build_params):
            if "hidden_layer_sizes" in mapping:
                mapping["channels"] = mapping.pop("hidden_layer_sizes")
    kind = attributes.pop("_optimizer_kind", params.get("optimizer"))
    for derived in ("_n_features_out", "image_shape_"):
        attributes.pop(derived, None)
    optimizer = _format_1_optimizer(metadata["optimizer"], kind, members)
    state = {
        "version": 2,  # its optimiser's moments are in X's units
        "attributes": {
            **attributes,
            "module_": {"weights": weights, "aliases": metadata["aliases"]},
            "device_": metadata["device"],
            "_rng_": _decode(metadata["rng"], "rng", {}),
            "_optimizer_": optimizer,
            "_build_params_": build_params,
        },
    }
    arrays = {}
    document = {
        "format": FORMAT,
        "format_version": 1,  # read as format 2, its parameters unchecked
        "class": metadata["class"],
        "params": _encode(params, "params"),
        "state": _encode(state, "state", arrays),
        "output_config": metadata["output_config"],
        "versions": metadata["versions"],
    }
    return document, arrays


def _format_1_optimizer(optimizer, kind, members):
    """A format 1 optimiser entry (its moments in their own member) as the
    plain optimiser state of :mod:`skae._optim`; None stays None."""
    if optimizer is None:
        return None
    if OPTIMIZER not in members:
        raise ValueError(f"The file describes an optimiser state but has no {OPTIMIZER}.")
    moments = members[OPTIMIZER]
    try:
        return {
            "kind": kind,
            "param_groups": [_decode(g, "optimizer", {}) for g in optimizer["param_groups"]],
            "state": {
                index: {
                    **{k: _decode(v, "optimizer", {}) for k, v in entry["values"].items()},
                    **{key: moments[f"{index}.{key}"] for key in entry["tensors"]},
                }
                for index, entry in optimizer["state"].items()
            },
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"The file's optimiser state is malformed: {exc!r}") from exc


def _decode_mapping(value, where):
    """A format 1 JSON object of encoded values."""
    if not isinstance(value, dict):
        raise ValueError(f"The file's {where!r} entry must be a JSON object.")
    return {key: _decode(v, f"{where}/{key}", {}) for key, v in value.items()}


# ---------------------------------------------------------------- plumbing


def _estimator_classes():
    """Name -> class of the estimators skae saves and loads (the registry's)."""
    from ._registry import estimator_classes

    return estimator_classes()


def _versions():
    """The versions the file records: those whose change is warned about,
    and others that may explain a difference."""
    return {
        **running_versions(),
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }
