"""The layout rules of skae/ (issue 25), checked from the source: every
module at most 600 lines (the estimator base, ``_base.py``, at most 900) and
every function or method at most 60 lines, docstring included."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "skae"
MODULE_LINES = 600
BASE_LINES = 900
FUNCTION_LINES = 60

#: Known exceptions, "module:function" -> its length when listed (none now:
#: an entry comes off as soon as its function is within the limit).
KNOWN_LONG_FUNCTIONS: dict[str, int] = {}


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def function_lengths(path, root=PACKAGE):
    """``{"module:qualified name": lines}`` of every function in ``path``
    (the module named relative to ``root``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lengths = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}."
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                key = f"{path.relative_to(root).as_posix()}:{name[:-1]}"
                lengths[key] = child.end_lineno - child.lineno + 1
            visit(child, name)

    visit(tree, "")
    return lengths


def test_the_package_is_found():
    assert (PACKAGE / "_base.py").is_file()
    assert len(modules()) > 20


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_module_length(path):
    limit = BASE_LINES if path.name == "_base.py" and path.parent == PACKAGE else MODULE_LINES
    n_lines = len(path.read_text(encoding="utf-8").splitlines())
    assert n_lines <= limit, f"{path.name} has {n_lines} lines; at most {limit}"


def test_function_lengths():
    lengths = {k: v for path in modules() for k, v in function_lengths(path).items()}
    too_long = {
        name: n
        for name, n in lengths.items()
        if n > FUNCTION_LINES and name not in KNOWN_LONG_FUNCTIONS
    }
    assert not too_long, f"functions over {FUNCTION_LINES} lines: {too_long}"
    # an exception that no longer holds comes off the list
    fixed = [name for name in KNOWN_LONG_FUNCTIONS if lengths.get(name, 0) <= FUNCTION_LINES]
    assert not fixed, f"within {FUNCTION_LINES} lines now, remove from the exceptions: {fixed}"


def test_function_lengths_counts_nested_and_methods(tmp_path):
    source = tmp_path / "example.py"
    source.write_text(
        "def outer():\n    def inner():\n        return 1\n    return inner\n\n\n"
        "class A:\n    def method(self):\n        '''Doc.'''\n        return 2\n"
    )
    assert function_lengths(source, root=tmp_path) == {
        "example.py:outer": 4,
        "example.py:outer.inner": 2,
        "example.py:A.method": 3,
    }
