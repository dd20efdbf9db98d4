"""The pursuit scenario on the GPU: its CUDA drivers and ``PursuitOnDevice`` (``gpu.env``'s adapter).

Pursuit's world holds N pursuers (the learners, the env's slots) and M evaders (scripted robots,
``scenarios.scripted``) after them. Its step (``Pursuit.step``) is reproduced in the same order:
before the physics (``world_actions``) the evaders captured in the last step reappear
(``pursuit_kernels.respawn_captured_world``, a thread per world), the neighbour sensor runs (every
robot, over the grid of the current positions: rebuilt for the worlds where an evader moved, or for
every world in the agent schedule; the CPU senses only when one moved, which gives the same result
since the sensor is otherwise current),
the evaders' policy writes their wheel powers (``evader_world``, a thread per world: its random
draws are sequential) and the pursuers' actions are copied in times ``pursuer_power``; after the
physics (``after_step``) the sensor, ``detect_world`` (a thread per world) and ``agent_one`` (a
thread per pursuer: reward, statistics, observation). The neighbour sensor is
``gpu.sensors.DeviceNeighbours`` with the evader flag (``ScriptedRobots.kind``) as its attribute.
"""
from __future__ import annotations

import numpy as np

from ..core import spawn
from ..scenarios import pursuit_kernels as pk
from .adapter import OnDevice
from .sensors import DeviceNeighbours
from .target import cuda, device, to_device

cu = cuda()
d_reset_world = device(pk.reset_world)
d_border_walls = device(spawn.border_walls)
d_respawn_world = device(pk.respawn_world)
d_respawn_captured_world = device(pk.respawn_captured_world)
d_evader_world = device(pk.evader_world)
d_detect_world = device(pk.detect_world)
d_agent_one = device(pk.agent_one)


