"""The foraging scenario on the GPU: its CUDA drivers and ``ForagingOnDevice`` (``gpu.env``'s adapter).

``Foraging``'s order of operations, per world or per agent, from the same njit functions compiled as
device functions: a reset (a thread per world) draws the nest and the robots' lattice spawns
(``foraging_kernels.reset_world``), sets the border walls, clears contacts, builds the world's agent
grid and scatters the items (``core.items.scatter_world``); a respawn (a thread per world) first puts
back what the respawned robots carry (``core.items.release_world``, over the grid the step left),
then restarts them (``core.spawn.respawn_clear``); after a physics step the items are carried,
delivered and picked up (``gpu.items``, a thread per world), sensed and scored (a thread per agent:
``core.items.sense_one``, ``foraging_kernels.agent_one``).
"""
from __future__ import annotations

from types import SimpleNamespace

from ..core import kernels as K
from ..core import spawn
from ..scenarios import foraging_kernels as fk
from .adapter import OnDevice
from .items import DeviceItems, d_release_world, d_scatter_world
from .target import cuda, device, to_device

cu = cuda()
d_reset_world = device(fk.reset_world)
d_agent_one = device(fk.agent_one)
d_border_walls = device(spawn.border_walls)
d_respawn_clear = device(spawn.respawn_clear)
d_build_grid = device(K.build_grid)


