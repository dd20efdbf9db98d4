"""CUDA drivers of the navigation scenario's kernels (``scenarios.navigation_kernels``).

Resets, respawns, the reward and the observation are the CPU scenario's njit functions compiled as
device functions (``gpu.target.device``); a world's resets run on one thread (its random stream is
sequential), rewards and observations on a thread per agent.
"""
from __future__ import annotations

from ..scenarios import navigation_kernels as nk
from .target import cuda, device

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
