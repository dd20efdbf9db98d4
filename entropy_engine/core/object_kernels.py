"""The compiled step of worlds with movable objects (``core.objects``): robots and objects as bodies.

Robots and objects are copied into one body list per world (bodies ``0 .. N-1`` are the robots,
``N .. N+M-1`` the objects: radius ``brad`` [E, B], inverse mass ``binv`` [E, B]) so that one
contact solver handles every pair: contact candidates once per step over a grid of all bodies, the
islands of ``kernels.build_islands``, Jacobi passes with mass-weighted shares and walls solved in
the same passes. Then object friction, robots out of the objects and the robots' final wall pass
(``kernels.phase_settle``), and the lidar over all bodies. Every body's result depends only on data
no other body writes in the same phase, so both drivers (a world per task, or every phase parallel
over bodies) give bit-identical results for any number of threads. Worlds without objects never
come here (``core.step``).
"""
from __future__ import annotations

import math

from numba import njit, prange

from .geometry import fast_atan2, segment_distance
from .grid import cell_span
from .kernels import (ARENA, CELL, CONTACT_TOL, DT, MASS, RADIUS, RANGE, V_MAX, WALL_FAR, WALL_NEAR, WALL_SLOP,
                      WALL_STUCK, _hit_rays, build_grid, build_islands, lidar_walls, phase_drive, phase_settle, wall_depth_disc,
                      wall_fix_disc)

MAX_BODY_CONTACTS = 32  # contact candidates kept per body and step
TOUCH = 1e-3  # metres of gap within which a robot counts as touching an object (it shares the friction)
(O_RMAX, O_GRAVITY) = range(2)  # layout of the float64 ``ophys`` vector: largest body radius, g
N_OPHYS = 2


@njit(cache=True, inline="always")
def phase_predict(w, m, opos, ovel, oactive, ostart, phys):
    """Remember object m's start and move it by its velocity."""
    ostart[w, m, 0] = opos[w, m, 0]
    ostart[w, m, 1] = opos[w, m, 1]
    if oactive[w, m]:
        opos[w, m, 0] = opos[w, m, 0] + ovel[w, m, 0] * phys[DT]
        opos[w, m, 1] = opos[w, m, 1] + ovel[w, m, 1] * phys[DT]


@njit(cache=True, inline="always")
def phase_gather(w, b, n, pos, start, active, opos, ostart, oradius, omass, oactive, phys, bpos, bstart, brad, binv,
                 bactive, bcontact):
    """Copy body b (robot b < n, else object b - n) into the body arrays."""
    if b < n:
        bpos[w, b, 0] = pos[w, b, 0]
        bpos[w, b, 1] = pos[w, b, 1]
        bstart[w, b, 0] = start[w, b, 0]
        bstart[w, b, 1] = start[w, b, 1]
        brad[w, b] = phys[RADIUS]
        binv[w, b] = 1.0 / phys[MASS]
        bactive[w, b] = active[w, b]
    else:
        m = b - n
        bpos[w, b, 0] = opos[w, m, 0]
        bpos[w, b, 1] = opos[w, m, 1]
        bstart[w, b, 0] = ostart[w, m, 0]
        bstart[w, b, 1] = ostart[w, m, 1]
        brad[w, b] = oradius[w, m]
        binv[w, b] = 1.0 / omass[w, m]
        bactive[w, b] = oactive[w, m]
    bcontact[w, b] = False


@njit(cache=True, inline="always")
def phase_body_contacts(w, b, bpos, brad, bactive, walls, n_walls, phys, ophys, g, cell_start, cell_items, nbr, n_nbr,
                        near_wall):
    """Contact candidates of body b: bodies whose discs come within one robot radius of its own
    (at most MAX_BODY_CONTACTS, grid order) and, if there are any, whether a wall is within its
    radius plus one robot radius. The margin covers one step's corrections, as for robots."""
    n_nbr[w, b] = 0
    near_wall[w, b] = WALL_FAR
    if not bactive[w, b]:
        return
    px = bpos[w, b, 0]
    py = bpos[w, b, 1]
    rb = brad[w, b]
    margin = phys[RADIUS]
    count = 0
    x0, x1, y0, y1 = cell_span(px, py, rb + ophys[O_RMAX] + margin, phys[CELL], g)
    for yy in range(y0, y1 + 1):
        for xx in range(x0, x1 + 1):
            c = yy * g + xx
            for k in range(cell_start[w, c], cell_start[w, c + 1]):
                j = cell_items[w, k]
                if j == b or count == MAX_BODY_CONTACTS:
                    continue
                dx = px - bpos[w, j, 0]
                dy = py - bpos[w, j, 1]
                reach = rb + brad[w, j] + margin
                if dx * dx + dy * dy < reach * reach:
                    nbr[w, b, count] = j
                    count += 1
    n_nbr[w, b] = count
    if count > 0:
        for k in range(n_walls[w]):
            if segment_distance(px, py, walls[w, k, 0], walls[w, k, 1], walls[w, k, 2], walls[w, k, 3]) < rb + margin:
                near_wall[w, b] = WALL_NEAR
                break


