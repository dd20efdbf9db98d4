"""The state every world backend shares: preallocated arrays of E worlds x N agents.

Scenarios, envs and the renderer read and write only what is defined here, so they run on any
backend (``core.backends``). A backend subclasses ``WorldState`` and adds its own scratch and
representation (the numba ``core.world.World``: step buffers; ``core.pymunk_world.PymunkWorld``:
one ``pymunk.Space`` per world) and implements ``step``; it overrides ``sync`` when it keeps a copy
of the state of its own, and ``refresh_lidar`` when it casts rays its own way.

Every array is allocated once and written in place; shapes are ``[world, agent, feature]``.

- ``pos`` float32 [E, N, 2]: centre, metres, the arena is [0, arena]^2
- ``vel`` float32 [E, N, 2]: world-frame velocity, m/s
- ``theta`` float32 [E, N]: heading, rad in [-pi, pi)
- ``omega`` float32 [E, N]: turn rate, rad/s
- ``active`` bool [E, N]: inactive agents are out of the world (not simulated, not sensed)
- ``walls`` float32 [E, W, 4]: static segments (x1, y1, x2, y2); ``n_walls`` int32 [E] in use
- ``lidar`` float32 [E, N, R]: distance / range in [0, 1] (1 = no hit); ray r points at
  ``2 pi r / R`` from the heading, counter-clockwise (``ray_cs`` [R, 2]: its cos and sin)
- ``contact`` bool [E, N]: touched an agent, object or wall in the last step
- ``objects``: the movable discs (``core.objects.Objects``: ``pos``, ``vel``, ``radius``, ``mass``,
  ``friction``, ``active``, [E, M, ...]); ``max_objects = M`` is 0 (none) unless a scenario asks

Besides the arrays, every backend gets the compiled services that scenarios and sensors run on the
shared state, whatever moved it: ``grid()`` (the spatial grid of the current positions, which the
scenarios' and the neighbour sensor's kernels search), ``refresh_lidar()`` (the compiled ray casts),
``threads()`` (the thread setting of a group of kernel calls) and ``phys`` (the world's constants
packed for those kernels: ``phys[kernels.CELL]`` is the grid's cell width, ``grid_size`` cells per
side).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ..config import ConfigError
from . import kernels, object_kernels, step as drivers, threads
from .objects import GRAVITY, Objects
from .params import WorldConfig

# Batches of fewer agents than this run their kernels on one thread (``WorldState.threads``): below
# it a second thread gains little on an idle machine and a fork/join stalls whenever another process
# holds a core (README, "Benchmark").
SERIAL_BELOW = 32


class WorldState:
    """The arrays of ``num_worlds`` independent worlds with ``n_agents`` agents each, shared by every
    backend (see the module docstring); ``step`` is the backend's."""

    def __init__(self, config: WorldConfig, num_worlds: int, n_agents: int, max_walls: int, max_objects: int = 0):
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
        cell = config.lidar_range + config.agent_radius
        self.grid_size = g = max(1, math.ceil(self.arena / cell))
        self._cell_start = np.zeros((E, g * g + 1), np.int32)  # [E, cells + 1] CSR offsets
        self._cell_fill = np.zeros((E, g * g), np.int32)       # [E, cells] scratch cursor
        self._cell_items = np.zeros((E, N), np.int32)          # [E, N] agent ids sorted by cell
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
        self.objects = Objects(E, max_objects)  # movable discs (core.objects); M = 0: none, the old step
        M = self.objects.max_objects
        if M > 0:  # what the compiled lidar over robots and objects needs (B = N + M bodies)
            B = N + M
            self.ophys = np.zeros(object_kernels.N_OPHYS, np.float64)  # see object_kernels.O_*
            self.ophys[object_kernels.O_GRAVITY] = GRAVITY
            self._bpos = np.zeros((E, B, 2), f32)                    # [E, B, 2] body centres
            self._brad = np.zeros((E, B), np.float64)                # [E, B] body radii
            self._bactive = np.zeros((E, B), np.bool_)               # [E, B] bodies in the world
            self._bcell_start = np.zeros((E, g * g + 1), np.int32)   # [E, cells + 1] body grid offsets
            self._bcell_fill = np.zeros((E, g * g), np.int32)        # [E, cells] scratch cursor
            self._bcell_items = np.zeros((E, B), np.int32)           # [E, B] body ids sorted by cell

    def _object_reach(self) -> None:
        """ophys[O_RMAX]: the largest body radius (robots and every object slot), for grid spans."""
        self.ophys[object_kernels.O_RMAX] = max(float(self.radius), float(self.objects.radius.max()))

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
        """Advance every world by one step. ``actions`` is float32 [E, N, 2], already in [-1, 1].
        Moves ``pos``, ``vel``, ``theta``, ``omega`` of the active agents and writes ``contact``
        and ``lidar``."""
        raise NotImplementedError(f"{type(self).__name__} must implement step(actions)")

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The spatial grid of the current positions: CSR offsets [E, cells + 1] and agent ids
        sorted by cell [E, N] (cells are ``phys[CELL]`` metres wide, ``grid_size`` per side)."""
        drivers.build_grids(self.pos, self.active, self.phys, self.grid_size, self._cell_start, self._cell_fill,
                            self._cell_items)
        return self._cell_start, self._cell_items

    def sync(self, worlds: np.ndarray) -> None:
        """State arrays of the worlds where ``worlds`` [E] is True were written from outside (a
        reset or respawn). A backend that keeps no other copy of the state (the compiled one) has
        nothing to do; other backends rebuild their own representation here. Note that envs also
        clear ``active`` for agents that leave the world without calling ``sync``: a backend must
        read ``active`` at every step."""

    def refresh_lidar(self) -> None:
        """Recompute the lidar of every agent from the current state (after a reset), with the
        compiled ray casts."""
        if self.objects.max_objects > 0:
            ob = self.objects
            self._object_reach()
            object_kernels.lidar_by_world(
                self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys, self.ophys, self.grid_size,
                self.ray_cs, ob.pos, ob.radius, ob.active, self._bpos, self._brad, self._bactive, self._bcell_start,
                self._bcell_fill, self._bcell_items, self.lidar)
            return
        lidar = drivers.lidar_by_world if self.schedule == "world" else drivers.lidar_by_agent
        lidar(
            self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys, self.grid_size,
            self.ray_cs, self._cell_start, self._cell_fill, self._cell_items, self.lidar,
        )
