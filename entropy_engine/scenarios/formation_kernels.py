"""Compiled kernels of the formation scenario: spawns, the moving reference, the optimal slot
matching (Hungarian algorithm), reward, statistics and observation.

Random numbers come from one SplitMix64 stream per world (``core.rng``), so a world's shapes,
spawns and reference path depend only on the seed and its own history, never on threads. A step
is two kernels: ``world_phase`` (one task per world: move the reference, place the slots, match
robots to slots) and ``agent_phase`` (one task per agent: reward, statistics, observation). Their
bodies are the per-world and per-agent functions ``reset_world``, ``world_one`` and ``agent_one``,
which ``gpu.formation`` compiles for the GPU; every scratch array is the scenario's (allocated once,
a slice per world), so none of them allocates.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..core.observe import copy_lidar, ego_velocity, leave_out, neighbour_slots
from ..core.rng import randint, uniform
from ..core.spawn import border_walls, place_clear, respawn_clear

# Layout of the float64 ``params`` vector (see Formation._params).
(P_ARENA, P_RADIUS, P_SPACING, P_CLEAR, P_REF_SPEED, P_REF_TURN, P_WP_R, P_WP_MIN_D, P_DT, P_VMAX, P_SENSE,
 P_REF_SCALE, P_SLOT_SCALE, P_ERR, P_BONUS, P_TOL, P_COLL, P_ONSET, P_INV_T) = range(19)
N_PARAMS = 19
# Order of the episode statistics (Formation.episode_stats).
S_ERROR, S_FORMED, S_COLLISIONS = range(3)
N_SHAPES = 3  # ring, line, wedge (the one-hot's order)


# ----------------------------------------------------------------------------- optimal matching
@njit(cache=True)
def hungarian(cost, n, m, u, v, p, way, minv, used, row_col):
    """Minimum-cost assignment of the first ``n`` rows of ``cost`` [>=n, >=m] to distinct columns
    of the first ``m`` (n <= m): the O(n^2 m) shortest-augmenting-path Hungarian algorithm with
    potentials. row_col[:n] receives each row's column. Scratch (length m + 1): u, v, minv float64,
    p, way int64, used bool. Exact for any real costs (ties: the first column found)."""
    inf = np.inf
    for j in range(m + 1):
        v[j] = 0.0
        p[j] = 0
        way[j] = 0
    for i in range(n + 1):
        u[i] = 0.0
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        for j in range(m + 1):
            minv[j] = inf
            used[j] = False
        while True:
            used[j0] = True
            i0 = p[j0]
            delta = inf
            j1 = 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    for j in range(1, m + 1):
        if p[j] != 0:
            row_col[p[j] - 1] = j - 1


@njit(cache=True)
def assignment(cost):
    """The optimal assignment of the rows of ``cost`` [n, m] (n <= m) to columns: int64 [n] (tests)."""
    n, m = cost.shape
    out = np.full(n, -1, np.int64)
    hungarian(cost, n, m, np.zeros(m + 1), np.zeros(m + 1), np.zeros(m + 1, np.int64), np.zeros(m + 1, np.int64),
              np.zeros(m + 1), np.zeros(m + 1, np.bool_), out)
    return out


# ----------------------------------------------------------------------------- spawns and reference
@njit(cache=True)
def _draw_waypoint(w, rng, p, margin, waypoint, ax, ay):
    """A waypoint uniform in the box [margin, L - margin]^2, at least ``ref_waypoint_min_distance``
    from (ax, ay) when the box allows it (64 rejection tries, the last one is kept)."""
    L = p[P_ARENA]
    d2 = p[P_WP_MIN_D] * p[P_WP_MIN_D]
    x = y = 0.0
    for _try in range(64):
        x = margin + (L - 2.0 * margin) * uniform(rng, w)
        y = margin + (L - 2.0 * margin) * uniform(rng, w)
        if (x - ax) ** 2 + (y - ay) ** 2 >= d2:
            break
    waypoint[w, 0] = x
    waypoint[w, 1] = y


@njit(cache=True)
def reset_world(w, rng, p, shape_off, shape_extent, pos, vel, theta, omega, active, shape, slot_off, margin, ref,
                ref_heading, waypoint, walls, n_walls):
    """Reset world ``w``: the arena's border as its only walls; a shape (uniform over ``N_SHAPES``) at a
    uniform orientation (slot_off [E, N, 2] = its offsets rotated), robots at random clear points, the
    reference at a random point of its box [margin, L - margin]^2 (margin [E] = the shape's extent +
    agent_radius + ``wall_clearance``) with a random heading, and a first waypoint.

    shape_off [S, N, 2] float64: each shape's slot offsets in its own frame, centred; shape_extent [S].
    (The CPU driver is ``reset_worlds``; the GPU's is in ``gpu.formation``.)"""
    n = pos.shape[1]
    L = p[P_ARENA]
    border_walls(w, L, walls, n_walls)
    s = randint(rng, w, N_SHAPES)
    shape[w] = s
    a = 2.0 * math.pi * uniform(rng, w)
    c = math.cos(a)
    sn = math.sin(a)
    for k in range(n):
        ox = shape_off[s, k, 0]
        oy = shape_off[s, k, 1]
        slot_off[w, k, 0] = c * ox - sn * oy
        slot_off[w, k, 1] = sn * ox + c * oy
    m = shape_extent[s] + p[P_RADIUS] + p[P_CLEAR]
    margin[w] = m
    for i in range(n):
        active[w, i] = False
    for i in range(n):
        place_clear(rng, w, i, p[P_ARENA], p[P_RADIUS] + 0.05, p[P_SPACING], pos, vel, theta, omega, active)
    rx = m + (L - 2.0 * m) * uniform(rng, w)
    ry = m + (L - 2.0 * m) * uniform(rng, w)
    ref[w, 0] = rx
    ref[w, 1] = ry
    ref_heading[w] = 2.0 * math.pi * uniform(rng, w) - math.pi
    _draw_waypoint(w, rng, p, m, waypoint, rx, ry)


@njit(cache=True, parallel=True)
def reset_worlds(mask, rng, params, shape_off, shape_extent, pos, vel, theta, omega, active, shape, slot_off, margin,
                 ref, ref_heading, waypoint, walls, n_walls):
    """``reset_world`` for every world where mask[w] (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        if mask[w]:
            reset_world(w, rng, params[w], shape_off, shape_extent, pos, vel, theta, omega, active, shape, slot_off, margin,
                        ref, ref_heading, waypoint, walls, n_walls)


@njit(cache=True, parallel=True)
def respawn_agents(mask, rng, params, pos, vel, theta, omega, active):
    """A fresh start for every agent with mask[w, i] at a random clear point of its world
    (``core.spawn.respawn_clear``), worlds in parallel."""
    for w in prange(pos.shape[0]):
        respawn_clear(w, mask, rng, params[w, P_ARENA], params[w, P_RADIUS] + 0.05, params[w, P_SPACING], pos, vel,
                      theta, omega, active)


# ----------------------------------------------------------------------------- one step
@njit(cache=True)
def world_one(w, move, pos, active, rng, p, margin, slot_off, ref, ref_heading, ref_vel, waypoint, slots, assign,
              match_d, formed, cost, u, v, pp, way, minv, used, rows, row_col):
    """World ``w``: with ``move``, the reference steers towards its waypoint (heading turns at most
    ``ref_turn_rate * dt``, speed ``ref_speed``, position clamped to its box; a new waypoint when it
    is within ``ref_waypoint_radius``); ref_vel [E, 2] is its velocity (zero without ``move``).
    Then slots [E, N, 2] = ref + slot_off, and the active robots are matched to slots minimising
    the sum of centre-to-slot distances: assign [E, N] (slot index, -1 for inactive robots),
    match_d [E, N] (distance to the assigned slot, 0 for inactive) and formed [E] (every active
    robot within ``slot_tolerance`` of its slot; False without active robots).

    Scratch (the scenario's, allocated once; world ``w`` uses its own rows): cost [E, N, N]; u, v,
    minv [E, N+1] float64; pp, way [E, N+1] int64; used [E, N+1] bool; rows, row_col [E, N] int64."""
    n = pos.shape[1]
    L = p[P_ARENA]
    dt = p[P_DT]
    speed = p[P_REF_SPEED]
    max_turn = p[P_REF_TURN] * dt
    if move:
        m = margin[w]
        h = ref_heading[w]
        want = math.atan2(waypoint[w, 1] - ref[w, 1], waypoint[w, 0] - ref[w, 0])
        dh = math.atan2(math.sin(want - h), math.cos(want - h))
        h += min(max(dh, -max_turn), max_turn)
        h = math.atan2(math.sin(h), math.cos(h))
        ref_heading[w] = h
        vx = speed * math.cos(h)
        vy = speed * math.sin(h)
        ref[w, 0] = min(max(ref[w, 0] + vx * dt, m), L - m)
        ref[w, 1] = min(max(ref[w, 1] + vy * dt, m), L - m)
        ref_vel[w, 0] = vx
        ref_vel[w, 1] = vy
        if (ref[w, 0] - waypoint[w, 0]) ** 2 + (ref[w, 1] - waypoint[w, 1]) ** 2 < p[P_WP_R] * p[P_WP_R]:
            _draw_waypoint(w, rng, p, m, waypoint, ref[w, 0], ref[w, 1])
    else:
        ref_vel[w, 0] = 0.0
        ref_vel[w, 1] = 0.0
    for k in range(n):
        slots[w, k, 0] = ref[w, 0] + slot_off[w, k, 0]
        slots[w, k, 1] = ref[w, 1] + slot_off[w, k, 1]
    cnt = 0
    for i in range(n):
        assign[w, i] = -1
        match_d[w, i] = 0.0
        if active[w, i]:
            rows[w, cnt] = i
            cnt += 1
    for r in range(cnt):
        i = rows[w, r]
        px = np.float64(pos[w, i, 0])
        py = np.float64(pos[w, i, 1])
        for k in range(n):
            cost[w, r, k] = math.sqrt((slots[w, k, 0] - px) ** 2 + (slots[w, k, 1] - py) ** 2)
    hungarian(cost[w], cnt, n, u[w], v[w], pp[w], way[w], minv[w], used[w], row_col[w])
    ok = cnt > 0
    for r in range(cnt):
        i = rows[w, r]
        k = row_col[w, r]
        assign[w, i] = k
        match_d[w, i] = cost[w, r, k]
        if cost[w, r, k] > p[P_TOL]:
            ok = False
    formed[w] = ok


@njit(cache=True, parallel=True)
def world_phase(move, pos, active, rng, params, margin, slot_off, ref, ref_heading, ref_vel, waypoint, slots, assign,
                match_d, formed, cost, u, v, pp, way, minv, used, rows, row_col):
    """``world_one`` for every world (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        world_one(w, move, pos, active, rng, params[w], margin, slot_off, ref, ref_heading, ref_vel, waypoint, slots, assign,
                  match_d, formed, cost, u, v, pp, way, minv, used, rows, row_col)


@njit(cache=True, inline="always", error_model="numpy")
def agent_one(w, i, with_reward, pos, vel, theta, active, contact, prev_contact, lidar, nb, shape, ref, ref_vel, slots,
              assign, match_d, formed, p, rew, stats, obs):
    """Agent ``i`` of world ``w``: reward and the per-step values of the episode statistics
    (``with_reward``), then the observation [E, N, R + 2 + 5K + 9] (layout: the ``Formation``
    docstring). nb [E, N, K, 5] is the neighbour sensor's output; stats [3, E, N] in the order
    S_ERROR .. S_COLLISIONS."""
    n_rays = lidar.shape[2]
    K = nb.shape[2]
    vmax = p[P_VMAX]
    scale = p[P_REF_SCALE]
    base = n_rays + 2
    copy_lidar(obs, w, i, lidar)
    if not active[w, i]:
        leave_out(obs, w, i, base, with_reward, rew, prev_contact, stats)
        return
    d = match_d[w, i]
    if with_reward:
        rr = -p[P_ERR] * d
        if d <= p[P_TOL]:
            rr += p[P_BONUS]
        onset = contact[w, i] and not prev_contact[w, i]
        if contact[w, i]:
            rr -= p[P_COLL]
            if onset:
                rr -= p[P_ONSET]
        prev_contact[w, i] = contact[w, i]
        rew[w, i] = rr
        stats[S_ERROR, w, i] = d * p[P_INV_T]
        stats[S_FORMED, w, i] = p[P_INV_T] if formed[w] else 0.0
        stats[S_COLLISIONS, w, i] = 1.0 if onset else 0.0
    # observation
    px = pos[w, i, 0]
    py = pos[w, i, 1]
    th = theta[w, i]
    c = math.cos(th)
    s_ = math.sin(th)
    vx = vel[w, i, 0]
    vy = vel[w, i, 1]
    ego_velocity(obs, w, i, n_rays, vx, vy, c, s_, vmax)
    neighbour_slots(obs, w, i, base, nb)
    o = base + 5 * K
    gx = ref[w, 0] - px
    gy = ref[w, 1] - py
    f = 1.0 / max(scale, math.sqrt(gx * gx + gy * gy))
    obs[w, i, o] = min(max((gx * c + gy * s_) * f, -1.0), 1.0)
    obs[w, i, o + 1] = min(max((-gx * s_ + gy * c) * f, -1.0), 1.0)
    obs[w, i, o + 2] = min(max((ref_vel[w, 0] * c + ref_vel[w, 1] * s_) / vmax, -1.0), 1.0)
    obs[w, i, o + 3] = min(max((-ref_vel[w, 0] * s_ + ref_vel[w, 1] * c) / vmax, -1.0), 1.0)
    for q in range(N_SHAPES):
        obs[w, i, o + 4 + q] = 1.0 if shape[w] == q else 0.0
    a = assign[w, i]
    gx = slots[w, a, 0] - px
    gy = slots[w, a, 1] - py
    f = 1.0 / max(p[P_SLOT_SCALE], d)
    obs[w, i, o + 7] = min(max((gx * c + gy * s_) * f, -1.0), 1.0)
    obs[w, i, o + 8] = min(max((-gx * s_ + gy * c) * f, -1.0), 1.0)


@njit(cache=True, parallel=True, error_model="numpy")
def agent_phase(with_reward, pos, vel, theta, active, contact, prev_contact, lidar, nb, shape, ref, ref_vel, slots,
                assign, match_d, formed, params, rew, stats, obs):
    """``agent_one`` for every agent of every world (with its settings params[w]), in parallel."""
    n = pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        agent_one(w, k - w * n, with_reward, pos, vel, theta, active, contact, prev_contact, lidar, nb, shape, ref,
                  ref_vel, slots, assign, match_d, formed, params[w], rew, stats, obs)
