"""Compiled kernels of the navigation scenario: layouts, spawns, respawns, reward and observation.

Random numbers come from one SplitMix64 stream per world (``core.rng``), so a world's layout
depends only on the seed and on how many times that world was reset, never on threads.
"""
from __future__ import annotations

import math

from numba import njit, prange

from ..core.geometry import segment_distance, segments_cross
from ..core.grid import cell_span
from ..core.rng import shuffled_range, uniform
from ..core.spawn import start_at_rest

# Layout of a row of the float64 ``params`` array [E, N_PARAMS] (see Navigation._params): one row per
# world, so curricula can give each world its own settings (``Navigation.settings``).
(P_ARENA, P_RADIUS, P_GOAL_R, P_N_OBST, P_OBST_MIN, P_OBST_MAX, P_OBST_MARGIN, P_OBST_GAP, P_CLEAR,
 P_PROGRESS, P_GOAL_BONUS, P_COLLISION, P_TIME, P_GOAL_SCALE, P_VMAX, P_ONSET, P_PROX, P_PROX_D, P_APPROACH,
 P_RANGE, P_MIN_GOAL_D, P_ACTIVE) = range(22)
N_PARAMS = 22


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
def _lattice_place(w, rng, order, walls, n_walls, p, out, jitter, clearance, near, min_d):
    """Place out.shape[1] points in distinct lattice cells (cells of 4 radii), clear of walls, point
    k at least ``min_d`` from near[w, k] (0: no such constraint).

    Returns how many were placed. Points in different cells are at least 4r - 2*jitter apart.
    """
    L = p[P_ARENA]
    cell = 4.0 * p[P_RADIUS]
    margin = p[P_RADIUS] + p[P_CLEAR]
    nc = int((L - 2 * margin) / cell)
    shuffled_range(rng, w, order, nc * nc)
    placed = 0
    n = out.shape[1]
    for t in range(nc * nc):
        if placed == n:
            break
        c = order[w, t]
        x = margin + (c % nc + 0.5) * cell + jitter * (2.0 * uniform(rng, w) - 1.0)
        y = margin + (c // nc + 0.5) * cell + jitter * (2.0 * uniform(rng, w) - 1.0)
        if min_d > 0.0 and (x - near[w, placed, 0]) ** 2 + (y - near[w, placed, 1]) ** 2 < min_d * min_d:
            continue
        if _wall_clearance(w, x, y, walls, n_walls) >= clearance:
            out[w, placed, 0] = x
            out[w, placed, 1] = y
            placed += 1
    return placed


@njit(cache=True)
def reset_world(w, rng, params, walls, n_walls, pos, vel, theta, omega, active, goals, order, placed):
    """Reset world ``w`` with its own settings ``params[w]``: new walls, agents and goals (each at
    least ``P_MIN_GOAL_D`` from its agent); only the first ``n_active`` agents (``P_ACTIVE`` of them,
    at least one) take part, the others are inactive until the next reset. placed[w] = min(agents,
    goals) placed. (The CPU driver is ``reset_worlds``; the GPU's is in ``gpu.navigation``.)"""
    n = pos.shape[1]
    p = params[w]
    r = p[P_RADIUS]
    _make_walls(w, rng, walls, n_walls, p)
    a = _lattice_place(w, rng, order, walls, n_walls, p, pos, r, r + p[P_CLEAR], pos, 0.0)
    gj = max(2.0 * r - p[P_GOAL_R], 0.0)
    b = _lattice_place(w, rng, order, walls, n_walls, p, goals, gj, r + p[P_CLEAR], pos, p[P_MIN_GOAL_D])
    placed[w] = min(a, b)
    for i in range(n):
        start_at_rest(rng, w, i, theta, vel, omega, active)
    n_active = n_active_agents(p[P_ACTIVE], n)
    for i in range(n_active, n):
        active[w, i] = False


@njit(cache=True, parallel=True)
def reset_worlds(mask, rng, params, walls, n_walls, pos, vel, theta, omega, active, goals, order, placed):
    """``reset_world`` for every world where mask[w], in parallel."""
    for w in prange(pos.shape[0]):
        if mask[w]:
            reset_world(w, rng, params, walls, n_walls, pos, vel, theta, omega, active, goals, order, placed)


@njit(cache=True, inline="always")
def n_active_agents(fraction, n):
    """Agents that take part in an episode: round(fraction * n), at least 1 and at most n."""
    return min(n, max(1, int(math.floor(fraction * n + 0.5))))


@njit(cache=True)
def _clear_of_agents(w, x, y, lim2, pos, active, mask, placed, n_placed, g, cell, cell_start, cell_items):
    """No robot centre within sqrt(lim2) of (x, y): robots from the grid (built from the current
    positions; cells are wider than lim) except those being respawned, plus those already
    respawned in this call (``placed[:n_placed]``)."""
    x0, x1, y0, y1 = cell_span(x, y, math.sqrt(lim2), cell, g)
    for yy in range(y0, y1 + 1):
        for xx in range(x0, x1 + 1):
            c = yy * g + xx
            for k in range(cell_start[w, c], cell_start[w, c + 1]):
                j = cell_items[w, k]
                if active[w, j] and not mask[w, j] and (pos[w, j, 0] - x) ** 2 + (pos[w, j, 1] - y) ** 2 < lim2:
                    return False
    for k in range(n_placed):
        j = placed[k]
        if (pos[w, j, 0] - x) ** 2 + (pos[w, j, 1] - y) ** 2 < lim2:
            return False
    return True


@njit(cache=True)
def _free_point(w, rng, p, walls, n_walls, pos, active, mask, placed, n_placed, g, cell, cell_start, cell_items,
                avoid_agents, ax, ay, min_d):
    """Rejection-sample a point clear of walls (and of robots), at least min_d from (ax, ay);
    64 tries, the last try is kept."""
    L = p[P_ARENA]
    r = p[P_RADIUS]
    margin = r + p[P_CLEAR]
    lim2 = (2.0 * r + p[P_CLEAR]) ** 2
    x = y = 0.0
    for _try in range(64):
        x = margin + (L - 2 * margin) * uniform(rng, w)
        y = margin + (L - 2 * margin) * uniform(rng, w)
        if (x - ax) ** 2 + (y - ay) ** 2 < min_d * min_d:
            continue
        if _wall_clearance(w, x, y, walls, n_walls) < r + p[P_CLEAR]:
            continue
        if not avoid_agents or _clear_of_agents(w, x, y, lim2, pos, active, mask, placed, n_placed, g, cell,
                                                cell_start, cell_items):
            break
    return x, y


@njit(cache=True)
def respawn_world(w, mask, rng, params, walls, n_walls, pos, vel, theta, omega, active, goals, g, cell, cell_start,
                  cell_items, placed):
    """Give every agent of world ``w`` with mask[w, i] a fresh start and a goal at least
    ``P_MIN_GOAL_D`` (of the world's ``params[w]``) from it, inside its (running) world.

    The world's grid (``cell_start``/``cell_items``, built by the last step or reset) makes each
    placement cost O(1) in the number of robots; ``placed`` [E, N] is scratch (the agents respawned
    so far, which the grid does not hold yet). (CPU driver: ``respawn_agents``; GPU: ``gpu.navigation``.)
    """
    n = pos.shape[1]
    p = params[w]
    min_goal_d = p[P_MIN_GOAL_D]
    row = placed[w]
    n_placed = 0
    for i in range(n):
        if not mask[w, i]:
            continue
        x, y = _free_point(w, rng, p, walls, n_walls, pos, active, mask, row, n_placed, g, cell,
                           cell_start, cell_items, True, 0.0, 0.0, 0.0)
        pos[w, i, 0] = x
        pos[w, i, 1] = y
        row[n_placed] = i
        n_placed += 1
        gx, gy = _free_point(w, rng, p, walls, n_walls, pos, active, mask, row, n_placed, g, cell,
                             cell_start, cell_items, False, x, y, min_goal_d)
        goals[w, i, 0] = gx
        goals[w, i, 1] = gy
        start_at_rest(rng, w, i, theta, vel, omega, active)


@njit(cache=True, parallel=True)
def respawn_agents(mask, rng, params, walls, n_walls, pos, vel, theta, omega, active, goals, g, cell, cell_start,
                   cell_items, placed):
    """``respawn_world`` for every world with an agent to respawn, in parallel."""
    n_worlds, n = pos.shape[0], pos.shape[1]
    for w in prange(n_worlds):
        any_ = False
        for i in range(n):
            if mask[w, i]:
                any_ = True
        if any_:
            respawn_world(w, mask, rng, params, walls, n_walls, pos, vel, theta, omega, active, goals, g, cell,
                          cell_start, cell_items, placed)


@njit(cache=True, inline="always")
def _unit(x):
    """x clipped to [-1, 1] (in float64, before the float32 store, so rounding cannot leave it)."""
    return min(max(x, -1.0), 1.0)


@njit(cache=True, error_model="numpy")
def _observe_one(w, i, pos, vel, theta, goals, lidar, active, p, obs, dist):
    """Every entry is clipped to its documented range (lidar [0, 1], the rest [-1, 1]): the ratios are
    within it mathematically, but rounding can put them one float32 ulp outside (1.0000001), which
    ``observation_space.contains`` rejects."""
    n_rays = lidar.shape[2]
    for r in range(n_rays):
        obs[w, i, r] = min(max(lidar[w, i, r], 0.0), 1.0)
    if not active[w, i]:
        for c in range(4):
            obs[w, i, n_rays + c] = 0.0
        return
    c = math.cos(theta[w, i])
    s = math.sin(theta[w, i])
    vx = vel[w, i, 0]
    vy = vel[w, i, 1]
    vmax = p[P_VMAX]
    obs[w, i, n_rays] = _unit((vx * c + vy * s) / vmax)
    obs[w, i, n_rays + 1] = _unit((-vx * s + vy * c) / vmax)
    gx = goals[w, i, 0] - pos[w, i, 0]
    gy = goals[w, i, 1] - pos[w, i, 1]
    d = math.sqrt(gx * gx + gy * gy)
    dist[w, i] = d
    f = 1.0 / max(p[P_GOAL_SCALE], d)
    obs[w, i, n_rays + 2] = _unit((gx * c + gy * s) * f)
    obs[w, i, n_rays + 3] = _unit((-gx * s + gy * c) * f)


@njit(cache=True, error_model="numpy")
def _reward_one(w, i, pos, vel, theta, goals, active, contact, prev_contact, lidar, p, dist, rew, reached, stats):
    if not active[w, i]:
        rew[w, i] = 0.0
        reached[w, i] = False
        prev_contact[w, i] = False
        stats[0, w, i] = 0.0
        stats[1, w, i] = 0.0
        return
    n_rays = lidar.shape[2]
    rng_ = p[P_RANGE]
    rad = p[P_RADIUS]
    d0 = p[P_PROX_D]
    vmax = p[P_VMAX]
    w_prox = p[P_PROX]
    w_appr = p[P_APPROACH]
    gx = goals[w, i, 0] - pos[w, i, 0]
    gy = goals[w, i, 1] - pos[w, i, 1]
    d = math.sqrt(gx * gx + gy * gy)
    got = d < p[P_GOAL_R]
    reached[w, i] = got
    stats[0, w, i] = 1.0 if got else 0.0
    rr = p[P_PROGRESS] * (dist[w, i] - d) - p[P_TIME]
    onset = contact[w, i] and not prev_contact[w, i]
    stats[1, w, i] = 1.0 if onset else 0.0
    if contact[w, i]:
        rr -= p[P_COLLISION]
        if onset:
            rr -= p[P_ONSET]
    prev_contact[w, i] = contact[w, i]
    if (w_prox != 0.0 or w_appr != 0.0) and d0 > 0.0:
        near = 0.0      # 1 - gap / d0 of the nearest hit, clipped to [0, 1]
        closing = 0.0   # max over rays of (own speed towards the hit / v_max) * (1 - gap / d0)
        vx = vel[w, i, 0]
        vy = vel[w, i, 1]
        th = theta[w, i]
        for r in range(n_rays):
            gap = lidar[w, i, r] * rng_ - rad
            if gap >= d0:
                continue
            f = min(1.0 - gap / d0, 1.0)
            near = max(near, f)
            a = th + 2.0 * math.pi * r / n_rays
            towards = (vx * math.cos(a) + vy * math.sin(a)) / vmax
            if towards > 0.0:
                closing = max(closing, towards * f)
        rr -= w_prox * near + w_appr * closing
    if got:
        rr += p[P_GOAL_BONUS]
    rew[w, i] = rr
    dist[w, i] = d


@njit(cache=True, parallel=True, error_model="numpy")
def observe(pos, vel, theta, goals, lidar, active, params, obs, dist):
    """obs[E,N,R+4] = lidar, ego velocity / v_max, ego goal vector (scaled, norm <= 1); dist [E,N];
    world w's settings are params[w]."""
    n = pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        _observe_one(w, k - w * n, pos, vel, theta, goals, lidar, active, params[w], obs, dist)


@njit(cache=True, parallel=True, error_model="numpy")
def reward_observe(pos, vel, theta, goals, active, contact, prev_contact, lidar, params, dist, rew, reached, stats,
                   obs):
    """Reward and goal test after a step, then the observation, in one parallel region.

    dist [E,N] holds the previous distances and is updated, prev_contact [E,N] holds last step's
    contact flags and is updated; ``stats`` [2,E,N] receives the per-step values of the episode
    statistics ([0] reached the goal, [1] a contact started); obs as ``observe``.

    Clearance terms use the agent's own lidar (post-step, [E,N,R], distance / range from its
    centre): the gap of ray k is ``lidar * range - radius`` metres between the robot's surface and
    the hit; rays with a gap below ``d0 = proximity_distance`` count. World w's settings are params[w].
    """
    n = pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        i = k - w * n
        p = params[w]
        _reward_one(w, i, pos, vel, theta, goals, active, contact, prev_contact, lidar, p, dist, rew, reached, stats)
        _observe_one(w, i, pos, vel, theta, goals, lidar, active, p, obs, dist)
