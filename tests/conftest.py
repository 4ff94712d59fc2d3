import os

# scikit-learn runs its array API check only when SciPy's array API support is
# switched on, which must happen before SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402  (after the environment variable, before any SciPy import)
from hypothesis import settings  # noqa: E402

# The property tests draw the same examples on every run and machine (a suite
# that passes here passes at a user's); HYPOTHESIS_PROFILE=explore draws new
# ones, to look for failures.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread_per_process():
    """The tests' networks are tiny: they run fastest on one torch thread, and
    pytest-xdist's workers (one per core) then do not compete for the cores.
    The tests about threads set the count they need themselves."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the module that asks for it (every test module has
    it now, see above); the previous setting comes back after the module."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
