"""``skae.show_versions()``: what a bug report needs, as scikit-learn's prints it."""

import importlib.metadata
import platform
import sys

#: Required dependencies, then the optional extras, by distribution name.
_DEPENDENCIES = ("torch", "numpy", "scipy", "scikit-learn", "safetensors", "tqdm")
_EXTRAS = (
    "pandas",
    "polars",
    "matplotlib",
    "skops",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "skl2onnx",
    "dask",
    "dask-ml",
)


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _system_info():
    from . import __version__

    return {
        "skae": __version__,
        "python": sys.version.replace("\n", " "),
        "executable": sys.executable,
        "machine": platform.platform(),
    }


def _torch_info():
    import torch

    mps = getattr(torch.backends, "mps", None)
    return {
        "cuda available": torch.cuda.is_available(),
        "cuda version": torch.version.cuda,
        "cuda devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "mps available": bool(mps is not None and mps.is_available()),
        "threads": torch.get_num_threads(),
    }


def _print_section(title, info):
    print(f"\n{title}:")
    for key, value in info.items():
        print(f"{key:>16}: {value}")


def show_versions() -> None:
    """Print skae, Python, platform, torch and dependency versions.

    Paste its output into a bug report. Importing nothing optional: an extra
    that is not installed prints ``None``. Checking CUDA availability does not
    initialise CUDA.

    See Also
    --------
    sklearn.show_versions : scikit-learn's equivalent.

    Examples
    --------
    >>> import skae
    >>> skae.show_versions()  # doctest: +ELLIPSIS
    <BLANKLINE>
    System:
                skae: ...
               torch: ...
    """
    _print_section("System", _system_info())
    _print_section("Torch", _torch_info())
    _print_section("Python dependencies", {name: _version(name) for name in _DEPENDENCIES})
    _print_section("Optional extras", {name: _version(name) for name in _EXTRAS})
