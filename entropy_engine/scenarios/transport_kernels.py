"""Compiled kernels of the transport scenario: placement, success test, reward, statistics, observation.

Random numbers come from one SplitMix64 stream per world (``core.rng``), so a world's layouts
depend only on the seed and its own history, never on threads. A step is two kernels:
``world_phase`` (per world: the object's distance to the goal, success) and ``agent_phase`` (per
robot: reward, episode statistics, observation). Each is a ``prange`` driver over a per-world or
per-robot njit function (``reset_world``, ``respawn_world``, ``world_one``, ``agent_one``), which
``gpu.transport`` compiles for the GPU.
"""
from __future__ import annotations

import math

from numba import njit, prange

from ..core.observe import copy_lidar, ego_velocity, leave_out
from ..core.rng import uniform
from ..core.spawn import start_at_rest

# Layout of a row of the float64 ``params`` array [E, N_PARAMS] (see Transport._params): one row per world
# (world w's settings are params[w]).
(P_ARENA, P_RADIUS, P_OBJ_R, P_OBJ_MARGIN, P_GOAL_R, P_GOAL_MARGIN, P_GOAL_MIN_D, P_SPACING, P_VMAX, P_SCALE,
 P_PROGRESS, P_SUCCESS, P_APPROACH, P_DT) = range(14)
N_PARAMS = 14
# Order of the episode statistics (Transport.episode_stats).
S_SUCCESS, S_TIME, S_PROGRESS = range(3)


@njit(cache=True, inline="always")
def _push_gap(px, py, ox, oy, gx, gy, p):
    """Distance from (px, py) to the push point: behind the object (ox, oy), away from the goal."""
    ux = gx - ox
    uy = gy - oy
    d = math.sqrt(ux * ux + uy * uy)
    if d > 1e-9:
        ux /= d
        uy /= d
    back = p[P_OBJ_R] + p[P_RADIUS]
    return math.sqrt((px - (ox - ux * back)) ** 2 + (py - (oy - uy * back)) ** 2)


@njit(cache=True)
def _place_robot(rng, w, i, p, pos, active, opos, vel, theta, omega):
    """Robot i at a uniform point of the arena (0.05 m from the border) at least ``spawn_spacing``
    from every other active robot and clear of every object by 0.2 m (64 tries; the last is kept)."""
    n = pos.shape[1]
    L = p[P_ARENA]
    edge = p[P_RADIUS] + 0.05
    s2 = p[P_SPACING] ** 2
    o2 = (p[P_OBJ_R] + p[P_RADIUS] + 0.2) ** 2
    x = y = 0.0
    for _try in range(64):
        x = edge + (L - 2.0 * edge) * uniform(rng, w)
        y = edge + (L - 2.0 * edge) * uniform(rng, w)
        ok = True
        for m in range(opos.shape[1]):
            if (x - opos[w, m, 0]) ** 2 + (y - opos[w, m, 1]) ** 2 < o2:
                ok = False
                break
        for j in range(n):
            if not ok:
                break
            if j != i and active[w, j] and (pos[w, j, 0] - x) ** 2 + (pos[w, j, 1] - y) ** 2 < s2:
                ok = False
        if ok:
            break
    pos[w, i, 0] = x
    pos[w, i, 1] = y
    start_at_rest(rng, w, i, theta, vel, omega, active)


