"""Checks at the edge where user actions enter the engine."""
from __future__ import annotations

import numpy as np


def check_actions(actions, shapes: tuple[tuple[int, ...], ...], out: np.ndarray) -> np.ndarray:
    """Validate ``actions``, clip them to [-1, 1] and write them into ``out``; returns ``out``.

    ``shapes`` lists the accepted shapes (the first is named in errors), e.g. ``[E*N, 2]`` and
    ``[E, N, 2]``. Raises ValueError for a wrong shape, a non-numeric dtype, or NaN/inf values;
    nothing is written to ``out`` then, so the simulation state is untouched.
    """
    arr = np.asarray(actions)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"actions must be a float array of shape {shapes[0]}, got dtype {arr.dtype}")
    if arr.shape not in shapes:
        raise ValueError(f"actions must have shape {shapes[0]} (left, right wheel power per agent), "
                         f"got {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"actions contain NaN or inf (first at index {tuple(int(b) for b in bad)}); "
                         "wheel powers must be finite numbers in [-1, 1]")
    np.clip(arr.reshape(out.shape), -1.0, 1.0, out=out)
    return out
