"""Save and load fitted skae estimators in a native format that holds data only.

A skae file is a zip archive with exactly these members:

``skae.json``
    The class name, the constructor parameters (and, when ``set_params``
    changed them after fitting, the ones the module was built from, as
    ``build_params``), the fitted attributes that are
    plain data (``n_iter_``, ``loss_curve_``, ...), the device the model was
    fitted on, the state of the estimator's private random generator and the
    versions of skae, torch, scikit-learn and numpy that wrote the file.
``weights.safetensors``
    The module's state dict, in the safetensors format (a JSON header and raw
    little-endian numbers). Tied weights are stored once; ``skae.json`` names
    the entries that alias them.
``optimizer.safetensors`` (optional)
    The optimiser's tensors (Adam moments, SGD momentum), so that
    :meth:`partial_fit` continues exactly as it would have on the saved
    estimator; the optimiser's hyper-parameters are in ``skae.json``.

Reading one never executes code from the file: there is no pickle anywhere,
only :func:`json.loads`, :func:`safetensors.torch.load` and constructors of
skae's own public classes chosen from a fixed list.
"""

from __future__ import annotations

import json
import os
import platform
import warnings
import zipfile
from numbers import Integral
from typing import BinaryIO

import numpy as np
import safetensors
import safetensors.torch
import sklearn
import torch
from sklearn.utils.validation import check_is_fitted

from ._base import BaseAutoencoder, _without_seed, resolve_device, rng_from_state

__all__ = ["load", "save"]

FORMAT = "skae"
FORMAT_VERSION = 1
METADATA = "skae.json"
WEIGHTS = "weights.safetensors"
OPTIMIZER = "optimizer.safetensors"
MEMBERS = {METADATA, WEIGHTS, OPTIMIZER}
REQUIRED_MEMBERS = {METADATA, WEIGHTS}

#: Entries of the JSON document; ``build_params`` may come in addition.
ENTRIES = {
    "format",
    "format_version",
    "class",
    "params",
    "attributes",
    "device",
    "aliases",
    "optimizer",
    "rng",
    "output_config",
    "versions",
}

#: Fitted attributes stored in the JSON document, when the estimator has them.
FITTED_ATTRIBUTES = (
    "n_features_in_",
    "feature_names_in_",
    "n_iter_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "batch_size_",
    "pretraining_loss_curves_",
    "image_shape_",
    "_n_features_out",
    "_optimizer_kind",
)

#: The packages whose versions change results; a file written under other
#: versions loads with a warning.
CHECKED_VERSIONS = ("skae", "torch", "scikit-learn")

#: dtype kinds an array in the JSON document may have: bool, int, uint,
#: float, unicode and object (strings only).
ARRAY_KINDS = set("biufUO")


