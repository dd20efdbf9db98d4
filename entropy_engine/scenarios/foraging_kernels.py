"""Compiled kernels of the foraging scenario: spawns, reward, statistics, observation and the heuristic.

Random numbers come from one SplitMix64 stream per world (``core.rng``), so a world's spawns, nest
and item places depend only on the seed and on its own history, never on threads. Picking up,
carrying and delivering items is ``core.items``; a step here is one kernel, ``agent_phase`` (one
task per agent: reward, episode statistics, observation). The per-world and per-agent functions
(``reset_world``, ``agent_one``) are what the CPU drivers call in ``prange`` loops and what
``gpu.foraging`` compiles for the GPU.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..core.observe import copy_lidar, ego_velocity, leave_out
from ..core.rng import shuffled_range, uniform
from ..core.spawn import respawn_clear, start_at_rest

# Layout of a row of the float64 ``params`` array [E, N_PARAMS] (see Foraging._params): one row per world
# (world w's settings are params[w]).
(P_ARENA, P_RADIUS, P_SPACING, P_VMAX, P_NEST_MARGIN, P_NEST_SCALE, P_CAPACITY, P_DELIVERY, P_PICKUP, P_CARRY,
 P_SEARCH, P_COLL, P_ONSET) = range(13)
N_PARAMS = 13
# Order of the episode statistics (Foraging.episode_stats).
S_DELIVERED, S_WORLD_DELIVERED, S_PICKUPS, S_COLLISIONS = range(4)


@njit(cache=True)
def reset_world(w, rng, p, side, pos, vel, theta, omega, active, order, nest_pos):
    """Reset world ``w`` with its settings ``p``: the nest centre uniform at least ``nest_margin`` from
    the border; the N robots on random distinct cells of a ``side x side`` lattice covering the arena
    (cells ``spawn_spacing`` wide, jittered inside their cell), random headings. order [E, side*side]
    int64 is scratch; the caller checked side*side >= N. (CPU driver: ``reset_worlds``; GPU:
    ``gpu.foraging``.)"""
    n = pos.shape[1]
    L = p[P_ARENA]
    r = p[P_RADIUS]
    s = p[P_SPACING]
    m = p[P_NEST_MARGIN]
    jitter = max(0.5 * (s - 2.0 * r) - 0.01, 0.0)
    offset = 0.5 * (L - side * s)
    nest_pos[w, 0, 0] = m + (L - 2.0 * m) * uniform(rng, w)
    nest_pos[w, 0, 1] = m + (L - 2.0 * m) * uniform(rng, w)
    shuffled_range(rng, w, order, side * side)
    for i in range(n):
        c = order[w, i]
        pos[w, i, 0] = offset + (c % side + 0.5) * s + jitter * (2.0 * uniform(rng, w) - 1.0)
        pos[w, i, 1] = offset + (c // side + 0.5) * s + jitter * (2.0 * uniform(rng, w) - 1.0)
        start_at_rest(rng, w, i, theta, vel, omega, active)


@njit(cache=True, parallel=True)
def reset_worlds(mask, rng, params, side, pos, vel, theta, omega, active, order, nest_pos):
    """``reset_world`` for every world where mask[w] (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        if mask[w]:
            reset_world(w, rng, params[w], side, pos, vel, theta, omega, active, order, nest_pos)


@njit(cache=True, parallel=True)
def respawn_agents(mask, rng, params, pos, vel, theta, omega, active):
    """Give every agent with mask[w, i] a fresh start at a random point of its world at least
    ``spawn_spacing`` from every other robot's centre (64 rejection tries, the last is kept:
    ``core.spawn.respawn_clear``), worlds in parallel."""
    for w in prange(pos.shape[0]):
        respawn_clear(w, mask, rng, params[w, P_ARENA], params[w, P_RADIUS] + 0.05, params[w, P_SPACING], pos, vel,
                      theta, omega, active)


@njit(cache=True, inline="always", error_model="numpy")
def agent_one(w, i, with_reward, pos, vel, theta, active, contact, prev_contact, lidar, sensed, sensed_index,
              item_pos, free, load, prev_load, delivered, picked, world_delivered, nest_pos, nest_radius, p, nest_dist,
              target, target_dist, rew, stats, obs):
    """Agent i of world w with its world's settings ``p``: with ``with_reward`` the reward and the
    per-step values of the episode statistics, then the observation; nest_dist, target and
    target_dist [w, i] updated for the next step's progress terms (see ``agent_phase``). (CPU
    driver: ``agent_phase``; GPU: ``gpu.foraging``.)"""
    n_rays = lidar.shape[2]
    K = sensed.shape[2]
    base = n_rays + 2
    vmax = p[P_VMAX]
    cap = p[P_CAPACITY]
    copy_lidar(obs, w, i, lidar)
    if not active[w, i]:
        leave_out(obs, w, i, base, with_reward, rew, prev_contact, stats)
        target[w, i] = -1
        return
    px = np.float64(pos[w, i, 0])
    py = np.float64(pos[w, i, 1])
    gx = np.float64(nest_pos[w, 0, 0]) - px
    gy = np.float64(nest_pos[w, 0, 1]) - py
    d_nest = math.sqrt(gx * gx + gy * gy)
    if with_reward:
        rr = p[P_DELIVERY] * delivered[w, i] + p[P_PICKUP] * picked[w, i]
        if prev_load[w, i] > 0 and load[w, i] > 0 and delivered[w, i] == 0:
            rr += p[P_CARRY] * (nest_dist[w, i] - d_nest)
        j = target[w, i]
        if j >= 0 and free[w, j] and picked[w, i] == 0:
            d_item = math.sqrt((np.float64(item_pos[w, j, 0]) - px) ** 2
                               + (np.float64(item_pos[w, j, 1]) - py) ** 2)
            rr += p[P_SEARCH] * (target_dist[w, i] - d_item)
        onset = contact[w, i] and not prev_contact[w, i]
        if contact[w, i]:
            rr -= p[P_COLL]
            if onset:
                rr -= p[P_ONSET]
        prev_contact[w, i] = contact[w, i]
        rew[w, i] = rr
        stats[S_DELIVERED, w, i] = delivered[w, i]
        stats[S_WORLD_DELIVERED, w, i] = world_delivered[w]
        stats[S_PICKUPS, w, i] = picked[w, i]
        stats[S_COLLISIONS, w, i] = 1.0 if onset else 0.0
    nest_dist[w, i] = d_nest
    j = sensed_index[w, i, 0]
    if j >= 0 and load[w, i] < cap:
        target[w, i] = j
        target_dist[w, i] = math.sqrt((np.float64(item_pos[w, j, 0]) - px) ** 2
                                      + (np.float64(item_pos[w, j, 1]) - py) ** 2)
    else:
        target[w, i] = -1
    # observation
    th = np.float64(theta[w, i])
    c = math.cos(th)
    s_ = math.sin(th)
    ego_velocity(obs, w, i, n_rays, vel[w, i, 0], vel[w, i, 1], c, s_, vmax)
    for s in range(K):
        o = base + 3 * s
        obs[w, i, o] = sensed[w, i, s, 0]
        obs[w, i, o + 1] = sensed[w, i, s, 1]
        obs[w, i, o + 2] = sensed[w, i, s, 2]
    o = base + 3 * K
    obs[w, i, o] = min(load[w, i] / cap, 1.0)
    f = 1.0 / max(p[P_NEST_SCALE], d_nest)
    obs[w, i, o + 1] = min(max((gx * c + gy * s_) * f, -1.0), 1.0)
    obs[w, i, o + 2] = min(max((-gx * s_ + gy * c) * f, -1.0), 1.0)
    obs[w, i, o + 3] = 1.0 if d_nest <= nest_radius[w, 0] else 0.0


@njit(cache=True, parallel=True, error_model="numpy")
def agent_phase(with_reward, pos, vel, theta, active, contact, prev_contact, lidar, sensed, sensed_index, item_pos,
                free, load, prev_load, delivered, picked, world_delivered, nest_pos, nest_radius, params, nest_dist,
                target, target_dist, rew, stats, obs):
    """``agent_one`` for every agent, in parallel: with ``with_reward`` the reward and the per-step
    values of the episode statistics, then the observation; nest_dist [E, N] (distance to the nest
    centre), target [E, N] (the nearest sensed free item, -1 for none or when full) and target_dist
    [E, N] are updated for the next step's progress terms.

    sensed [E, N, K, 3] / sensed_index [E, N, K] are ``core.items.Items``' sensor output; load,
    prev_load (before the step), delivered, picked [E, N] and world_delivered [E] its counters.
    stats [4, E, N] in the order S_DELIVERED .. S_COLLISIONS; obs [E, N, R + 2 + 3K + 4]. World w's
    settings are params[w].
    """
    n = pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        agent_one(w, k - w * n, with_reward, pos, vel, theta, active, contact, prev_contact, lidar, sensed,
                  sensed_index, item_pos, free, load, prev_load, delivered, picked, world_delivered, nest_pos,
                  nest_radius, params[w], nest_dist, target, target_dist, rew, stats, obs)


@njit(cache=True)
def heuristic_kernel(obs, n_rays, k, lidar_range, agent_radius, out):
    """Scripted forager for obs [B, D] -> out [B, 2] (see ``foraging_heuristic``)."""
    base = n_rays + 2
    o = base + 3 * k
    for b in range(obs.shape[0]):
        load = obs[b, o]
        seen = obs[b, base + 2] > 0.0
        if load >= 1.0 or (load > 0.0 and not seen):
            tx = np.float64(obs[b, o + 1])
            ty = np.float64(obs[b, o + 2])
            near_goal = False
        elif seen:
            tx = np.float64(obs[b, base])
            ty = np.float64(obs[b, base + 1])
            near_goal = True
        else:   # nothing in sight: explore on a wide left spiral
            tx = 1.0
            ty = 0.15
            near_goal = False
        norm = max(math.sqrt(tx * tx + ty * ty), 1e-6)
        dx = tx / norm
        dy = ty / norm
        # push away from lidar hits within 0.4 m of the body (walls and robots)
        ax = 0.0
        ay = 0.0
        for r in range(n_rays):
            gap = obs[b, r] * lidar_range - agent_radius
            if gap < 0.4:
                wgt = (0.4 - gap) / 0.4
                wgt = wgt * wgt
                ang = 2.0 * math.pi * r / n_rays
                ax -= wgt * math.cos(ang)
                ay -= wgt * math.sin(ang)
        scale = 0.4 if near_goal else 1.0
        dx += scale * ax
        dy += scale * ay
        err = math.atan2(dy, dx)
        forward = max(math.cos(err), 0.0) * 0.9
        turn = min(max(2.0 * err, -1.0), 1.0)
        out[b, 0] = min(max(forward - turn, -1.0), 1.0)
        out[b, 1] = min(max(forward + turn, -1.0), 1.0)
