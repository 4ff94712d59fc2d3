"""Export fitted skae estimators to ONNX, alone or inside scikit-learn Pipelines.

Needs the ``onnx`` extra (``pip install "skae[onnx]"``: onnx, onnxscript,
onnxruntime, skl2onnx). ``import skae`` never imports this module or those
packages; import it when you deploy::

    from skae.onnx import register_converters, to_onnx

:func:`to_onnx` runs PyTorch's ONNX exporter (``torch.onnx.export`` with
``dynamo=True``, the exporter's default in torch 2.13) on a CPU float32 copy of
the fitted ``module_``; no ONNX node is written by hand. The graphs it makes:

- ``method="transform"``: input ``"X"`` float32 ``[N, F]``, output ``"Z"``
  float32 ``[N, K]``;
- ``method="inverse_transform"``: input ``"Z"`` float32 ``[N, K]``, output
  ``"X_reconstructed"`` float32 ``[N, F]``;

with ``F = n_features_in_``, ``K`` the code width (``n_components`` at fit
time) and ``N`` a dynamic batch dimension named ``"N"``. ``"transform"``
encodes (the posterior mean for :class:`~skae.VariationalAutoencoder`, as its
``transform`` does); ``"inverse_transform"`` decodes, with the output
activation that ``inverse_transform`` applies.

:func:`register_converters` teaches skl2onnx the six estimators, so that
``skl2onnx.to_onnx(pipeline, X_sample)`` converts Pipelines and
ColumnTransformers holding skae steps. Each step's graph is the one
:func:`to_onnx` exports, inlined into the pipeline's graph.
"""

from __future__ import annotations

import copy
import logging
import re
import warnings
from contextlib import contextmanager
from numbers import Integral
from typing import TYPE_CHECKING, Any

import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._registry import AUTOENCODERS

if TYPE_CHECKING:
    import onnx

__all__ = ["register_converters", "to_onnx"]

#: method -> (module entry point, input name, output name)
METHODS = {
    "transform": ("encode", "X", "Z"),
    "inverse_transform": ("decode", "Z", "X_reconstructed"),
}

#: Name of the dynamic batch dimension of every input and output.
BATCH_DIM = "N"


class _Entry(nn.Module):
    """Exposes one entry point of an autoencoder module as ``forward``, which
    is what the exporter traces."""

    def __init__(self, module, entry_point):
        super().__init__()
        self.module = module
        self.entry_point = entry_point

    def forward(self, x):
        return getattr(self.module, self.entry_point)(x)


def _check_estimator(estimator, method):
    if not isinstance(estimator, AUTOENCODERS):
        names = ", ".join(cls.__name__ for cls in AUTOENCODERS)
        name = type(estimator).__name__
        if name in ("AutoencoderOutlierDetector", "AutoencoderImputer"):
            advice = (
                "The detector's network is its estimator_ (to_onnx(detector.estimator_)), "
                "without the detector's score; the imputer is not exported."
            )
        else:
            advice = (
                "For scikit-learn estimators and Pipelines use skl2onnx.to_onnx, after "
                "skae.onnx.register_converters() if they hold skae steps."
            )
        raise TypeError(f"to_onnx exports skae's autoencoders ({names}); got {name}. {advice}")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(
            f"method must be one of {sorted(METHODS)}; got {method!r}. "
            "'transform' exports the encoder, 'inverse_transform' the decoder."
        )
    check_is_fitted(estimator)
    module = estimator.module_
    if not all(callable(getattr(module, entry, None)) for entry in ("encode", "decode")):
        raise TypeError(
            f"to_onnx exports the network skae built, but {type(estimator).__name__}.module_ "
            f"is a {type(module).__module__}.{type(module).__qualname__}, which has no "
            "encode and decode methods. Refit the estimator instead of replacing module_."
        )


def _require(caller_name, *packages):
    """Raise an ImportError naming the ``onnx`` extra when a package is missing."""
    for package in packages:
        try:
            __import__(package)
        except ImportError as exc:
            raise ImportError(
                f"{caller_name} requires {package}, an optional dependency of skae. Install "
                'the ONNX packages with `pip install "skae[onnx]"`.'
            ) from exc


