import os

# scikit-learn runs its array API check only when SciPy's array API support is
# switched on, which must happen before SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402  (after the environment variable, before any SciPy import)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks run fastest on one thread; the previous setting comes back
    after the module that asks for it."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