@cu.jit
def reset_worlds(mask, rng, params, side, n_items, pos, vel, theta, omega, active, order, nest_pos, nest_radius,
                 nest_active, walls, n_walls, contact, prev_contact, phys, g, cell_start, cell_fill, cell_items,
                 item_p, item_pos, present, carrier, free, load, item_start, item_fill, item_cells):
    """World ``w`` (a thread each) where ``mask[w]``, as ``Foraging.reset``: ``foraging_kernels.reset_world``
    with its settings ``params[w]``, the border walls, no contacts, the world's agent grid of the new
    positions, then ``core.items.scatter_world`` (``n_items`` items placed clear, nobody carrying)."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        p = params[w]
        d_reset_world(w, rng, p, side, pos, vel, theta, omega, active, order, nest_pos)
        d_border_walls(w, p[fk.P_ARENA], walls, n_walls)
        for i in range(pos.shape[1]):
            contact[w, i] = False
            prev_contact[w, i] = False
        d_build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
        d_scatter_world(w, n_items, rng, item_p, item_pos, present, carrier, free, load, pos, active, g, cell_start,
                        cell_items, nest_pos, nest_radius, nest_active, item_start, item_fill, item_cells)


@cu.jit
def respawn_worlds(mask, rng, params, pos, vel, theta, omega, active, prev_contact, g, cell_start, cell_items,
                   nest_pos, nest_radius, nest_active, item_p, item_pos, present, carrier, free, load, item_start,
                   item_fill, item_cells, refresh):
    """World ``w`` (a thread each) with robots to respawn (``mask[w, i]``), as ``Foraging.respawn``: what
    they carry goes back to clear places (``core.items.release_world``, over the world's current grid),
    then ``core.spawn.respawn_clear`` restarts them, their contact memory cleared; the world is marked
    in ``refresh`` (its lidar, item sensor and observations are recomputed)."""
    w = cu.grid(1)
    if w >= pos.shape[0]:
        return
    any_ = False
    for i in range(pos.shape[1]):
        if mask[w, i]:
            any_ = True
    if not any_:
        return
    d_release_world(w, mask, rng, item_p, item_pos, present, carrier, free, load, pos, active, g, cell_start,
                    cell_items, nest_pos, nest_radius, nest_active, item_start, item_fill, item_cells)
    p = params[w]
    d_respawn_clear(w, mask, rng, p[fk.P_ARENA], p[fk.P_RADIUS] + 0.05, p[fk.P_SPACING], pos, vel, theta, omega,
                    active)
    for i in range(pos.shape[1]):
        if mask[w, i]:
            prev_contact[w, i] = False
    refresh[w] = True


@cu.jit
def agent_phase(mask, with_reward, pos, vel, theta, active, contact, prev_contact, lidar, sensed, sensed_index,
                item_pos, free, load, prev_load, delivered, picked, world_delivered, nest_pos, nest_radius, params,
                nest_dist, target, target_dist, rew, stats, obs):
    """Agent (w, i) (a thread each) of the worlds where ``mask[w]``: ``foraging_kernels.agent_one`` with
    its world's settings ``params[w]``."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        if mask[w]:
            d_agent_one(w, k % n, with_reward, pos, vel, theta, active, contact, prev_contact, lidar, sensed,
                        sensed_index, item_pos, free, load, prev_load, delivered, picked, world_delivered, nest_pos,
                        nest_radius, params[w], nest_dist, target, target_dist, rew, stats, obs)


class ForagingOnDevice(OnDevice):
    """The foraging scenario's state on the GPU and its launches, for ``gpu.env.DeviceEnv``: the same
    arrays as ``scenarios.foraging.Foraging``, its nest (a ``core.landmarks.Landmarks``) and its items
    (``gpu.items.DeviceItems``), copied from ``host`` once."""

    def __init__(self, host, world, launch) -> None:
        super().__init__(host, world, launch)
        new = to_device
        self.side = int(host._side)
        self.n_items = int(host.config.n_items)
        self.order = new(host._order)
        self.nest = SimpleNamespace(pos=new(host.nest.pos), radius=new(host.nest.radius),
                                    active=new(host.nest.active))
        self.items = DeviceItems(host.items)
        for name in ("prev_load", "nest_dist", "target", "target_dist"):
            setattr(self, name, new(getattr(host, name)))
        self.info = {"collided": world.contact, "delivered": self.items.delivered, "carrying": self.items.load}

    def reset(self, mask) -> None:
        w, it, nest = self.world, self.items, self.nest
        reset_worlds[self.launch.worlds()](mask, self.rng, self.params, self.side, self.n_items, w.pos, w.vel, w.theta,
                                            w.omega, w.active, self.order, nest.pos, nest.radius, nest.active, w.walls,
                                            w.n_walls, w.contact, self.prev_contact, w.phys, w.grid_size, w.cell_start,
                                            w.cell_fill, w.cell_items, it.params, it.pos, it.present, it.carrier,
                                            it.free, it.load, it.start, it.fill, it.cells)

    def respawn(self, mask, refresh) -> None:
        w, it, nest = self.world, self.items, self.nest
        respawn_worlds[self.launch.worlds()](mask, self.rng, self.params, w.pos, w.vel, w.theta, w.omega, w.active,
                                              self.prev_contact, w.grid_size, w.cell_start, w.cell_items, nest.pos,
                                              nest.radius, nest.active, it.params, it.pos, it.present, it.carrier,
                                              it.free, it.load, it.start, it.fill, it.cells, refresh)

    def _agents(self, mask, with_reward: bool) -> None:
        w, it = self.world, self.items
        agent_phase[self.launch.agents()](mask, with_reward, w.pos, w.vel, w.theta, w.active, w.contact,
                                          self.prev_contact, w.lidar, it.sensed, it.sensed_index, it.pos, it.free,
                                          it.load, self.prev_load, it.delivered, it.picked, it.world_delivered,
                                          self.nest.pos, self.nest.radius, self.params, self.nest_dist, self.target,
                                          self.target_dist, self.reward, self.stats, self.obs)

    def after_step(self) -> None:
        """``Foraging.step`` after the physics: loads kept, items updated over the step's grid, sensed, scored."""
        self.items.update(self.rng, self.nest, self.world, self.launch, self.prev_load)
        self.items.sense(self._all, self.world, self.launch)
        self._agents(self._all, True)

    def observe(self, mask) -> None:
        """``Foraging._refresh`` for the worlds where ``mask`` (after their lidar and grid were refreshed):
        the item sensor, observations without reward."""
        self.items.sense(mask, self.world, self.launch)
        self._agents(mask, False)

