"""The world's arrays on the GPU and the launches of one step: ``DeviceWorld``.

``DeviceWorld`` mirrors ``core.world.World``: the same arrays (``pos``, ``vel``, ``theta``, ``omega``,
``active``, ``walls``, ``n_walls``, ``lidar``, ``contact`` and the step's scratch), with the same
shapes and dtypes, as numba CUDA device arrays, stepped by ``gpu.kernels``; with movable objects
(``host.objects.max_objects > 0``) also the objects' arrays (``opos``, ``ovel``, ``oradius``, ``omass``,
``ofriction``, ``oactive``) and the body scratch of ``core.object_kernels``, stepped by
``gpu.object_kernels``. Nothing here copies to
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
    OBJECTS = ("opos", "ovel", "oradius", "omass", "ofriction", "oactive")   # host.objects' pos, vel, ...

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
        self.n_objects = M = host.objects.max_objects
        if M > 0:
            self._allocate_objects(host, E, N, M)

    def _allocate_objects(self, host, E: int, N: int, M: int) -> None:
        """The objects' arrays and the body scratch (B = N + M bodies), as ``core.world.World``'s."""
        from ..core import object_kernels as OK
        from . import object_kernels as gok

        self.ok = gok
        f32, g, B = np.float32, host.grid_size, N + M
        self.n_bodies = B
        for name in self.OBJECTS:
            setattr(self, name, to_device(getattr(host.objects, name[1:])))
        host._object_reach()
        self.ophys = to_device(host.ophys)                                    # [N_OPHYS] largest radius, g
        self.ostart = to_device(np.zeros((E, M, 2), f32))
        self.bpos = to_device(np.zeros((E, B, 2), f32))
        self.btmp = to_device(np.zeros((E, B, 2), f32))
        self.bstart = to_device(np.zeros((E, B, 2), f32))
        self.brad = to_device(np.zeros((E, B), np.float64))
        self.binv = to_device(np.zeros((E, B), np.float64))
        self.bactive = to_device(np.zeros((E, B), np.bool_))
        self.bcontact = to_device(np.zeros((E, B), np.bool_))
        self.bcell_start = to_device(np.zeros((E, g * g + 1), np.int32))
        self.bcell_fill = to_device(np.zeros((E, g * g), np.int32))
        self.bcell_items = to_device(np.zeros((E, B), np.int32))
        self.bcell = to_device(np.zeros((E, B), np.int32))                    # agent schedule: each body's cell
        self.bnbr = to_device(np.zeros((E, B, OK.MAX_BODY_CONTACTS), np.int32))
        self.bn_nbr = to_device(np.zeros((E, B), np.int32))
        self.bnear = to_device(np.zeros((E, B), np.int8))
        self.bislands = to_device(np.zeros((E, 4 * B + 2), np.int32))

    @property
    def schedule(self) -> str:
        """'world' (whole worlds per block) for worlds of at most ``kernels.BLOCK_MAX`` agents (bodies,
        with objects: robots and objects), else 'agent'."""
        if self.schedule_override is not None:
            return self.schedule_override
        return "world" if self._per_world() <= self.k.BLOCK_MAX else "agent"

    def _per_world(self) -> int:
        """Threads per world in the world schedule: a robot each, or a body each with objects."""
        return self.n_agents + self.n_objects

    def _world_blocks(self) -> tuple[int, int]:
        """(blocks, threads) of the world schedule: ``BLOCK_MAX // N`` whole worlds per block (one in
        the simulator, where each thread is a Python thread); N + M threads per world with objects."""
        b = self._per_world()
        per = self.worlds_per_block or (1 if simulated() else max(1, self.k.BLOCK_MAX // b))
        return (self.num_worlds + per - 1) // per, per * b

    def _agents(self, per_world: int | None = None) -> tuple[int, int]:
        """(blocks, threads) of a launch over ``per_world`` items (default: the robots) of every world."""
        total = self.num_worlds * (self.n_agents if per_world is None else per_world)
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

    def upload_objects(self) -> None:
        """Copy the host's objects (and their largest radius, ``ophys``) to the device."""
        self.host._object_reach()
        upload(self.ophys, self.host.ophys)
        for name in self.OBJECTS:
            upload(getattr(self, name), getattr(self.host.objects, name[1:]))

    def download_objects(self) -> None:
        """Copy the objects' positions and velocities back into the host's."""
        download(self.opos, self.host.objects.pos)
        download(self.ovel, self.host.objects.vel)

    # ------------------------------------------------------------------ the step
    def step(self, actions) -> None:
        """One step of every world; ``actions`` a device array [E, N, 2] in [-1, 1]."""
        if self.n_objects:
            self._step_with_objects(actions)
            return
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

    def _step_with_objects(self, actions) -> None:
        """``core.object_kernels``' step on the GPU (``gpu.object_kernels``): one launch in the world
        schedule, a launch per phase in the agent schedule."""
        ok, g, it = self.ok, self.grid_size, self.iterations
        if self.schedule == "world":
            ok.step_worlds[self._world_blocks()](
                actions, self.pos, self.vel, self.theta, self.omega, self.active, self.walls, self.n_walls,
                self.phys, self.ophys, g, it, self.ray_cs, self.start, self.moved, self.opos, self.ovel,
                self.oradius, self.omass, self.ofriction, self.oactive, self.ostart, self.bpos, self.btmp,
                self.bstart, self.brad, self.binv, self.bactive, self.bcontact, self.bcell_start, self.bcell_fill,
                self.bcell_items, self.bnbr, self.bn_nbr, self.bnear, self.bislands, self.cell_start,
                self.cell_fill, self.cell_items, self.lidar, self.contact)
            return
        robots, objects, bodies = self._agents(), self._agents(self.n_objects), self._agents(self.n_bodies)
        self.k.drive_all[robots](actions, self.pos, self.vel, self.theta, self.omega, self.active, self.phys,
                                 self.start, self.moved, self.contact)
        ok.predict_all[objects](self.opos, self.ovel, self.oactive, self.ostart, self.phys)
        ok.gather_all[bodies](self.pos, self.start, self.active, self.opos, self.ostart, self.oradius, self.omass,
                              self.oactive, self.phys, self.bpos, self.bstart, self.brad, self.binv, self.bactive,
                              self.bcontact)
        self._body_grid()
        ok.contacts_all[bodies](self.bpos, self.brad, self.bactive, self.walls, self.n_walls, self.phys, self.ophys,
                                g, self.bcell_start, self.bcell_items, self.bnbr, self.bn_nbr, self.bnear)
        ok.islands_all[self._agents(1)](self.bn_nbr, self.bnbr, self.bislands)
        ok.solve_all[bodies](self.bislands, it, self.bpos, self.btmp, self.brad, self.binv, self.walls,
                             self.n_walls, self.phys, self.bstart, self.bnbr, self.bn_nbr, self.bnear, self.bcontact)
        ok.friction_all[objects](self.n_agents, self.bpos, self.brad, self.opos, self.ovel, self.ostart, self.omass,
                                 self.ofriction, self.oactive, self.walls, self.n_walls, self.phys, self.ophys,
                                 self.bnbr, self.bn_nbr)
        ok.settle_all[robots](self.pos, self.vel, self.active, self.walls, self.n_walls, self.phys, self.start,
                              self.moved, self.bpos, self.opos, self.oradius, self.bnbr, self.bn_nbr, self.bcontact,
                              self.contact)
        ok.scatter_all[bodies](self.pos, self.opos, self.bpos)
        self._body_grid()
        self.build_grid()
        ok.lidar_all[robots](self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys, self.ophys, g,
                             self.bpos, self.brad, self.bcell_start, self.bcell_items, self.ray_cs, self.lidar)

    def _body_grid(self) -> None:
        self.build_grid(self.bpos, self.bactive, self.bcell_start, self.bcell_fill, self.bcell_items, self.bcell)

    def build_grid(self, pos=None, active=None, cell_start=None, cell_fill=None, cell_items=None,
                   item_cell=None) -> None:
        """Every world's grid from the current positions, in parallel (the agent schedule's build;
        the same CSR arrays as ``core.kernels.build_grid``): of the robots, or of the given items
        (pos [E, B, 2], active [E, B], the grid's arrays and each item's cell scratch [E, B])."""
        k = self.k
        if pos is None:
            pos, active, cell_fill, cell_items, item_cell = (self.pos, self.active, self.cell_fill,
                                                             self.cell_items, self.agent_cell)
            cell_start = self.cell_start
        cs = cell_start
        cells = cs.shape[0] * cs.shape[1]
        k.zero_int[(cells + THREADS - 1) // THREADS, THREADS](cs)
        blocks, threads = self._agents(pos.shape[1])
        k.grid_count[blocks, threads](pos, active, self.phys, self.grid_size, cs, item_cell)
        k.grid_scan[self.num_worlds, 32 if simulated() else k.SCAN_THREADS](cs, cell_fill)
        k.grid_scatter[blocks, threads](item_cell, cell_fill, cell_items)
        m = self.num_worlds * (cs.shape[1] - 1)
        k.grid_sort[(m + THREADS - 1) // THREADS, THREADS](cs, cell_items)

    def refresh_lidar(self, worlds=None) -> None:
        """Grid and lidar of the worlds where the device mask ``worlds`` [E] is True (default all)."""
        mask = self._all if worlds is None else worlds
        if self.n_objects:
            self._refresh_lidar_with_objects(mask)
            return
        if self.schedule == "world":
            self.k.lidar_worlds[self._world_blocks()](
                mask, self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys, self.grid_size,
                self.ray_cs, self.cell_start, self.cell_fill, self.cell_items, self.lidar)
            return
        self.build_grid()
        blocks, threads = self._agents()
        self.k.lidar_all[blocks, threads](self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys,
                                          self.grid_size, self.cell_start, self.cell_items, self.ray_cs, self.lidar)

    def _refresh_lidar_with_objects(self, mask) -> None:
        """``core.object_kernels.lidar_by_world`` on the GPU (and the robots' grid): the world schedule
        for the worlds in ``mask``; the agent schedule recasts every world (the same values where
        nothing moved)."""
        ok, g = self.ok, self.grid_size
        if self.schedule == "world":
            ok.lidar_worlds[self._world_blocks()](
                mask, self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys, self.ophys, g,
                self.ray_cs, self.opos, self.oradius, self.oactive, self.bpos, self.brad, self.bactive,
                self.bcell_start, self.bcell_fill, self.bcell_items, self.cell_start, self.cell_fill,
                self.cell_items, self.lidar)
            return
        ok.bodies_all[self._agents(self.n_bodies)](self.pos, self.active, self.opos, self.oradius, self.oactive,
                                                   self.phys, self.bpos, self.brad, self.bactive)
        self._body_grid()
        self.build_grid()
        ok.lidar_all[self._agents()](self.pos, self.theta, self.active, self.walls, self.n_walls, self.phys,
                                     self.ophys, g, self.bpos, self.brad, self.bcell_start, self.bcell_items,
                                     self.ray_cs, self.lidar)
