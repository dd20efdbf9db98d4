"""Items on the GPU (``core.items``): the carry / deliver / pick-up update and the item sensor.

``core.items``' per-world and per-agent functions (``update_world``, ``sense_one``; ``scatter_world``
and ``release_world`` for the scenario drivers that place and release items) compiled as device
functions; here their CUDA drivers (a thread per world for the update, whose items go in index order
and draw from the world's sequential random stream; a thread per agent for the sensor) and
``DeviceItems``, an ``Items`` container's arrays on the GPU.
"""
from __future__ import annotations

from ..core import items as it
from .target import cuda, device, to_device

cu = cuda()
d_scatter_world = device(it.scatter_world)
d_release_world = device(it.release_world)
d_update_world = device(it.update_world)
d_sense_one = device(it.sense_one)


@cu.jit
def update_worlds(rng, p, item_pos, present, carrier, free, load, prev_load, delivered, picked, world_delivered,
                  agent_pos, agent_active, g, cell_start, cell_items, nest_pos, nest_radius, nest_active, item_start,
                  item_fill, item_cells):
    """World ``w`` (a thread each): its agents' loads kept in ``prev_load``, then ``core.items.update_world``
    over the world's current agent grid."""
    w = cu.grid(1)
    if w < agent_pos.shape[0]:
        for i in range(agent_pos.shape[1]):
            prev_load[w, i] = load[w, i]
        d_update_world(w, rng, p, item_pos, present, carrier, free, load, delivered, picked, world_delivered,
                       agent_pos, agent_active, g, cell_start, cell_items, nest_pos, nest_radius, nest_active,
                       item_start, item_fill, item_cells)


@cu.jit
def sense(mask, pos, theta, active, item_pos, p, g, item_start, item_cells, d2buf, out_index, out):
    """Agent (w, i) (a thread each) of the worlds where ``mask[w]``: ``core.items.sense_one``."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        if mask[w]:
            d_sense_one(w, k % n, pos, theta, active, item_pos, p, g, item_start, item_cells, d2buf, out_index, out)


class DeviceItems:
    """A ``core.items.Items`` container's arrays on the GPU (copied from ``host`` once; the same names
    without the leading underscore for its grid and scratch) and the launches of its update and sensor."""

    ARRAYS = ("pos", "present", "carrier", "free", "load", "delivered", "picked", "world_delivered", "sensed",
              "sensed_index")

    def __init__(self, host) -> None:
        for name in self.ARRAYS:
            setattr(self, name, to_device(getattr(host, name)))
        self.start, self.fill, self.cells, self.d2 = (to_device(a) for a in (host._start, host._fill, host._cells,
                                                                             host._d2))
        self.params = to_device(host.params)   # [N_PARAMS] the same in every world

    def update(self, rng, nests, world, launch, prev_load) -> None:
        """``Items.update`` over ``world``'s (a ``DeviceWorld``) current grid; ``prev_load`` [E, N] gets
        the loads before it."""
        update_worlds[launch.worlds()](rng, self.params, self.pos, self.present, self.carrier, self.free, self.load,
                                       prev_load, self.delivered, self.picked, self.world_delivered, world.pos,
                                       world.active, world.grid_size, world.cell_start, world.cell_items, nests.pos,
                                       nests.radius, nests.active, self.start, self.fill, self.cells)

    def sense(self, mask, world, launch) -> None:
        """``Items.sense`` for the agents of the worlds where ``mask`` [E] (a device array)."""
        sense[launch.agents()](mask, world.pos, world.theta, world.active, self.pos, self.params, world.grid_size,
                               self.start, self.cells, self.d2, self.sensed_index, self.sensed)
