"""Compiled kernels of the navigation scenario: layouts, spawns, respawns, reward and observation.

Random numbers come from one SplitMix64 stream per world (``core.rng``), so a world's layout
depends only on the seed and on how many times that world was reset, never on threads.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..core.geometry import segment_distance, segments_cross
from ..core.rng import randint, uniform

# Layout of the float64 ``params`` vector (see Navigation._params).
(P_ARENA, P_RADIUS, P_GOAL_R, P_N_OBST, P_OBST_MIN, P_OBST_MAX, P_OBST_MARGIN, P_OBST_GAP, P_CLEAR,
 P_PROGRESS, P_GOAL_BONUS, P_COLLISION, P_TIME, P_GOAL_SCALE, P_VMAX) = range(15)
N_PARAMS = 15


@njit(cache=True, inline="always")
def _segment_gap(a, b):
    """Smallest distance between two segments given as (x1, y1, x2, y2) tuples (0 if they cross)."""
    if segments_cross(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]):
        return 0.0
    d = segment_distance(a[0], a[1], b[0], b[1], b[2], b[3])
    d = min(d, segment_distance(a[2], a[3], b[0], b[1], b[2], b[3]))
    d = min(d, segment_distance(b[0], b[1], a[0], a[1], a[2], a[3]))
    return min(d, segment_distance(b[2], b[3], a[0], a[1], a[2], a[3]))


@njit(cache=True)
def _wall_clearance(w, x, y, walls, n_walls):
    best = 1e30
    for k in range(n_walls[w]):
        best = min(best, segment_distance(x, y, walls[w, k, 0], walls[w, k, 1], walls[w, k, 2], walls[w, k, 3]))
    return best


@njit(cache=True)
def _make_walls(w, rng, walls, n_walls, p):
    """Arena border (walls 0-3) plus up to n_obstacles random interior segments."""
    L = p[P_ARENA]
    border = ((0.0, 0.0, L, 0.0), (L, 0.0, L, L), (L, L, 0.0, L), (0.0, L, 0.0, 0.0))
    for k in range(4):
        for c in range(4):
            walls[w, k, c] = border[k][c]
    count = 4
    m = p[P_OBST_MARGIN]
    for _ in range(int(p[P_N_OBST])):
        for _try in range(20):
            length = p[P_OBST_MIN] + (p[P_OBST_MAX] - p[P_OBST_MIN]) * uniform(rng, w)
            ang = math.pi * uniform(rng, w)
            cx = m + (L - 2 * m) * uniform(rng, w)
            cy = m + (L - 2 * m) * uniform(rng, w)
            hx = 0.5 * length * math.cos(ang)
            hy = 0.5 * length * math.sin(ang)
            seg = (cx - hx, cy - hy, cx + hx, cy + hy)
            ok = min(seg[0], seg[1], seg[2], seg[3]) >= m and max(seg[0], seg[1], seg[2], seg[3]) <= L - m
            for k in range(4, count):
                if not ok:
                    break
                other = (walls[w, k, 0], walls[w, k, 1], walls[w, k, 2], walls[w, k, 3])
                if _segment_gap(seg, other) < p[P_OBST_GAP]:
                    ok = False
            if ok:
                for c in range(4):
                    walls[w, count, c] = seg[c]
                count += 1
                break
    n_walls[w] = count


@njit(cache=True)
def _shuffle_cells(w, rng, order, m):
    for t in range(m):
        order[w, t] = t
    for t in range(m):
        s = t + randint(rng, w, m - t)
        tmp = order[w, t]
        order[w, t] = order[w, s]
        order[w, s] = tmp


@njit(cache=True)
def _lattice_place(w, rng, order, walls, n_walls, p, out, jitter, clearance):
    """Place out.shape[1] points in distinct lattice cells (cells of 4 radii), clear of walls.

    Returns how many were placed. Points in different cells are at least 4r - 2*jitter apart.
    """
    L = p[P_ARENA]
    cell = 4.0 * p[P_RADIUS]
    margin = p[P_RADIUS] + p[P_CLEAR]
    nc = int((L - 2 * margin) / cell)
    _shuffle_cells(w, rng, order, nc * nc)
    placed = 0
    n = out.shape[1]
    for t in range(nc * nc):
        if placed == n:
            break
        c = order[w, t]
        x = margin + (c % nc + 0.5) * cell + jitter * (2.0 * uniform(rng, w) - 1.0)
        y = margin + (c // nc + 0.5) * cell + jitter * (2.0 * uniform(rng, w) - 1.0)
        if _wall_clearance(w, x, y, walls, n_walls) >= clearance:
            out[w, placed, 0] = x
            out[w, placed, 1] = y
            placed += 1
    return placed


@njit(cache=True, parallel=True)
def reset_worlds(mask, rng, p, walls, n_walls, pos, vel, theta, omega, active, goals, order, placed):
    """Reset the worlds where mask[w]: new walls, agents and goals. placed[w] = min(agents, goals) placed."""
    n_worlds = pos.shape[0]
    n = pos.shape[1]
    r = p[P_RADIUS]
    for w in prange(n_worlds):
        if not mask[w]:
            continue
        _make_walls(w, rng, walls, n_walls, p)
        a = _lattice_place(w, rng, order, walls, n_walls, p, pos, r, r + p[P_CLEAR])
        gj = max(2.0 * r - p[P_GOAL_R], 0.0)
        b = _lattice_place(w, rng, order, walls, n_walls, p, goals, gj, r + p[P_CLEAR])
        placed[w] = min(a, b)
        for i in range(n):
            theta[w, i] = np.float32(2.0 * math.pi * uniform(rng, w) - math.pi)
            vel[w, i, 0] = 0.0
            vel[w, i, 1] = 0.0
            omega[w, i] = 0.0
            active[w, i] = True


@njit(cache=True)
def _free_point(w, i, rng, p, walls, n_walls, pos, active, avoid_agents):
    """Rejection-sample a point clear of walls (and of active agents); 64 tries, last try kept."""
    L = p[P_ARENA]
    r = p[P_RADIUS]
    margin = r + p[P_CLEAR]
    x = y = 0.0
    for _try in range(64):
        x = margin + (L - 2 * margin) * uniform(rng, w)
        y = margin + (L - 2 * margin) * uniform(rng, w)
        if _wall_clearance(w, x, y, walls, n_walls) < r + p[P_CLEAR]:
            continue
        ok = True
        if avoid_agents:
            lim = (2.0 * r + p[P_CLEAR]) ** 2
            for j in range(pos.shape[1]):
                if j != i and active[w, j] and (pos[w, j, 0] - x) ** 2 + (pos[w, j, 1] - y) ** 2 < lim:
                    ok = False
                    break
        if ok:
            break
    return x, y


@njit(cache=True, parallel=True)
def respawn_agents(mask, rng, p, walls, n_walls, pos, vel, theta, omega, active, goals):
    """Give every agent with mask[w, i] a fresh start and goal inside its (running) world."""
    n_worlds = pos.shape[0]
    for w in prange(n_worlds):
        for i in range(pos.shape[1]):
            if not mask[w, i]:
                continue
            active[w, i] = False
            x, y = _free_point(w, i, rng, p, walls, n_walls, pos, active, True)
            pos[w, i, 0] = x
            pos[w, i, 1] = y
            gx, gy = _free_point(w, i, rng, p, walls, n_walls, pos, active, False)
            goals[w, i, 0] = gx
            goals[w, i, 1] = gy
            theta[w, i] = np.float32(2.0 * math.pi * uniform(rng, w) - math.pi)
            vel[w, i, 0] = 0.0
            vel[w, i, 1] = 0.0
            omega[w, i] = 0.0
            active[w, i] = True


@njit(cache=True, parallel=True, error_model="numpy")
def observe(pos, vel, theta, goals, lidar, active, p, obs, dist):
    """obs[E,N,R+4] = lidar, ego velocity / v_max, ego goal vector (scaled, norm <= 1); dist [E,N]."""
    n_worlds, n = pos.shape[0], pos.shape[1]
    n_rays = lidar.shape[2]
    scale = p[P_GOAL_SCALE]
    vmax = p[P_VMAX]
    for k in prange(n_worlds * n):
        w = k // n
        i = k - w * n
        for r in range(n_rays):
            obs[w, i, r] = lidar[w, i, r]
        if not active[w, i]:
            for c in range(4):
                obs[w, i, n_rays + c] = 0.0
            continue
        c = math.cos(theta[w, i])
        s = math.sin(theta[w, i])
        vx = vel[w, i, 0]
        vy = vel[w, i, 1]
        obs[w, i, n_rays] = (vx * c + vy * s) / vmax
        obs[w, i, n_rays + 1] = (-vx * s + vy * c) / vmax
        gx = goals[w, i, 0] - pos[w, i, 0]
        gy = goals[w, i, 1] - pos[w, i, 1]
        d = math.sqrt(gx * gx + gy * gy)
        dist[w, i] = d
        f = 1.0 / max(scale, d)
        obs[w, i, n_rays + 2] = (gx * c + gy * s) * f
        obs[w, i, n_rays + 3] = (-gx * s + gy * c) * f


@njit(cache=True, parallel=True, error_model="numpy")
def reward(pos, goals, active, contact, p, dist, rew, reached):
    """Reward and goal test after a step; dist [E,N] holds the previous distances and is updated."""
    n_worlds, n = pos.shape[0], pos.shape[1]
    for k in prange(n_worlds * n):
        w = k // n
        i = k - w * n
        if not active[w, i]:
            rew[w, i] = 0.0
            reached[w, i] = False
            continue
        gx = goals[w, i, 0] - pos[w, i, 0]
        gy = goals[w, i, 1] - pos[w, i, 1]
        d = math.sqrt(gx * gx + gy * gy)
        got = d < p[P_GOAL_R]
        reached[w, i] = got
        rr = p[P_PROGRESS] * (dist[w, i] - d) - p[P_TIME]
        if contact[w, i]:
            rr -= p[P_COLLISION]
        if got:
            rr += p[P_GOAL_BONUS]
        rew[w, i] = rr
        dist[w, i] = d
