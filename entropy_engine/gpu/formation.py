"""The formation scenario on the GPU: its CUDA drivers and ``FormationOnDevice`` (``gpu.env``'s adapter).

Resets, the per-world phase (the reference's move and waypoint redraws, the slots, the optimal
matching: ``formation_kernels.hungarian`` on the scenario's preallocated scratch, a slice per world)
and the per-agent phase (reward, statistics, observation) are ``scenarios.formation_kernels``' njit
functions compiled as device functions, a thread per world for the first two and a thread per agent
for the last; the neighbour sensor is ``gpu.sensors.DeviceNeighbours`` and respawns
``gpu.spawn.respawn_clear``.
"""
from __future__ import annotations

import numpy as np

from ..scenarios import formation_kernels as fk
from .adapter import OnDevice
from .sensors import DeviceNeighbours
from .spawn import respawn_clear
from .target import cuda, device, to_device

cu = cuda()
d_reset_world = device(fk.reset_world)
d_world_one = device(fk.world_one)
d_agent_one = device(fk.agent_one)


@cu.jit
def reset_worlds(mask, rng, params, shape_off, shape_extent, pos, vel, theta, omega, active, shape, slot_off, margin, ref,
                 ref_heading, waypoint, walls, n_walls, contact, prev_contact):
    """World ``w`` (a thread each) where ``mask[w]``: ``formation_kernels.reset_world`` with its settings
    ``params[w]``, no contacts."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        d_reset_world(w, rng, params[w], shape_off, shape_extent, pos, vel, theta, omega, active, shape, slot_off,
                      margin, ref, ref_heading, waypoint, walls, n_walls)
        for i in range(pos.shape[1]):
            contact[w, i] = False
            prev_contact[w, i] = False


@cu.jit
def world_phase(mask, move, pos, active, rng, params, margin, slot_off, ref, ref_heading, ref_vel, waypoint, slots, assign,
                match_d, formed, cost, u, v, pp, way, minv, used, rows, row_col):
    """World ``w`` (a thread each) where ``mask[w]``: ``formation_kernels.world_one`` (with ``move`` after a
    physics step: the reference moves)."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        d_world_one(w, move, pos, active, rng, params[w], margin, slot_off, ref, ref_heading, ref_vel, waypoint, slots,
                    assign, match_d, formed, cost, u, v, pp, way, minv, used, rows, row_col)


@cu.jit
def agent_phase(mask, with_reward, pos, vel, theta, active, contact, prev_contact, lidar, nb, shape, ref, ref_vel,
                slots, assign, match_d, formed, params, rew, stats, obs):
    """Per agent of the worlds where ``mask[w]``: ``formation_kernels.agent_one``."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n and mask[k // n]:
        w = k // n
        d_agent_one(w, k % n, with_reward, pos, vel, theta, active, contact, prev_contact, lidar, nb, shape, ref,
                    ref_vel, slots, assign, match_d, formed, params[w], rew, stats, obs)


class FormationOnDevice(OnDevice):
    """The formation scenario's state on the GPU and its launches, for ``gpu.env.DeviceEnv``: the same
    arrays as ``scenarios.formation.Formation``, its matching scratch and neighbour sensor (copied once)."""

    def __init__(self, host, world, launch) -> None:
        super().__init__(host, world, launch)
        E, N = world.num_worlds, world.n_agents
        new = to_device
        p = host._params[0]     # arena, radius and spacing: the same in every world
        self.arena, self.edge, self.spacing = float(p[fk.P_ARENA]), float(p[fk.P_RADIUS]) + 0.05, float(p[fk.P_SPACING])
        for name in ("shape_off", "shape_extent", "shape", "slot_off", "margin", "ref", "ref_heading", "ref_vel",
                     "waypoint", "slots", "assign", "match_d", "formed"):
            setattr(self, name, new(getattr(host, name)))
        self.scratch = tuple(new(a) for a in host._scratch)   # cost, u, v, pp, way, minv, used, rows, row_col
        self.nb = DeviceNeighbours(host.sensor)
        self.info = {"collided": world.contact, "slot": self.assign}
        self.respawned = new(np.zeros((E, N), np.bool_))   # robots respawned since the episode began

    def reset(self, mask) -> None:
        w = self.world
        reset_worlds[self.launch.worlds()](mask, self.rng, self.params, self.shape_off, self.shape_extent, w.pos, w.vel,
                                            w.theta, w.omega, w.active, self.shape, self.slot_off, self.margin,
                                            self.ref, self.ref_heading, self.waypoint, w.walls, w.n_walls, w.contact,
                                            self.prev_contact)

    def respawn(self, mask, refresh) -> None:
        w = self.world
        respawn_clear[self.launch.worlds()](mask, self.rng, self.arena, self.edge, self.spacing, w.pos, w.vel, w.theta,
                                            w.omega, w.active, self.prev_contact, self.respawned, refresh)

    def _phases(self, mask, move: bool) -> None:
        w = self.world
        self.nb.sense(w, self.launch)
        world_phase[self.launch.worlds()](mask, move, w.pos, w.active, self.rng, self.params, self.margin,
                                          self.slot_off, self.ref, self.ref_heading, self.ref_vel, self.waypoint,
                                          self.slots, self.assign, self.match_d, self.formed, *self.scratch)
        agent_phase[self.launch.agents()](mask, move, w.pos, w.vel, w.theta, w.active, w.contact, self.prev_contact,
                                          w.lidar, self.nb.out, self.shape, self.ref, self.ref_vel, self.slots,
                                          self.assign, self.match_d, self.formed, self.params, self.reward,
                                          self.stats, self.obs)

    def after_step(self) -> None:
        """``Formation.step`` after the physics: neighbours, the reference's move and the matching, rewards
        and observations."""
        self._phases(self._all, True)

    def observe(self, mask) -> None:
        """``Formation._refresh`` for the worlds where ``mask`` (after their lidar and grid were refreshed):
        neighbours, the matching with the reference at rest, observations without reward."""
        self._phases(mask, False)
