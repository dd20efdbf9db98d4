"""The batched world: preallocated structure-of-arrays state for E worlds x N agents.

A ``World`` knows physics only (bodies, walls, lidar); a scenario decides where things start,
what is rewarded and when an episode ends. Every array below is allocated once and written in
place; shapes are given as ``[world, agent, feature]``.
"""
from __future__ import annotations

import math

import numpy as np

from ..config import ConfigError
import numba

from . import kernels, step as drivers, threads
from .params import WorldConfig

# Batches of fewer agents than this run their kernels on one thread (``World.threads``): below it
# a second thread gains little on an idle machine and a fork/join stalls whenever another process
# holds a core (README, "Benchmark").
SERIAL_BELOW = 32


class World:
    """State and stepping of ``num_worlds`` independent worlds with ``n_agents`` agents each."""

    def __init__(self, config: WorldConfig, num_worlds: int, n_agents: int, max_walls: int):
        if not isinstance(num_worlds, (int, np.integer)) or num_worlds < 1:
            raise ConfigError(f"num_worlds must be a positive integer, got {num_worlds!r}")
        if not isinstance(n_agents, (int, np.integer)) or n_agents < 1:
            raise ConfigError(f"n_agents must be a positive integer, got {n_agents!r}")
        self.config = config
        self.num_worlds = E = int(num_worlds)
        self.n_agents = N = int(n_agents)
        self.arena = config.arena_for(N)
        self.radius = config.agent_radius
        R = config.n_rays
        f32 = np.float32
        self.pos = np.zeros((E, N, 2), f32)      # [E, N, 2] centre, metres, arena is [0, arena]^2
        self.vel = np.zeros((E, N, 2), f32)      # [E, N, 2] world-frame velocity, m/s
        self.theta = np.zeros((E, N), f32)       # [E, N] heading, rad in [-pi, pi)
        self.omega = np.zeros((E, N), f32)       # [E, N] turn rate, rad/s
        self.active = np.zeros((E, N), np.bool_)  # [E, N] inactive agents are out of the world
        self.walls = np.zeros((E, max_walls, 4), f32)  # [E, W, (x1, y1, x2, y2)] static segments
        self.n_walls = np.zeros(E, np.int32)     # [E] walls in use per world
        self.lidar = np.ones((E, N, R), f32)     # [E, N, R] distance / range in [0, 1]
        self.contact = np.zeros((E, N), np.bool_)  # [E, N] touched an agent or wall this step
        self._start = np.zeros((E, N, 2), f32)   # [E, N, 2] scratch: position at step start
        self._moved = np.zeros((E, N, 2), f32)   # [E, N, 2] scratch: position after driving
        self._tmp = np.zeros((E, N, 2), f32)     # [E, N, 2] scratch: Jacobi buffer
        cell = config.lidar_range + config.agent_radius
        self.grid_size = g = max(1, math.ceil(self.arena / cell))
        self._cell_start = np.zeros((E, g * g + 1), np.int32)  # [E, cells + 1] CSR offsets
        self._cell_fill = np.zeros((E, g * g), np.int32)       # [E, cells] scratch cursor
        self._cell_items = np.zeros((E, N), np.int32)          # [E, N] agent ids sorted by cell
        self._nbr = np.zeros((E, N, kernels.MAX_CONTACTS), np.int32)  # [E, N, K] scratch: contact candidates
        self._n_nbr = np.zeros((E, N), np.int32)               # [E, N] scratch: candidates in use
        self._near_wall = np.zeros((E, N), np.int8)            # [E, N] scratch: kernels.WALL_FAR/NEAR/STUCK
        self._islands = np.zeros((E, 4 * N + 2), np.int32)     # [E, 4N + 2] scratch: see kernels.build_islands
        phys = np.zeros(kernels.N_PHYS, np.float64)
        phys[kernels.DT] = config.dt
        phys[kernels.MASS] = config.mass
        phys[kernels.INERTIA] = config.inertia
        phys[kernels.MAX_FORCE] = config.max_wheel_force
        phys[kernels.HALF_BASE] = 0.5 * config.wheel_base
        phys[kernels.LIN_DAMP] = config.linear_damping
        phys[kernels.ANG_DAMP] = config.angular_damping
        phys[kernels.LAT_SLIP] = config.lateral_slip
        phys[kernels.V_MAX] = config.max_speed
        phys[kernels.W_MAX] = config.max_angular_speed
        phys[kernels.RADIUS] = config.agent_radius
        phys[kernels.RANGE] = config.lidar_range
        phys[kernels.CELL] = cell
        phys[kernels.ARENA] = self.arena
        phys[kernels.LIN_DECAY] = math.exp(-config.linear_damping * config.dt)
        phys[kernels.ANG_DECAY] = math.exp(-config.angular_damping * config.dt)
        self.phys = phys
        angles = 2.0 * np.pi * np.arange(R) / R
        self.schedule_override: str | None = None  # 'world' or 'agent' to force a schedule (tests)
        self.serial_below = SERIAL_BELOW            # fewer agents than this: kernels on one thread
        self.ray_cs = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # [R, 2] ray directions

    @property
    def schedule(self) -> str:
        """'world' (a world per task) when there are at least two worlds per thread or only one
        thread, else 'agent'."""
        if self.schedule_override is not None:
            return self.schedule_override
        n_threads = numba.get_num_threads()
        return "world" if n_threads == 1 or self.num_worlds >= 2 * n_threads else "agent"

    def threads(self, step: bool = False):
        """The thread setting for a group of kernel calls, as a context manager: batches of fewer
        than ``serial_below`` agents run on the calling thread alone (numba's count set to 1 and
        restored on exit). ``step=True`` (once per environment step, outside any such block) also
        lets the automatic thread count look at the machine's load (``threads.tick``)."""
        if step:
            threads.tick()
        if self.num_worlds * self.n_agents < self.serial_below:
            return threads.OneThread()
        return threads.AS_IS

    def step(self, actions: np.ndarray) -> None:
        """Advance every world by one step. ``actions`` is float32 [E, N, 2], already in [-1, 1]."""
        step = drivers.step_by_world if self.schedule == "world" else drivers.step_by_agent
        step(
            actions, self.pos, self.vel, self.theta, self.omega, self.active, self.walls, self.n_walls,
            self.phys, self.grid_size, self.config.collision_iterations, self.ray_cs,
            self._start, self._moved, self._tmp, self._cell_start, self._cell_fill, self._cell_items,
            self._nbr, self._n_nbr, self._near_wall, self._islands, self.lidar, self.contact,
        )

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The spatial grid of the current positions: CSR offsets [E, cells + 1] and agent ids
        sorted by cell [E, N] (cells are ``phys[CELL]`` metres wide, ``grid_size`` per side)."""
        drivers.build_grids(self.pos, self.active, self.phys, self.grid_size, self._cell_start, self._cell_fill,
                            self._cell_items)
        return self._cell_start, self._cell_items

    def sync(self, worlds: np.ndarray) -> None:
        """State arrays of the worlds where ``worlds`` [E] is True were written from outside (a
        reset or respawn). The compiled backend keeps no other copy, so there is nothing to do;
        other backends rebuild their own representation here. Note that envs also clear
        ``active`` for agents that leave the world without calling ``sync``: a backend must read
        ``active`` at every step."""

    def refresh_lidar(self) -> None:
        """Recompute the lidar of every agent from the current state (after a reset)."""
        lidar = drivers.lidar_by_world if self.schedule == "world" else drivers.lidar_by_agent
        lidar(
            self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys, self.grid_size,
            self.ray_cs, self._cell_start, self._cell_fill, self._cell_items, self.lidar,
        )