@njit(cache=True, inline="always")
def body_push(w, b, src, dst, brad, binv, walls, n_walls, phys, bstart, nbr, n_nbr, near_wall, bcontact):
    """One Jacobi pass for body b: its mass-weighted share of every overlap, summed, then out of
    the walls (a body that two sweeps leave inside a wall goes back to its start and stays there
    for the step), as ``kernels.phase_push`` does for robots."""
    px = src[w, b, 0]
    py = src[w, b, 1]
    rb = brad[w, b]
    ib = binv[w, b]
    sx = 0.0
    sy = 0.0
    worst = 0.0
    for k in range(n_nbr[w, b]):
        j = nbr[w, b, k]
        dx = px - src[w, j, 0]
        dy = py - src[w, j, 1]
        rs = rb + brad[w, j]
        d2 = dx * dx + dy * dy
        if d2 >= rs * rs:
            continue
        d = math.sqrt(d2)
        if d > 1e-9:
            nx = dx / d
            ny = dy / d
        else:
            nx = 1.0 if b < j else -1.0
            ny = 0.0
        overlap = rs - d
        if overlap > worst:
            worst = overlap
        share = ib / (ib + binv[w, j])
        sx += share * overlap * nx
        sy += share * overlap * ny
    px = px + sx
    py = py + sy
    if worst > CONTACT_TOL:
        bcontact[w, b] = True
    if near_wall[w, b] == WALL_NEAR:
        px, py, deep, changed = wall_fix_disc(px, py, bstart[w, b, 0], bstart[w, b, 1], w, walls, n_walls, rb,
                                              phys[ARENA], 2)
        if deep > CONTACT_TOL:
            bcontact[w, b] = True
        if changed and wall_depth_disc(px, py, w, walls, n_walls, rb) > WALL_SLOP:
            near_wall[w, b] = WALL_STUCK
    if near_wall[w, b] == WALL_STUCK:
        px = bstart[w, b, 0]
        py = bstart[w, b, 1]
    dst[w, b, 0] = px
    dst[w, b, 1] = py


@njit(cache=True)
def solve_body_island(w, s, islands, iterations, bpos, btmp, brad, binv, walls, n_walls, phys, bstart, nbr, n_nbr,
                      near_wall, bcontact):
    """Every Jacobi pass over the members of island s (as ``kernels.solve_island``, for bodies)."""
    nb = bpos.shape[1]
    first = nb + 2 + islands[w, 1 + s]
    last = nb + 2 + islands[w, 2 + s]
    in_tmp = False
    for it in range(iterations):
        src = bpos if it % 2 == 0 else btmp
        dst = btmp if it % 2 == 0 else bpos
        moved = False
        for m in range(first, last):
            b = islands[w, m]
            body_push(w, b, src, dst, brad, binv, walls, n_walls, phys, bstart, nbr, n_nbr, near_wall, bcontact)
            if dst[w, b, 0] != src[w, b, 0] or dst[w, b, 1] != src[w, b, 1]:
                moved = True
        in_tmp = it % 2 == 0
        if not moved:
            break
    if in_tmp:
        for m in range(first, last):
            b = islands[w, m]
            bpos[w, b, 0] = btmp[w, b, 0]
            bpos[w, b, 1] = btmp[w, b, 1]


