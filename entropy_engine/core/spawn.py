"""Putting robots into a world: the state every scenario gives a robot at its (re)start, and the arena's border."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .rng import uniform


@njit(cache=True, inline="always")
def start_at_rest(rng, w, i, theta, vel, omega, active):
    """Robot ``i`` of world ``w`` starts at rest, active, with a heading uniform in [-pi, pi).

    One draw from world ``w``'s stream; the caller has written the robot's position.
    """
    theta[w, i] = np.float32(2.0 * math.pi * uniform(rng, w) - math.pi)
    vel[w, i, 0] = 0.0
    vel[w, i, 1] = 0.0
    omega[w, i] = 0.0
    active[w, i] = True


@njit(cache=True)
def place_clear(rng, w, i, arena, edge, spacing, pos, vel, theta, omega, active):
    """Robot ``i`` of world ``w`` at a uniform random point at least ``edge`` from the border and
    ``spacing`` from every other active robot's centre (64 rejection tries; the last is kept when
    none is clear), then at rest (``start_at_rest``). O(N) per robot: for respawning a few robots
    in worlds of tens, not for filling large worlds."""
    n = pos.shape[1]
    lim2 = spacing * spacing
    x = y = 0.0
    for _try in range(64):
        x = edge + (arena - 2.0 * edge) * uniform(rng, w)
        y = edge + (arena - 2.0 * edge) * uniform(rng, w)
        ok = True
        for j in range(n):
            if j != i and active[w, j] and (pos[w, j, 0] - x) ** 2 + (pos[w, j, 1] - y) ** 2 < lim2:
                ok = False
                break
        if ok:
            break
    pos[w, i, 0] = x
    pos[w, i, 1] = y
    start_at_rest(rng, w, i, theta, vel, omega, active)


@njit(cache=True)
def border_walls(w, L, walls, n_walls):
    """World ``w``'s walls: the four sides of the ``L`` x ``L`` arena."""
    walls[w, 0, 0], walls[w, 0, 1], walls[w, 0, 2], walls[w, 0, 3] = 0.0, 0.0, L, 0.0
    walls[w, 1, 0], walls[w, 1, 1], walls[w, 1, 2], walls[w, 1, 3] = L, 0.0, L, L
    walls[w, 2, 0], walls[w, 2, 1], walls[w, 2, 2], walls[w, 2, 3] = L, L, 0.0, L
    walls[w, 3, 0], walls[w, 3, 1], walls[w, 3, 2], walls[w, 3, 3] = 0.0, L, 0.0, 0.0
    n_walls[w] = 4


@njit(cache=True)
def respawn_clear(w, mask, rng, arena, edge, spacing, pos, vel, theta, omega, active):
    """Every robot ``i`` of world ``w`` with mask[w, i] restarts by ``place_clear`` (a random point
    ``edge`` from the border and ``spacing`` from the other robots, at rest): the respawn of the
    scenarios without per-robot goals (flocking, aggregation, coverage, formation, rendezvous), on the CPU and the GPU.
    ``mask`` [E, N] covers the learners; scripted robots after them (``scenarios.scripted``) are kept
    clear of but never respawned here."""
    for i in range(mask.shape[1]):
        if mask[w, i]:
            place_clear(rng, w, i, arena, edge, spacing, pos, vel, theta, omega, active)
