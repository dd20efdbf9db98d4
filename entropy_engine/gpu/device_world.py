"""The world's arrays on the GPU and the launches of one step: ``DeviceWorld``.

``DeviceWorld`` mirrors ``core.world.World``: the same arrays (``pos``, ``vel``, ``theta``, ``omega``,
``active``, ``walls``, ``n_walls``, ``lidar``, ``contact`` and the step's scratch), with the same
shapes and dtypes, as numba CUDA device arrays, stepped by ``gpu.kernels``. Nothing here copies to
or from the host except ``upload``/``download``, which the host-synced backend (``gpu.world``) and
the tests call; the device env (``gpu.env``) keeps everything on the GPU.
"""
from __future__ import annotations

import numpy as np

from ..core import kernels as K
from .target import download, simulated, to_device, upload

THREADS = 32 if simulated() else 256   # threads per block of the agent schedule's launches


class DeviceWorld:
    """Device copies of a ``core.state.WorldState``'s arrays (``host``: its shapes and constants)."""

    STATE = ("pos", "vel", "theta", "omega", "active", "walls", "n_walls", "lidar", "contact")

    def __init__(self, host) -> None:
        from . import kernels as gk

        self.k = gk
        self.host = host
        E, N = host.num_worlds, host.n_agents
        self.num_worlds, self.n_agents = E, N
        self.grid_size = host.grid_size
        self.iterations = int(host.config.collision_iterations)
        for name in self.STATE:
            setattr(self, name, to_device(getattr(host, name)))
        self.phys = to_device(host.phys)
        self.ray_cs = to_device(host.ray_cs)
        f32 = np.float32
        g = host.grid_size
        self.start = to_device(np.zeros((E, N, 2), f32))
        self.moved = to_device(np.zeros((E, N, 2), f32))
        self.tmp = to_device(np.zeros((E, N, 2), f32))
        self.cell_start = to_device(np.zeros((E, g * g + 1), np.int32))
        self.cell_fill = to_device(np.zeros((E, g * g), np.int32))
        self.cell_items = to_device(np.zeros((E, N), np.int32))
        self.agent_cell = to_device(np.zeros((E, N), np.int32))
        self.nbr = to_device(np.zeros((E, N, K.MAX_CONTACTS), np.int32))
        self.n_nbr = to_device(np.zeros((E, N), np.int32))
        self.near_wall = to_device(np.zeros((E, N), np.int8))
        self.schedule_override: str | None = None   # 'world' or 'agent' to force a schedule (tests)
        self.worlds_per_block: int | None = None    # world schedule: worlds per block (None: as many as fit)
        self._all = to_device(np.ones(E, np.bool_))

    @property
    def schedule(self) -> str:
        """'world' (whole worlds per block) for worlds of at most ``kernels.BLOCK_MAX`` agents, else 'agent'."""
        if self.schedule_override is not None:
            return self.schedule_override
        return "world" if self.n_agents <= self.k.BLOCK_MAX else "agent"

    def _world_blocks(self) -> tuple[int, int]:
        """(blocks, threads) of the world schedule: ``BLOCK_MAX // N`` whole worlds per block (one in
        the simulator, where each thread is a Python thread)."""
        per = self.worlds_per_block or (1 if simulated() else max(1, self.k.BLOCK_MAX // self.n_agents))
        return (self.num_worlds + per - 1) // per, per * self.n_agents

    def _agents(self) -> tuple[int, int]:
        total = self.num_worlds * self.n_agents
        n = min(THREADS, total)
        return (total + n - 1) // n, n

    # ------------------------------------------------------------------ host <-> device
    def upload(self, names=STATE) -> None:
        """Copy the host arrays ``names`` to the device."""
        for name in names:
            upload(getattr(self, name), getattr(self.host, name))

    def download(self, names=("pos", "vel", "theta", "omega", "lidar", "contact")) -> None:
        """Copy the device arrays ``names`` back into the host's."""
        for name in names:
            download(getattr(self, name), getattr(self.host, name))

    # ------------------------------------------------------------------ the step
    def step(self, actions) -> None:
        """One step of every world; ``actions`` a device array [E, N, 2] in [-1, 1]."""
        if self.schedule == "world":
            self.k.step_worlds[self._world_blocks()](
                actions, self.pos, self.vel, self.theta, self.omega, self.active, self.walls, self.n_walls,
                self.phys, self.grid_size, self.iterations, self.ray_cs, self.start, self.moved, self.tmp,
                self.cell_start, self.cell_fill, self.cell_items, self.nbr, self.n_nbr, self.near_wall, self.lidar,
                self.contact)
            return
        k, (blocks, threads) = self.k, self._agents()
        k.drive_all[blocks, threads](actions, self.pos, self.vel, self.theta, self.omega, self.active, self.phys,
                                     self.start, self.moved, self.contact)
        self.build_grid()
        k.contacts_all[blocks, threads](self.pos, self.active, self.walls, self.n_walls, self.phys, self.grid_size,
                                        self.cell_start, self.cell_items, self.nbr, self.n_nbr, self.near_wall)
        for it in range(self.iterations):
            src, dst = (self.pos, self.tmp) if it % 2 == 0 else (self.tmp, self.pos)
            k.push_all[blocks, threads](src, dst, self.active, self.walls, self.n_walls, self.phys, self.start,
                                        self.nbr, self.n_nbr, self.near_wall, self.contact)
        if self.iterations % 2 == 1:
            k.copy_pushed[blocks, threads](self.tmp, self.pos, self.n_nbr)
        k.settle_all[blocks, threads](self.pos, self.vel, self.active, self.walls, self.n_walls, self.phys,
                                      self.start, self.moved, self.contact)
        self.build_grid()
        k.lidar_all[blocks, threads](self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys,
                                     self.grid_size, self.cell_start, self.cell_items, self.ray_cs, self.lidar)

    def build_grid(self) -> None:
        """Every world's grid from the current positions, in parallel (the agent schedule's build;
        the same CSR arrays as ``core.kernels.build_grid``)."""
        k = self.k
        cs = self.cell_start
        cells = cs.shape[0] * cs.shape[1]
        k.zero_int[(cells + THREADS - 1) // THREADS, THREADS](cs)
        blocks, threads = self._agents()
        k.grid_count[blocks, threads](self.pos, self.active, self.phys, self.grid_size, cs, self.agent_cell)
        k.grid_scan[self.num_worlds, 32 if simulated() else k.SCAN_THREADS](cs, self.cell_fill)
        k.grid_scatter[blocks, threads](self.agent_cell, self.cell_fill, self.cell_items)
        m = self.num_worlds * (cs.shape[1] - 1)
        k.grid_sort[(m + THREADS - 1) // THREADS, THREADS](cs, self.cell_items)

    def refresh_lidar(self, worlds=None) -> None:
        """Grid and lidar of the worlds where the device mask ``worlds`` [E] is True (default all)."""
        mask = self._all if worlds is None else worlds
        if self.schedule == "world":
            self.k.lidar_worlds[self._world_blocks()](
                mask, self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys, self.grid_size,
                self.ray_cs, self.cell_start, self.cell_fill, self.cell_items, self.lidar)
            return
        self.build_grid()
        blocks, threads = self._agents()
        self.k.lidar_all[blocks, threads](self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys,
                                          self.grid_size, self.cell_start, self.cell_items, self.ray_cs, self.lidar)
