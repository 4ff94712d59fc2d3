import os

# scikit-learn runs its array API check only when SciPy's array API support is
# switched on, which must happen before SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
