"""The aggregation scenario on the GPU: its CUDA drivers and ``AggregationOnDevice`` (``gpu.env``'s adapter).

Resets, respawns, the per-world phase (clusters by union-find over the grid, centroid, largest
cluster) and the per-agent phase (coarse cue, reward, statistics, observation) are
``scenarios.aggregation_kernels``' njit functions compiled as device functions; the neighbour
sensor is ``gpu.sensors.neighbours``.
"""
from __future__ import annotations

import numpy as np

from ..scenarios import aggregation_kernels as ak
from .sensors import DeviceNeighbours
from .spawn import respawn_clear
from .adapter import OnDevice
from .target import cuda, device, to_device

cu = cuda()
d_reset_world = device(ak.reset_world)
d_world_one = device(ak.world_one)
d_agent_one = device(ak.agent_one)


@cu.jit
def reset_worlds(mask, rng, params, side, pos, vel, theta, omega, active, order, walls, n_walls, contact,
                 prev_contact, fresh):
    """World ``w`` (a thread each) where ``mask[w]``: ``aggregation_kernels.reset_world`` with its settings
    ``params[w]``, no contacts, every agent's episode fresh."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        d_reset_world(w, rng, params[w], side, pos, vel, theta, omega, active, order, walls, n_walls)
        for i in range(pos.shape[1]):
            contact[w, i] = False
            prev_contact[w, i] = False
            fresh[w, i] = True


@cu.jit
def world_phase(mask, pos, active, cell_start, cell_items, g, params, parent, size, label, n_active, largest,
                centroid):
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        d_world_one(w, pos, active, cell_start, cell_items, g, params[w], parent, size, label, n_active, largest,
                    centroid)


@cu.jit
def agent_phase(mask, with_reward, fresh, pos, vel, theta, active, contact, prev_contact, lidar, nb, cell_start,
                cell_items, g, label, size, n_active, largest, centroid, params, last, frac_own, rew, stats, obs):
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n and mask[k // n]:
        d_agent_one(k // n, k % n, with_reward, fresh, pos, vel, theta, active, contact, prev_contact, lidar, nb,
                    cell_start, cell_items, g, label, size, n_active, largest, centroid, params[k // n], last,
                    frac_own, rew, stats, obs)


class AggregationOnDevice(OnDevice):
    """The aggregation scenario's state on the GPU and its launches, for ``gpu.env.DeviceEnv``: the same
    arrays as ``scenarios.aggregation.Aggregation`` and its neighbour sensor (copied from ``host`` once)."""

    def __init__(self, host, world, launch) -> None:
        super().__init__(host, world, launch)
        E, N = world.num_worlds, world.n_agents
        new = to_device
        p = host._params[0]     # arena, radius and spacing: the same in every world
        self.arena, self.edge, self.spacing = float(p[ak.P_ARENA]), float(p[ak.P_RADIUS]) + 0.05, float(p[ak.P_SPACING])
        self.side = int(host._side)
        self.label = new(host.label)
        self.size = new(host.size)
        self.n_active = new(host.n_active)
        self.largest = new(host.largest)
        self.centroid = new(host.centroid)
        self.parent = new(host._parent)
        self.last = new(host._last)
        self.fresh = new(host._fresh)
        self.order = new(host._order)
        self.nb = DeviceNeighbours(host.sensor)
        self.frac_own = new(np.zeros((E, N), np.float32))
        self.info = {"collided": world.contact, "cluster_fraction": self.frac_own}

    def reset(self, mask) -> None:
        w = self.world
        reset_worlds[self.launch.worlds()](mask, self.rng, self.params, self.side, w.pos, w.vel, w.theta, w.omega,
                                            w.active, self.order, w.walls, w.n_walls, w.contact, self.prev_contact,
                                            self.fresh)


    def respawn(self, mask, refresh) -> None:
        w = self.world
        respawn_clear[self.launch.worlds()](mask, self.rng, self.arena, self.edge, self.spacing, w.pos, w.vel, w.theta,
                                            w.omega, w.active, self.prev_contact, self.fresh, refresh)

    def _sense_and_score(self, mask, with_reward: bool) -> None:
        """``Aggregation._sense_and_score`` (the grid is current: built by the step or the lidar refresh)."""
        w = self.world
        self.nb.sense(w, self.launch)
        world_phase[self.launch.worlds()](mask, w.pos, w.active, w.cell_start, w.cell_items, w.grid_size,
                                          self.params, self.parent, self.size, self.label, self.n_active,
                                          self.largest, self.centroid)
        agent_phase[self.launch.agents()](mask, with_reward, self.fresh, w.pos, w.vel, w.theta, w.active, w.contact,
                                          self.prev_contact, w.lidar, self.nb.out, w.cell_start, w.cell_items,
                                          w.grid_size, self.label, self.size, self.n_active, self.largest,
                                          self.centroid, self.params, self.last, self.frac_own, self.reward,
                                          self.stats, self.obs)

    def after_step(self) -> None:
        self._sense_and_score(self._all, True)

    def observe(self, mask) -> None:
        self._sense_and_score(mask, False)
