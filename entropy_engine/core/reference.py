"""Slow, readable numpy references of the compiled kernels (used by the tests, never in training).

They follow the documented model directly: every ray is tested against every wall and every
other robot, every pair of robots is tested for overlap. The compiled kernels must agree with
them up to float rounding.
"""
from __future__ import annotations

import math

import numpy as np


def ray_hit_segment(o: np.ndarray, d: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance along unit ray o + t d to segment a-b, inf if none."""
    e = b - a
    den = d[0] * e[1] - d[1] * e[0]
    if den == 0.0:
        return math.inf
    w = a - o
    t = (w[0] * e[1] - w[1] * e[0]) / den
    u = (w[0] * d[1] - w[1] * d[0]) / den
    return t if (t >= 0.0 and 0.0 <= u <= 1.0) else math.inf


def ray_hit_circle(o: np.ndarray, d: np.ndarray, c: np.ndarray, r: float) -> float:
    """Distance along unit ray o + t d to a circle (0 from inside), inf if none."""
    w = c - o
    if w @ w <= r * r:
        return 0.0
    b = w @ d
    disc = b * b - (w @ w - r * r)
    if b <= 0.0 or disc < 0.0:
        return math.inf
    return b - math.sqrt(disc)


def lidar_reference(pos, theta, active, walls, radius, lidar_range, n_rays):
    """Normalised lidar [N, R] of one world: rays from each centre, ray 0 along the heading, CCW."""
    pos = np.asarray(pos, np.float64)
    n = len(pos)
    out = np.ones((n, n_rays))
    for i in range(n):
        if not active[i]:
            continue
        for k in range(n_rays):
            ang = float(theta[i]) + 2.0 * math.pi * k / n_rays
            d = np.array([math.cos(ang), math.sin(ang)])
            best = lidar_range
            for wall in np.asarray(walls, np.float64):
                best = min(best, ray_hit_segment(pos[i], d, wall[:2], wall[2:]))
            for j in range(n):
                if j != i and active[j]:
                    best = min(best, ray_hit_circle(pos[i], d, pos[j], radius))
            out[i, k] = best / lidar_range
    return out


def closest_point(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    e = b - a
    den = e @ e
    u = 0.0 if den == 0 else min(max(((p - a) @ e) / den, 0.0), 1.0)
    return a + u * e


def _crosses(p0, p1, a, b) -> bool:
    def side(o, x, y):
        return (x[0] - o[0]) * (y[1] - o[1]) - (x[1] - o[1]) * (y[0] - o[0])
    return side(a, b, p0) * side(a, b, p1) < 0 and side(p0, p1, a) * side(p0, p1, b) < 0


def _wall_fix_reference(p, start, walls, radius, arena, sweeps, tol):
    """Move point p (reached from the valid ``start``) out of every wall, ``sweeps`` times over the
    walls: a move that crossed a wall goes back to the start, a centre closer than ``radius`` to a
    wall is pushed out along the wall normal; then p is clamped to the arena.
    Returns (p, contact)."""
    p = p.copy()
    contact = False
    for _ in range(sweeps):
        for wall in walls:
            a, b = wall[:2], wall[2:]
            if _crosses(start, p, a, b):
                p = start.copy()
                contact = True
            q = closest_point(p, a, b)
            dist = math.hypot(*(p - q))
            if dist < radius:
                contact |= (radius - dist) > tol
                if dist > 1e-9:
                    p = q + (p - q) / dist * radius
                else:
                    normal = np.array([-(b - a)[1], (b - a)[0]]) / (np.linalg.norm(b - a) + 1e-12)
                    if (start - q) @ normal < 0:
                        normal = -normal
                    p = q + normal * radius
    return np.clip(p, radius, arena - radius), contact


def wall_depth(p, walls, radius) -> float:
    """How deep a disc of ``radius`` at p is inside its deepest wall (<= 0: clear of every wall)."""
    return max([radius - math.hypot(*(p - closest_point(p, w[:2], w[2:]))) for w in walls] + [-radius])


def resolve_reference(moved, start, active, walls, radius, arena, iterations, tol=1e-4, slop=1e-5):
    """Collision resolution of one world, as the kernel does it.

    Contact candidates are fixed once, from the positions after driving: the other robots whose
    centres are within 3 radii, and (for robots with any such candidate) whether a wall is within
    2 radii. Then ``iterations`` Jacobi passes; in each, every robot with candidates moves by half
    its overlap with each overlapping candidate, summed, and, if a wall was near, out of the walls
    (two sweeps of ``_wall_fix_reference``); one still more than ``slop`` inside a wall after that
    (wedged) goes back to its start and stays there for the rest of the step. Finally every robot
    goes through four sweeps over every wall, and one still inside a wall goes back to its start.
    Returns (positions [N, 2], contact [N]).

    (The kernel keeps at most ``MAX_CONTACTS`` candidates per robot; this reference keeps all,
    which is the same whenever no robot has more, i.e. in every scene the tests build.)
    """
    pos = np.array(moved, np.float64)
    start = np.asarray(start, np.float64)
    walls = np.asarray(walls, np.float64)
    n = len(pos)
    contact = np.zeros(n, bool)
    cand = [[j for j in range(n) if j != i and active[i] and active[j] and math.hypot(*(pos[i] - pos[j])) < 3 * radius]
            for i in range(n)]
    near = [bool(cand[i]) and wall_depth(pos[i], walls, radius) > -radius for i in range(n)]
    stuck = [False] * n
    for _ in range(iterations):
        new = pos.copy()
        for i in range(n):
            if not cand[i]:
                continue
            for j in cand[i]:
                delta = pos[i] - pos[j]
                dist = math.hypot(*delta)
                if dist < 2 * radius:
                    normal = delta / dist if dist > 1e-9 else np.array([1.0 if i < j else -1.0, 0.0])
                    new[i] += 0.5 * (2 * radius - dist) * normal
                    contact[i] |= (2 * radius - dist) > tol
            if near[i] and not stuck[i]:
                new[i], hit = _wall_fix_reference(new[i], start[i], walls, radius, arena, 2, tol)
                contact[i] |= hit
                stuck[i] = wall_depth(new[i], walls, radius) > slop
            if stuck[i]:
                new[i] = start[i]
        pos = new
    for i in range(n):
        if not active[i]:
            continue
        pos[i], hit = _wall_fix_reference(pos[i], start[i], walls, radius, arena, 4, tol)
        contact[i] |= hit
        if wall_depth(pos[i], walls, radius) > slop:
            pos[i] = start[i]
            contact[i] = True
    return pos, contact


def drive_reference(theta, v_forward, omega, a_left, a_right, cfg):
    """One step of the documented drive model for a robot with no lateral velocity and no contact.

    Returns (displacement [2], new theta, new forward speed, new omega).
    """
    dt = cfg.dt
    force = (a_left + a_right) * cfg.max_wheel_force
    torque = (a_right - a_left) * cfg.max_wheel_force * cfg.wheel_base / 2
    decay = math.exp(-cfg.linear_damping * dt)
    v = v_forward * decay + force / (cfg.mass * cfg.linear_damping) * (1 - decay)
    v = max(-cfg.max_speed, min(cfg.max_speed, v))
    adecay = math.exp(-cfg.angular_damping * dt)
    w = omega * adecay + torque / (cfg.inertia * cfg.angular_damping) * (1 - adecay)
    w = max(-cfg.max_angular_speed, min(cfg.max_angular_speed, w))
    th = (theta + w * dt + math.pi) % (2 * math.pi) - math.pi
    return np.array([v * math.cos(th) * dt, v * math.sin(th) * dt]), th, v, w
