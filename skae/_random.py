"""Random generators: every random draw of skae starts from a private numpy
Generator made from ``random_state``, never from the global one. numpy only
(no scikit-learn)."""

import hashlib

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


def row_keyed_normal(X, random_state):
    """Standard normal draws of ``X``'s shape (2-D, float, NaN where
    missing), each row's from a generator keyed by one number drawn from
    ``random_state``, the row's values and how many equal rows come before it
    in X. With an int seed a row gets the same draws at every call, whichever
    rows share the call (a row alone gets what it gets in a batch), while
    different rows, and the copies of a row in one call, get independent
    draws (one matrix of draws by position repeated them across calls)."""
    base = int(seed_source(random_state).integers(2**63))
    rows = np.asarray(X, dtype=np.float64) + 0.0  # one copy, -0.0 in it as 0.0
    rows[np.isnan(rows)] = np.nan  # and every NaN alike
    out = np.empty(rows.shape)
    seen = {}
    for i, row in enumerate(rows):
        key = int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
        seen[key] = count = seen.get(key, -1) + 1
        out[i] = np.random.default_rng([base, key, count]).standard_normal(rows.shape[1])
    return out