def _code_width(estimator):
    """The width of the codes the fitted module produces, read off the module
    itself: ``n_components`` may have been changed by ``set_params`` since."""
    module = estimator.module_
    reference = next(module.parameters())
    x = torch.zeros(1, estimator.n_features_in_, dtype=reference.dtype, device=reference.device)
    with torch.inference_mode():
        return int(module.encode(x).shape[1])


class _DropNotice(logging.Filter):
    """Drops the exporter's notices that an optional package (torchvision) is
    absent: they concern operators these networks never use."""

    def filter(self, record):
        return "is not installed" not in record.getMessage()


@contextmanager
def _quiet_exporter():
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    notice = _DropNotice()
    logger.addFilter(notice)
    # the opset conversion's notices and traceback: to_onnx checks the opset
    # produced and says what to do in its own error
    converters = [logging.getLogger(name) for name in _CONVERTER_LOGGERS]
    for converter in converters:
        converter.addFilter(_drop_all)
    try:
        with warnings.catch_warnings():
            # deprecations inside torch's own export machinery, nothing the
            # caller can act on
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.removeFilter(notice)
        for converter in converters:
            converter.removeFilter(_drop_all)


#: loggers of torch's and onnxscript's opset conversion
_CONVERTER_LOGGERS = ("torch.onnx._internal.exporter._compat", "onnxscript.version_converter")


def _drop_all(record):
    return False


def to_onnx(
    estimator: Any, *, method: str = "transform", opset: int | None = None
) -> onnx.ModelProto:
    """Export a fitted skae estimator's ``transform`` or ``inverse_transform``
    as an ONNX model, traced from a CPU float32 copy of its ``module_``.

    Parameters
    ----------
    estimator : fitted skae estimator
        Any of skae's autoencoders (or a subclass); it is left untouched.
    method : {"transform", "inverse_transform"}, default="transform"
        ``"transform"`` maps ``"X"`` (float32, ``[N, n_features_in_]``, ``N``
        dynamic) to the codes ``"Z"`` (``[N, K]``; the VAE's posterior mean),
        ``"inverse_transform"`` maps ``"Z"`` to ``"X_reconstructed"``.
    opset : int, default=None
        Opset of the default ONNX domain; None takes the exporter's default.

    Returns
    -------
    model : onnx.ModelProto
        The model, with the estimator's class and the method in its metadata.

    Raises
    ------
    TypeError
        If ``estimator`` is not a skae estimator or ``opset`` is not an int.
    ValueError
        If ``method`` is not one of the two above, or the exporter cannot
        produce the requested ``opset``.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    register_converters : Convert Pipelines with skae steps through skl2onnx.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> from sklearn.datasets import load_digits
    >>> from skae import Autoencoder
    >>> from skae.onnx import to_onnx
    >>> X = (load_digits().data / 16).astype(np.float32)
    >>> ae = Autoencoder(n_components=8, hidden_layer_sizes=(32,), max_iter=5,
    ...                  random_state=0, device="cpu").fit(X)
    >>> session = ort.InferenceSession(to_onnx(ae).SerializeToString(),
    ...                                providers=["CPUExecutionProvider"])
    >>> codes = session.run(None, {"X": X[:5]})[0]
    >>> bool(np.allclose(codes, ae.transform(X[:5]), atol=1e-5))
    True
    """
    _check_estimator(estimator, method)
    opset = _checked_opset(opset)
    _require("to_onnx", "onnx", "onnxscript")
    model = _export(estimator, method, opset)
    _check_opset(model, opset, estimator)
    _set_metadata(model, {"skae.estimator": type(estimator).__name__, "skae.method": method})
    return model


def _check_opset(model, opset, estimator):
    """Raise if the exporter's version converter stopped short of ``opset``."""
    produced = {entry.domain: entry.version for entry in model.opset_import}.get("")
    if opset is not None and produced != opset:
        raise ValueError(
            f"torch's ONNX exporter could not produce opset {opset} for this "
            f"{type(estimator).__name__} (its version converter gave opset {produced}); "
            "ask for another opset, or opset=None for the exporter's own."
        )


