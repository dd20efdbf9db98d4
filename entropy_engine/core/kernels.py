"""Per-agent pieces of the compiled world step: drive model, spatial grid, collisions and lidar.

Every array is laid out ``[world, agent, feature]``. The functions here work on one agent (or
build one world's grid) and are composed into parallel drivers in ``step.py``. Each agent's result
depends only on data that no other agent writes in the same phase, so the drivers give
bit-identical results for any number of threads. ``reference.py`` holds slow, readable numpy
versions used by the tests.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .geometry import (INF, closest_on_segment, fast_atan2, ray_circle, ray_segment, segment_distance,
                       segments_cross, wrap_angle)

# Layout of the float64 ``phys`` parameter vector (see World._phys).
(DT, MASS, INERTIA, MAX_FORCE, HALF_BASE, LIN_DAMP, ANG_DAMP, LAT_SLIP, V_MAX, W_MAX, RADIUS, RANGE, CELL, ARENA,
 LIN_DECAY, ANG_DECAY) = range(16)
N_PHYS = 16
CONTACT_TOL = 1e-4  # metres of overlap that count as a contact


# ----------------------------------------------------------------------------- per-agent pieces
@njit(cache=True, inline="always")
def _drive(w, i, actions, pos, vel, theta, omega, phys):
    """Advance one agent's velocity, heading and position by one step of the drive model."""
    dt = phys[DT]
    a_l = actions[w, i, 0]
    a_r = actions[w, i, 1]
    th = theta[w, i]
    c = math.cos(th)
    s = math.sin(th)
    vx = vel[w, i, 0]
    vy = vel[w, i, 1]
    v_f = vx * c + vy * s
    v_l = -vx * s + vy * c
    force = (a_l + a_r) * phys[MAX_FORCE]
    torque = (a_r - a_l) * phys[MAX_FORCE] * phys[HALF_BASE]
    decay = phys[LIN_DECAY]  # exp(-c_v dt)
    v_f = v_f * decay + force / (phys[MASS] * phys[LIN_DAMP]) * (1.0 - decay)
    v_f = min(max(v_f, -phys[V_MAX]), phys[V_MAX])
    v_l = v_l * phys[LAT_SLIP]
    adecay = phys[ANG_DECAY]  # exp(-c_w dt)
    om = omega[w, i] * adecay + torque / (phys[INERTIA] * phys[ANG_DAMP]) * (1.0 - adecay)
    om = min(max(om, -phys[W_MAX]), phys[W_MAX])
    th = wrap_angle(th + om * dt)
    c = math.cos(th)
    s = math.sin(th)
    vx = v_f * c - v_l * s
    vy = v_f * s + v_l * c
    sp = math.sqrt(vx * vx + vy * vy)
    if sp > phys[V_MAX]:
        vx *= phys[V_MAX] / sp
        vy *= phys[V_MAX] / sp
    vel[w, i, 0] = vx
    vel[w, i, 1] = vy
    omega[w, i] = om
    theta[w, i] = th
    pos[w, i, 0] = pos[w, i, 0] + vx * dt
    pos[w, i, 1] = pos[w, i, 1] + vy * dt


@njit(cache=True, inline="always")
def cell_of(x, y, cell, g):
    cx = min(max(int(x / cell), 0), g - 1)
    cy = min(max(int(y / cell), 0), g - 1)
    return cx, cy


@njit(cache=True)
def build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items):
    """Counting sort of world ``w``'s active agents into a g x g grid (sequential, stable)."""
    n_cells = g * g
    n = pos.shape[1]
    cell = phys[CELL]
    for c in range(n_cells + 1):
        cell_start[w, c] = 0
    for i in range(n):
        if active[w, i]:
            cx, cy = cell_of(pos[w, i, 0], pos[w, i, 1], cell, g)
            cell_start[w, cy * g + cx + 1] += 1
    for c in range(n_cells):
        cell_start[w, c + 1] += cell_start[w, c]
        cell_fill[w, c] = cell_start[w, c]
    for i in range(n):
        if active[w, i]:
            cx, cy = cell_of(pos[w, i, 0], pos[w, i, 1], cell, g)
            c = cy * g + cx
            cell_items[w, cell_fill[w, c]] = i
            cell_fill[w, c] += 1


