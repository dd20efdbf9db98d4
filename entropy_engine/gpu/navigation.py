"""The navigation scenario on the GPU: its CUDA drivers and ``NavigationOnDevice`` (``gpu.env``'s adapter).

Resets, respawns, the reward and the observation are the CPU scenario's njit functions compiled as
device functions (``gpu.target.device``); a world's resets run on one thread (its random stream is
sequential), rewards and observations on a thread per agent.
"""
from __future__ import annotations

from ..core.kernels import CELL
from ..scenarios import navigation_kernels as nk
from .adapter import OnDevice
from .target import cuda, device, to_device, torch_view

cu = cuda()
d_reset_world = device(nk.reset_world)
d_respawn_world = device(nk.respawn_world)
d_reward_one = device(nk._reward_one)
d_observe_one = device(nk._observe_one)


@cu.jit
def reset_worlds(mask, rng, params, walls, n_walls, pos, vel, theta, omega, active, goals, order, placed, contact,
                 prev_contact):
    """World ``w`` (a thread each) where ``mask[w]``: ``navigation_kernels.reset_world``, no contacts."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        d_reset_world(w, rng, params, walls, n_walls, pos, vel, theta, omega, active, goals, order, placed)
        for i in range(pos.shape[1]):
            contact[w, i] = False
            prev_contact[w, i] = False


@cu.jit
def respawn_worlds(mask, rng, params, walls, n_walls, pos, vel, theta, omega, active, goals, g, cell, cell_start,
                   cell_items, placed, prev_contact, refresh):
    """World ``w`` (a thread each) with agents to respawn (``mask[w, i]``): ``respawn_world``; marks
    the world in ``refresh`` (its lidar and observations are recomputed)."""
    w = cu.grid(1)
    if w >= pos.shape[0]:
        return
    any_ = False
    for i in range(pos.shape[1]):
        if mask[w, i]:
            any_ = True
            prev_contact[w, i] = False
    if any_:
        d_respawn_world(w, mask, rng, params, walls, n_walls, pos, vel, theta, omega, active, goals, g, cell,
                        cell_start, cell_items, placed)
        refresh[w] = True


@cu.jit
def reward_observe(pos, vel, theta, goals, active, contact, prev_contact, lidar, params, dist, rew, reached, stats,
                   obs):
    """``navigation_kernels.reward_observe``: a thread per agent."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        i = k % n
        p = params[w]
        d_reward_one(w, i, pos, vel, theta, goals, active, contact, prev_contact, lidar, p, dist, rew, reached, stats)
        d_observe_one(w, i, pos, vel, theta, goals, lidar, active, p, obs, dist)


@cu.jit
def observe(mask, pos, vel, theta, goals, lidar, active, params, obs, dist):
    """``navigation_kernels.observe`` for the agents of the worlds where ``mask[w]``."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        if mask[w]:
            d_observe_one(w, k % n, pos, vel, theta, goals, lidar, active, params[w], obs, dist)


class NavigationOnDevice(OnDevice):
    """The navigation scenario's state on the GPU and its launches, for ``gpu.env.DeviceEnv``: the same
    arrays as ``scenarios.navigation.Navigation`` (copied from ``host`` once)."""

    def __init__(self, host, world, launch) -> None:
        super().__init__(host, world, launch)
        new = to_device
        self.goals = new(host.goals)
        self.dist = new(host.dist)
        self.order = new(host._order)
        self.placed = new(host._placed)
        self.respawned = new(host._respawned)
        self.info = {"reached_goal": self.terminated, "collided": world.contact}
        self._cell = float(host.world.phys[CELL])
        self.n_agents = world.n_agents

    def reset(self, mask) -> None:
        w = self.world
        reset_worlds[self.launch.worlds()](mask, self.rng, self.params, w.walls, w.n_walls, w.pos, w.vel, w.theta,
                                            w.omega, w.active, self.goals, self.order, self.placed, w.contact,
                                            self.prev_contact)

    def short(self):
        """The worlds whose last reset could not place every robot and goal ([E] bool, on the device)."""
        return torch_view(self.placed) < self.n_agents

    def respawn(self, mask, refresh) -> None:
        w = self.world
        respawn_worlds[self.launch.worlds()](mask, self.rng, self.params, w.walls, w.n_walls, w.pos, w.vel, w.theta,
                                              w.omega, w.active, self.goals, w.grid_size, self._cell, w.cell_start,
                                              w.cell_items, self.respawned, self.prev_contact, refresh)

    def after_step(self) -> None:
        w = self.world
        reward_observe[self.launch.agents()](w.pos, w.vel, w.theta, self.goals, w.active, w.contact,
                                             self.prev_contact, w.lidar, self.params, self.dist, self.reward,
                                             self.terminated, self.stats, self.obs)

    def observe(self, mask) -> None:
        w = self.world
        observe[self.launch.agents()](mask, w.pos, w.vel, w.theta, self.goals, w.lidar, w.active, self.params,
                                      self.obs, self.dist)
