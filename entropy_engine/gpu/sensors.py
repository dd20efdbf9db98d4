"""CUDA drivers of the shared sensors: the neighbour sensor (``core.neighbours``), a thread per agent."""
from __future__ import annotations

from ..core import neighbours as nb
from .target import cuda, device

cu = cuda()
d_agent_neighbours = device(nb._agent_neighbours)


@cu.jit
def neighbours(pos, vel, theta, active, attrs, sense_range, inv_speed, cell, g, cell_start, cell_items, best_d2,
               best_j, out):
    """``core.neighbours.neighbours_by_agent`` on the GPU (the same per-agent function, the same arrays)."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        i = k % n
        d_agent_neighbours(w, i, pos, vel, theta, active, attrs, sense_range, inv_speed, cell, g, cell_start,
                           cell_items, best_d2[w, i], best_j, out)


class DeviceNeighbours:
    """A ``core.neighbours.NeighbourSensor``'s arrays on the GPU (``out``, ``indices``, its scratch) and
    its launch over the world's current grid. ``attributes``: the sensor's attribute columns, a fixed
    float32 array [E, N, A] copied once (``A = sensor.n_attributes``; None when A is 0)."""

    def __init__(self, sensor, attributes=None) -> None:
        import numpy as np

        from ..core.kernels import CELL, V_MAX
        from .target import to_device

        self.out = to_device(sensor.out)
        self.indices = to_device(sensor.indices)
        self.best_d2 = to_device(sensor._best_d2)
        if attributes is None:
            attributes = sensor._no_attrs
        want = sensor._no_attrs.shape[:2] + (sensor.n_attributes,)
        if np.shape(attributes) != want:
            raise ValueError(f"attributes must have shape {want}, got {np.shape(attributes)}")
        self.attrs = to_device(np.ascontiguousarray(attributes, np.float32))
        self.sense_range = float(sensor.sense_range)
        self.inv_speed = 1.0 / float(sensor.world.phys[V_MAX])
        self.cell = float(sensor.world.phys[CELL])

    def sense(self, world, launch) -> None:
        """Every robot's neighbours from ``world``'s (a ``DeviceWorld``) current grid; ``launch`` (a
        ``gpu.env.Launch``) must cover every robot of the world, scripted ones included."""
        neighbours[launch.agents()](world.pos, world.vel, world.theta, world.active, self.attrs, self.sense_range,
                                    self.inv_speed, self.cell, world.grid_size, world.cell_start, world.cell_items,
                                    self.best_d2, self.indices, self.out)
