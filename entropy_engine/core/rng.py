"""Counter-based per-world random numbers for numba kernels (no global RNG).

Each world owns one ``uint64`` state (SplitMix64). A kernel that works on world ``w`` draws only
from ``state[w]``, so results do not depend on how worlds are spread over threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def next_u64(state, w):
    """Advance world ``w``'s SplitMix64 state and return 64 random bits."""
    s = state[w] + _GOLDEN
    state[w] = s
    z = (s ^ (s >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def uniform(state, w):
    """A float64 uniform in [0, 1) from world ``w``'s stream."""
    return np.float64(next_u64(state, w) >> _S11) * _INV53


@njit(cache=True, inline="always")
def randint(state, w, n):
    """An integer uniform in [0, n) (n > 0)."""
    return np.int64(uniform(state, w) * n)


def check_seed(seed) -> int | None:
    """``seed`` as a Python ``int`` (or None = fresh entropy): the one seed check of every env.

    Anything else (a float such as 1.5, a string such as "7", a bool, a negative number) is
    refused with a ValueError, before any state is touched."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


@njit(cache=True)
def shuffled_range(state, w, order, m):
    """order[w, :m] = a uniform random permutation of 0 .. m-1 from world ``w``'s stream (Fisher-Yates)."""
    for t in range(m):
        order[w, t] = t
    for t in range(m):
        s = t + randint(state, w, m - t)
        tmp = order[w, t]
        order[w, t] = order[w, s]
        order[w, s] = tmp


def seed_states(seed: int | None, num_worlds: int) -> np.ndarray:
    """Independent per-world states derived from one seed with numpy's SeedSequence (``check_seed``)."""
    ss = np.random.SeedSequence(check_seed(seed))
    return ss.generate_state(num_worlds, dtype=np.uint64).astype(np.uint64)


def world_generator(state: np.ndarray, w: int) -> np.random.Generator:
    """A numpy ``Generator`` drawn from world ``w``'s stream, which it advances: for scenario code
    written with numpy. Each world still has its own stream, so results do not depend on how
    worlds are split over threads or processes."""
    g = np.random.default_rng(int(state[w]))
    state[w] = g.integers(0, 2 ** 63, dtype=np.uint64)
    return g
