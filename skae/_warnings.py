"""Where skae's warnings point: at the user's line.

A fixed ``stacklevel`` names the caller of ``fit`` only when ``fit`` is called
directly; through ``fit_transform``, a Pipeline or GridSearchCV it names a
line of scikit-learn's. :func:`user_stacklevel` walks out of the libraries
instead, as pandas' ``find_stack_level`` does.
"""

import os
import sys

import joblib
import sklearn
import torch

#: Frames in these folders are the libraries', not the user's.
LIBRARY_FOLDERS = tuple(
    os.path.dirname(path) + os.sep
    for path in (__file__, sklearn.__file__, torch.__file__, joblib.__file__)
)


def user_stacklevel():
    """The ``stacklevel`` that makes a :func:`warnings.warn` called where this
    is called name the innermost frame outside skae, scikit-learn, torch and
    joblib (the outermost frame if there is none)."""
    frame, level = sys._getframe(1), 1  # the caller of warnings.warn: level 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(LIBRARY_FOLDERS):
        frame, level = frame.f_back, level + 1
    return level