@njit(cache=True)
def _new_task(rng, w, p, opos, ovel, oactive, goal):
    """A fresh object 0 (at rest, ``object_margin`` from the border), a goal zone at least
    ``goal_min_distance`` from it (``goal_margin`` from the border; 64 tries, the last is kept) and
    the other objects (clutter) at uniform points apart from each other and off the goal."""
    L = p[P_ARENA]
    m = p[P_OBJ_MARGIN]
    ox = m + (L - 2.0 * m) * uniform(rng, w)
    oy = m + (L - 2.0 * m) * uniform(rng, w)
    opos[w, 0, 0] = ox
    opos[w, 0, 1] = oy
    ovel[w, 0, 0] = 0.0
    ovel[w, 0, 1] = 0.0
    oactive[w, 0] = True
    gm = p[P_GOAL_MARGIN]
    d2 = p[P_GOAL_MIN_D] ** 2
    gx = gy = 0.0
    for _try in range(64):
        gx = gm + (L - 2.0 * gm) * uniform(rng, w)
        gy = gm + (L - 2.0 * gm) * uniform(rng, w)
        if (gx - ox) ** 2 + (gy - oy) ** 2 >= d2:
            break
    goal[w, 0] = gx
    goal[w, 1] = gy
    r = p[P_OBJ_R]
    edge = r + 0.05
    clear2 = (2.0 * r + 0.1) ** 2
    goal2 = (p[P_GOAL_R] + r) ** 2
    for k in range(1, opos.shape[1]):  # movable clutter: apart from the other objects and off the goal
        x = y = 0.0
        for _try in range(64):
            x = edge + (L - 2.0 * edge) * uniform(rng, w)
            y = edge + (L - 2.0 * edge) * uniform(rng, w)
            ok = (x - gx) ** 2 + (y - gy) ** 2 >= goal2
            for j in range(k):
                if not ok:
                    break
                ok = (x - opos[w, j, 0]) ** 2 + (y - opos[w, j, 1]) ** 2 >= clear2
            if ok:
                break
        opos[w, k, 0] = x
        opos[w, k, 1] = y
        ovel[w, k, 0] = 0.0
        ovel[w, k, 1] = 0.0
        oactive[w, k] = True


@njit(cache=True)
def reset_world(w, rng, p, pos, vel, theta, omega, active, opos, ovel, oactive, goal, gdist, done):
    """Reset world w with its settings ``p`` (``params[w]``): a new object and goal, every robot at a
    random clear spot."""
    n = pos.shape[1]
    _new_task(rng, w, p, opos, ovel, oactive, goal)
    for i in range(n):
        active[w, i] = False
    for i in range(n):
        _place_robot(rng, w, i, p, pos, active, opos, vel, theta, omega)
    gdist[w] = math.sqrt((opos[w, 0, 0] - goal[w, 0]) ** 2 + (opos[w, 0, 1] - goal[w, 1]) ** 2)
    done[w] = False


@njit(cache=True)
def respawn_world(w, mask, rng, p, pos, vel, theta, omega, active, opos, ovel, oactive, goal, gdist, done):
    """Restart world w's robots with mask[w, i] (settings ``p``); returns whether there were any. If the
    world's object reached the goal (done[w]) the task starts over first: a new object and goal (the
    masked robots are re-placed, others stay)."""
    n = pos.shape[1]
    anyone = False
    for i in range(n):
        if mask[w, i]:
            anyone = True
            active[w, i] = False
    if not anyone:
        return False
    if done[w]:
        _new_task(rng, w, p, opos, ovel, oactive, goal)
        gdist[w] = math.sqrt((opos[w, 0, 0] - goal[w, 0]) ** 2 + (opos[w, 0, 1] - goal[w, 1]) ** 2)
        done[w] = False
    for i in range(n):
        if mask[w, i]:
            _place_robot(rng, w, i, p, pos, active, opos, vel, theta, omega)
    return True


@njit(cache=True, inline="always")
def world_one(w, opos, goal, p, gdist, prev_gdist, done):
    """World w: the object's centre distance to the goal (gdist, the last one in prev_gdist) and done:
    the object's centre is inside the goal zone (settings ``p``)."""
    prev_gdist[w] = gdist[w]
    d = math.sqrt((opos[w, 0, 0] - goal[w, 0]) ** 2 + (opos[w, 0, 1] - goal[w, 1]) ** 2)
    gdist[w] = d
    done[w] = d <= p[P_GOAL_R]