@cu.jit
def reset_worlds(mask, rng, params, pos, vel, theta, omega, active, captured, caps_total, walls, n_walls, contact,
                 prev_contact):
    """World ``w`` (a thread each) where ``mask[w]``: ``pursuit_kernels.reset_world`` with its settings
    ``params[w]``, the four border walls, no contacts (``Pursuit.reset``)."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        d_reset_world(w, rng, params[w], pos, vel, theta, omega, active, captured, caps_total)
        d_border_walls(w, params[w, pk.P_ARENA], walls, n_walls)
        for i in range(pos.shape[1]):
            contact[w, i] = False
        for i in range(prev_contact.shape[1]):
            prev_contact[w, i] = False


@cu.jit
def respawn_pursuers(mask, rng, params, pos, vel, theta, omega, active, prev_contact, refresh):
    """World ``w`` (a thread each) with pursuers to respawn (``mask[w, i]``, [E, N]):
    ``pursuit_kernels.respawn_world``, their contact memory cleared; the world is marked in ``refresh``."""
    w = cu.grid(1)
    if w >= pos.shape[0]:
        return
    any_ = False
    for i in range(mask.shape[1]):
        if mask[w, i]:
            any_ = True
            prev_contact[w, i] = False
    if any_:
        d_respawn_world(w, mask, rng, params[w], pos, vel, theta, omega, active)
        refresh[w] = True


@cu.jit
def respawn_captured(rng, params, pos, vel, theta, omega, active, captured, moved, moved_world):
    """World ``w`` (a thread each): ``pursuit_kernels.respawn_captured_world``; ``moved_world[w]``: an
    evader of the world reappeared (its grid must be rebuilt before sensing)."""
    w = cu.grid(1)
    if w < pos.shape[0]:
        moved_world[w] = d_respawn_captured_world(w, rng, params[w], pos, vel, theta, omega, active, captured, moved)


@cu.jit
def evader_actions(first, rng, params, pos, theta, active, nb_idx, actions):
    """World ``w`` (a thread each): ``pursuit_kernels.evader_world`` (rows ``first ..`` of ``actions``)."""
    w = cu.grid(1)
    if w < pos.shape[0]:
        d_evader_world(w, first, rng, params[w], pos, theta, active, nb_idx, actions)


@cu.jit
def pursuer_actions(scale, src, dst):
    """Pursuer (w, i) per thread: dst[w, i, :2] = src[w, i, :2] * scale (``ScriptedRobots.world_actions``;
    ``scale`` is the float32 ``pursuer_power``, so the product rounds as the CPU's float32 one)."""
    k = cu.grid(1)
    n = src.shape[1]
    if k < src.shape[0] * n:
        w = k // n
        i = k % n
        dst[w, i, 0] = src[w, i, 0] * scale
        dst[w, i, 1] = src[w, i, 1] * scale


@cu.jit
def detect_captures(first, params, pos, active, captured, hits, caps_now, caps_total, first_flag):
    """World ``w`` (a thread each): ``pursuit_kernels.detect_world``."""
    w = cu.grid(1)
    if w < pos.shape[0]:
        d_detect_world(w, first, params[w], pos, active, captured, hits, caps_now, caps_total, first_flag)


@cu.jit
def agent_phase(mask, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, hits, caps_now,
                first_flag, moved, params, target, dist, collided, rew, stats, obs):
    """Pursuer (w, i) per thread, in the worlds where ``mask[w]``: ``pursuit_kernels.agent_one``."""
    k = cu.grid(1)
    if k < pos.shape[0] * first:
        w = k // first
        i = k % first
        if mask[w]:
            d_agent_one(w, i, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, hits,
                        caps_now, first_flag, moved, params[w], target, dist, collided, rew, stats, obs)


class PursuitOnDevice(OnDevice):
    """The pursuit scenario's state on the GPU and its launches, for ``gpu.env.DeviceEnv``: the same
    arrays as ``scenarios.pursuit.Pursuit``, its scripted robots' wheel powers and its neighbour
    sensor (copied from ``host`` once)."""

    def __init__(self, host, world, launch) -> None:
        from .env import Launch

        super().__init__(host, world, launch)
        E, N = world.num_worlds, host.n_learners
        new = to_device
        self.first = N                                          # the first evader's robot index
        self.robots = Launch(E, world.n_agents)                 # over every robot (the sensor)
        self.scale = float(np.float32(host.config.pursuer_power))
        self.wheels = new(host.scripted.actions)                # [E, N + M, 2] what the physics step reads
        self.captured = new(host.captured)                      # [E, M]
        self.moved = new(host.moved)                            # [E, M]
        self.moved_world = new(np.zeros(E, np.bool_))           # [E] an evader reappeared this step
        self.caps_now = new(host.caps_now)                      # [E] float64
        self.caps_total = new(host.caps_total)                  # [E] int64
        self.first_flag = new(host._first_flag)                 # [E]
        self.target = new(host.target)                          # [E, N] int64
        self.dist = new(host.dist)                              # [E, N] float64
        self.hits = new(host.info["captures"])                  # [E, N] float32
        self.collided = new(host.info["collided"])              # [E, N] bool
        self.nb = DeviceNeighbours(host.sensor, host.scripted.kind)
        self.info = {"collided": self.collided, "captures": self.hits}

    def reset(self, mask) -> None:
        w = self.world
        reset_worlds[self.launch.worlds()](mask, self.rng, self.params, w.pos, w.vel, w.theta, w.omega, w.active,
                                            self.captured, self.caps_total, w.walls, w.n_walls, w.contact,
                                            self.prev_contact)

    def respawn(self, mask, refresh) -> None:
        w = self.world
        respawn_pursuers[self.launch.worlds()](mask, self.rng, self.params, w.pos, w.vel, w.theta, w.omega, w.active,
                                               self.prev_contact, refresh)

    def world_actions(self, actions):
        """``Pursuit.step`` before the physics: captured evaders reappear, the sensor, the evaders' policy,
        the pursuers' actions ([E, N, A] device array, clamped) times ``pursuer_power``; returns the
        wheel powers of every robot [E, N + M, 2]."""
        w, worlds = self.world, self.launch.worlds()
        respawn_captured[worlds](self.rng, self.params, w.pos, w.vel, w.theta, w.omega, w.active, self.captured,
                                 self.moved, self.moved_world)
        if w.schedule == "world":   # the grid of the worlds where an evader moved (one launch; their lidar,
            w.refresh_lidar(self.moved_world)   # recomputed here too, is recomputed by the physics step anyway)
        else:
            w.build_grid()          # every world's grid, in parallel (no lidar)
        self.nb.sense(w, self.robots)
        evader_actions[worlds](self.first, self.rng, self.params, w.pos, w.theta, w.active, self.nb.indices,
                               self.wheels)
        pursuer_actions[self.launch.agents()](self.scale, actions, self.wheels)
        return self.wheels

    def _agents(self, mask, with_reward: bool) -> None:
        w = self.world
        agent_phase[self.launch.agents()](mask, with_reward, self.first, w.pos, w.vel, w.theta, w.active, w.contact,
                                          self.prev_contact, w.lidar, self.nb.out, self.hits, self.caps_now,
                                          self.first_flag, self.moved, self.params, self.target, self.dist,
                                          self.collided, self.reward, self.stats, self.obs)

    def after_step(self) -> None:
        """``Pursuit.step`` after the physics: the sensor (the step's grid is current), captures, the
        pursuers' reward and observation."""
        w = self.world
        self.nb.sense(w, self.robots)
        detect_captures[self.launch.worlds()](self.first, self.params, w.pos, w.active, self.captured, self.hits,
                                              self.caps_now, self.caps_total, self.first_flag)
        self._agents(self._all, True)

    def observe(self, mask) -> None:
        """``Pursuit._refresh`` for the worlds where ``mask`` (after their lidar and grid were refreshed):
        the sensor, the observations without reward."""
        self.nb.sense(self.world, self.robots)
        self._agents(mask, False)
