"""Type hints of the public API: complete, resolvable at run time, consistent
with the parameter constraints, and shipped with the PEP 561 marker."""

import collections.abc
import importlib.resources
import inspect
import subprocess
import sys
import types
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import StrOptions

import skae
import skae.plotting
from skae._base import BaseAutoencoder
from skae._registry import AUTOENCODERS, estimator_classes

ESTIMATORS = list(AUTOENCODERS)
#: The estimators whose hints are checked: the autoencoders and the imputer
#: (a BaseAutoencoder with parameters of its own).
TYPED_ESTIMATORS = [*ESTIMATORS, skae.AutoencoderImputer]
DISPLAYS = [getattr(skae.plotting, name) for name in skae.plotting.__all__]

#: The methods every estimator has from BaseAutoencoder; more are found below.
ESTIMATOR_METHODS = {
    "__init__",
    "fit",
    "partial_fit",
    "transform",
    "inverse_transform",
    "score_samples",
    "score",
}


def _skae_methods(cls):
    """(name, function) of the public methods of ``cls`` written in skae (not
    those inherited from scikit-learn), plus ``__init__``; classmethods as
    their function."""
    found = {}
    for name in dir(cls):
        if name.startswith("_") and name != "__init__":
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, (classmethod, staticmethod)):
            attr = attr.__func__
        if not inspect.isfunction(attr):
            continue
        if inspect.unwrap(attr).__module__.split(".")[0] != "skae":
            continue
        found[name] = attr
    return found


def _public_callables():
    params = []
    for name in sorted(skae.__all__):
        obj = getattr(skae, name)
        if inspect.isfunction(obj):
            params.append(pytest.param(obj, id=name))
    for cls in TYPED_ESTIMATORS + DISPLAYS:
        for name, func in sorted(_skae_methods(cls).items()):
            params.append(pytest.param(func, id=f"{cls.__name__}.{name}"))
    return params


PUBLIC_CALLABLES = _public_callables()


def test_the_api_is_all_there():
    """The discovery above finds what the API promises (guards the other tests
    against passing on an empty list)."""
    functions = {"__version__", "load", "save", "show_versions"}
    assert set(skae.__all__) == set(estimator_classes()) | functions
    for cls in ESTIMATORS:
        assert ESTIMATOR_METHODS <= set(_skae_methods(cls)), cls.__name__
    assert "sample" in _skae_methods(skae.VariationalAutoencoder)
    assert {d.__name__ for d in DISPLAYS} == {
        "ComparisonDisplay",
        "LatentSpaceDisplay",
        "LossCurveDisplay",
        "ReconstructionDisplay",
    }
    for display in DISPLAYS:
        methods = set(_skae_methods(display))
        assert {"__init__", "plot"} <= methods, display.__name__
        assert methods & {"from_estimator", "from_estimators"}, display.__name__


@pytest.mark.parametrize("func", PUBLIC_CALLABLES)
def test_every_parameter_and_return_is_annotated(func):
    # resolving the hints fails on a name the module does not define at run time
    hints = typing.get_type_hints(func)
    parameters = list(inspect.signature(func).parameters.values())
    if parameters and parameters[0].name in ("self", "cls"):
        parameters = parameters[1:]
    missing = [p.name for p in parameters if p.name not in hints]
    assert not missing, f"{func.__qualname__}: parameters without a type hint: {missing}"
    assert "return" in hints, f"{func.__qualname__} has no return annotation"


def _matches(value, hint):
    """Whether ``value`` fits ``hint``, for the kinds of hint the API uses on
    its default values (no deep checks of protocols)."""
    if hint is typing.Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(map(_matches, value, args))
    if origin in (collections.abc.Sequence, list):
        return isinstance(value, origin) and all(_matches(v, args[0]) for v in value)
    if origin is not None:
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    try:
        return isinstance(value, hint)
    except TypeError:  # a protocol that is not runtime-checkable
        return False


@pytest.mark.parametrize("func", PUBLIC_CALLABLES)
def test_defaults_fit_their_type_hints(func):
    hints = typing.get_type_hints(func)
    for parameter in inspect.signature(func).parameters.values():
        if parameter.default is inspect.Parameter.empty or parameter.name not in hints:
            continue
        assert _matches(parameter.default, hints[parameter.name]), (
            f"{func.__qualname__}: the default {parameter.name}={parameter.default!r} "
            f"does not fit its hint {hints[parameter.name]}"
        )


