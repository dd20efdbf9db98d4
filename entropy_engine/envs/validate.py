"""Checks at the edge where user actions enter the engine."""
from __future__ import annotations

import numpy as np


def check_actions(actions, shapes: tuple[tuple[int, ...], ...], out: np.ndarray,
                  low: np.ndarray | float = -1.0, high: np.ndarray | float = 1.0,
                  tokens: tuple[int, int] | None = None) -> np.ndarray:
    """Validate ``actions``, clip them to [low, high] and write them into ``out``; returns ``out``.

    ``shapes`` lists the accepted shapes (the first is named in errors), e.g. ``[E*N, A]`` and
    ``[E, N, A]``; ``low``/``high`` are the action space's bounds, broadcastable to ``out``. Raises
    ValueError for a wrong shape, a non-numeric dtype, or NaN/inf values, and with ``tokens`` =
    (first column, vocabulary) for message tokens that are not whole numbers in 0 .. vocabulary-1;
    nothing is written to ``out`` then, so the simulation state is untouched.
    """
    arr = np.asarray(actions)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"actions must be a float array of shape {shapes[0]}, got dtype {arr.dtype}")
    if arr.shape not in shapes:
        raise ValueError(f"actions must have shape {shapes[0]} (one row of {shapes[0][-1]} action values per "
                         f"agent), got {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"actions contain NaN or inf (first at index {tuple(int(b) for b in bad)}); "
                         "actions must be finite numbers within the action space")
    if tokens is not None:
        check_tokens(arr, *tokens)
    np.clip(arr.reshape(out.shape), low, high, out=out)
    return out


def action_bounds(space, shape: tuple[int, ...]) -> tuple[np.ndarray | float, np.ndarray | float]:
    """The clipping bounds of a Box action space for actions of ``shape``: plain floats when every
    component shares them (the common case, and the fastest clip), else float32 arrays of ``shape``."""
    low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
    if (low == low.flat[0]).all() and (high == high.flat[0]).all():
        return float(low.flat[0]), float(high.flat[0])
    return (np.ascontiguousarray(np.broadcast_to(low, shape)), np.ascontiguousarray(np.broadcast_to(high, shape)))


def check_tokens(actions: np.ndarray, start: int, vocab: int) -> None:
    """Raise ValueError unless the columns ``start ..`` of ``actions`` [..., A] (already finite)
    are whole numbers in 0 .. vocab-1: the tokens of discrete messages."""
    tok = actions[..., start:]
    bad = (tok != np.floor(tok)) | (tok < 0) | (tok > vocab - 1)
    if bad.any():
        at = tuple(int(b) for b in np.argwhere(bad)[0])
        at = at[:-1] + (at[-1] + start,)
        raise ValueError(f"message tokens (action columns {start}..{actions.shape[-1] - 1}) must be whole numbers "
                         f"in [0, {vocab - 1}] (comm_vocab={vocab}), got {float(actions[at])!r} at index {at}")