def save(estimator: BaseAutoencoder, path: str | os.PathLike[str] | BinaryIO) -> None:
    """Save a fitted skae estimator to a file that :func:`load` reads back safely.

    The file is a zip archive holding a JSON document (class name, parameters,
    plain-data fitted attributes, versions, the optimiser's hyper-parameters),
    the module's weights in the safetensors format and the optimiser's
    tensors, also in safetensors. Unlike a pickle, loading it cannot run code.

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
        or a parameter is not plain data (for example a
        ``numpy.random.RandomState`` as ``random_state``).
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
    name = type(estimator).__name__
    classes = _estimator_classes()
    if classes.get(name) is not type(estimator):
        raise TypeError(
            f"skae.save stores instances of skae's estimator classes "
            f"({', '.join(sorted(classes))}); got an instance of "
            f"{type(estimator).__module__}.{type(estimator).__qualname__}."
        )
    check_is_fitted(estimator)

    params = _encode_params(estimator.get_params(deep=False))
    # the parameters the module was built from, when set_params changed them since
    build_params = _encode_params(getattr(estimator, "_build_params", {}))
    attributes = {
        key: _encode(getattr(estimator, key), f"attribute {key!r}")
        for key in FITTED_ATTRIBUTES
        if hasattr(estimator, key)
    }
    weights, aliases = _deduplicate(estimator.module_.state_dict())
    optimizer_tensors, optimizer = _split_optimizer_state(estimator._optimizer_state_dict())
    rng = getattr(estimator, "_rng", None)
    changed = build_params not in ({}, _without_seed(params))
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": name,
        "params": params,
        "attributes": attributes,
        **({"build_params": build_params} if changed else {}),
        "device": str(estimator.device_),
        "aliases": aliases,
        "optimizer": optimizer,
        "rng": None if rng is None else _encode(rng.bit_generator.state, "random generator"),
        "output_config": _encode(getattr(estimator, "_sklearn_output_config", None), "output"),
        "versions": _versions(),
    }
    document = json.dumps(metadata, indent=1, sort_keys=True).encode("utf-8")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(METADATA, document, compress_type=zipfile.ZIP_DEFLATED)
        # raw floats do not compress; storing them keeps save and load fast
        archive.writestr(WEIGHTS, safetensors.torch.save(weights))
        if optimizer is not None:
            archive.writestr(OPTIMIZER, safetensors.torch.save(optimizer_tensors))


def load(path: str | os.PathLike[str] | BinaryIO) -> BaseAutoencoder:
    """Load an estimator written by :func:`save`, without executing code from the file.

    The estimator is rebuilt as ``Class(**params)`` for a class among skae's
    public estimators, its parameters are validated, its module is built by
    the class itself (as ``fit`` builds it) and the stored weights are copied
    in. The loaded estimator gives bit-identical :meth:`transform`,
    :meth:`inverse_transform`, :meth:`score_samples` (and, for the variational
    autoencoder, :meth:`sample` with the same ``random_state``) to the saved
    one, under the same library versions and device. The optimiser's state and
    the estimator's random generator are restored too, so :meth:`partial_fit`
    continues as it would have on the saved estimator. (On another device than
    the one it was fitted on, the next :meth:`partial_fit` starts a fresh
    optimiser, as it does for an estimator whose ``device`` changed.)

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
    ValueError
        If the file is not a skae archive, has members other than the expected
        ones, names a class that is not a public skae estimator, or holds
        parameters, attributes or weights that do not fit together.

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
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import VariationalAutoencoder, load, save
    >>> X = load_digits().data / 16
    >>> vae = VariationalAutoencoder(n_components=2, hidden_layer_sizes=(16,),
    ...                              max_iter=3, random_state=0, device="cpu")
    >>> vae = vae.fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "vae.skae")
    ...     save(vae, path)
    ...     restored = load(path)
    >>> np.array_equal(restored.sample(3, random_state=1), vae.sample(3, random_state=1))
    True
    """
    metadata, weights, optimizer_tensors = _read_archive(path)
    classes = _estimator_classes()
    name = metadata["class"]
    if not isinstance(name, str) or name not in classes:
        raise ValueError(
            f"The file names the class {name!r}, which is not one of skae's estimators "
            f"({', '.join(sorted(classes))}); refusing to load it."
        )
    cls = classes[name]
    _warn_on_version_change(metadata["versions"], name)

    params = _decode_mapping(metadata["params"], "params")
    _check_param_names(params, cls, name, "The file holds parameters")
    estimator = cls(**params)
    estimator._validate_params()

    attributes = _decode_mapping(metadata["attributes"], "attributes")
    unknown = sorted(set(attributes) - set(FITTED_ATTRIBUTES))
    if unknown:
        raise ValueError(f"The file holds unknown fitted attributes {unknown}.")
    n_features = attributes.get("n_features_in_")
    if not isinstance(n_features, Integral) or isinstance(n_features, bool) or n_features < 1:
        raise ValueError(f"The file's n_features_in_ must be a positive int; got {n_features!r}.")

    device = _target_device(metadata["device"], name)
    build_params = _decode_mapping(metadata.get("build_params", {}), "build_params")
    _check_param_names(build_params, cls, name, "The file's build_params hold parameters")
    if build_params:
        try:
            cls(**build_params)._validate_params()
        except ValueError as exc:
            raise ValueError(f"The file's build_params are not valid: {exc}") from exc

    attributes["n_features_in_"] = int(n_features)
    if "feature_names_in_" in attributes:
        attributes["feature_names_in_"] = np.asarray(attributes["feature_names_in_"], dtype=object)
    for key, value in attributes.items():
        setattr(estimator, key, value)
    estimator._build_params = _without_seed(build_params or params)
    # built as fit built it, from the parameters of that time; the initial
    # values are overwritten by the stored weights
    module = estimator._fitted_architecture()
    _load_weights(module, weights, metadata["aliases"])
    module.to(device)
    estimator.module_ = module
    estimator.device_ = device
    rng = metadata["rng"]
    estimator._rng = None if rng is None else rng_from_state(_decode(rng, "random generator"))
    estimator._optimizer = _restore_optimizer(
        estimator, module, device, metadata["optimizer"], optimizer_tensors
    )
    estimator._optimizer_state = None
    output_config = _decode(metadata["output_config"], "output_config")
    if output_config:
        if not isinstance(output_config, dict) or set(output_config) - {"transform"}:
            raise ValueError(f"Unexpected output configuration {output_config!r}.")
        estimator.set_output(**output_config)
    return estimator


# ------------------------------------------------------------ plain data


def _encode(value, where):
    """``value`` as JSON data; tuples, devices, dicts and arrays become tagged objects."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (Integral, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, where) for k, v in value.items()}}
    if isinstance(value, np.ndarray) and value.dtype.kind in ARRAY_KINDS:
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


