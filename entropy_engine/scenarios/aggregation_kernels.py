"""Compiled kernels of the aggregation scenario: spawns, clusters, reward, statistics and observation.

Random numbers come from one SplitMix64 stream per world (``core.rng``), so a world's spawns
depend only on the seed and on its own history, never on threads. A step is two kernels:
``world_phase`` (one task per world: clusters by union-find over the spatial grid, the world's
centroid and the largest cluster) and ``agent_phase`` (one task per agent: the coarse cue, reward,
episode statistics and observation).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..core.grid import cell_span
from ..core.observe import copy_lidar, ego_velocity, leave_out, neighbour_slots
from ..core.rng import shuffled_range, uniform
from ..core.spawn import border_walls, respawn_clear, start_at_rest

# Layout of a row of the float64 ``params`` array [E, N_PARAMS] (see Aggregation._params): one row per world,
# the per-world functions read their world's row ``p``.
(P_ARENA, P_RADIUS, P_SPACING, P_VMAX, P_SENSE, P_CUE, P_LINK, P_CLUSTER, P_SPREAD, P_COLL, P_ONSET, P_INV_T,
 P_CELL) = range(13)
N_PARAMS = 13
# Order of the episode statistics (Aggregation.episode_stats).
S_LARGEST, S_LARGEST_MEAN, S_CENTROID, S_COLLISIONS, S_AGGREGATED = range(5)


@njit(cache=True)
def reset_world(w, rng, p, side, pos, vel, theta, omega, active, order, walls, n_walls):
    """Reset world ``w``: the arena's border as its only walls; the N robots on random distinct cells of
    a ``side x side`` lattice covering the whole arena (cells ``spawn_spacing`` wide, jittered inside
    their cell), random headings. order [E, side*side] int64 is scratch; the caller checked
    side*side >= N. (CPU driver: ``reset_worlds``; GPU: ``gpu.aggregation``.)"""
    n = pos.shape[1]
    L = p[P_ARENA]
    r = p[P_RADIUS]
    s = p[P_SPACING]
    jitter = max(0.5 * (s - 2.0 * r) - 0.01, 0.0)
    offset = 0.5 * (L - side * s)             # the lattice is centred in the arena
    border_walls(w, L, walls, n_walls)
    shuffled_range(rng, w, order, side * side)
    for i in range(n):
        c = order[w, i]
        pos[w, i, 0] = offset + (c % side + 0.5) * s + jitter * (2.0 * uniform(rng, w) - 1.0)
        pos[w, i, 1] = offset + (c // side + 0.5) * s + jitter * (2.0 * uniform(rng, w) - 1.0)
        start_at_rest(rng, w, i, theta, vel, omega, active)


@njit(cache=True, parallel=True)
def reset_worlds(mask, rng, params, side, pos, vel, theta, omega, active, order, walls, n_walls):
    """``reset_world`` for every world where mask[w] (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        if mask[w]:
            reset_world(w, rng, params[w], side, pos, vel, theta, omega, active, order, walls, n_walls)


@njit(cache=True, parallel=True)
def respawn_agents(mask, rng, params, pos, vel, theta, omega, active):
    """Give every agent with mask[w, i] a fresh start at a random point of its world at least
    ``spawn_spacing`` from every other robot's centre (``core.spawn.respawn_clear``), worlds in parallel."""
    for w in prange(pos.shape[0]):
        respawn_clear(w, mask, rng, params[w, P_ARENA], params[w, P_RADIUS] + 0.05, params[w, P_SPACING], pos, vel,
                      theta, omega, active)


@njit(cache=True, inline="always")
def _find(parent, w, x):
    """Root of x in world w's union-find forest (path halving)."""
    while parent[w, x] != x:
        parent[w, x] = parent[w, parent[w, x]]
        x = parent[w, x]
    return x


@njit(cache=True)
def world_one(w, pos, active, cell_start, cell_items, g, p, parent, size, label, n_active, largest, centroid):
    """Per world: clusters = connected components of the active robots whose centres are at most
    ``link_distance`` apart (union-find over the grid cells within reach, ``cell_span``; a root is
    always the smallest agent index of its tree, so the labels are deterministic).

    Writes label [E, N] (the cluster's root agent, -1 for inactive agents), size [E, N] (robots in
    the cluster rooted at that index), n_active [E], largest [E] (robots in the largest cluster)
    and centroid [E, 2] (mean position of the active robots, 0 with none). parent [E, N] int32 is
    scratch.
    """
    n = pos.shape[1]
    link = p[P_LINK]
    link2 = link * link
    cell = p[P_CELL]
    for i in range(n):
        parent[w, i] = i
        size[w, i] = 0
    for i in range(n):
        if not active[w, i]:
            continue
        px = np.float64(pos[w, i, 0])
        py = np.float64(pos[w, i, 1])
        x0, x1, y0, y1 = cell_span(px, py, link, cell, g)
        for cy in range(y0, y1 + 1):
            for cx in range(x0, x1 + 1):
                c = cy * g + cx
                for kk in range(cell_start[w, c], cell_start[w, c + 1]):
                    j = cell_items[w, kk]
                    if j <= i or not active[w, j]:
                        continue
                    dx = np.float64(pos[w, j, 0]) - px
                    dy = np.float64(pos[w, j, 1]) - py
                    if dx * dx + dy * dy > link2:
                        continue
                    ri = _find(parent, w, i)
                    rj = _find(parent, w, j)
                    if ri < rj:
                        parent[w, rj] = ri
                    elif rj < ri:
                        parent[w, ri] = rj
    count = 0
    best = 0
    sx = 0.0
    sy = 0.0
    for i in range(n):
        if not active[w, i]:
            label[w, i] = -1
            continue
        r = _find(parent, w, i)
        label[w, i] = r
        size[w, r] += 1
        if size[w, r] > best:
            best = size[w, r]
        count += 1
        sx += pos[w, i, 0]
        sy += pos[w, i, 1]
    n_active[w] = count
    largest[w] = best
    if count > 0:
        centroid[w, 0] = sx / count
        centroid[w, 1] = sy / count
    else:
        centroid[w, 0] = 0.0
        centroid[w, 1] = 0.0


@njit(cache=True, parallel=True)
def world_phase(pos, active, cell_start, cell_items, g, params, parent, size, label, n_active, largest,
                centroid):
    """``world_one`` for every world (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        world_one(w, pos, active, cell_start, cell_items, g, params[w], parent, size, label, n_active, largest,
                  centroid)


@njit(cache=True, inline="always", error_model="numpy")
def agent_one(w, i, with_reward, fresh, pos, vel, theta, active, contact, prev_contact, lidar, nb, cell_start,
              cell_items, g, label, size, n_active, largest, centroid, p, last, frac_own, rew, stats, obs):
    """Per agent: the coarse cue (centroid of the other robots within ``cue_range``, over the
    grid), then with ``with_reward`` the reward and the per-step values of the episode statistics,
    then the observation.

    fresh [E, N] bool: the agent's episode has had no step yet (cleared here with the first step's
    statistics). nb [E, N, K, 5] is the neighbour sensor's output. last [3, E, N] float64 holds the
    last written end-of-episode values (largest-cluster fraction, distance to the centroid,
    aggregated flag) so that their per-step statistic is the change and telescopes to the final
    value. frac_own [E, N] float32 receives the fraction of the world's robots in the agent's own
    cluster (0 for inactive agents), also without ``with_reward``. stats [5, E, N] in the order
    S_LARGEST .. S_AGGREGATED; obs [E, N, R + 2 + 5K + 3].
    """
    n = pos.shape[1]
    n_rays = lidar.shape[2]
    K = nb.shape[2]
    vmax = p[P_VMAX]
    sense = p[P_SENSE]
    cue = p[P_CUE]
    cue2 = cue * cue
    cell = p[P_CELL]
    inv_t = p[P_INV_T]
    inv_others = 1.0 / max(n - 1, 1)
    base = n_rays + 2
    copy_lidar(obs, w, i, lidar)
    if not active[w, i]:
        frac_own[w, i] = 0.0
        leave_out(obs, w, i, base, with_reward, rew, prev_contact, stats)
        return
    px = np.float64(pos[w, i, 0])
    py = np.float64(pos[w, i, 1])
    # coarse cue: sum of the offsets to the other active robots within cue_range
    sx = 0.0
    sy = 0.0
    cnt = 0
    x0, x1, y0, y1 = cell_span(px, py, cue, cell, g)
    for cy in range(y0, y1 + 1):
        for cx in range(x0, x1 + 1):
            c = cy * g + cx
            for kk in range(cell_start[w, c], cell_start[w, c + 1]):
                j = cell_items[w, kk]
                if j == i or not active[w, j]:
                    continue
                dx = np.float64(pos[w, j, 0]) - px
                dy = np.float64(pos[w, j, 1]) - py
                if dx * dx + dy * dy <= cue2:
                    sx += dx
                    sy += dy
                    cnt += 1
    na = n_active[w]
    own = size[w, label[w, i]] / na
    frac_own[w, i] = own
    if with_reward:
        d_nn = sense
        if nb[w, i, 0, 4] > 0.0:
            d_nn = min(math.sqrt(nb[w, i, 0, 0] ** 2 + nb[w, i, 0, 1] ** 2) * sense, sense)
        rr = p[P_CLUSTER] * own
        if d_nn > p[P_LINK]:
            rr -= p[P_SPREAD] * (d_nn - p[P_LINK])
        onset = contact[w, i] and not prev_contact[w, i]
        if contact[w, i]:
            rr -= p[P_COLL]
            if onset:
                rr -= p[P_ONSET]
        prev_contact[w, i] = contact[w, i]
        rew[w, i] = rr
        frac = largest[w] / na
        d_c = math.sqrt((centroid[w, 0] - px) ** 2 + (centroid[w, 1] - py) ** 2)
        agg = 1.0 if largest[w] == na else 0.0
        if fresh[w, i]:
            stats[S_LARGEST, w, i] = frac
            stats[S_CENTROID, w, i] = d_c
            stats[S_AGGREGATED, w, i] = agg
            fresh[w, i] = False
        else:   # the change: the episode's sum is the value after its last step
            stats[S_LARGEST, w, i] = frac - last[0, w, i]
            stats[S_CENTROID, w, i] = d_c - last[1, w, i]
            stats[S_AGGREGATED, w, i] = agg - last[2, w, i]
        last[0, w, i] = frac
        last[1, w, i] = d_c
        last[2, w, i] = agg
        stats[S_LARGEST_MEAN, w, i] = frac * inv_t
        stats[S_COLLISIONS, w, i] = 1.0 if onset else 0.0
    # observation
    th = np.float64(theta[w, i])
    c = math.cos(th)
    s_ = math.sin(th)
    vx = vel[w, i, 0]
    vy = vel[w, i, 1]
    ego_velocity(obs, w, i, n_rays, vx, vy, c, s_, vmax)
    neighbour_slots(obs, w, i, base, nb)
    o = base + 5 * K
    if cnt > 0:
        f = 1.0 / (cnt * cue)
        obs[w, i, o] = min(max((sx * c + sy * s_) * f, -1.0), 1.0)
        obs[w, i, o + 1] = min(max((-sx * s_ + sy * c) * f, -1.0), 1.0)
    else:
        obs[w, i, o] = 0.0
        obs[w, i, o + 1] = 0.0
    obs[w, i, o + 2] = min(cnt * inv_others, 1.0)


@njit(cache=True, parallel=True, error_model="numpy")
def agent_phase(with_reward, fresh, pos, vel, theta, active, contact, prev_contact, lidar, nb, cell_start,
                cell_items, g, label, size, n_active, largest, centroid, params, last, frac_own, rew, stats, obs):
    """``agent_one`` for every agent of every world (with its world's settings params[w]), in parallel."""
    n = pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        agent_one(w, k - w * n, with_reward, fresh, pos, vel, theta, active, contact, prev_contact, lidar, nb,
                  cell_start, cell_items, g, label, size, n_active, largest, centroid, params[w], last, frac_own,
                  rew, stats, obs)