def _checked_opset(opset):
    """``opset`` as a Python int (numpy's ints too), or None."""
    if opset is not None and (isinstance(opset, bool) or not isinstance(opset, Integral)):
        raise TypeError(f"opset must be an int or None; got {opset!r}.")
    return None if opset is None else int(opset)


def _export(estimator, method, opset):
    """The exporter's model of ``method`` for a CPU float32 copy of the
    estimator's module, with a dynamic batch dimension."""
    entry_point, input_name, output_name = METHODS[method]
    module = copy.deepcopy(estimator.module_).to(device="cpu", dtype=torch.float32)
    width = estimator.n_features_in_ if method == "transform" else _code_width(estimator)
    # two example rows: the exporter treats a batch of one as a constant
    example = torch.zeros(2, width, dtype=torch.float32)
    with _quiet_exporter():
        program = torch.onnx.export(
            _Entry(module, entry_point).eval(),
            (example,),
            dynamo=True,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},),
            opset_version=opset,
            verbose=False,
        )
    return program.model_proto


def _set_metadata(model, props):
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


# ------------------------------------------------------------- skl2onnx


def register_converters() -> None:
    """Register skl2onnx converters for the six skae estimators and every
    subclass of them defined by the time of the call.

    Afterwards ``skl2onnx.to_onnx(model, X_sample)`` converts Pipelines,
    ColumnTransformers and FeatureUnions that hold skae steps (their
    ``transform``). Each skae step becomes the graph :func:`to_onnx` exports
    for it, inlined into the pipeline's graph at the pipeline's target opset.
    Calling it again is harmless, and registers the subclasses defined since
    (skl2onnx looks converters up by a model's exact type).

    skl2onnx types its input from ``X_sample``: float32 data gives a float32
    graph (recommended; it is skl2onnx's usual type). With float64 (or int64)
    input the skae step casts its input to float32, computes in float32 and
    casts its output back to float64, since onnxruntime's CPU kernels for
    convolutions and most activations exist in float32 only. Its output then
    agrees with skae's float64 ``transform`` to float32 precision (about 1e-6
    of the codes' scale on centred data, more as the mean outgrows the spread).

    See Also
    --------
    to_onnx : Export one estimator's ``transform`` or ``inverse_transform``.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime as ort
    >>> import skl2onnx
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skae import Autoencoder
    >>> from skae.onnx import register_converters
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype(np.float32)
    >>> pipe = make_pipeline(
    ...     Autoencoder(n_components=8, hidden_layer_sizes=(32,), max_iter=5,
    ...                 random_state=0, device="cpu"),
    ...     LogisticRegression(max_iter=500),
    ... ).fit(X, y)
    >>> register_converters()
    >>> model = skl2onnx.to_onnx(pipe, X[:1],
    ...                          options={LogisticRegression: {"zipmap": False}})
    >>> session = ort.InferenceSession(model.SerializeToString(),
    ...                                providers=["CPUExecutionProvider"])
    >>> labels, probabilities = session.run(None, {"X": X})
    >>> bool((labels == pipe.predict(X)).all())
    True
    """
    _require("register_converters", "onnx", "skl2onnx")
    from skl2onnx import update_registered_converter

    # each class under its own alias: skl2onnx looks converters up by exact
    # type, not subclass
    for cls in _with_subclasses(AUTOENCODERS):
        update_registered_converter(
            cls, _alias(cls), _calculate_output_shape, _convert, overwrite=True
        )


def _with_subclasses(classes):
    """``classes`` and every subclass of them defined by now, each once."""
    found, stack = {}, list(classes)
    while stack:
        cls = stack.pop(0)
        if cls not in found:
            found[cls] = None
            stack.extend(cls.__subclasses__())
    return list(found)


def _alias(cls):
    """skl2onnx's name of ``cls``'s operator: ``Skae`` and the class's name
    for skae's own, its module and qualified name for another's subclass."""
    if cls.__module__.startswith("skae."):
        return f"Skae{cls.__name__}"
    return "Skae_" + re.sub(r"\W", "_", f"{cls.__module__}.{cls.__qualname__}")