@njit(cache=True, inline="always")
def phase_friction(w, m, n, bpos, brad, opos, ovel, ostart, omass, ofriction, oactive, walls, n_walls, phys, ophys, nbr,
                   n_nbr):
    """Object m after the passes: the friction impulse ``mu m g dt`` slows the object and the
    robots touching it (centres within the sum of radii + ``TOUCH``), which move with it, alike:
    the object's speed over the step drops by ``mu m g dt / (m + robots' mass)`` (stopping at
    zero: static friction), capped at ``max_speed``; the object moves by it from its start, out of
    every wall (four sweeps; still inside one: back to the start). The touching robots then step
    out of the object (``phase_off_objects``) and lose the same speed."""
    if not oactive[w, m]:
        ovel[w, m, 0] = 0.0
        ovel[w, m, 1] = 0.0
        return
    dt = phys[DT]
    b = n + m
    px = bpos[w, b, 0]
    py = bpos[w, b, 1]
    carried = 0.0  # mass of the robots touching the object
    for k in range(n_nbr[w, b]):
        j = nbr[w, b, k]
        if j < n:
            reach = brad[w, b] + brad[w, j] + TOUCH
            if (px - bpos[w, j, 0]) ** 2 + (py - bpos[w, j, 1]) ** 2 < reach * reach:
                carried += phys[MASS]
    sx = ostart[w, m, 0]
    sy = ostart[w, m, 1]
    ux = (px - sx) / dt
    uy = (py - sy) / dt
    sp = math.sqrt(ux * ux + uy * uy)
    keep = 0.0
    if sp > 0.0:
        mo = omass[w, m]
        keep = max(sp - ofriction[w, m] * ophys[O_GRAVITY] * dt * mo / (mo + carried), 0.0) / sp
        if sp * keep > phys[V_MAX]:
            keep = phys[V_MAX] / sp
    r = brad[w, b]
    px, py, deep, changed = wall_fix_disc(sx + ux * keep * dt, sy + uy * keep * dt, sx, sy, w, walls, n_walls, r,
                                          phys[ARENA], 4)
    if changed and wall_depth_disc(px, py, w, walls, n_walls, r) > WALL_SLOP:
        px = sx
        py = sy
    opos[w, m, 0] = px
    opos[w, m, 1] = py
    ovel[w, m, 0] = (px - sx) / dt
    ovel[w, m, 1] = (py - sy) / dt


@njit(cache=True, inline="always")
def phase_off_objects(w, i, n, pos, bpos, opos, oradius, phys, nbr, n_nbr, bcontact, contact):
    """Robot i takes its position from the passes and steps out of the objects' final discs
    (objects do not move here; two sweeps over its object candidates)."""
    px = bpos[w, i, 0]
    py = bpos[w, i, 1]
    r = phys[RADIUS]
    for _sweep in range(2):
        for k in range(n_nbr[w, i]):
            j = nbr[w, i, k]
            if j < n:
                continue
            m = j - n
            dx = px - opos[w, m, 0]
            dy = py - opos[w, m, 1]
            rs = oradius[w, m] + r
            d = math.sqrt(dx * dx + dy * dy)
            if 1e-9 < d < rs:
                px = opos[w, m, 0] + dx / d * rs
                py = opos[w, m, 1] + dy / d * rs
    pos[w, i, 0] = px
    pos[w, i, 1] = py
    if bcontact[w, i]:
        contact[w, i] = True


@njit(cache=True, inline="always")
def phase_scatter(w, b, n, pos, opos, bpos):
    """Copy the final position of body b back into the body arrays (for the grid of the lidar)."""
    if b < n:
        bpos[w, b, 0] = pos[w, b, 0]
        bpos[w, b, 1] = pos[w, b, 1]
    else:
        bpos[w, b, 0] = opos[w, b - n, 0]
        bpos[w, b, 1] = opos[w, b - n, 1]


@njit(cache=True, inline="always")
def lidar_bodies(w, i, pos, theta, active, walls, n_walls, phys, ophys, g, bpos, brad, cell_start, cell_items, ray_cs,
                 out):
    """Raw-then-normalised lidar of robot i over walls and every other body (robots and objects,
    each a disc of its own radius), as ``kernels._lidar`` for robots only."""
    n_rays = ray_cs.shape[0]
    if not active[w, i]:
        for k in range(n_rays):
            out[w, i, k] = 1.0
        return
    rng = phys[RANGE]
    ox, oy, th, th_c, th_s = lidar_walls(w, i, pos, theta, walls, n_walls, rng, ray_cs, out)
    x0, x1, y0, y1 = cell_span(ox, oy, rng + ophys[O_RMAX], phys[CELL], g)
    for yy in range(y0, y1 + 1):
        for xx in range(x0, x1 + 1):
            c = yy * g + xx
            for kk in range(cell_start[w, c], cell_start[w, c + 1]):
                j = cell_items[w, kk]
                if j == i:
                    continue
                r = brad[w, j]
                qx = bpos[w, j, 0]
                qy = bpos[w, j, 1]
                d = math.sqrt((qx - ox) ** 2 + (qy - oy) ** 2)
                if d - r >= rng:
                    continue
                if d <= r:
                    for k in range(n_rays):
                        out[w, i, k] = 0.0
                    continue
                phi = fast_atan2(qy - oy, qx - ox) - th
                alpha = fast_atan2(r, math.sqrt(d * d - r * r))
                _hit_rays(out, w, i, phi - alpha, phi + alpha, th_c, th_s, ray_cs, ox, oy, 1, qx, qy, 0.0, 0.0, r)
    for k in range(n_rays):
        out[w, i, k] = min(out[w, i, k], rng) / rng


