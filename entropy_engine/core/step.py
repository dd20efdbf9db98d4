"""Parallel drivers of the world step, composed from the per-agent phases in ``kernels.py``.

Two schedules compute exactly the same arithmetic for every agent, so they give bit-identical
results; ``World`` picks the faster one for its shape:

- ``*_by_world``: one parallel loop over worlds, each world stepped start to finish by one thread
  (one fork/join per step: best when there are at least a few worlds per thread).
- ``*_by_agent``: every phase is a parallel loop over all ``world * agent`` pairs, with a join
  between phases (one big world still uses every core).
"""
from __future__ import annotations

from numba import njit, prange

from .kernels import build_grid, phase_drive, phase_lidar, phase_push, phase_settle


@njit(cache=True)
def _step_one_world(w, actions, pos, vel, theta, omega, active, walls, n_walls, phys, g, iterations, ray_cs,
                    start, moved, tmp, cell_start, cell_fill, cell_items, lidar, contact):
    n = pos.shape[1]
    for i in range(n):
        phase_drive(w, i, actions, pos, vel, theta, omega, active, phys, start, moved, contact)
    build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    for it in range(iterations):
        src = pos if it % 2 == 0 else tmp
        dst = tmp if it % 2 == 0 else pos
        for i in range(n):
            phase_push(w, i, src, dst, active, phys, g, cell_start, cell_items, contact)
    if iterations % 2 == 1:
        for i in range(n):
            pos[w, i, 0] = tmp[w, i, 0]
            pos[w, i, 1] = tmp[w, i, 1]
    for i in range(n):
        phase_settle(w, i, pos, vel, active, walls, n_walls, phys, start, moved, contact)
    build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    for i in range(n):
        phase_lidar(w, i, pos, theta, active, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar)


@njit(cache=True, parallel=True, error_model="numpy")
def step_by_world(actions, pos, vel, theta, omega, active, walls, n_walls, phys, g, iterations, ray_cs,
                  start, moved, tmp, cell_start, cell_fill, cell_items, lidar, contact):
    """One control step of every world, a world per task.

    actions [E,N,2] in [-1,1]; pos/vel/start/moved/tmp [E,N,2]; theta/omega [E,N];
    active/contact [E,N] bool; walls [E,W,4]; n_walls [E]; lidar [E,N,R] (written, normalised).
    """
    for w in prange(pos.shape[0]):
        _step_one_world(w, actions, pos, vel, theta, omega, active, walls, n_walls, phys, g, iterations, ray_cs,
                        start, moved, tmp, cell_start, cell_fill, cell_items, lidar, contact)


@njit(cache=True, parallel=True, error_model="numpy")
def step_by_agent(actions, pos, vel, theta, omega, active, walls, n_walls, phys, g, iterations, ray_cs,
                  start, moved, tmp, cell_start, cell_fill, cell_items, lidar, contact):
    """The same step as ``step_by_world``, with each phase parallel over all agents."""
    n_worlds, n = pos.shape[0], pos.shape[1]
    total = n_worlds * n
    for k in prange(total):
        w = k // n
        phase_drive(w, k - w * n, actions, pos, vel, theta, omega, active, phys, start, moved, contact)
    for w in prange(n_worlds):
        build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    for it in range(iterations):
        src = pos if it % 2 == 0 else tmp
        dst = tmp if it % 2 == 0 else pos
        for k in prange(total):
            w = k // n
            phase_push(w, k - w * n, src, dst, active, phys, g, cell_start, cell_items, contact)
    if iterations % 2 == 1:
        for k in prange(total):
            w = k // n
            pos[w, k - w * n, 0] = tmp[w, k - w * n, 0]
            pos[w, k - w * n, 1] = tmp[w, k - w * n, 1]
    for k in prange(total):
        w = k // n
        phase_settle(w, k - w * n, pos, vel, active, walls, n_walls, phys, start, moved, contact)
    for w in prange(n_worlds):
        build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    for k in prange(total):
        w = k // n
        phase_lidar(w, k - w * n, pos, theta, active, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar)


@njit(cache=True, parallel=True, error_model="numpy")
def lidar_by_world(pos, theta, active, walls, n_walls, phys, g, ray_cs, cell_start, cell_fill, cell_items, lidar):
    """Lidar only (after a reset): rebuild each world's grid and cast its agents' rays."""
    for w in prange(pos.shape[0]):
        build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
        for i in range(pos.shape[1]):
            phase_lidar(w, i, pos, theta, active, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar)


@njit(cache=True, parallel=True, error_model="numpy")
def lidar_by_agent(pos, theta, active, walls, n_walls, phys, g, ray_cs, cell_start, cell_fill, cell_items, lidar):
    """``lidar_by_world`` with the rays cast in parallel over all agents."""
    n_worlds, n = pos.shape[0], pos.shape[1]
    for w in prange(n_worlds):
        build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    for k in prange(n_worlds * n):
        w = k // n
        phase_lidar(w, k - w * n, pos, theta, active, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar)


@njit(cache=True, parallel=True)
def build_grids(pos, active, phys, g, cell_start, cell_fill, cell_items):
    """Rebuild every world's spatial grid from the current positions."""
    for w in prange(pos.shape[0]):
        build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
