"""Putting robots back into running worlds on the GPU: ``core.spawn.respawn_clear`` per world."""
from __future__ import annotations

from ..core import spawn
from .target import cuda, device

cu = cuda()
d_respawn_clear = device(spawn.respawn_clear)


@cu.jit
def respawn_clear(mask, rng, arena, edge, spacing, pos, vel, theta, omega, active, prev_contact, fresh, refresh):
    """World ``w`` (a thread each) with robots to respawn (``mask[w, i]``): ``core.spawn.respawn_clear``,
    their contact memory cleared and their episode marked ``fresh``; the world is marked in ``refresh``
    (its lidar and observations are recomputed)."""
    w = cu.grid(1)
    if w >= pos.shape[0]:
        return
    any_ = False
    for i in range(pos.shape[1]):
        if mask[w, i]:
            any_ = True
            prev_contact[w, i] = False
            fresh[w, i] = True
    if any_:
        d_respawn_clear(w, mask, rng, arena, edge, spacing, pos, vel, theta, omega, active)
        refresh[w] = True