@njit(cache=True, inline="always")
def agent_one(w, i, with_reward, pos, vel, theta, active, lidar, opos, ovel, goal, gdist, prev_gdist, done, p, gap,
              prev_contact, rew, stats, terminated, obs):
    """Robot i of world w (settings ``p``): reward and per-step statistics (``with_reward``),
    terminated, the push-point gap and the observation."""
    n_rays = lidar.shape[2]
    base = n_rays + 2
    vmax = p[P_VMAX]
    scale = p[P_SCALE]
    copy_lidar(obs, w, i, lidar)
    terminated[w, i] = False
    if not active[w, i]:
        leave_out(obs, w, i, base, with_reward, rew, prev_contact, stats)
        return
    px = pos[w, i, 0]
    py = pos[w, i, 1]
    ox = opos[w, 0, 0]
    oy = opos[w, 0, 1]
    new_gap = _push_gap(px, py, ox, oy, goal[w, 0], goal[w, 1], p)
    if with_reward:
        rr = p[P_PROGRESS] * (prev_gdist[w] - gdist[w]) + p[P_APPROACH] * (gap[w, i] - new_gap)
        if done[w]:
            rr += p[P_SUCCESS]
        rew[w, i] = rr
        stats[S_SUCCESS, w, i] = 1.0 if done[w] else 0.0
        stats[S_TIME, w, i] = p[P_DT]
        stats[S_PROGRESS, w, i] = prev_gdist[w] - gdist[w]
        terminated[w, i] = done[w]
    gap[w, i] = new_gap
    th = theta[w, i]
    c = math.cos(th)
    s = math.sin(th)
    ego_velocity(obs, w, i, n_rays, vel[w, i, 0], vel[w, i, 1], c, s, vmax)
    dx = ox - px
    dy = oy - py
    f = 1.0 / max(scale, math.sqrt(dx * dx + dy * dy))
    obs[w, i, base] = min(max((dx * c + dy * s) * f, -1.0), 1.0)
    obs[w, i, base + 1] = min(max((-dx * s + dy * c) * f, -1.0), 1.0)
    gx = goal[w, 0] - ox
    gy = goal[w, 1] - oy
    f = 1.0 / max(scale, math.sqrt(gx * gx + gy * gy))
    obs[w, i, base + 2] = min(max((gx * c + gy * s) * f, -1.0), 1.0)
    obs[w, i, base + 3] = min(max((-gx * s + gy * c) * f, -1.0), 1.0)
    ego_velocity(obs, w, i, base + 4, ovel[w, 0, 0], ovel[w, 0, 1], c, s, vmax)


# ----------------------------------------------------------------------------- CPU drivers
@njit(cache=True, parallel=True)
def reset_worlds(mask, rng, params, pos, vel, theta, omega, active, opos, ovel, oactive, goal, gdist, done):
    """Reset the worlds where mask[w] (``reset_world``)."""
    for w in prange(pos.shape[0]):
        if mask[w]:
            reset_world(w, rng, params[w], pos, vel, theta, omega, active, opos, ovel, oactive, goal, gdist, done)


@njit(cache=True, parallel=True)
def respawn_agents(mask, rng, params, pos, vel, theta, omega, active, opos, ovel, oactive, goal, gdist, done):
    """Restart the robots with mask[w, i] (``respawn_world``)."""
    for w in prange(pos.shape[0]):
        respawn_world(w, mask, rng, params[w], pos, vel, theta, omega, active, opos, ovel, oactive, goal, gdist, done)


@njit(cache=True, parallel=True)
def world_phase(opos, goal, params, gdist, prev_gdist, done):
    """Per world: ``world_one`` (the object's distance to the goal, success)."""
    for w in prange(opos.shape[0]):
        world_one(w, opos, goal, params[w], gdist, prev_gdist, done)


@njit(cache=True, parallel=True, error_model="numpy")
def agent_phase(with_reward, pos, vel, theta, active, lidar, opos, ovel, goal, gdist, prev_gdist, done, params, gap,
                prev_contact, rew, stats, terminated, obs):
    """Per robot: ``agent_one`` (reward and per-step statistics with ``with_reward``, terminated, the
    push-point gap [E, N] and the observation [E, N, R + 8]). World w's settings are params[w]."""
    n_worlds, n = pos.shape[0], pos.shape[1]
    for k in prange(n_worlds * n):
        w = k // n
        agent_one(w, k - w * n, with_reward, pos, vel, theta, active, lidar, opos, ovel, goal, gdist, prev_gdist,
                  done, params[w], gap, prev_contact, rew, stats, terminated, obs)
