"""skae.show_versions prints what a bug report needs."""

import importlib.metadata
import platform

import skae


def test_show_versions_names_every_dependency(capsys):
    skae.show_versions()
    out = capsys.readouterr().out
    for section in ("System:", "Torch:", "Python dependencies:", "Optional extras:"):
        assert section in out
    assert f"skae: {skae.__version__}" in out
    assert f"numpy: {importlib.metadata.version('numpy')}" in out
    assert f"scikit-learn: {importlib.metadata.version('scikit-learn')}" in out
    assert f"torch: {importlib.metadata.version('torch')}" in out
    assert "cuda available: " in out
    assert "mps available: " in out
    assert platform.platform() in out


def test_a_missing_distribution_reads_none():
    # an extra that is not installed prints None rather than raising
    from skae._show_versions import _version

    assert _version("no-such-distribution-skae") is None
    assert _version("numpy") == importlib.metadata.version("numpy")


def test_show_versions_is_public():
    assert "show_versions" in skae.__all__
