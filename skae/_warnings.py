"""Where skae's warnings point: at the user's line.

A fixed ``stacklevel`` names the caller of ``fit`` only when ``fit`` is called
directly; through ``fit_transform``, a Pipeline or GridSearchCV it names a
line of scikit-learn's. :func:`user_stacklevel` walks out of the libraries
instead, as pandas' ``find_stack_level`` does.
"""

import importlib.util
import os
import sys
import sysconfig


def _folder(package):
    """The folder of an installed ``package``, found without importing it
    (the torch-only modules that warn must not import scikit-learn)."""
    spec = importlib.util.find_spec(package)
    return os.path.dirname(spec.origin) + os.sep if spec and spec.origin else None


#: Frames in these folders are the libraries', not the user's...
_FOUND = (os.path.dirname(__file__) + os.sep, *map(_folder, ("sklearn", "torch", "joblib")))
LIBRARY_FOLDERS = tuple(folder for folder in _FOUND if folder)
#: ...and so are Python's own (pickle, threading, multiprocessing), but
#: for the packages installed among them.
STANDARD_LIBRARY = sysconfig.get_paths()["stdlib"] + os.sep
INSTALLED = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")


def _is_library(filename):
    if filename.startswith(LIBRARY_FOLDERS) or filename.startswith("<frozen "):
        return True
    installed = any(folder in filename for folder in INSTALLED)
    return filename.startswith(STANDARD_LIBRARY) and not installed


def user_stacklevel():
    """The ``stacklevel`` that makes a :func:`warnings.warn` called where this
    is called name the innermost frame outside skae, scikit-learn, torch,
    joblib and Python's standard library (the outermost frame, as a worker
    thread's, if there is none)."""
    frame, level = sys._getframe(1), 1  # the caller of warnings.warn: level 1
    while frame.f_back is not None and _is_library(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    return level
