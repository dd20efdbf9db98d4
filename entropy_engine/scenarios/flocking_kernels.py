"""Compiled kernels of the flocking scenario: spawns, waypoints, reward, statistics and observation.

Random numbers come from one SplitMix64 stream per world (``core.rng``), so a world's spawn and
waypoint sequence depends only on the seed and on its own history, never on threads. A step is
two kernels: ``world_phase`` (one task per world: centroid, polarisation, waypoint test and
redraw) and ``agent_phase`` (one task per agent: reward, episode statistics, observation).
"""
from __future__ import annotations

import math

from numba import njit, prange

from ..core.observe import copy_lidar, ego_velocity, leave_out, neighbour_slots
from ..core.rng import shuffled_range, uniform
from ..core.spawn import border_walls, respawn_clear, start_at_rest

# Layout of a row of the float64 ``params`` array [E, N_PARAMS] (see Flocking._params): one row per world,
# the per-world functions read their world's row ``p``.
(P_ARENA, P_RADIUS, P_WP_R, P_WP_MARGIN, P_WP_MIN_D, P_SPACING, P_VMAX, P_WP_SCALE, P_PROGRESS, P_WP_BONUS,
 P_ALIGN, P_COH, P_COH_D, P_SEP, P_SEP_D, P_COLL, P_ONSET, P_SENSE, P_INV_T) = range(19)
N_PARAMS = 19
# Order of the episode statistics (Flocking.episode_stats).
S_POLAR, S_COHESION, S_MIN_SPACING, S_COLLISIONS, S_WAYPOINTS = range(5)


@njit(cache=True)
def _draw_waypoint(w, rng, p, waypoint, ax, ay):
    """A waypoint uniform in the arena minus ``waypoint_margin``, at least ``waypoint_min_distance``
    from (ax, ay): 64 rejection tries, the last one is kept."""
    L = p[P_ARENA]
    m = p[P_WP_MARGIN]
    d2 = p[P_WP_MIN_D] * p[P_WP_MIN_D]
    x = y = 0.0
    for _try in range(64):
        x = m + (L - 2.0 * m) * uniform(rng, w)
        y = m + (L - 2.0 * m) * uniform(rng, w)
        if (x - ax) ** 2 + (y - ay) ** 2 >= d2:
            break
    waypoint[w, 0] = x
    waypoint[w, 1] = y


