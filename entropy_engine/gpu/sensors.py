"""CUDA drivers of the shared sensors: the neighbour sensor (``core.neighbours``), a thread per agent."""
from __future__ import annotations

from ..core import neighbours as nb
from .target import cuda, device

cu = cuda()
d_agent_neighbours = device(nb._agent_neighbours)


@cu.jit
def neighbours(pos, vel, theta, active, attrs, sense_range, inv_speed, cell, g, cell_start, cell_items, best_d2,
               best_j, out):
    """``core.neighbours.neighbours_by_agent`` on the GPU (the same per-agent function, the same arrays)."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        i = k % n
        d_agent_neighbours(w, i, pos, vel, theta, active, attrs, sense_range, inv_speed, cell, g, cell_start,
                           cell_items, best_d2[w, i], best_j, out)