def _encode_params(params):
    return {key: _encode(value, f"parameter {key!r}") for key, value in params.items()}


def _decode(value, where):
    """The inverse of :func:`_encode`; anything it cannot have written is refused."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, where) for v in value]
    tag = set(value) if isinstance(value, dict) else None
    if tag == {"__tuple__"} and isinstance(value["__tuple__"], list):
        return tuple(_decode(v, where) for v in value["__tuple__"])
    if tag == {"__device__"} and isinstance(value["__device__"], str):
        try:
            return torch.device(value["__device__"])
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ValueError(f"Bad device in {where}: {value['__device__']!r}.") from exc
    if tag == {"__dict__"} and isinstance(value["__dict__"], dict):
        return {k: _decode(v, where) for k, v in value["__dict__"].items()}
    if tag == {"__ndarray__", "dtype"} and isinstance(value["dtype"], str):
        return _decode_array(value["__ndarray__"], value["dtype"], where)
    raise ValueError(f"Unexpected value in {where}: {value!r}.")


def _decode_array(data, dtype, where):
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"Bad dtype in {where}: {dtype!r}.") from exc
    if dtype.kind not in ARRAY_KINDS or not isinstance(data, list):
        raise ValueError(f"Unexpected array in {where}.")
    if dtype.kind == "O" and not all(isinstance(v, str) for v in data):
        raise ValueError(f"An object array in {where} holds values other than strings.")
    return np.asarray([_decode(v, where) for v in data], dtype=dtype)


def _decode_mapping(value, where):
    if not isinstance(value, dict):
        raise ValueError(f"The file's {where!r} entry must be a JSON object.")
    return {key: _decode(v, f"{where}[{key!r}]") for key, v in value.items()}


def _check_param_names(params, cls, name, holder):
    """Refuse parameter names that ``cls`` does not have, before calling it."""
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise ValueError(f"{holder} {unknown} that {name} does not have.")


# ----------------------------------------------------------------- tensors


def _cpu(tensor):
    return tensor.detach().cpu().contiguous()


def _aliases(state):
    """``{alias: name kept}`` for the entries of ``state`` that are the same
    tensor as an earlier entry (tied weights)."""
    aliases, seen = {}, {}
    for key, tensor in state.items():
        identity = (
            tensor.device,
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
            tensor.dtype,
        )
        kept = seen.setdefault(identity, key)
        if kept != key:
            aliases[key] = kept
    return aliases


def _deduplicate(state):
    """Tensors of ``state`` on the CPU with shared ones kept once (safetensors
    refuses shared storage), and ``{alias: name kept}`` for the others."""
    aliases = _aliases(state)
    return {key: _cpu(t) for key, t in state.items() if key not in aliases}, aliases


def _load_weights(module, weights, aliases):
    state = module.state_dict()
    expected_aliases = _aliases(state)
    if aliases != expected_aliases:
        raise ValueError(
            f"The file's tied weights {aliases} do not match the module's {expected_aliases}."
        )
    full = dict(weights)
    full.update({alias: weights.get(kept) for alias, kept in aliases.items()})
    missing, unexpected = sorted(set(state) - set(full)), sorted(set(full) - set(state))
    if missing or unexpected:
        raise ValueError(
            f"The file's weights do not fit the module: missing {missing}, unexpected {unexpected}."
        )
    for key, tensor in full.items():
        if tensor.shape != state[key].shape or tensor.dtype != state[key].dtype:
            raise ValueError(
                f"Weight {key!r} has shape {tuple(tensor.shape)} and dtype {tensor.dtype} in "
                f"the file; the module expects {tuple(state[key].shape)} and {state[key].dtype}."
            )
    module.load_state_dict(full, strict=True)


def _split_optimizer_state(state):
    """An optimiser state dict as (tensors for safetensors, JSON data)."""
    if state is None:
        return None, None
    tensors, entries = {}, {}
    for index, values in state["state"].items():
        entry = {"tensors": [], "values": {}}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = _cpu(value)
                entry["tensors"].append(key)
            else:
                entry["values"][key] = _encode(value, f"optimizer state {key!r}")
        entries[str(index)] = entry
    groups = [_encode(group, "optimizer parameter group") for group in state["param_groups"]]
    return tensors, {"param_groups": groups, "state": entries}


def _restore_optimizer(estimator, module, device, document, tensors):
    """The optimiser with its saved state, or None (the next ``partial_fit``
    then starts a fresh one, as after a device change)."""
    if document is None:
        return None
    if tensors is None:
        raise ValueError(f"The file describes an optimiser state but has no {OPTIMIZER}.")
    try:
        state = _join_optimizer_state(document, tensors)
        optimizer = estimator._optimizer_with_state(module, device, state)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"The file's optimiser state does not fit the module: {exc}") from exc
    return optimizer


def _join_optimizer_state(document, tensors):
    """The inverse of :func:`_split_optimizer_state`."""
    groups = [_decode(group, "optimizer") for group in document["param_groups"]]
    state = {}
    for index, entry in document["state"].items():
        values = {k: _decode(v, "optimizer") for k, v in entry["values"].items()}
        values.update({key: tensors[f"{index}.{key}"] for key in entry["tensors"]})
        state[int(index)] = values
    return {"state": state, "param_groups": groups}


# ----------------------------------------------------------------- reading


def _read_archive(path):
    """(metadata, weights, optimizer tensors or None) from a skae archive."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path!r} is not a skae file: it is not a zip archive.") from exc
    with archive:
        names = archive.namelist()
        if len(names) != len(set(names)) or not REQUIRED_MEMBERS <= set(names) <= MEMBERS:
            raise ValueError(
                f"{path!r} is not a skae file: it holds {sorted(names)}, but a skae file "
                f"holds {sorted(REQUIRED_MEMBERS)} and optionally {OPTIMIZER!r}, nothing else."
            )
        metadata = _read_metadata(archive.read(METADATA))
        weights = _read_tensors(archive.read(WEIGHTS), WEIGHTS)
        optimizer = None
        if OPTIMIZER in names:
            optimizer = _read_tensors(archive.read(OPTIMIZER), OPTIMIZER)
    return metadata, weights, optimizer