@njit(cache=True, inline="always")
def _agent_push(w, i, src, phys, g, cell_start, cell_items):
    """Half the overlap with every neighbour, summed: the Jacobi correction of agent i."""
    px = src[w, i, 0]
    py = src[w, i, 1]
    two_r = 2.0 * phys[RADIUS]
    sx = 0.0
    sy = 0.0
    worst = 0.0
    cx, cy = cell_of(px, py, phys[CELL], g)
    for yy in range(max(cy - 1, 0), min(cy + 2, g)):
        for xx in range(max(cx - 1, 0), min(cx + 2, g)):
            c = yy * g + xx
            for k in range(cell_start[w, c], cell_start[w, c + 1]):
                j = cell_items[w, k]
                if j == i:
                    continue
                dx = px - src[w, j, 0]
                dy = py - src[w, j, 1]
                d2 = dx * dx + dy * dy
                if d2 >= two_r * two_r:
                    continue
                d = math.sqrt(d2)
                if d > 1e-9:
                    nx = dx / d
                    ny = dy / d
                else:  # exactly on top of each other: separate along x by index
                    nx = 1.0 if i < j else -1.0
                    ny = 0.0
                overlap = two_r - d
                if overlap > worst:
                    worst = overlap
                sx += 0.5 * overlap * nx
                sy += 0.5 * overlap * ny
    return sx, sy, worst


@njit(cache=True, inline="always")
def _wall_fix(w, i, pos, start, walls, n_walls, phys):
    """Keep agent i out of every wall; returns the deepest wall penetration that was removed."""
    r = phys[RADIUS]
    worst = 0.0
    for sweep in range(2):  # a second sweep settles agents wedged in a corner
        touched = False
        for k in range(n_walls[w]):
            ax = walls[w, k, 0]
            ay = walls[w, k, 1]
            bx = walls[w, k, 2]
            by = walls[w, k, 3]
            px = pos[w, i, 0]
            py = pos[w, i, 1]
            qx, qy = closest_on_segment(px, py, ax, ay, bx, by)
            move2 = (px - start[w, i, 0]) ** 2 + (py - start[w, i, 1]) ** 2
            gap2 = (px - qx) ** 2 + (py - qy) ** 2
            if gap2 >= r * r and gap2 > move2:
                continue  # clear of this wall and too far from it to have crossed it
            touched = True
            if segments_cross(start[w, i, 0], start[w, i, 1], px, py, ax, ay, bx, by):
                # the move crossed the wall: go back to where the step started (a valid place)
                px = start[w, i, 0]
                py = start[w, i, 1]
                worst = max(worst, r)
            qx, qy = closest_on_segment(px, py, ax, ay, bx, by)
            dx = px - qx
            dy = py - qy
            d = math.sqrt(dx * dx + dy * dy)
            if d < r:
                if d > 1e-9:
                    nx = dx / d
                    ny = dy / d
                else:  # centre on the wall: push to the side the step started from
                    nx = -(by - ay)
                    ny = bx - ax
                    ln = math.sqrt(nx * nx + ny * ny) + 1e-12
                    nx /= ln
                    ny /= ln
                    if (start[w, i, 0] - qx) * nx + (start[w, i, 1] - qy) * ny < 0.0:
                        nx = -nx
                        ny = -ny
                worst = max(worst, r - d)
                px = qx + nx * r
                py = qy + ny * r
            pos[w, i, 0] = px
            pos[w, i, 1] = py
        if not touched:
            break
    lo = r
    hi = phys[ARENA] - r
    pos[w, i, 0] = min(max(pos[w, i, 0], lo), hi)
    pos[w, i, 1] = min(max(pos[w, i, 1], lo), hi)
    return worst


@njit(cache=True, inline="always")
def _hit_rays(out, w, i, lo, hi, th_c, th_s, ray_cs, ox, oy, kind, ax, ay, bx, by, rad):
    """Test the rays whose angle (relative to the heading) lies in [lo, hi] against one shape."""
    n_rays = ray_cs.shape[0]
    step = 2.0 * math.pi / n_rays
    j0 = int(math.ceil(lo / step - 1e-2))  # margin: 0.01 ray spacing >> fast_atan2's error
    j1 = int(math.floor(hi / step + 1e-2))
    for j in range(j0, j1 + 1):
        ridx = j % n_rays
        dx = th_c * ray_cs[ridx, 0] - th_s * ray_cs[ridx, 1]
        dy = th_s * ray_cs[ridx, 0] + th_c * ray_cs[ridx, 1]
        if kind == 0:
            t = ray_segment(ox, oy, dx, dy, ax, ay, bx, by)
        else:
            t = ray_circle(ox, oy, dx, dy, ax, ay, rad)
        if t < out[w, i, ridx]:
            out[w, i, ridx] = t


