"""Parallel drivers of the world step, composed from the per-agent phases in ``kernels.py``.

Two schedules compute exactly the same arithmetic for every agent, so they give bit-identical
results; ``World`` picks the faster one for its shape:

- ``*_by_world``: one parallel loop over worlds, each world stepped start to finish by one thread
  (one fork/join per step: best when there are at least a few worlds per thread).
- ``*_by_agent``: every phase is a parallel loop over all ``world * agent`` pairs, with a join
  between phases (one big world still uses every core); the collision passes run in parallel over
  islands of touching robots, all passes of one island on one thread.
"""
from __future__ import annotations

from numba import njit, prange

from .kernels import build_grid, build_islands, phase_contacts, phase_drive, phase_lidar, phase_settle, solve_island


@njit(cache=True)
def _step_one_world(w, actions, pos, vel, theta, omega, active, walls, n_walls, phys, g, iterations, ray_cs,
                    start, moved, tmp, cell_start, cell_fill, cell_items, nbr, n_nbr, near_wall, islands, lidar,
                    contact):
    n = pos.shape[1]
    for i in range(n):
        phase_drive(w, i, actions, pos, vel, theta, omega, active, phys, start, moved, contact)
    build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    for i in range(n):
        phase_contacts(w, i, pos, active, walls, n_walls, phys, g, cell_start, cell_items, nbr, n_nbr, near_wall)
    build_islands(w, n_nbr, nbr, islands)
    for s in range(islands[w, 0]):
        solve_island(w, s, islands, iterations, pos, tmp, active, walls, n_walls, phys, start, nbr, n_nbr, near_wall,
                     contact)
    for i in range(n):
        phase_settle(w, i, pos, vel, active, walls, n_walls, phys, start, moved, contact)
    build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    for i in range(n):
        phase_lidar(w, i, pos, theta, active, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar)


@njit(cache=True, parallel=True, error_model="numpy")
def step_by_world(actions, pos, vel, theta, omega, active, walls, n_walls, phys, g, iterations, ray_cs,
                  start, moved, tmp, cell_start, cell_fill, cell_items, nbr, n_nbr, near_wall, islands, lidar, contact):
    """One control step of every world, a world per task.

    actions [E,N,2] in [-1,1]; pos/vel/start/moved/tmp [E,N,2]; theta/omega [E,N];
    active/contact [E,N] bool; walls [E,W,4]; n_walls [E]; lidar [E,N,R] (written, normalised);
    nbr [E,N,MAX_CONTACTS] / n_nbr [E,N] / near_wall [E,N] int8 / islands [E,4N+2]: scratch contact
    candidates and the islands they form (see ``kernels.build_islands``).
    """
    for w in prange(pos.shape[0]):
        _step_one_world(w, actions, pos, vel, theta, omega, active, walls, n_walls, phys, g, iterations, ray_cs,
                        start, moved, tmp, cell_start, cell_fill, cell_items, nbr, n_nbr, near_wall, islands, lidar,
                        contact)


@njit(cache=True, parallel=True, error_model="numpy")
def step_by_agent(actions, pos, vel, theta, omega, active, walls, n_walls, phys, g, iterations, ray_cs,
                  start, moved, tmp, cell_start, cell_fill, cell_items, nbr, n_nbr, near_wall, islands, lidar, contact):
    """The same step as ``step_by_world``, with each phase parallel over all agents."""
    n_worlds, n = pos.shape[0], pos.shape[1]
    total = n_worlds * n
    for k in prange(total):
        w = k // n
        phase_drive(w, k - w * n, actions, pos, vel, theta, omega, active, phys, start, moved, contact)
    for w in prange(n_worlds):
        build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    for k in prange(total):
        w = k // n
        phase_contacts(w, k - w * n, pos, active, walls, n_walls, phys, g, cell_start, cell_items, nbr, n_nbr,
                       near_wall)
    for w in prange(n_worlds):
        build_islands(w, n_nbr, nbr, islands)
    for k in prange(total):  # islands in parallel, each solved by one thread: no join between passes
        w = k // n
        if k - w * n < islands[w, 0]:
            solve_island(w, k - w * n, islands, iterations, pos, tmp, active, walls, n_walls, phys, start, nbr, n_nbr,
                         near_wall, contact)
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
