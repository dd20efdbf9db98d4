"""Compiled kernels of the rendezvous scenario: spawns, the goal, reward, statistics and observation.

Random numbers come from one SplitMix64 stream per world (``core.rng``), so a world's spawns, goal
and informed robot depend only on the seed and on its own history, never on threads. A step is two
kernels: ``world_phase`` (one task per world: every robot's distance to the goal, who is in the
zone, the world's mean progress) and ``agent_phase`` (one task per agent: reward, episode
statistics, observation). Their bodies are the per-world and per-agent functions ``reset_world``,
``world_one`` and ``agent_one``, which ``gpu.rendezvous`` compiles for the GPU; the spawn lattice's
permutation is the scenario's preallocated scratch, so none of them allocates.
"""
from __future__ import annotations

import math

from numba import njit, prange

from ..core.observe import copy_lidar, ego_velocity, leave_out
from ..core.rng import shuffled_range, uniform
from ..core.spawn import border_walls, respawn_clear, start_at_rest

# Layout of a row of the float64 ``params`` array [E, N_PARAMS] (see Rendezvous._params): one row per world
# (world w's settings are params[w]).
(P_ARENA, P_RADIUS, P_SPACING, P_VMAX, P_GOAL_R, P_MARGIN, P_GOAL_SCALE, P_PROGRESS, P_TEAM, P_ZONE, P_COLL,
 P_ONSET) = range(12)
N_PARAMS = 12
# Order of the episode statistics (Rendezvous.episode_stats).
S_IN_ZONE, S_GATHERED, S_GATHER_TIME, S_DISTANCE, S_COLLISIONS = range(5)


