"""Compiled kernels of the coverage scenario: spawns, landmark distances, reward, statistics, observation.

Random numbers come from one SplitMix64 stream per world (``core.rng``), so a world's landmarks
and spawns depend only on the seed and on its own history, never on threads. A step is two
kernels: ``world_phase`` (one task per world: every landmark's nearest and second-nearest robot,
the world's mean landmark distance and occupied fraction) and ``agent_phase`` (one task per agent:
reward, episode statistics, observation with the K nearest landmarks).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..core.observe import copy_lidar, ego_velocity, leave_out, neighbour_slots
from ..core.rng import uniform
from ..core.spawn import border_walls, respawn_clear, start_at_rest

# Layout of a row of the float64 ``params`` array [E, N_PARAMS] (see Coverage._params): one row per world,
# the per-world functions read their world's row ``p``.
(P_ARENA, P_RADIUS, P_LM_R, P_LM_MARGIN, P_LM_SPACING, P_SPACING, P_VMAX, P_LM_SCALE, P_OCCUPY, P_DIST,
 P_PROGRESS, P_COLL, P_ONSET, P_CONTRIB) = range(14)
N_PARAMS = 14
# Order of the episode statistics (Coverage.episode_stats).
S_OCCUPIED, S_DISTANCE, S_ALL, S_COLLISIONS = range(4)
N_SLOT = 4   # features of one landmark slot: dx, dy, other robot's distance, mask
FAR = 1e9    # a landmark's robot distance when its world has no (other) active robot


@njit(cache=True, inline="always")
def _free_point(w, rng, lo, hi, xs, ys, count, lim2):
    """A point uniform in [lo, hi]^2 at least sqrt(lim2) from the ``count`` points (xs, ys)[w, :count]:
    64 rejection tries, the last one is kept."""
    x = y = 0.0
    for _try in range(64):
        x = lo + (hi - lo) * uniform(rng, w)
        y = lo + (hi - lo) * uniform(rng, w)
        ok = True
        for j in range(count):
            if (xs[w, j, 0] - x) ** 2 + (xs[w, j, 1] - y) ** 2 < lim2:
                ok = False
                break
        if ok:
            break
    return x, y


@njit(cache=True)
def reset_world(w, rng, p, pos, vel, theta, omega, active, lm_pos, lm_radius, lm_active, walls, n_walls):
    """Reset world ``w``: the arena's border as its only walls; L landmarks uniform in the arena minus
    ``landmark_margin``, ``landmark_spacing`` apart; then N robots uniform in the arena (a wall clearance
    of radius + 5 cm), ``spawn_spacing`` apart, at rest with random headings (rejection sampling, 64
    tries each). (CPU driver: ``reset_worlds``; GPU: ``gpu.coverage``.)"""
    n = pos.shape[1]
    n_lm = lm_pos.shape[1]
    L = p[P_ARENA]
    m = p[P_LM_MARGIN]
    lm2 = p[P_LM_SPACING] ** 2
    edge = p[P_RADIUS] + 0.05
    sp2 = p[P_SPACING] ** 2
    border_walls(w, L, walls, n_walls)
    for l in range(n_lm):
        x, y = _free_point(w, rng, m, L - m, lm_pos, lm_pos, l, lm2)
        lm_pos[w, l, 0] = x
        lm_pos[w, l, 1] = y
        lm_radius[w, l] = p[P_LM_R]
        lm_active[w, l] = True
    for i in range(n):
        x, y = _free_point(w, rng, edge, L - edge, pos, pos, i, sp2)
        pos[w, i, 0] = x
        pos[w, i, 1] = y
        start_at_rest(rng, w, i, theta, vel, omega, active)


@njit(cache=True, parallel=True)
def reset_worlds(mask, rng, params, pos, vel, theta, omega, active, lm_pos, lm_radius, lm_active, walls, n_walls):
    """``reset_world`` for every world where mask[w] (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        if mask[w]:
            reset_world(w, rng, params[w], pos, vel, theta, omega, active, lm_pos, lm_radius, lm_active, walls, n_walls)


@njit(cache=True, parallel=True)
def respawn_agents(mask, rng, params, pos, vel, theta, omega, active):
    """Give every agent with mask[w, i] a fresh start at a random point of its world at least
    ``spawn_spacing`` from every other robot's centre (``core.spawn.respawn_clear``), worlds in parallel."""
    for w in prange(pos.shape[0]):
        respawn_clear(w, mask, rng, params[w, P_ARENA], params[w, P_RADIUS] + 0.05, params[w, P_SPACING], pos, vel,
                      theta, omega, active)


@njit(cache=True)
def world_one(w, pos, active, lm_pos, lm_radius, lm_active, p, d1, j1, d2, occupied, mean_d, frac, owner, contrib):
    """Per world: for every active landmark l the distance d1[w, l] to its nearest active robot
    j1[w, l] (ties: lower index) and d2[w, l] to the second nearest (FAR when missing), occupied[w, l]
    (d1 <= the landmark's radius); mean_d[w] = mean of d1 over active landmarks (0 when the world
    has no landmark or no robot), frac[w] = occupied fraction; owner[w, i] = the number of occupied
    landmarks whose nearest robot is i (0 or 1 when landmarks are 2 radii apart); contrib[w, i] = the
    robot's marginal contribution, the sum over the landmarks whose nearest robot it is of
    min(d2 - d1, landmark_obs_scale) (how much farther the landmark's nearest robot would be without it)."""
    n = pos.shape[1]
    n_lm = lm_pos.shape[1]
    for i in range(n):
        owner[w, i] = 0
        contrib[w, i] = 0.0
    total = 0.0
    occ = 0
    count = 0
    any_robot = False
    for i in range(n):
        if active[w, i]:
            any_robot = True
    for l in range(n_lm):
        d1[w, l] = FAR
        d2[w, l] = FAR
        j1[w, l] = -1
        occupied[w, l] = False
        if not lm_active[w, l]:
            continue
        lx = np.float64(lm_pos[w, l, 0])
        ly = np.float64(lm_pos[w, l, 1])
        b1 = np.inf
        b2 = np.inf
        bj = -1
        for i in range(n):
            if not active[w, i]:
                continue
            e2 = (np.float64(pos[w, i, 0]) - lx) ** 2 + (np.float64(pos[w, i, 1]) - ly) ** 2
            if e2 < b1:
                b2 = b1
                b1 = e2
                bj = i
            elif e2 < b2:
                b2 = e2
        if bj >= 0:
            d1[w, l] = math.sqrt(b1)
            j1[w, l] = bj
            if b2 < np.inf:
                d2[w, l] = math.sqrt(b2)
            contrib[w, bj] += min(d2[w, l] - d1[w, l], p[P_LM_SCALE])
            r = np.float64(lm_radius[w, l])
            if b1 <= r * r:
                occupied[w, l] = True
                occ += 1
                owner[w, bj] += 1
            total += d1[w, l]
        count += 1
    if count == 0 or not any_robot:
        mean_d[w] = 0.0
        frac[w] = 0.0
    else:
        mean_d[w] = total / count
        frac[w] = occ / count


@njit(cache=True, parallel=True)
def world_phase(pos, active, lm_pos, lm_radius, lm_active, params, d1, j1, d2, occupied, mean_d, frac, owner,
                contrib):
    """``world_one`` for every world (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        world_one(w, pos, active, lm_pos, lm_radius, lm_active, params[w], d1, j1, d2, occupied, mean_d, frac, owner,
                  contrib)


@njit(cache=True, inline="always", error_model="numpy")
def agent_one(w, i, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, lm_pos, lm_active,
              d1, j1, d2, occupied, mean_d, prev_mean_d, frac, prev_frac, owner, contrib, p, best_d2, best_l, rew,
              stats, obs):
    """Per agent: reward and the per-step values of the episode statistics (``with_reward``), then
    the observation. first [E]: this step is the first of the world's episode; prev_mean_d and
    prev_frac [E] are the world's values before the step. nb [E, N, K, 5] is the neighbour sensor's
    output; best_d2 [E, N, KL] float64 and best_l [E, N, KL] int32 are scratch for the KL nearest
    landmarks; stats [4, E, N] in the order S_OCCUPIED .. S_COLLISIONS; obs [E, N, R + 2 + 4 KL + 5 K].
    """
    n_rays = lidar.shape[2]
    KL = best_d2.shape[2]
    n_lm = lm_pos.shape[1]
    vmax = p[P_VMAX]
    scale = p[P_LM_SCALE]
    base = n_rays + 2
    nb_base = base + N_SLOT * KL
    copy_lidar(obs, w, i, lidar)
    if not active[w, i]:
        leave_out(obs, w, i, base, with_reward, rew, prev_contact, stats)
        return
    if with_reward:
        rr = p[P_PROGRESS] * (prev_mean_d[w] - mean_d[w]) - p[P_DIST] * mean_d[w] + p[P_OCCUPY] * owner[w, i]
        rr += p[P_CONTRIB] * contrib[w, i]
        onset = contact[w, i] and not prev_contact[w, i]
        if contact[w, i]:
            rr -= p[P_COLL]
            if onset:
                rr -= p[P_ONSET]
        prev_contact[w, i] = contact[w, i]
        rew[w, i] = rr
        # end-of-episode values written as their change, so the episode's sum is the last value
        all_now = 1.0 if frac[w] >= 1.0 else 0.0
        if first[w]:
            stats[S_OCCUPIED, w, i] = frac[w]
            stats[S_DISTANCE, w, i] = mean_d[w]
            stats[S_ALL, w, i] = all_now
        else:
            stats[S_OCCUPIED, w, i] = frac[w] - prev_frac[w]
            stats[S_DISTANCE, w, i] = mean_d[w] - prev_mean_d[w]
            stats[S_ALL, w, i] = all_now - (1.0 if prev_frac[w] >= 1.0 else 0.0)
        stats[S_COLLISIONS, w, i] = 1.0 if onset else 0.0
    px = np.float64(pos[w, i, 0])
    py = np.float64(pos[w, i, 1])
    th = np.float64(theta[w, i])
    c = math.cos(th)
    s_ = math.sin(th)
    vx = vel[w, i, 0]
    vy = vel[w, i, 1]
    ego_velocity(obs, w, i, n_rays, vx, vy, c, s_, vmax)
    # the KL nearest active landmarks, nearest first (ties: lower index), insertion-sorted
    found = 0
    for l in range(n_lm):
        if not lm_active[w, l]:
            continue
        e2 = (np.float64(lm_pos[w, l, 0]) - px) ** 2 + (np.float64(lm_pos[w, l, 1]) - py) ** 2
        if found == KL:
            if e2 >= best_d2[w, i, KL - 1]:
                continue
            s = KL - 1
        else:
            s = found
            found += 1
        while s > 0 and best_d2[w, i, s - 1] > e2:
            best_d2[w, i, s] = best_d2[w, i, s - 1]
            best_l[w, i, s] = best_l[w, i, s - 1]
            s -= 1
        best_d2[w, i, s] = e2
        best_l[w, i, s] = l
    for s in range(KL):
        o = base + N_SLOT * s
        if s >= found:
            for f in range(N_SLOT):
                obs[w, i, o + f] = 0.0
            continue
        l = best_l[w, i, s]
        gx = np.float64(lm_pos[w, l, 0]) - px
        gy = np.float64(lm_pos[w, l, 1]) - py
        f = 1.0 / max(scale, math.sqrt(best_d2[w, i, s]))
        obs[w, i, o] = min(max((gx * c + gy * s_) * f, -1.0), 1.0)
        obs[w, i, o + 1] = min(max((-gx * s_ + gy * c) * f, -1.0), 1.0)
        other = d2[w, l] if j1[w, l] == i else d1[w, l]
        obs[w, i, o + 2] = min(other / scale, 1.0)
        obs[w, i, o + 3] = 1.0
    neighbour_slots(obs, w, i, nb_base, nb)


@njit(cache=True, parallel=True, error_model="numpy")
def agent_phase(with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, lm_pos, lm_active,
                d1, j1, d2, occupied, mean_d, prev_mean_d, frac, prev_frac, owner, contrib, params, best_d2, best_l,
                rew, stats, obs):
    """``agent_one`` for every agent of every world (with its world's settings params[w]), in parallel."""
    n = pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        agent_one(w, k - w * n, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb,
                  lm_pos, lm_active, d1, j1, d2, occupied, mean_d, prev_mean_d, frac, prev_frac, owner, contrib,
                  params[w], best_d2, best_l, rew, stats, obs)