def _literal_strings(hint):
    """The strings of the Literal members of ``hint``."""
    if typing.get_origin(hint) is typing.Literal:
        return {a for a in typing.get_args(hint) if isinstance(a, str)}
    return set().union(*(_literal_strings(a) for a in typing.get_args(hint)))


@pytest.mark.parametrize("cls", TYPED_ESTIMATORS, ids=lambda c: c.__name__)
def test_literal_hints_match_the_parameter_constraints(cls):
    """A Literal of option names lists exactly the options the estimator
    accepts: adding one to _parameter_constraints must update the hint."""
    hints = typing.get_type_hints(cls.__init__)
    assert set(cls._get_param_names()) == set(hints) - {"return"}
    for name, hint in hints.items():
        literal = _literal_strings(hint)
        if not literal:
            continue
        options = set().union(
            *(c.options for c in cls._parameter_constraints[name] if isinstance(c, StrOptions))
        )
        assert literal == options, f"{cls.__name__}({name}=...): hint {hint}, accepts {options}"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_shared_parameters_have_the_base_class_hints(cls):
    base = typing.get_type_hints(BaseAutoencoder.__init__)
    hints = typing.get_type_hints(cls.__init__)
    for name, hint in base.items():
        if name == "loss":
            # each class names its own losses
            assert hint is str
            options = cls._parameter_constraints["loss"][0].options
            assert _literal_strings(hints[name]) == options, cls.__name__
            continue
        assert hints[name] == hint, f"{cls.__name__}({name}=...): {hints[name]} != {hint}"
    assert _literal_strings(hints["activation"]) == set(skae.nn.ACTIVATIONS)


def test_hints_accept_what_the_docstrings_allow():
    """Spot checks of the hints against values the documentation allows."""
    hints = typing.get_type_hints(skae.ConvolutionalAutoencoder.__init__)
    assert _matches(8, hints["hidden_layer_sizes"])
    assert _matches((16, 32), hints["hidden_layer_sizes"])
    assert _matches([16, 32], hints["hidden_layer_sizes"])
    assert _matches((16, 32), hints["channels"])
    assert not _matches("mae", hints["loss"])
    assert _matches(32, hints["batch_size"])
    assert _matches("auto", hints["batch_size"])
    assert not _matches("all", hints["batch_size"])
    assert _matches(np.random.RandomState(0), hints["random_state"])
    assert _matches(torch.device("cpu"), hints["device"])
    assert _matches("cuda:1", hints["device"])
    assert _matches((3, 8, 8), hints["image_shape"])
    assert not _matches((3.0, 8), hints["image_shape"])

    fit = typing.get_type_hints(skae.Autoencoder.fit)
    assert repr(fit["return"]).endswith("Self")  # typing.Self


def test_py_typed_marker_is_installed():
    assert importlib.resources.files("skae").joinpath("py.typed").is_file()


def test_py_typed_marker_is_package_data():
    """The marker is named as package data, so that wheels carry it (the
    editable install above reads it from the source tree either way)."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not run from a source checkout")
    config = tomllib.loads(pyproject.read_text())
    package_data = config["tool"]["setuptools"].get("package-data", {})
    assert "py.typed" in package_data.get("skae", [])


@pytest.mark.slow  # a fresh Python process, importing torch and skae
def test_plotting_hints_resolve_without_importing_matplotlib():
    """matplotlib is optional and imported only to draw: the plotting module's
    hints resolve at run time without it."""
    code = (
        "import sys, typing\n"
        "import skae.plotting as p\n"
        "for name in p.__all__:\n"
        "    cls = getattr(p, name)\n"
        "    for attr in ('__init__', 'plot', 'from_estimator', 'from_estimators'):\n"
        "        if hasattr(cls, attr):\n"
        "            typing.get_type_hints(getattr(cls, attr))\n"
        "assert 'matplotlib' not in sys.modules, 'skae.plotting imported matplotlib'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
