"""The flocking scenario on the GPU: its CUDA drivers and ``FlockingOnDevice`` (``gpu.env``'s adapter).

Resets, respawns, the per-world phase (centroid, polarisation, waypoint test and redraw) and the
per-agent phase (reward, statistics, observation) are ``scenarios.flocking_kernels``' njit functions
compiled as device functions; the neighbour sensor is ``gpu.sensors.DeviceNeighbours`` and respawns ``gpu.spawn.respawn_clear``.
"""
from __future__ import annotations

import numpy as np

from ..scenarios import flocking_kernels as fk
from .sensors import DeviceNeighbours
from .spawn import respawn_clear
from .adapter import OnDevice
from .target import cuda, device, to_device

cu = cuda()
d_reset_world = device(fk.reset_world)
d_world_one = device(fk.world_one)
d_agent_one = device(fk.agent_one)


@cu.jit
def reset_worlds(mask, rng, params, side, pos, vel, theta, omega, active, waypoint, order, walls, n_walls, contact,
                 prev_contact, t):
    """World ``w`` (a thread each) where ``mask[w]``: ``flocking_kernels.reset_world`` with its settings
    ``params[w]``, no contacts, t = 0."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        d_reset_world(w, rng, params[w], side, pos, vel, theta, omega, active, waypoint, order, walls, n_walls)
        for i in range(pos.shape[1]):
            contact[w, i] = False
            prev_contact[w, i] = False
        t[w] = 0


@cu.jit
def world_phase(mask, step, pos, theta, active, rng, params, centroid, polar, reached, waypoint, prev_wp, t, first):
    """Per world where ``mask[w]``: with ``step`` (after a physics step) t += 1 and ``first``, and a
    reached waypoint is redrawn; then ``flocking_kernels.world_one``."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        if step:
            t[w] += 1
            first[w] = t[w] == 1
        d_world_one(w, pos, theta, active, rng, params[w], step, centroid, polar, reached, waypoint, prev_wp)


@cu.jit
def agent_phase(mask, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, nb_idx,
                centroid, polar, reached, prev_wp, waypoint, params, dist, min_nn, rew, stats, obs, wp_flag):
    """Per agent of the worlds where ``mask[w]``: ``flocking_kernels.agent_one``; with ``with_reward`` also
    the ``waypoint_reached`` flag (the group reached its waypoint and the robot is in the world)."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        i = k % n
        if mask[w]:
            d_agent_one(w, i, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, nb_idx,
                        centroid, polar, reached, prev_wp, waypoint, params[w], dist, min_nn, rew, stats, obs)
            if with_reward:
                wp_flag[w, i] = reached[w] and active[w, i]


class FlockingOnDevice(OnDevice):
    """The flocking scenario's state on the GPU and its launches, for ``gpu.env.DeviceEnv``: the same
    arrays as ``scenarios.flocking.Flocking`` and its neighbour sensor (copied from ``host`` once)."""

    def __init__(self, host, world, launch) -> None:
        super().__init__(host, world, launch)
        E, N = world.num_worlds, world.n_agents
        new = to_device
        p = host._params[0]     # arena, radius and spacing: the same in every world
        self.arena, self.edge, self.spacing = float(p[fk.P_ARENA]), float(p[fk.P_RADIUS]) + 0.05, float(p[fk.P_SPACING])
        self.side = int(host._side)
        self.waypoint = new(host.waypoint)
        self.prev_wp = new(host._prev_wp)
        self.centroid = new(host.centroid)
        self.polar = new(host.polar)
        self.reached = new(host.reached)
        self.dist = new(host.dist)
        self.min_nn = new(host.min_nn)
        self.t = new(host.t)
        self.first = new(host._first)
        self.order = new(host._order)
        self.nb = DeviceNeighbours(host.sensor)
        self.wp_flag = new(np.zeros((E, N), np.bool_))
        self.info = {"collided": world.contact, "waypoint_reached": self.wp_flag}
        self.respawned = new(np.zeros((E, N), np.bool_))   # robots respawned since the episode began

    def reset(self, mask) -> None:
        w = self.world
        reset_worlds[self.launch.worlds()](mask, self.rng, self.params, self.side, w.pos, w.vel, w.theta, w.omega,
                                            w.active, self.waypoint, self.order, w.walls, w.n_walls, w.contact,
                                            self.prev_contact, self.t)


    def respawn(self, mask, refresh) -> None:
        w = self.world
        respawn_clear[self.launch.worlds()](mask, self.rng, self.arena, self.edge, self.spacing, w.pos, w.vel, w.theta,
                                            w.omega, w.active, self.prev_contact, self.respawned, refresh)

    def _sense(self) -> None:
        w = self.world
        self.nb.sense(w, self.launch)

    def _phases(self, mask, step: bool) -> None:
        w = self.world
        world_phase[self.launch.worlds()](mask, step, w.pos, w.theta, w.active, self.rng, self.params, self.centroid,
                                          self.polar, self.reached, self.waypoint, self.prev_wp, self.t, self.first)
        agent_phase[self.launch.agents()](mask, step, self.first, w.pos, w.vel, w.theta, w.active, w.contact,
                                          self.prev_contact, w.lidar, self.nb.out, self.nb.indices, self.centroid,
                                          self.polar, self.reached, self.prev_wp, self.waypoint, self.params,
                                          self.dist, self.min_nn, self.reward, self.stats, self.obs, self.wp_flag)

    def after_step(self) -> None:
        """``Flocking.step`` after the physics: neighbours (the step's grid is current), both phases."""
        self._sense()
        self._phases(self._all, True)

    def observe(self, mask) -> None:
        """``Flocking._refresh`` for the worlds where ``mask`` (after their lidar and grid were refreshed):
        neighbours, the world phase without redraw, observations without reward."""
        self._sense()
        self._phases(mask, False)