# ----------------------------------------------------------------------------- drivers
@njit(cache=True)
def _step_one_world(w, actions, pos, vel, theta, omega, active, walls, n_walls, phys, ophys, g, iterations, ray_cs,
                    start, moved, opos, ovel, oradius, omass, ofriction, oactive, ostart, bpos, btmp, bstart, brad,
                    binv, bactive, bcontact, cell_start, cell_fill, cell_items, nbr, n_nbr, near_wall, islands,
                    rcell_start, rcell_fill, rcell_items, lidar, contact):
    n = pos.shape[1]
    n_obj = opos.shape[1]
    nb = n + n_obj
    for i in range(n):
        phase_drive(w, i, actions, pos, vel, theta, omega, active, phys, start, moved, contact)
    for m in range(n_obj):
        phase_predict(w, m, opos, ovel, oactive, ostart, phys)
    for b in range(nb):
        phase_gather(w, b, n, pos, start, active, opos, ostart, oradius, omass, oactive, phys, bpos, bstart, brad,
                     binv, bactive, bcontact)
    build_grid(w, bpos, bactive, phys, g, cell_start, cell_fill, cell_items)
    for b in range(nb):
        phase_body_contacts(w, b, bpos, brad, bactive, walls, n_walls, phys, ophys, g, cell_start, cell_items, nbr,
                            n_nbr, near_wall)
    build_islands(w, n_nbr, nbr, islands)
    for s in range(islands[w, 0]):
        solve_body_island(w, s, islands, iterations, bpos, btmp, brad, binv, walls, n_walls, phys, bstart, nbr, n_nbr,
                          near_wall, bcontact)
    for m in range(n_obj):
        phase_friction(w, m, n, bpos, brad, opos, ovel, ostart, omass, ofriction, oactive, walls, n_walls, phys, ophys,
                       nbr, n_nbr)
    for i in range(n):
        phase_off_objects(w, i, n, pos, bpos, opos, oradius, phys, nbr, n_nbr, bcontact, contact)
        phase_settle(w, i, pos, vel, active, walls, n_walls, phys, start, moved, contact)
    for b in range(nb):
        phase_scatter(w, b, n, pos, opos, bpos)
    build_grid(w, bpos, bactive, phys, g, cell_start, cell_fill, cell_items)
    for i in range(n):
        lidar_bodies(w, i, pos, theta, active, walls, n_walls, phys, ophys, g, bpos, brad, cell_start, cell_items,
                     ray_cs, lidar)
    build_grid(w, pos, active, phys, g, rcell_start, rcell_fill, rcell_items)


@njit(cache=True, parallel=True, error_model="numpy")
def step_by_world(actions, pos, vel, theta, omega, active, walls, n_walls, phys, ophys, g, iterations, ray_cs,
                  start, moved, opos, ovel, oradius, omass, ofriction, oactive, ostart, bpos, btmp, bstart, brad,
                  binv, bactive, bcontact, cell_start, cell_fill, cell_items, nbr, n_nbr, near_wall, islands,
                  rcell_start, rcell_fill, rcell_items, lidar, contact):
    """One control step of every world with objects, a world per task.

    Robot arrays as ``core.step.step_by_world``; objects opos/ovel/ostart [E,M,2], oradius/omass/
    ofriction [E,M], oactive [E,M]; body scratch (B = N + M) bpos/btmp/bstart [E,B,2], brad/binv
    [E,B] float64, bactive/bcontact [E,B], cell_* the body grid, nbr [E,B,K] / n_nbr [E,B] /
    near_wall [E,B] / islands [E,4B+2]; rcell_* the robots' grid (rebuilt at the end, as
    ``WorldState.grid()`` returns it)."""
    for w in prange(pos.shape[0]):
        _step_one_world(w, actions, pos, vel, theta, omega, active, walls, n_walls, phys, ophys, g, iterations, ray_cs,
                        start, moved, opos, ovel, oradius, omass, ofriction, oactive, ostart, bpos, btmp, bstart,
                        brad, binv, bactive, bcontact, cell_start, cell_fill, cell_items, nbr, n_nbr, near_wall,
                        islands, rcell_start, rcell_fill, rcell_items, lidar, contact)