@njit(cache=True)
def reset_world(w, rng, p, side, pos, vel, theta, omega, active, waypoint, order, walls, n_walls):
    """Reset world ``w``: the arena's border as its only walls; the N robots on random distinct cells of
    a ``side x side`` lattice (``spawn_spacing`` apart, jittered) placed at a random spot of the arena,
    random headings; a waypoint at least ``waypoint_min_distance`` from the group's centroid.

    order [E, side*side] int64 is scratch. The caller checked that the block fits the arena. (The CPU
    driver is ``reset_worlds``; the GPU's is in ``gpu.flocking``.)"""
    n = pos.shape[1]
    L = p[P_ARENA]
    r = p[P_RADIUS]
    s = p[P_SPACING]
    jitter = max(0.5 * (s - 2.0 * r) - 0.01, 0.0)
    block = side * s
    border_walls(w, L, walls, n_walls)
    m = side * side
    shuffled_range(rng, w, order, m)
    ox = (L - block) * uniform(rng, w)
    oy = (L - block) * uniform(rng, w)
    cx = 0.0
    cy = 0.0
    for i in range(n):
        c = order[w, i]
        x = ox + (c % side + 0.5) * s + jitter * (2.0 * uniform(rng, w) - 1.0)
        y = oy + (c // side + 0.5) * s + jitter * (2.0 * uniform(rng, w) - 1.0)
        pos[w, i, 0] = x
        pos[w, i, 1] = y
        cx += x
        cy += y
        start_at_rest(rng, w, i, theta, vel, omega, active)
    _draw_waypoint(w, rng, p, waypoint, cx / n, cy / n)


@njit(cache=True, parallel=True)
def reset_worlds(mask, rng, params, side, pos, vel, theta, omega, active, waypoint, order, walls, n_walls):
    """``reset_world`` for every world where mask[w] (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        if mask[w]:
            reset_world(w, rng, params[w], side, pos, vel, theta, omega, active, waypoint, order, walls, n_walls)


@njit(cache=True, parallel=True)
def respawn_agents(mask, rng, params, pos, vel, theta, omega, active):
    """Give every agent with mask[w, i] a fresh start at a random point of its world at least
    ``spawn_spacing`` from every other robot's centre (``core.spawn.respawn_clear``), worlds in parallel."""
    for w in prange(pos.shape[0]):
        respawn_clear(w, mask, rng, params[w, P_ARENA], params[w, P_RADIUS] + 0.05, params[w, P_SPACING], pos, vel,
                      theta, omega, active)


@njit(cache=True)
def world_one(w, pos, theta, active, rng, p, redraw, centroid, polar, reached, waypoint, prev_wp):
    """Per world: centroid [E, 2] and polarisation [E] of the active robots (the order parameter
    |mean of unit heading vectors|, 0 with no robot); reached [E]: the centroid is within
    ``waypoint_radius`` of the waypoint. prev_wp [E, 2] receives the waypoint the step was
    scored against; with ``redraw``, a world that reached it draws a new one (at least
    ``waypoint_min_distance`` from the old one)."""
    n = pos.shape[1]
    cx = 0.0
    cy = 0.0
    hx = 0.0
    hy = 0.0
    count = 0
    for i in range(n):
        if active[w, i]:
            cx += pos[w, i, 0]
            cy += pos[w, i, 1]
            hx += math.cos(theta[w, i])
            hy += math.sin(theta[w, i])
            count += 1
    prev_wp[w, 0] = waypoint[w, 0]
    prev_wp[w, 1] = waypoint[w, 1]
    if count == 0:
        centroid[w, 0] = 0.0
        centroid[w, 1] = 0.0
        polar[w] = 0.0
        reached[w] = False
        return
    cx /= count
    cy /= count
    centroid[w, 0] = cx
    centroid[w, 1] = cy
    polar[w] = math.sqrt(hx * hx + hy * hy) / count
    got = (cx - waypoint[w, 0]) ** 2 + (cy - waypoint[w, 1]) ** 2 < p[P_WP_R] * p[P_WP_R]
    reached[w] = got
    if got and redraw:
        _draw_waypoint(w, rng, p, waypoint, waypoint[w, 0], waypoint[w, 1])


@njit(cache=True, parallel=True)
def world_phase(pos, theta, active, rng, params, redraw, centroid, polar, reached, waypoint, prev_wp):
    """``world_one`` for every world (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        world_one(w, pos, theta, active, rng, params[w], redraw, centroid, polar, reached, waypoint, prev_wp)


@njit(cache=True, inline="always", error_model="numpy")
def agent_one(w, i, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, nb_idx, centroid,
              polar, reached, prev_wp, waypoint, p, dist, min_nn, rew, stats, obs):
    """Per agent: reward and the per-step values of the episode statistics (``with_reward``; the
    distance progress is measured to prev_wp, the waypoint the step was scored against), then the
    observation against the current waypoint; dist [E, N] (distance to the current waypoint) and
    min_nn [E, N] (running minimum of the nearest-neighbour distance) are updated.

    first [E]: this step is the first of the world's episode. nb [E, N, K, 5] and nb_idx [E, N, K]
    are the neighbour sensor's output; stats [5, E, N] in the order S_POLAR .. S_WAYPOINTS;
    obs [E, N, R + 2 + 5K + 2].
    """
    n_rays = lidar.shape[2]
    K = nb.shape[2]
    vmax = p[P_VMAX]
    sense = p[P_SENSE]
    inv_t = p[P_INV_T]
    base = n_rays + 2
    copy_lidar(obs, w, i, lidar)
    if not active[w, i]:
        leave_out(obs, w, i, base, with_reward, rew, prev_contact, stats)
        return
    px = pos[w, i, 0]
    py = pos[w, i, 1]
    th = theta[w, i]
    # nearest neighbour's centre distance (sense_range when nobody is in range)
    d_nn = sense
    if nb[w, i, 0, 4] > 0.0:
        d_nn = min(math.sqrt(nb[w, i, 0, 0] ** 2 + nb[w, i, 0, 1] ** 2) * sense, sense)
    if with_reward:
        d_old = math.sqrt((prev_wp[w, 0] - px) ** 2 + (prev_wp[w, 1] - py) ** 2)
        rr = p[P_PROGRESS] * (dist[w, i] - d_old)
        if reached[w]:
            rr += p[P_WP_BONUS]
        # alignment: mean cos of the heading difference to the sensed neighbours
        align = 0.0
        cnt = 0
        for s in range(K):
            j = nb_idx[w, i, s]
            if j >= 0:
                align += math.cos(theta[w, j] - th)
                cnt += 1
        if cnt > 0:
            rr += p[P_ALIGN] * align / cnt
        d_c = math.sqrt((centroid[w, 0] - px) ** 2 + (centroid[w, 1] - py) ** 2)
        if d_c > p[P_COH_D]:
            rr -= p[P_COH] * (d_c - p[P_COH_D])
        if d_nn < p[P_SEP_D]:
            rr -= p[P_SEP] * (1.0 - d_nn / p[P_SEP_D])
        onset = contact[w, i] and not prev_contact[w, i]
        if contact[w, i]:
            rr -= p[P_COLL]
            if onset:
                rr -= p[P_ONSET]
        prev_contact[w, i] = contact[w, i]
        rew[w, i] = rr
        # episode statistics (per-step values; BatchEnv sums them over the episode)
        stats[S_POLAR, w, i] = polar[w] * inv_t
        stats[S_COHESION, w, i] = d_c * inv_t
        old = sense if first[w] else min_nn[w, i]
        new = min(old, d_nn)
        stats[S_MIN_SPACING, w, i] = new if first[w] else new - old   # telescopes to the episode minimum
        min_nn[w, i] = new
        stats[S_COLLISIONS, w, i] = 1.0 if onset else 0.0
        stats[S_WAYPOINTS, w, i] = 1.0 if reached[w] else 0.0
    # observation
    c = math.cos(th)
    s_ = math.sin(th)
    vx = vel[w, i, 0]
    vy = vel[w, i, 1]
    ego_velocity(obs, w, i, n_rays, vx, vy, c, s_, vmax)
    neighbour_slots(obs, w, i, base, nb)
    gx = waypoint[w, 0] - px
    gy = waypoint[w, 1] - py
    d = math.sqrt(gx * gx + gy * gy)
    dist[w, i] = d
    f = 1.0 / max(p[P_WP_SCALE], d)
    o = base + 5 * K
    obs[w, i, o] = min(max((gx * c + gy * s_) * f, -1.0), 1.0)
    obs[w, i, o + 1] = min(max((-gx * s_ + gy * c) * f, -1.0), 1.0)


@njit(cache=True, parallel=True, error_model="numpy")
def agent_phase(with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, nb_idx, centroid,
                polar, reached, prev_wp, waypoint, params, dist, min_nn, rew, stats, obs):
    """``agent_one`` for every agent of every world (with its world's settings params[w]), in parallel."""
    n = pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        agent_one(w, k - w * n, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb,
                  nb_idx, centroid, polar, reached, prev_wp, waypoint, params[w], dist, min_nn, rew, stats, obs)
