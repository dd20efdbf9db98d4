"""Plain-numpy references of ``core.items``: one update's carry / deliver / pick-up rules, the item
sensor, and the "clear place" rule, written for clarity (brute force over every pair) for the tests."""
from __future__ import annotations

import numpy as np

from .items import ROBOT_GAP


def in_nest(xy, nest_pos, nest_radius, nest_active, extra: float = 0.0) -> bool:
    """Whether the point ``xy`` is within radius + extra of an active nest centre (one world's arrays)."""
    d = np.hypot(*(nest_pos.astype(np.float64) - np.asarray(xy, np.float64)).T)
    return bool((nest_active & (d <= nest_radius.astype(np.float64) + extra)).any())


def update_reference(item_pos, present, carrier, load, agent_pos, agent_active, nest_pos, nest_radius, nest_active,
                     agent_radius: float, item_radius: float, capacity: int) -> dict:
    """One world's update by the documented rules, except where re-placed items land.

    Returns ``carrier``, ``load``, ``delivered``, ``picked`` (copies), ``replaced`` [M] bool (items put
    at a new clear place: delivered, or their carrier left) and ``pos`` [M, 2], the expected centre
    of every item that was not re-placed."""
    carrier = carrier.copy()
    load = load.copy()
    pos = item_pos.astype(np.float64).copy()
    M, N = len(present), len(agent_active)
    delivered = np.zeros(N, np.int64)
    picked = np.zeros(N, np.int64)
    replaced = np.zeros(M, bool)
    for m in range(M):
        j = carrier[m]
        if not present[m] or j < 0:
            continue
        if agent_active[j] and not in_nest(agent_pos[j], nest_pos, nest_radius, nest_active):
            pos[m] = agent_pos[j]
            continue
        if agent_active[j]:
            delivered[j] += 1
        load[j] -= 1
        carrier[m] = -1
        replaced[m] = True
    touch = agent_radius + item_radius
    for m in range(M):
        if not present[m] or carrier[m] >= 0 or replaced[m]:
            continue
        d = np.hypot(*(agent_pos.astype(np.float64) - pos[m]).T)
        ok = agent_active & (load < capacity) & (d * d <= touch * touch)
        if ok.any():
            j = int(np.flatnonzero(ok)[np.argmin(d[ok])])   # argmin keeps the lowest index on ties
            carrier[m] = j
            load[j] += 1
            picked[j] += 1
            pos[m] = agent_pos[j]
    return {"carrier": carrier, "load": load, "delivered": delivered, "picked": picked, "replaced": replaced,
            "pos": pos}


def is_clear(xy, m, item_pos, present, agent_pos, agent_active, nest_pos, nest_radius, nest_active, arena: float,
             margin: float, nest_clearance: float, spacing: float, agent_radius: float, item_radius: float) -> bool:
    """Whether item ``m`` at ``xy`` obeys every rule of a clear place (one world's arrays)."""
    x, y = float(xy[0]), float(xy[1])
    if not (margin <= x <= arena - margin and margin <= y <= arena - margin):
        return False
    if in_nest(xy, nest_pos, nest_radius, nest_active, nest_clearance):
        return False
    others = present.copy()
    others[m] = False
    if (np.hypot(*(item_pos[others].astype(np.float64) - (x, y)).T) < spacing).any():
        return False
    reach = agent_radius + item_radius + ROBOT_GAP
    return not (np.hypot(*(agent_pos[agent_active].astype(np.float64) - (x, y)).T) < reach).any()


def sense_reference(pos, theta, active, item_pos, free, k: int, sense_range: float):
    """One world's item sensor: (out [N, K, 3], index [N, K]) by sorting every free item by distance."""
    N = len(active)
    out = np.zeros((N, k, 3))
    idx = np.full((N, k), -1)
    for i in range(N):
        if not active[i]:
            continue
        rel = item_pos.astype(np.float64) - pos[i].astype(np.float64)
        d2 = (rel ** 2).sum(1)
        cand = [m for m in np.lexsort((np.arange(len(free)), d2)) if free[m] and d2[m] <= sense_range ** 2][:k]
        c, s = np.cos(np.float64(theta[i])), np.sin(np.float64(theta[i]))
        for slot, m in enumerate(cand):
            dx, dy = rel[m]
            out[i, slot] = [np.clip((c * dx + s * dy) / sense_range, -1, 1),
                            np.clip((-s * dx + c * dy) / sense_range, -1, 1), 1.0]
            idx[i, slot] = m
    return out, idx