@njit(cache=True, parallel=True, error_model="numpy")
def step_by_agent(actions, pos, vel, theta, omega, active, walls, n_walls, phys, ophys, g, iterations, ray_cs,
                  start, moved, opos, ovel, oradius, omass, ofriction, oactive, ostart, bpos, btmp, bstart, brad,
                  binv, bactive, bcontact, cell_start, cell_fill, cell_items, nbr, n_nbr, near_wall, islands,
                  rcell_start, rcell_fill, rcell_items, lidar, contact):
    """The same step as ``step_by_world`` with each phase parallel over bodies (one big world uses
    every core); islands are solved in parallel, each by one thread."""
    n_worlds, n = pos.shape[0], pos.shape[1]
    n_obj = opos.shape[1]
    nb = n + n_obj
    for k in prange(n_worlds * n):
        w = k // n
        phase_drive(w, k - w * n, actions, pos, vel, theta, omega, active, phys, start, moved, contact)
    for k in prange(n_worlds * n_obj):
        w = k // n_obj
        phase_predict(w, k - w * n_obj, opos, ovel, oactive, ostart, phys)
    for k in prange(n_worlds * nb):
        w = k // nb
        phase_gather(w, k - w * nb, n, pos, start, active, opos, ostart, oradius, omass, oactive, phys, bpos, bstart,
                     brad, binv, bactive, bcontact)
    for w in prange(n_worlds):
        build_grid(w, bpos, bactive, phys, g, cell_start, cell_fill, cell_items)
    for k in prange(n_worlds * nb):
        w = k // nb
        phase_body_contacts(w, k - w * nb, bpos, brad, bactive, walls, n_walls, phys, ophys, g, cell_start,
                            cell_items, nbr, n_nbr, near_wall)
    for w in prange(n_worlds):
        build_islands(w, n_nbr, nbr, islands)
    for k in prange(n_worlds * nb):
        w = k // nb
        if k - w * nb < islands[w, 0]:
            solve_body_island(w, k - w * nb, islands, iterations, bpos, btmp, brad, binv, walls, n_walls, phys,
                              bstart, nbr, n_nbr, near_wall, bcontact)
    for k in prange(n_worlds * n_obj):
        w = k // n_obj
        phase_friction(w, k - w * n_obj, n, bpos, brad, opos, ovel, ostart, omass, ofriction, oactive, walls,
                       n_walls, phys, ophys, nbr, n_nbr)
    for k in prange(n_worlds * n):
        w = k // n
        phase_off_objects(w, k - w * n, n, pos, bpos, opos, oradius, phys, nbr, n_nbr, bcontact, contact)
        phase_settle(w, k - w * n, pos, vel, active, walls, n_walls, phys, start, moved, contact)
    for k in prange(n_worlds * nb):
        w = k // nb
        phase_scatter(w, k - w * nb, n, pos, opos, bpos)
    for w in prange(n_worlds):
        build_grid(w, bpos, bactive, phys, g, cell_start, cell_fill, cell_items)
        build_grid(w, pos, active, phys, g, rcell_start, rcell_fill, rcell_items)
    for k in prange(n_worlds * n):
        w = k // n
        lidar_bodies(w, k - w * n, pos, theta, active, walls, n_walls, phys, ophys, g, bpos, brad, cell_start,
                     cell_items, ray_cs, lidar)


@njit(cache=True, parallel=True, error_model="numpy")
def lidar_by_world(pos, theta, active, walls, n_walls, phys, ophys, g, ray_cs, opos, oradius, oactive, bpos, brad,
                   bactive, cell_start, cell_fill, cell_items, lidar):
    """Lidar only (after a reset) of worlds with objects: gather the bodies, grid them, cast."""
    n_worlds, n = pos.shape[0], pos.shape[1]
    n_obj = opos.shape[1]
    for w in prange(n_worlds):
        for b in range(n + n_obj):
            phase_scatter(w, b, n, pos, opos, bpos)
            if b < n:
                brad[w, b] = phys[RADIUS]
                bactive[w, b] = active[w, b]
            else:
                brad[w, b] = oradius[w, b - n]
                bactive[w, b] = oactive[w, b - n]
        build_grid(w, bpos, bactive, phys, g, cell_start, cell_fill, cell_items)
        for i in range(n):
            lidar_bodies(w, i, pos, theta, active, walls, n_walls, phys, ophys, g, bpos, brad, cell_start, cell_items,
                         ray_cs, lidar)
