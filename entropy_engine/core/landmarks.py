"""Landmarks and zones: static points or discs per world that scenarios score against.

A ``Landmarks`` container holds up to ``L`` discs per world (a point is a disc of radius 0):

| array      | shape       | dtype   | meaning                                               |
|------------|-------------|---------|-------------------------------------------------------|
| ``pos``    | [E, L, 2]   | float32 | centre, metres, world frame                           |
| ``radius`` | [E, L]      | float32 | radius, metres (>= 0)                                 |
| ``active`` | [E, L]      | bool    | landmarks in use (a world may use fewer than L)       |

Two compiled queries read them (both write preallocated arrays in place):

``nearest()`` -> ``nearest`` float32 [E, N, 4] and ``nearest_index`` int32 [E, N], per agent:

| feature | meaning                                                                        |
|---------|--------------------------------------------------------------------------------|
| 0       | nearest active landmark's centre minus own centre, ego x (along the heading), / ``scale`` |
| 1       | the same, ego y (to the left)                                                   |
| 2       | 1 if the agent's centre is inside that landmark's disc (distance <= radius)     |
| 3       | 1 if the world has an active landmark at all (else the row is zeros)           |

"Nearest" is by centre distance, ties go to the lower landmark index; inactive agents get zeros
and index -1. The cost is O(N L) per world (every agent tests every landmark): cheap for the
tens of landmarks scenarios use, not meant for thousands.

``occupancy()`` -> ``occupancy`` int32 [E, L]: the number of active agents whose centre lies in
each active landmark's disc (0 for inactive landmarks). It walks the world's spatial grid over
the cells each disc covers (``grid.cell_span``), so its cost grows with the agents near
each landmark, not with N.

``neighbours_reference.py`` holds the brute-force numpy versions the tests compare against.
Drawing is the renderer's job (``pos``, ``radius`` and ``active`` are all it needs).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .kernels import CELL
from .grid import cell_span


@njit(cache=True, parallel=True)
def nearest_landmark(pos, theta, active, lm_pos, lm_radius, lm_active, inv_scale, out, out_index):
    """pos [E,N,2]; theta [E,N]; active [E,N]; lm_pos [E,L,2]; lm_radius/lm_active [E,L];
    out [E,N,4] float32 and out_index [E,N] int32 written (see the module docstring)."""
    n = pos.shape[1]
    n_lm = lm_pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        i = k - w * n
        for f in range(4):
            out[w, i, f] = 0.0
        out_index[w, i] = -1
        if not active[w, i]:
            continue
        px = np.float64(pos[w, i, 0])
        py = np.float64(pos[w, i, 1])
        best = np.inf
        best_l = -1
        for l in range(n_lm):
            if not lm_active[w, l]:
                continue
            dx = np.float64(lm_pos[w, l, 0]) - px
            dy = np.float64(lm_pos[w, l, 1]) - py
            d2 = dx * dx + dy * dy
            if d2 < best:
                best = d2
                best_l = l
        if best_l < 0:
            continue
        dx = np.float64(lm_pos[w, best_l, 0]) - px
        dy = np.float64(lm_pos[w, best_l, 1]) - py
        th = np.float64(theta[w, i])
        c = math.cos(th)
        s = math.sin(th)
        r = np.float64(lm_radius[w, best_l])
        out[w, i, 0] = (c * dx + s * dy) * inv_scale
        out[w, i, 1] = (-s * dx + c * dy) * inv_scale
        out[w, i, 2] = 1.0 if best <= r * r else 0.0
        out[w, i, 3] = 1.0
        out_index[w, i] = best_l


@njit(cache=True, parallel=True)
def landmark_occupancy(pos, lm_pos, lm_radius, lm_active, cell, g, cell_start, cell_items, counts):
    """counts [E,L] int32: active agents (those in the grid) with centre within each disc."""
    n_lm = lm_pos.shape[1]
    for k in prange(lm_pos.shape[0] * n_lm):
        w = k // n_lm
        l = k - w * n_lm
        counts[w, l] = 0
        if not lm_active[w, l]:
            continue
        lx = np.float64(lm_pos[w, l, 0])
        ly = np.float64(lm_pos[w, l, 1])
        r = np.float64(lm_radius[w, l])
        r2 = r * r
        total = 0
        x0, x1, y0, y1 = cell_span(lx, ly, r, cell, g)
        for cy in range(y0, y1 + 1):
            for cx in range(x0, x1 + 1):
                c = cy * g + cx
                for kk in range(cell_start[w, c], cell_start[w, c + 1]):
                    j = cell_items[w, kk]
                    dx = np.float64(pos[w, j, 0]) - lx
                    dy = np.float64(pos[w, j, 1]) - ly
                    if dx * dx + dy * dy <= r2:
                        total += 1
        counts[w, l] = total


class Landmarks:
    """Up to ``max_landmarks`` static discs in each world of ``world`` (see the module docstring).

    Scenarios write them with ``place`` (validated) at reset; the arrays may also be written
    directly like ``World.walls``.
    """

    def __init__(self, world, max_landmarks: int):
        if isinstance(max_landmarks, bool) or not isinstance(max_landmarks, (int, np.integer)) or max_landmarks < 1:
            raise ValueError(f"max_landmarks must be a positive integer, got {max_landmarks!r}")
        self.world = world
        E, N, L = world.num_worlds, world.n_agents, int(max_landmarks)
        self.max_landmarks = L
        self.pos = np.zeros((E, L, 2), np.float32)       # [E, L, 2] centres, metres
        self.radius = np.zeros((E, L), np.float32)       # [E, L] radii, metres
        self.active = np.zeros((E, L), np.bool_)         # [E, L] landmarks in use
        self.nearest_out = np.zeros((E, N, 4), np.float32)    # [E, N, 4] see nearest()
        self.nearest_index = np.full((E, N), -1, np.int32)    # [E, N] nearest landmark id, -1 = none
        self.occupancy_out = np.zeros((E, L), np.int32)       # [E, L] agents inside each disc

    def place(self, pos: np.ndarray, radius, worlds: np.ndarray | None = None,
              active: np.ndarray | None = None) -> None:
        """Set the landmarks of the worlds where ``worlds`` [E] (bool) is True (all if None).

        pos: [E, L, 2]; radius: a number or [E, L]; active: [E, L] bool (all True if None). Rows of
        other worlds are ignored. A refused call (bad shape, NaN, negative radius) changes nothing.
        """
        E, L = self.active.shape
        pos = np.asarray(pos, np.float64)
        if pos.shape != (E, L, 2):
            raise ValueError(f"landmark pos must have shape {(E, L, 2)}, got {pos.shape}")
        rad = np.broadcast_to(np.asarray(radius, np.float64), (E, L)) if np.ndim(radius) == 0 \
            else np.asarray(radius, np.float64)
        if rad.shape != (E, L):
            raise ValueError(f"landmark radius must be a number or shape {(E, L)}, got {rad.shape}")
        sel = np.ones(E, bool) if worlds is None else np.asarray(worlds)
        if sel.shape != (E,) or sel.dtype != np.bool_:
            raise ValueError(f"worlds must be a bool array of shape {(E,)}, got {sel.dtype} {sel.shape}")
        act = np.ones((E, L), bool) if active is None else np.asarray(active)
        if act.shape != (E, L) or act.dtype != np.bool_:
            raise ValueError(f"landmark active must be a bool array of shape {(E, L)}, got {act.dtype} {act.shape}")
        if not np.isfinite(pos[sel]).all():
            raise ValueError("landmark pos must be finite")
        if not (np.isfinite(rad[sel]).all() and (rad[sel] >= 0).all()):
            raise ValueError("landmark radius must be finite and >= 0")
        self.pos[sel] = pos[sel]
        self.radius[sel] = rad[sel]
        self.active[sel] = act[sel]

    def nearest(self, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Nearest active landmark of every agent, ego frame, offsets divided by ``scale`` metres.
        Returns (``nearest_out`` [E, N, 4] float32, ``nearest_index`` [E, N] int32), written in place."""
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)) \
                or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive finite number of metres, got {scale!r}")
        w = self.world
        nearest_landmark(w.pos, w.theta, w.active, self.pos, self.radius, self.active, 1.0 / float(scale),
                         self.nearest_out, self.nearest_index)
        return self.nearest_out, self.nearest_index

    def occupancy(self, grid=None) -> np.ndarray:
        """Active agents inside each active landmark, ``occupancy_out`` [E, L] int32 (in place).
        ``grid``: the world's current ``(cell_start, cell_items)``, or None to rebuild it."""
        w = self.world
        cell_start, cell_items = w.grid() if grid is None else grid
        landmark_occupancy(w.pos, self.pos, self.radius, self.active, float(w.phys[CELL]), w.grid_size,
                           cell_start, cell_items, self.occupancy_out)
        return self.occupancy_out