@njit(cache=True)
def reset_world(w, rng, p, side, pos, vel, theta, omega, active, order, goal, informed, walls, n_walls):
    """Reset world ``w`` (settings ``p``): the arena's border as its only walls; the N robots on random
    distinct cells of a ``side x side`` lattice covering the arena (cells ``spawn_spacing`` wide,
    jittered), random headings; a goal uniform in the arena minus ``goal_margin``; one informed robot,
    uniform among the N. order [E, side*side] int64 is scratch; the caller checked side*side >= N.
    (The CPU driver is ``reset_worlds``; the GPU's is in ``gpu.rendezvous``.)"""
    n = pos.shape[1]
    L = p[P_ARENA]
    r = p[P_RADIUS]
    s = p[P_SPACING]
    m = p[P_MARGIN]
    border_walls(w, L, walls, n_walls)
    jitter = max(0.5 * (s - 2.0 * r) - 0.01, 0.0)
    offset = 0.5 * (L - side * s)             # the lattice is centred in the arena
    shuffled_range(rng, w, order, side * side)
    for i in range(n):
        c = order[w, i]
        pos[w, i, 0] = offset + (c % side + 0.5) * s + jitter * (2.0 * uniform(rng, w) - 1.0)
        pos[w, i, 1] = offset + (c // side + 0.5) * s + jitter * (2.0 * uniform(rng, w) - 1.0)
        start_at_rest(rng, w, i, theta, vel, omega, active)
    goal[w, 0] = m + (L - 2.0 * m) * uniform(rng, w)
    goal[w, 1] = m + (L - 2.0 * m) * uniform(rng, w)
    informed[w] = min(int(uniform(rng, w) * n), n - 1)


@njit(cache=True, parallel=True)
def reset_worlds(mask, rng, params, side, pos, vel, theta, omega, active, order, goal, informed, walls, n_walls):
    """``reset_world`` for every world where mask[w] (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        if mask[w]:
            reset_world(w, rng, params[w], side, pos, vel, theta, omega, active, order, goal, informed, walls, n_walls)


@njit(cache=True, parallel=True)
def respawn_agents(mask, rng, params, pos, vel, theta, omega, active):
    """Give every agent with mask[w, i] a fresh start at a random point of its world at least
    ``spawn_spacing`` from every other robot's centre (``core.spawn.respawn_clear``: 64 rejection
    tries, the last is kept), worlds in parallel."""
    for w in prange(pos.shape[0]):
        respawn_clear(w, mask, rng, params[w, P_ARENA], params[w, P_RADIUS] + 0.05, params[w, P_SPACING], pos, vel,
                      theta, omega, active)


@njit(cache=True)
def world_one(w, pos, active, goal, p, dist, progress, in_zone, n_in, n_active, team):
    """World ``w``: every robot's distance to the goal (dist [E, N]; progress [E, N] = the old value
    minus the new one), in_zone [E, N] (centre within ``goal_radius`` of the goal), n_in [E] and
    n_active [E] (robots in the zone, active robots) and team [E] (the mean progress of the active
    robots, 0 with none). Inactive robots count nowhere."""
    n = pos.shape[1]
    R = p[P_GOAL_R]
    k_in = 0
    k = 0
    tot = 0.0
    for i in range(n):
        dx = goal[w, 0] - pos[w, i, 0]
        dy = goal[w, 1] - pos[w, i, 1]
        d = math.sqrt(dx * dx + dy * dy)
        progress[w, i] = dist[w, i] - d
        dist[w, i] = d
        inside = active[w, i] and d < R
        in_zone[w, i] = inside
        if active[w, i]:
            k += 1
            tot += progress[w, i]
            if inside:
                k_in += 1
    n_in[w] = k_in
    n_active[w] = k
    team[w] = tot / k if k > 0 else 0.0


@njit(cache=True, parallel=True)
def world_phase(pos, active, goal, params, dist, progress, in_zone, n_in, n_active, team):
    """``world_one`` for every world (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        world_one(w, pos, active, goal, params[w], dist, progress, in_zone, n_in, n_active, team)


@njit(cache=True, inline="always", error_model="numpy")
def agent_one(w, i, with_reward, fresh, pos, vel, theta, active, contact, prev_contact, lidar, goal, informed, dist,
              progress, in_zone, n_in, n_active, team, ever, p, last, rew, stats, obs):
    """Agent ``i`` of world ``w`` (settings ``p``): reward and the per-step values of the episode
    statistics (``with_reward``), then the observation. fresh [E, N]: the robot's episode started
    since its last scored step (its end-of-episode statistics are written whole, not as a change);
    last [3, E, N] holds the values of those statistics written so far (in zone, gathered,
    distance); ever [E]: every robot of the world has been in the zone at once during this episode
    (before this step's test: the caller updates it after every agent's step). stats [5, E, N] in
    the order S_IN_ZONE .. S_COLLISIONS; obs [E, N, R + 9]."""
    n_rays = lidar.shape[2]
    base = n_rays + 2
    vmax = p[P_VMAX]
    copy_lidar(obs, w, i, lidar)
    if not active[w, i]:
        leave_out(obs, w, i, n_rays, with_reward, rew, prev_contact, stats)
        return
    if with_reward:
        zone = 1.0 if in_zone[w, i] else 0.0
        rr = p[P_PROGRESS] * progress[w, i] + p[P_TEAM] * team[w] + p[P_ZONE] * zone
        onset = contact[w, i] and not prev_contact[w, i]
        if contact[w, i]:
            rr -= p[P_COLL]
            if onset:
                rr -= p[P_ONSET]
        prev_contact[w, i] = contact[w, i]
        rew[w, i] = rr
        # episode statistics (per-step values; BatchEnv sums them over the episode): the end-of-
        # episode values as the change since the last written value, so that they telescope
        gathered = 1.0 if n_in[w] == n_active[w] else 0.0
        d = dist[w, i]
        if fresh[w, i]:
            stats[S_IN_ZONE, w, i] = zone
            stats[S_GATHERED, w, i] = gathered
            stats[S_DISTANCE, w, i] = d
            fresh[w, i] = False
        else:
            stats[S_IN_ZONE, w, i] = zone - last[0, w, i]
            stats[S_GATHERED, w, i] = gathered - last[1, w, i]
            stats[S_DISTANCE, w, i] = d - last[2, w, i]
        last[0, w, i] = zone
        last[1, w, i] = gathered
        last[2, w, i] = d
        stats[S_GATHER_TIME, w, i] = 0.0 if ever[w] else 1.0
        stats[S_COLLISIONS, w, i] = 1.0 if onset else 0.0
    # observation: velocity, compass, informed flag, the goal in its own and the world frame (informed only)
    th = theta[w, i]
    c = math.cos(th)
    s_ = math.sin(th)
    ego_velocity(obs, w, i, n_rays, vel[w, i, 0], vel[w, i, 1], c, s_, vmax)
    obs[w, i, base] = c
    obs[w, i, base + 1] = s_
    if informed[w] == i:
        gx = goal[w, 0] - pos[w, i, 0]
        gy = goal[w, 1] - pos[w, i, 1]
        f = 1.0 / max(p[P_GOAL_SCALE], math.sqrt(gx * gx + gy * gy))
        obs[w, i, base + 2] = 1.0
        obs[w, i, base + 3] = min(max((gx * c + gy * s_) * f, -1.0), 1.0)
        obs[w, i, base + 4] = min(max((-gx * s_ + gy * c) * f, -1.0), 1.0)
        obs[w, i, base + 5] = min(max(gx * f, -1.0), 1.0)
        obs[w, i, base + 6] = min(max(gy * f, -1.0), 1.0)
    else:
        for q in range(2, 7):
            obs[w, i, base + q] = 0.0


@njit(cache=True, parallel=True, error_model="numpy")
def agent_phase(with_reward, fresh, pos, vel, theta, active, contact, prev_contact, lidar, goal, informed, dist,
                progress, in_zone, n_in, n_active, team, ever, params, last, rew, stats, obs):
    """``agent_one`` for every agent of every world (with its settings params[w]), in parallel."""
    n = pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        agent_one(w, k - w * n, with_reward, fresh, pos, vel, theta, active, contact, prev_contact, lidar, goal,
                  informed, dist, progress, in_zone, n_in, n_active, team, ever, params[w], last, rew, stats, obs)