@njit(cache=True, inline="always")
def _lidar(w, i, pos, theta, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, out):
    """Raw lidar distances of agent i (metres, capped at the range) into out[w, i, :]."""
    n_rays = ray_cs.shape[0]
    rng = phys[RANGE]
    r = phys[RADIUS]
    for k in range(n_rays):
        out[w, i, k] = rng
    ox = pos[w, i, 0]
    oy = pos[w, i, 1]
    th = theta[w, i]
    th_c = math.cos(th)
    th_s = math.sin(th)
    for k in range(n_walls[w]):
        ax = walls[w, k, 0]
        ay = walls[w, k, 1]
        bx = walls[w, k, 2]
        by = walls[w, k, 3]
        if segment_distance(ox, oy, ax, ay, bx, by) >= rng:
            continue
        a1 = fast_atan2(ay - oy, ax - ox) - th
        span = fast_atan2(by - oy, bx - ox) - th - a1
        if span >= math.pi:
            span -= 2.0 * math.pi
        elif span < -math.pi:
            span += 2.0 * math.pi
        lo = a1 if span >= 0.0 else a1 + span
        _hit_rays(out, w, i, lo, lo + abs(span), th_c, th_s, ray_cs, ox, oy, 0, ax, ay, bx, by, 0.0)
    cx, cy = cell_of(ox, oy, phys[CELL], g)
    for yy in range(max(cy - 1, 0), min(cy + 2, g)):
        for xx in range(max(cx - 1, 0), min(cx + 2, g)):
            c = yy * g + xx
            for kk in range(cell_start[w, c], cell_start[w, c + 1]):
                j = cell_items[w, kk]
                if j == i:
                    continue
                qx = pos[w, j, 0]
                qy = pos[w, j, 1]
                d = math.sqrt((qx - ox) ** 2 + (qy - oy) ** 2)
                if d - r >= rng:
                    continue
                if d <= r:
                    for k in range(n_rays):
                        out[w, i, k] = 0.0
                    continue
                phi = fast_atan2(qy - oy, qx - ox) - th
                alpha = fast_atan2(r, math.sqrt(d * d - r * r))  # asin(r / d)
                _hit_rays(out, w, i, phi - alpha, phi + alpha, th_c, th_s, ray_cs, ox, oy, 1, qx, qy, 0.0, 0.0, r)
    for k in range(n_rays):
        out[w, i, k] = min(out[w, i, k], rng) / rng


# ----------------------------------------------------------------------------- phases of a step
@njit(cache=True, inline="always")
def phase_drive(w, i, actions, pos, vel, theta, omega, active, phys, start, moved, contact):
    """Remember the start position, then drive (active agents only)."""
    start[w, i, 0] = pos[w, i, 0]
    start[w, i, 1] = pos[w, i, 1]
    contact[w, i] = False
    if active[w, i]:
        _drive(w, i, actions, pos, vel, theta, omega, phys)
    moved[w, i, 0] = pos[w, i, 0]
    moved[w, i, 1] = pos[w, i, 1]


@njit(cache=True, inline="always")
def phase_push(w, i, src, dst, active, phys, g, cell_start, cell_items, contact):
    """One Jacobi pass for agent i: dst = src + half of every overlap."""
    dst[w, i, 0] = src[w, i, 0]
    dst[w, i, 1] = src[w, i, 1]
    if active[w, i]:
        sx, sy, worst = _agent_push(w, i, src, phys, g, cell_start, cell_items)
        dst[w, i, 0] += sx
        dst[w, i, 1] += sy
        if worst > CONTACT_TOL:
            contact[w, i] = True


@njit(cache=True, inline="always")
def phase_settle(w, i, pos, vel, active, walls, n_walls, phys, start, moved, contact):
    """Walls win over robots; position corrections become velocity changes (PBD)."""
    if not active[w, i]:
        return
    if _wall_fix(w, i, pos, start, walls, n_walls, phys) > CONTACT_TOL:
        contact[w, i] = True
    dt = phys[DT]
    vmax = phys[V_MAX]
    vx = vel[w, i, 0] + (pos[w, i, 0] - moved[w, i, 0]) / dt
    vy = vel[w, i, 1] + (pos[w, i, 1] - moved[w, i, 1]) / dt
    sp = math.sqrt(vx * vx + vy * vy)
    if sp > vmax:
        vx *= vmax / sp
        vy *= vmax / sp
    vel[w, i, 0] = vx
    vel[w, i, 1] = vy


@njit(cache=True, inline="always")
def phase_lidar(w, i, pos, theta, active, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar):
    if active[w, i]:
        _lidar(w, i, pos, theta, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar)
    else:
        for r in range(ray_cs.shape[0]):
            lidar[w, i, r] = 1.0
