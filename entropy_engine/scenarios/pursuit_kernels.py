"""Compiled kernels of the pursuit scenario: spawns, the evaders' policy, captures, reward, statistics
and observation.

Robots ``0 .. N-1`` of a world are the pursuers (learners), ``N .. N+M-1`` the evaders (scripted,
``scenarios.scripted``). Random numbers come from one SplitMix64 stream per world (``core.rng``), so
a world's spawns depend only on the seed and its own history, never on threads. A step is
``respawn_captured`` (evaders captured in the last step reappear), ``evader_actions`` (their wheel
powers), the world's physics, the neighbour sensor, ``detect_captures`` (one task per world) and
``agent_phase`` (one task per pursuer: reward, statistics, observation). Each driver is a ``prange``
loop over a per-world or per-pursuer function (``reset_world``, ``respawn_world``,
``respawn_captured_world``, ``evader_world``, ``detect_world``, ``agent_one``), which ``gpu.pursuit``
compiles for the GPU.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..core.observe import copy_lidar, ego_velocity, leave_out
from ..core.rng import uniform
from ..core.spawn import place_clear

# Layout of a row of the float64 ``params`` array [E, N_PARAMS] (see Pursuit._params): one row per world
# (world w's settings are params[w]).
(P_ARENA, P_RADIUS, P_SPACING, P_CLEAR, P_CAP_R, P_CAP_N, P_VMAX, P_SENSE, P_EV_POWER, P_WALL_M, P_EV_SCALE,
 P_CAP_REW, P_TEAM_REW, P_APPROACH, P_COLL, P_ONSET) = range(16)
N_PARAMS = 16
# Order of the episode statistics (Pursuit.episode_stats).
S_CAPTURES, S_FIRST, S_ASSISTS, S_COLLISIONS = range(4)
N_HEADINGS = 16   # directions an evader weighs, evenly spaced from its heading
LOOKAHEAD = 1.5   # metres: an evader scores a direction by where it would be this far along it
SLOT = 6    # features of one neighbour slot in the observation: dx, dy, dvx, dvy, mask, evader flag


@njit(cache=True)
def reset_world(w, rng, p, pos, vel, theta, omega, active, captured, caps_total):
    """Reset world ``w`` (settings ``p`` = params[w]): every robot (pursuers, then evaders) at a random
    point at least ``spawn_spacing`` from the robots already placed (``place_clear``), at rest; no capture."""
    T = pos.shape[1]
    for i in range(T):
        active[w, i] = False
    for i in range(T):
        place_clear(rng, w, i, p[P_ARENA], p[P_RADIUS] + 0.05, p[P_SPACING], pos, vel, theta, omega, active)
    for m in range(captured.shape[1]):
        captured[w, m] = False
    caps_total[w] = 0


@njit(cache=True, parallel=True)
def reset_worlds(mask, rng, params, pos, vel, theta, omega, active, captured, caps_total):
    """``reset_world`` for the worlds where mask[w] (with their settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        if mask[w]:
            reset_world(w, rng, params[w], pos, vel, theta, omega, active, captured, caps_total)


@njit(cache=True)
def respawn_world(w, mask, rng, p, pos, vel, theta, omega, active):
    """Pursuers of world ``w`` with mask[w, i] restart at a random clear point (``spawn_spacing`` from
    every robot)."""
    for i in range(mask.shape[1]):
        if mask[w, i]:
            place_clear(rng, w, i, p[P_ARENA], p[P_RADIUS] + 0.05, p[P_SPACING], pos, vel, theta, omega, active)


@njit(cache=True, parallel=True)
def respawn_pursuers(mask, rng, params, pos, vel, theta, omega, active):
    """``respawn_world`` for every world (pursuers with mask[w, i]), in parallel."""
    for w in prange(mask.shape[0]):
        respawn_world(w, mask, rng, params[w], pos, vel, theta, omega, active)


@njit(cache=True, inline="always")
def respawn_captured_world(w, rng, p, pos, vel, theta, omega, active, captured, moved):
    """Evaders of world ``w`` captured in the last step (captured [E, M]) reappear at a random point at
    least ``respawn_clearance`` from every robot, at rest; moved [E, M] records which did. Returns
    whether any did."""
    M = captured.shape[1]
    first = pos.shape[1] - M
    any_ = False
    for m in range(M):
        moved[w, m] = captured[w, m]
        if captured[w, m]:
            place_clear(rng, w, first + m, p[P_ARENA], p[P_RADIUS] + 0.05, p[P_CLEAR], pos, vel, theta, omega,
                        active)
            captured[w, m] = False
            any_ = True
    return any_


@njit(cache=True, parallel=True)
def respawn_captured(rng, params, pos, vel, theta, omega, active, captured, moved):
    """``respawn_captured_world`` for every world, in parallel."""
    for w in prange(pos.shape[0]):
        respawn_captured_world(w, rng, params[w], pos, vel, theta, omega, active, captured, moved)


@njit(cache=True, inline="always")
def evader_world(w, first, rng, p, pos, theta, active, nb_idx, actions):
    """Wheel powers actions[w, j] of every evader j >= ``first`` (= N, the number of pursuers) of
    world ``w`` (settings ``p`` = params[w]).

    Flee: of ``N_HEADINGS`` directions it picks the one whose point ``LOOKAHEAD`` metres ahead,
    pulled inside the arena less ``wall_margin``, is farthest from the nearest pursuer among its
    sensed neighbours (nb_idx [E, N+M, K], ids < N), minus how far the point had to be pulled in,
    plus 0.3 x cos(turn) to keep its course; with no pursuer in sight the same without the
    pursuer term, at 40 % power with a small random turn. The robot turns towards that direction
    and drives at cos(error), or backs up (rear first) when the direction is behind it; the wheel
    powers are then scaled by ``evader_power``."""
    T = pos.shape[1]
    K = nb_idx.shape[2]
    L = p[P_ARENA]
    margin = p[P_WALL_M]
    power = p[P_EV_POWER]
    for j in range(first, T):
        actions[w, j, 0] = 0.0
        actions[w, j, 1] = 0.0
        if not active[w, j]:
            continue
        x = np.float64(pos[w, j, 0])
        y = np.float64(pos[w, j, 1])
        th = np.float64(theta[w, j])
        seen = 0
        for s in range(K):
            i = nb_idx[w, j, s]
            if i < 0:
                break
            if i < first:
                seen += 1
        lo = margin
        hi = L - margin
        best_a = 0.0
        best_s = -1e300
        for a in range(N_HEADINGS):
            ang = th + 2.0 * math.pi * a / N_HEADINGS
            tx = x + LOOKAHEAD * math.cos(ang)
            ty = y + LOOKAHEAD * math.sin(ang)
            cx = min(max(tx, lo), hi)
            cy = min(max(ty, lo), hi)
            score = 0.3 * math.cos(ang - th) - (abs(tx - cx) + abs(ty - cy))
            if seen > 0:
                dmin = 1e300
                for s in range(K):
                    i = nb_idx[w, j, s]
                    if i < 0:
                        break
                    if i < first:
                        dmin = min(dmin, math.sqrt((cx - pos[w, i, 0]) ** 2 + (cy - pos[w, i, 1]) ** 2))
                score += dmin
            if score > best_s:
                best_s = score
                best_a = ang
        speed = 1.0
        if seen == 0:   # cruise: wander a little
            best_a += 0.6 * (uniform(rng, w) - 0.5)
            speed = 0.4
        fx = math.cos(best_a)
        fy = math.sin(best_a)
        err = math.atan2(fy, fx) - th
        err = (err + math.pi) % (2.0 * math.pi) - math.pi
        fwd = math.cos(err)
        if fwd < -0.3:     # the way out is behind: back up, steering the rear towards it
            err = err - math.pi if err > 0.0 else err + math.pi
        turn = min(max(2.0 * err, -1.0), 1.0)
        drive = speed * fwd
        a_l = min(max(drive - turn, -1.0), 1.0) * power
        a_r = min(max(drive + turn, -1.0), 1.0) * power
        actions[w, j, 0] = a_l
        actions[w, j, 1] = a_r


@njit(cache=True, parallel=True)
def evader_actions(first, rng, params, pos, theta, active, nb_idx, actions):
    """``evader_world`` for every world (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        evader_world(w, first, rng, params[w], pos, theta, active, nb_idx, actions)


@njit(cache=True, inline="always")
def detect_world(w, first, p, pos, active, captured, hits, caps_now, caps_total, first_flag):
    """World ``w`` (settings ``p`` = params[w]): an evader with at least ``capture_count`` active
    pursuers whose centres are within ``capture_range`` of its own is captured (captured [E, M] set;
    it reappears at the start of the next step). hits [E, N]: captures each pursuer took part in;
    caps_now [E]: captures this step; first_flag [E]: the world had no capture before this step;
    caps_total [E] counts the episode's."""
    T = pos.shape[1]
    r2 = p[P_CAP_R] * p[P_CAP_R]
    need = np.int64(p[P_CAP_N])
    for i in range(first):
        hits[w, i] = 0.0
    first_flag[w] = caps_total[w] == 0
    c = 0
    for j in range(first, T):
        if not active[w, j]:
            continue
        ex = np.float64(pos[w, j, 0])
        ey = np.float64(pos[w, j, 1])
        cnt = 0
        for i in range(first):
            if active[w, i] and (pos[w, i, 0] - ex) ** 2 + (pos[w, i, 1] - ey) ** 2 <= r2:
                cnt += 1
        if cnt >= need:
            captured[w, j - first] = True
            c += 1
            for i in range(first):
                if active[w, i] and (pos[w, i, 0] - ex) ** 2 + (pos[w, i, 1] - ey) ** 2 <= r2:
                    hits[w, i] += 1.0
    caps_now[w] = c
    caps_total[w] += c


@njit(cache=True, parallel=True)
def detect_captures(first, params, pos, active, captured, hits, caps_now, caps_total, first_flag):
    """``detect_world`` for every world (with its settings params[w]), in parallel."""
    for w in prange(pos.shape[0]):
        detect_world(w, first, params[w], pos, active, captured, hits, caps_now, caps_total, first_flag)


@njit(cache=True, inline="always", error_model="numpy")
def agent_one(w, i, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, hits, caps_now,
              first_flag, moved, p, target, dist, collided, rew, stats, obs):
    """Pursuer ``i`` of world ``w`` (one of its first ``first`` robots): reward and per-step
    statistics (``with_reward``), then the observation. target [E, N] int64 / dist [E, N] float64: the nearest
    evader (robot id) and its distance at the last observation, for the approach term, which is
    skipped when that evader reappeared elsewhere (moved [E, M]). nb [E, N+M, K, 6] is the
    neighbour sensor's output with the evader flag as attribute; obs [E, N, R + 2 + 6K + 2]. World w's
    settings are ``p`` = params[w]."""
    T = pos.shape[1]
    n_rays = lidar.shape[2]
    K = nb.shape[2]
    base = n_rays + 2
    vmax = p[P_VMAX]
    copy_lidar(obs, w, i, lidar)
    if not active[w, i]:
        leave_out(obs, w, i, base, with_reward, rew, prev_contact, stats)
        collided[w, i] = False
        target[w, i] = -1
        return
    px = np.float64(pos[w, i, 0])
    py = np.float64(pos[w, i, 1])
    # nearest active evader
    best = -1
    bd = 0.0
    for j in range(first, T):
        if active[w, j]:
            d = math.sqrt((pos[w, j, 0] - px) ** 2 + (pos[w, j, 1] - py) ** 2)
            if best < 0 or d < bd:
                best = j
                bd = d
    if with_reward:
        rr = p[P_CAP_REW] * hits[w, i] + p[P_TEAM_REW] * caps_now[w]
        t_old = target[w, i]
        if t_old >= 0 and active[w, t_old] and not moved[w, t_old - first]:
            d_now = math.sqrt((pos[w, t_old, 0] - px) ** 2 + (pos[w, t_old, 1] - py) ** 2)
            rr += p[P_APPROACH] * (dist[w, i] - d_now)
        onset = contact[w, i] and not prev_contact[w, i]
        if contact[w, i]:
            rr -= p[P_COLL]
            if onset:
                rr -= p[P_ONSET]
        prev_contact[w, i] = contact[w, i]
        collided[w, i] = contact[w, i]
        rew[w, i] = rr
        stats[S_CAPTURES, w, i] = caps_now[w]
        stats[S_FIRST, w, i] = 1.0 if first_flag[w] else 0.0
        stats[S_ASSISTS, w, i] = hits[w, i]
        stats[S_COLLISIONS, w, i] = 1.0 if onset else 0.0
    target[w, i] = best
    dist[w, i] = bd
    # observation
    th = np.float64(theta[w, i])
    c = math.cos(th)
    s_ = math.sin(th)
    ego_velocity(obs, w, i, n_rays, vel[w, i, 0], vel[w, i, 1], c, s_, vmax)
    for s in range(K):
        o = base + SLOT * s
        obs[w, i, o] = min(max(nb[w, i, s, 0], -1.0), 1.0)
        obs[w, i, o + 1] = min(max(nb[w, i, s, 1], -1.0), 1.0)
        obs[w, i, o + 2] = min(max(nb[w, i, s, 2], -2.0), 2.0)
        obs[w, i, o + 3] = min(max(nb[w, i, s, 3], -2.0), 2.0)
        obs[w, i, o + 4] = nb[w, i, s, 4]
        obs[w, i, o + 5] = nb[w, i, s, 5]
    o = base + SLOT * K
    if best >= 0:
        gx = pos[w, best, 0] - px
        gy = pos[w, best, 1] - py
        f = 1.0 / max(p[P_EV_SCALE], bd)
        obs[w, i, o] = min(max((gx * c + gy * s_) * f, -1.0), 1.0)
        obs[w, i, o + 1] = min(max((-gx * s_ + gy * c) * f, -1.0), 1.0)
    else:
        obs[w, i, o] = 0.0
        obs[w, i, o + 1] = 0.0


@njit(cache=True, parallel=True, error_model="numpy")
def agent_phase(with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb, hits, caps_now,
                first_flag, moved, params, target, dist, collided, rew, stats, obs):
    """``agent_one`` for every pursuer of every world (with its settings params[w]), in parallel."""
    for k in prange(pos.shape[0] * first):
        w = k // first
        agent_one(w, k - w * first, with_reward, first, pos, vel, theta, active, contact, prev_contact, lidar, nb,
                  hits, caps_now, first_flag, moved, params[w], target, dist, collided, rew, stats, obs)