def _calculate_output_shape(operator):
    """skl2onnx shape calculator: [N, F] -> [N, K], float32 for float32
    input and float64 otherwise (as skae's ``transform`` returns)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType
    from skl2onnx.common.utils import (
        check_input_and_output_numbers,
        check_input_and_output_types,
    )

    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    check_input_and_output_types(
        operator, good_input_types=[FloatTensorType, DoubleTensorType, Int64TensorType]
    )
    estimator = operator.raw_operator
    input_type = operator.inputs[0].type
    if len(input_type.shape) != 2:
        raise RuntimeError(
            f"{type(estimator).__name__} takes a 2-D input; skl2onnx gave it shape "
            f"{input_type.shape}."
        )
    output_type = FloatTensorType if isinstance(input_type, FloatTensorType) else DoubleTensorType
    n_rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = output_type([n_rows, _code_width(estimator)])


def _convert(scope, operator, container):
    """skl2onnx converter: the graph of :func:`to_onnx`, its names made
    unique in the pipeline's scope, between float32 casts when the pipeline
    runs in another type."""
    from onnx import TensorProto, inliner

    estimator = operator.raw_operator
    model = to_onnx(estimator, opset=container.target_opset)
    if model.functions:
        model = inliner.inline_local_functions(model)
    prefix = f"skae_{type(estimator).__name__}"
    source = _cast(scope, container, operator.inputs[0], prefix, TensorProto.FLOAT)
    target = operator.outputs[0].full_name
    cast_back = _elem_type(operator.outputs[0]) != TensorProto.FLOAT
    result = scope.get_unique_variable_name(f"{prefix}_float32_output") if cast_back else target
    graph = model.graph
    names = {"": "", graph.input[0].name: source, graph.output[0].name: result}

    def rename(name):
        if name not in names:
            names[name] = scope.get_unique_variable_name(f"{prefix}_{name}")
        return names[name]

    _add_initializers(container, graph, rename)
    opsets = {entry.domain: entry.version for entry in model.opset_import}
    _add_nodes(scope, container, graph, opsets, rename, type(estimator).__name__)
    if cast_back:
        container.add_node(
            "Cast",
            result,
            target,
            to=TensorProto.DOUBLE,
            name=scope.get_unique_operator_name("Cast"),
        )


def _elem_type(variable):
    """The ONNX element type of a skl2onnx variable."""
    return variable.type.to_onnx_type().tensor_type.elem_type


def _cast(scope, container, variable, prefix, to):
    """The name of ``variable`` cast to the type ``to``: its own name when it
    already has that type, else that of a new Cast node's output."""
    if _elem_type(variable) == to:
        return variable.full_name
    cast = scope.get_unique_variable_name(f"{prefix}_float32_input")
    container.add_node(
        "Cast",
        variable.full_name,
        cast,
        to=to,
        name=scope.get_unique_operator_name("Cast"),
    )
    return cast


def _add_initializers(container, graph, rename):
    """Copy the graph's weights into the pipeline's container, renamed."""
    from onnx import numpy_helper

    for tensor in graph.initializer:
        value = numpy_helper.to_array(tensor)
        container.add_initializer(
            rename(tensor.name),
            tensor.data_type,
            list(tensor.dims),
            numpy_helper.from_array(value),
        )


def _add_nodes(scope, container, graph, opsets, rename, estimator_name):
    """Copy the graph's nodes into the pipeline's container, renamed; a node
    with a subgraph (If, Loop) cannot be inlined this way."""
    from onnx import AttributeProto, helper

    prefix = f"skae_{estimator_name}"
    for node in graph.node:
        attributes = {}
        for attribute in node.attribute:
            if attribute.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
                raise NotImplementedError(
                    f"{prefix[len('skae_') :]}'s exported graph has a {node.op_type} node "
                    "with a subgraph, which the skl2onnx converter cannot inline."
                )
            attributes[attribute.name] = helper.get_attribute_value(attribute)
        container.add_node(
            node.op_type,
            [rename(name) for name in node.input],
            [rename(name) for name in node.output],
            op_domain=node.domain,
            op_version=opsets.get(node.domain),
            name=scope.get_unique_operator_name(f"{prefix}_{node.op_type}"),
            **attributes,
        )
