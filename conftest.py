"""The doctests of modules that show an optional extra skip cleanly without it.

``pytest`` runs the doctests of ``skae/`` (``--doctest-modules`` in
pyproject.toml); those of ``skae.onnx`` and ``skae.plotting`` import the
packages of the ``onnx`` and ``plot`` extras, which a plain install lacks.
"""

import importlib.util

import pytest

#: a path in the repository -> (the extra, the modules its doctests import)
NEEDS_EXTRA = {
    "skae/onnx.py": ("onnx", ("onnx", "onnxscript", "onnxruntime", "skl2onnx")),
    "skae/plotting": ("plot", ("matplotlib",)),
}


def _missing(modules):
    return [name for name in modules if importlib.util.find_spec(name) is None]


def _needs(path):
    """(extra, modules) for a test file, or None."""
    for prefix, needs in NEEDS_EXTRA.items():
        if path == prefix or path.startswith(prefix + "/"):
            return needs
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            path = item.path.relative_to(config.rootpath).as_posix()
        except ValueError:  # a test outside the repository
            continue
        needs = _needs(path)
        missing = needs and _missing(needs[1])
        if missing:
            reason = f"needs the '{needs[0]}' extra ({', '.join(missing)} not installed)"
            item.add_marker(pytest.mark.skip(reason=reason))