def _read_metadata(data):
    try:
        metadata = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"The member {METADATA!r} is not a JSON document: {exc}") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"The member {METADATA!r} is not a skae document.")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"The file has format version {metadata.get('format_version')!r}; this skae "
            f"reads version {FORMAT_VERSION}. Load it with the skae version that wrote it "
            f"({metadata.get('versions', {}).get('skae', 'unknown')})."
        )
    if set(metadata) - {"build_params"} != ENTRIES:
        raise ValueError(
            f"The member {METADATA!r} has entries {sorted(metadata)}; expected {sorted(ENTRIES)}."
        )
    if not isinstance(metadata["versions"], dict) or not isinstance(metadata["device"], str):
        raise ValueError(f"The member {METADATA!r} has malformed 'versions' or 'device'.")
    aliases = metadata["aliases"]
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise ValueError(f"The member {METADATA!r} has a malformed 'aliases' entry.")
    return metadata


def _read_tensors(data, member):
    try:
        return safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError and others
        raise ValueError(f"The member {member!r} is not a safetensors file: {exc}") from exc


# ---------------------------------------------------------------- plumbing


def _estimator_classes():
    """Name -> class of skae's public estimators (those in ``skae.__all__``)."""
    import skae

    classes = {}
    for name in skae.__all__:
        obj = getattr(skae, name, None)
        if isinstance(obj, type) and issubclass(obj, BaseAutoencoder):
            classes[name] = obj
    return classes


def _versions():
    import skae

    return {
        "skae": skae.__version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }


def _warn_on_version_change(saved, name):
    running = _versions()
    for package in CHECKED_VERSIONS:
        if saved.get(package) != running[package]:
            warnings.warn(
                f"This {name} was saved with {package} {saved.get(package)} and is loaded "
                f"with {package} {running[package]}; its results may differ.",
                UserWarning,
                stacklevel=3,
            )


def _target_device(saved, name):
    """The saved device when it exists here, else the CPU with a warning."""
    try:
        return resolve_device(saved)
    except ValueError:
        warnings.warn(
            f"{name} was fitted on {saved!r}, which is not available here; it will run on the CPU.",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
