"""Where skae's warnings point: at the user's line.

A fixed ``stacklevel`` names the caller of ``fit`` only when ``fit`` is called
directly; through ``fit_transform``, a Pipeline or GridSearchCV it names a
line of scikit-learn's. :func:`user_stacklevel` walks out of the libraries
instead, as pandas' ``find_stack_level`` does.
"""

import os
import sys
import sysconfig

import joblib
import sklearn
import torch

#: Frames in these folders are the libraries', not the user's...
LIBRARY_FOLDERS = tuple(
    os.path.dirname(path) + os.sep
    for path in (__file__, sklearn.__file__, torch.__file__, joblib.__file__)
)
#: ...and so are Python's own (pickle, threading, multiprocessing), but
#: for the packages installed among them.
_PATHS = sysconfig.get_paths()
STANDARD_LIBRARY = _PATHS["stdlib"] + os.sep
SITE_PACKAGES = tuple({_PATHS["purelib"] + os.sep, _PATHS["platlib"] + os.sep})


def _is_library(filename):
    if filename.startswith(LIBRARY_FOLDERS) or filename.startswith("<frozen "):
        return True
    return filename.startswith(STANDARD_LIBRARY) and not filename.startswith(SITE_PACKAGES)


def user_stacklevel():
    """The ``stacklevel`` that makes a :func:`warnings.warn` called where this
    is called name the innermost frame outside skae, scikit-learn, torch,
    joblib and Python's standard library (the outermost frame, as a worker
    thread's, if there is none)."""
    frame, level = sys._getframe(1), 1  # the caller of warnings.warn: level 1
    while frame.f_back is not None and _is_library(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    return level
