"""The compiled (numba) world backend: ``core.state.WorldState`` stepped by the kernels of ``step.py``.

The state layout, the spatial grid and the lidar casts are ``WorldState``'s (every backend shares
them); ``World`` adds only the scratch of its physics step. It keeps no copy of the state besides
the shared arrays, so ``sync`` has nothing to do.
"""
from __future__ import annotations

import numpy as np

from . import kernels, object_kernels, step as drivers
from .params import WorldConfig
from .state import SERIAL_BELOW, WorldState  # noqa: F401  (SERIAL_BELOW: the old import path)


class World(WorldState):
    """State and compiled stepping of ``num_worlds`` independent worlds with ``n_agents`` agents each."""

    def __init__(self, config: WorldConfig, num_worlds: int, n_agents: int, max_walls: int, max_objects: int = 0):
        super().__init__(config, num_worlds, n_agents, max_walls, max_objects)
        E, N = self.num_worlds, self.n_agents
        f32 = np.float32
        self._start = np.zeros((E, N, 2), f32)   # [E, N, 2] scratch: position at step start
        self._moved = np.zeros((E, N, 2), f32)   # [E, N, 2] scratch: position after driving
        self._tmp = np.zeros((E, N, 2), f32)     # [E, N, 2] scratch: Jacobi buffer
        self._nbr = np.zeros((E, N, kernels.MAX_CONTACTS), np.int32)  # [E, N, K] scratch: contact candidates
        self._n_nbr = np.zeros((E, N), np.int32)               # [E, N] scratch: candidates in use
        self._near_wall = np.zeros((E, N), np.int8)            # [E, N] scratch: kernels.WALL_FAR/NEAR/STUCK
        self._islands = np.zeros((E, 4 * N + 2), np.int32)     # [E, 4N + 2] scratch: see kernels.build_islands
        M = self.objects.max_objects
        if M > 0:  # robots and objects solved as B = N + M bodies (core.object_kernels)
            B = N + M
            K = object_kernels.MAX_BODY_CONTACTS
            self._ostart = np.zeros((E, M, 2), f32)                # [E, M, 2] scratch: object position at step start
            self._btmp = np.zeros((E, B, 2), f32)                  # [E, B, 2] scratch: Jacobi buffer
            self._bstart = np.zeros((E, B, 2), f32)                # [E, B, 2] scratch: body start positions
            self._binv = np.zeros((E, B), np.float64)              # [E, B] scratch: inverse masses
            self._bcontact = np.zeros((E, B), np.bool_)            # [E, B] scratch: body touched something
            self._bnbr = np.zeros((E, B, K), np.int32)             # [E, B, K] scratch: body contact candidates
            self._bn_nbr = np.zeros((E, B), np.int32)              # [E, B] scratch: candidates in use
            self._bnear = np.zeros((E, B), np.int8)                # [E, B] scratch: kernels.WALL_*
            self._bislands = np.zeros((E, 4 * B + 2), np.int32)    # [E, 4B + 2] scratch: islands of bodies

    def step(self, actions: np.ndarray) -> None:
        """Advance every world by one step. ``actions`` is float32 [E, N, 2], already in [-1, 1]."""
        if self.objects.max_objects > 0:
            self._step_with_objects(actions)
            return
        step = drivers.step_by_world if self.schedule == "world" else drivers.step_by_agent
        step(
            actions, self.pos, self.vel, self.theta, self.omega, self.active, self.walls, self.n_walls,
            self.phys, self.grid_size, self.config.collision_iterations, self.ray_cs,
            self._start, self._moved, self._tmp, self._cell_start, self._cell_fill, self._cell_items,
            self._nbr, self._n_nbr, self._near_wall, self._islands, self.lidar, self.contact,
        )

    def _step_with_objects(self, actions: np.ndarray) -> None:
        """The step of worlds with movable objects (``core.object_kernels``)."""
        ob = self.objects
        self._object_reach()
        step = object_kernels.step_by_world if self.schedule == "world" else object_kernels.step_by_agent
        step(
            actions, self.pos, self.vel, self.theta, self.omega, self.active, self.walls, self.n_walls,
            self.phys, self.ophys, self.grid_size, self.config.collision_iterations, self.ray_cs,
            self._start, self._moved, ob.pos, ob.vel, ob.radius, ob.mass, ob.friction, ob.active, self._ostart,
            self._bpos, self._btmp, self._bstart, self._brad, self._binv, self._bactive, self._bcontact,
            self._bcell_start, self._bcell_fill, self._bcell_items, self._bnbr, self._bn_nbr, self._bnear,
            self._bislands, self._cell_start, self._cell_fill, self._cell_items, self.lidar, self.contact,
        )
