"""Random generators: every random draw of skae starts from a private numpy
Generator made from ``random_state``, never from the global one. numpy only
(no scikit-learn)."""

import numpy as np

#: numpy bit generators a saved random state may name; never looked up by getattr.
BIT_GENERATORS = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}


def rng_from_state(state):
    """A numpy Generator restored from ``bit_generator.state`` data."""
    try:
        bit_generator = BIT_GENERATORS[state["bit_generator"]]()
        bit_generator.state = state
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"The saved random generator state is not usable: {exc}") from exc
    return np.random.Generator(bit_generator)


def seed_source(random_state):
    """A private numpy Generator from ``random_state``; never the global one."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


def draw_seed(rng):
    """A seed for a torch.Generator (or a new numpy one), drawn from ``rng``."""
    return int(rng.integers(2**62))
