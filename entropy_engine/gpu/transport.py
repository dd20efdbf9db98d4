"""The transport scenario on the GPU: its CUDA drivers and ``TransportOnDevice`` (``gpu.env``'s adapter).

Resets and respawns (a thread per world: its random stream is sequential), the per-world phase (the
object's distance to the goal, success) and the per-robot phase (reward, statistics, observation)
are ``scenarios.transport_kernels``' njit functions compiled as device functions, each world with its
settings ``params[w]``. The objects are the device world's (``DeviceWorld.opos``, ...), moved by
``gpu.object_kernels``.
"""
from __future__ import annotations

import numpy as np

from ..scenarios import transport_kernels as tk
from .adapter import OnDevice
from .target import cuda, device, to_device

cu = cuda()
d_reset_world = device(tk.reset_world)
d_respawn_world = device(tk.respawn_world)
d_world_one = device(tk.world_one)
d_agent_one = device(tk.agent_one)


@cu.jit
def reset_worlds(mask, rng, params, pos, vel, theta, omega, active, opos, ovel, oactive, goal, gdist, done, walls,
                 n_walls, contact):
    """World ``w`` (a thread each) where ``mask[w]``: ``transport_kernels.reset_world``, the four border
    walls and no contacts (``Transport.reset``)."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        p = params[w]
        d_reset_world(w, rng, p, pos, vel, theta, omega, active, opos, ovel, oactive, goal, gdist, done)
        a = p[tk.P_ARENA]
        for k in range(4):   # (0, 0, a, 0), (a, 0, a, a), (a, a, 0, a), (0, a, 0, 0)
            walls[w, k, 0] = a if k == 1 or k == 2 else 0.0
            walls[w, k, 1] = a if k >= 2 else 0.0
            walls[w, k, 2] = a if k <= 1 else 0.0
            walls[w, k, 3] = a if k == 1 or k == 2 else 0.0
        n_walls[w] = 4
        for i in range(pos.shape[1]):
            contact[w, i] = False


@cu.jit
def respawn_worlds(mask, rng, params, pos, vel, theta, omega, active, opos, ovel, oactive, goal, gdist, done,
                   refresh):
    """World ``w`` (a thread each) with robots to respawn (``mask[w, i]``): ``respawn_world`` (a new task
    first if the object was delivered); marks the world in ``refresh``."""
    w = cu.grid(1)
    if w < pos.shape[0]:
        if d_respawn_world(w, mask, rng, params[w], pos, vel, theta, omega, active, opos, ovel, oactive, goal, gdist,
                           done):
            refresh[w] = True


@cu.jit
def world_phase(opos, goal, params, gdist, prev_gdist, done):
    w = cu.grid(1)
    if w < opos.shape[0]:
        d_world_one(w, opos, goal, params[w], gdist, prev_gdist, done)


@cu.jit
def agent_phase(mask, with_reward, pos, vel, theta, active, lidar, opos, ovel, goal, gdist, prev_gdist, done, params,
                gap, prev_contact, rew, stats, terminated, obs, delivered):
    """Per robot of the worlds where ``mask[w]``: ``transport_kernels.agent_one``; with ``with_reward`` also
    the ``delivered`` flag (the world's object reached the goal and the robot is in the world)."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        i = k % n
        if mask[w]:
            d_agent_one(w, i, with_reward, pos, vel, theta, active, lidar, opos, ovel, goal, gdist, prev_gdist, done,
                        params[w], gap, prev_contact, rew, stats, terminated, obs)
            if with_reward:
                delivered[w, i] = done[w] and active[w, i]


class TransportOnDevice(OnDevice):
    """The transport scenario's state on the GPU and its launches, for ``gpu.env.DeviceEnv``: the same
    arrays as ``scenarios.transport.Transport`` (copied from ``host`` once); the objects live in the
    device world."""

    def __init__(self, host, world, launch) -> None:
        super().__init__(host, world, launch)
        E, N = world.num_worlds, world.n_agents
        new = to_device
        self.goal = new(host.goal)
        self.gdist = new(host.gdist)
        self.prev_gdist = new(host._prev_gdist)
        self.done = new(host.done)
        self.gap = new(host.gap)
        self.delivered = new(np.zeros((E, N), np.bool_))
        self.info = {"collided": world.contact, "delivered": self.delivered}

    def reset(self, mask) -> None:
        w = self.world
        reset_worlds[self.launch.worlds()](mask, self.rng, self.params, w.pos, w.vel, w.theta, w.omega, w.active,
                                            w.opos, w.ovel, w.oactive, self.goal, self.gdist, self.done, w.walls,
                                            w.n_walls, w.contact)

    def respawn(self, mask, refresh) -> None:
        w = self.world
        respawn_worlds[self.launch.worlds()](mask, self.rng, self.params, w.pos, w.vel, w.theta, w.omega, w.active,
                                              w.opos, w.ovel, w.oactive, self.goal, self.gdist, self.done, refresh)

    def _agents(self, mask, with_reward: bool) -> None:
        w = self.world
        agent_phase[self.launch.agents()](mask, with_reward, w.pos, w.vel, w.theta, w.active, w.lidar, w.opos, w.ovel,
                                          self.goal, self.gdist, self.prev_gdist, self.done, self.params, self.gap,
                                          self.prev_contact, self.reward, self.stats, self.terminated, self.obs,
                                          self.delivered)

    def after_step(self) -> None:
        """``Transport.step`` after the physics: the world phase, then rewards and observations."""
        w = self.world
        world_phase[self.launch.worlds()](w.opos, self.goal, self.params, self.gdist, self.prev_gdist, self.done)
        self._agents(self._all, True)

    def observe(self, mask) -> None:
        """``Transport._refresh`` for the worlds where ``mask`` (their lidar was refreshed): observations
        without reward."""
        self._agents(mask, False)
