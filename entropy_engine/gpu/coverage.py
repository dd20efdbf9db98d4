"""The coverage scenario on the GPU: its CUDA drivers and ``CoverageOnDevice`` (``gpu.env``'s adapter).

Resets (landmarks, then robots), respawns, the per-world phase (each landmark's nearest and
second-nearest robot, occupancy, contributions) and the per-agent phase (reward, statistics, the
nearest landmarks and the neighbour slots of the observation) are ``scenarios.coverage_kernels``'
njit functions compiled as device functions; the neighbour sensor is ``gpu.sensors.DeviceNeighbours`` and respawns ``gpu.spawn.respawn_clear``.
"""
from __future__ import annotations

import numpy as np

from ..scenarios import coverage_kernels as ck
from .sensors import DeviceNeighbours
from .spawn import respawn_clear
from .adapter import OnDevice
from .target import cuda, device, to_device

cu = cuda()
d_reset_world = device(ck.reset_world)
d_world_one = device(ck.world_one)
d_agent_one = device(ck.agent_one)


@cu.jit
def reset_worlds(mask, rng, params, pos, vel, theta, omega, active, lm_pos, lm_radius, lm_active, walls, n_walls,
                 contact, prev_contact, t):
    """World ``w`` (a thread each) where ``mask[w]``: ``coverage_kernels.reset_world`` with its settings
    ``params[w]``, no contacts, t = 0."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        d_reset_world(w, rng, params[w], pos, vel, theta, omega, active, lm_pos, lm_radius, lm_active, walls, n_walls)
        for i in range(pos.shape[1]):
            contact[w, i] = False
            prev_contact[w, i] = False
        t[w] = 0


@cu.jit
def world_phase(mask, step, pos, active, lm_pos, lm_radius, lm_active, params, d1, j1, d2, occupied, mean_d,
                prev_mean_d, frac, prev_frac, owner, contrib, t, first):
    """Per world where ``mask[w]``: with ``step`` (after a physics step) t += 1, ``first`` and the
    values before the step kept; then ``coverage_kernels.world_one``."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        if step:
            t[w] += 1
            first[w] = t[w] == 1
            prev_mean_d[w] = mean_d[w]
            prev_frac[w] = frac[w]
        d_world_one(w, pos, active, lm_pos, lm_radius, lm_active, params[w], d1, j1, d2, occupied, mean_d, frac, owner,
                    contrib)


@cu.jit
def agent_phase(mask, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, lm_pos, lm_active,
                d1, j1, d2, occupied, mean_d, prev_mean_d, frac, prev_frac, owner, contrib, params, best_d2, best_l,
                rew, stats, obs, on_landmark):
    """Per agent of the worlds where ``mask[w]``: ``coverage_kernels.agent_one``; with ``with_reward``
    also the ``on_landmark`` flag (the robot is the nearest one on an occupied landmark)."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n and mask[k // n]:
        w = k // n
        i = k % n
        d_agent_one(w, i, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, lm_pos,
                    lm_active, d1, j1, d2, occupied, mean_d, prev_mean_d, frac, prev_frac, owner, contrib, params[w],
                    best_d2, best_l, rew, stats, obs)
        if with_reward:
            on_landmark[w, i] = owner[w, i] > 0


class CoverageOnDevice(OnDevice):
    """The coverage scenario's state on the GPU and its launches, for ``gpu.env.DeviceEnv``: the same
    arrays as ``scenarios.coverage.Coverage``, its landmarks and neighbour sensor (copied once)."""

    def __init__(self, host, world, launch) -> None:
        super().__init__(host, world, launch)
        E, N = world.num_worlds, world.n_agents
        new = to_device
        p = host._params[0]     # arena, radius and spacing: the same in every world
        self.arena, self.edge, self.spacing = float(p[ck.P_ARENA]), float(p[ck.P_RADIUS]) + 0.05, float(p[ck.P_SPACING])
        lm = host.landmarks
        self.lm_pos, self.lm_radius, self.lm_active = new(lm.pos), new(lm.radius), new(lm.active)
        for name in ("d1", "j1", "d2", "occupied", "owner", "contrib", "mean_d", "prev_mean_d", "frac", "prev_frac",
                     "t"):
            setattr(self, name, new(getattr(host, name)))
        self.first = new(host._first)
        self.best_d2 = new(host._best_d2)
        self.best_l = new(host._best_l)
        self.nb = DeviceNeighbours(host.sensor)
        self.on_landmark = new(np.zeros((E, N), np.bool_))
        self.info = {"collided": world.contact, "on_landmark": self.on_landmark}
        self.respawned = new(np.zeros((E, N), np.bool_))   # robots respawned since the episode began

    def reset(self, mask) -> None:
        w = self.world
        reset_worlds[self.launch.worlds()](mask, self.rng, self.params, w.pos, w.vel, w.theta, w.omega, w.active,
                                            self.lm_pos, self.lm_radius, self.lm_active, w.walls, w.n_walls,
                                            w.contact, self.prev_contact, self.t)


    def respawn(self, mask, refresh) -> None:
        w = self.world
        respawn_clear[self.launch.worlds()](mask, self.rng, self.arena, self.edge, self.spacing, w.pos, w.vel, w.theta,
                                            w.omega, w.active, self.prev_contact, self.respawned, refresh)

    def _phases(self, mask, step: bool) -> None:
        w = self.world
        self.nb.sense(w, self.launch)
        world_phase[self.launch.worlds()](mask, step, w.pos, w.active, self.lm_pos, self.lm_radius, self.lm_active,
                                          self.params, self.d1, self.j1, self.d2, self.occupied, self.mean_d,
                                          self.prev_mean_d, self.frac, self.prev_frac, self.owner, self.contrib,
                                          self.t, self.first)
        agent_phase[self.launch.agents()](mask, step, self.first, w.pos, w.vel, w.theta, w.active, w.contact,
                                          self.prev_contact, w.lidar, self.nb.out, self.lm_pos, self.lm_active,
                                          self.d1, self.j1, self.d2, self.occupied, self.mean_d, self.prev_mean_d,
                                          self.frac, self.prev_frac, self.owner, self.contrib, self.params,
                                          self.best_d2, self.best_l, self.reward, self.stats, self.obs,
                                          self.on_landmark)

    def after_step(self) -> None:
        """``Coverage.step`` after the physics."""
        self._phases(self._all, True)

    def observe(self, mask) -> None:
        """``Coverage._refresh`` for the worlds where ``mask``."""
        self._phases(mask, False)
