"""Per-agent pieces of the compiled world step: drive model, spatial grid, collisions and lidar.

Every array is laid out ``[world, agent, feature]``. The functions here work on one agent (or
build one world's grid) and are composed into parallel drivers in ``step.py``. Each agent's result
depends only on data that no other agent writes in the same phase, so the drivers give
bit-identical results for any number of threads. ``reference.py`` holds slow, readable numpy
versions used by the tests.
"""
from __future__ import annotations

import math

from numba import njit

from .geometry import (closest_on_segment, fast_atan2, ray_circle, ray_segment, segment_distance,
                       segments_cross, wrap_angle)
from .grid import cell_of, cell_span

# Layout of the float64 ``phys`` parameter vector (see World._phys).
(DT, MASS, INERTIA, MAX_FORCE, HALF_BASE, LIN_DAMP, ANG_DAMP, LAT_SLIP, V_MAX, W_MAX, RADIUS, RANGE, CELL, ARENA,
 LIN_DECAY, ANG_DECAY) = range(16)
N_PHYS = 16
CONTACT_TOL = 1e-4  # metres of overlap that count as a contact
MAX_CONTACTS = 24  # robot contact candidates kept per agent and step (centres within 3 radii)
SETTLE_SWEEPS = 4  # sweeps over every wall in the final wall pass
WALL_SLOP = 1e-5  # metres inside a wall after a wall fix that send a robot back to its start
WALL_FAR, WALL_NEAR, WALL_STUCK = 0, 1, 2  # near_wall states: no wall within 2 radii, one is, wedged


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
def _find_contacts(w, i, pos, walls, n_walls, phys, g, cell_start, cell_items, nbr, n_nbr, near_wall):
    """Contact candidates of agent i after driving: the robots whose centres are within
    ``3 * radius`` (at most MAX_CONTACTS, in grid order) and, if there are any, whether a wall is
    within ``2 * radius`` (near_wall: WALL_FAR or WALL_NEAR).

    The extra radius of margin covers the corrections of one step's passes; the final wall pass
    in ``phase_settle`` checks every wall anyway."""
    px = pos[w, i, 0]
    py = pos[w, i, 1]
    r = phys[RADIUS]
    reach = 3.0 * r
    count = 0
    x0, x1, y0, y1 = cell_span(px, py, reach, phys[CELL], g)
    for yy in range(y0, y1 + 1):
        for xx in range(x0, x1 + 1):
            c = yy * g + xx
            for k in range(cell_start[w, c], cell_start[w, c + 1]):
                j = cell_items[w, k]
                if j == i or count == MAX_CONTACTS:
                    continue
                dx = px - pos[w, j, 0]
                dy = py - pos[w, j, 1]
                if dx * dx + dy * dy < reach * reach:
                    nbr[w, i, count] = j
                    count += 1
    n_nbr[w, i] = count
    near = WALL_FAR
    for k in range(n_walls[w] if count > 0 else 0):  # only agents with robot candidates move in the passes
        if segment_distance(px, py, walls[w, k, 0], walls[w, k, 1], walls[w, k, 2], walls[w, k, 3]) < 2.0 * r:
            near = WALL_NEAR
            break
    near_wall[w, i] = near


@njit(cache=True, inline="always")
def _agent_push(w, i, src, phys, nbr, n_nbr):
    """Half the overlap with every contact candidate, summed: the Jacobi correction of agent i."""
    px = src[w, i, 0]
    py = src[w, i, 1]
    two_r = 2.0 * phys[RADIUS]
    sx = 0.0
    sy = 0.0
    worst = 0.0
    for k in range(n_nbr[w, i]):
        j = nbr[w, i, k]
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
def _wall_fix(px, py, sx, sy, w, walls, n_walls, phys, sweeps):
    """``wall_fix_disc`` for a robot (radius ``phys[RADIUS]``)."""
    return wall_fix_disc(px, py, sx, sy, w, walls, n_walls, phys[RADIUS], phys[ARENA], sweeps)


@njit(cache=True, inline="always")
def wall_fix_disc(px, py, sx, sy, w, walls, n_walls, r, arena, sweeps):
    """Move the centre (px, py) of a disc of radius ``r``, reached from the valid start (sx, sy),
    out of every wall.

    Per sweep and wall: a move that crossed the wall goes back to the start; a centre closer than
    the radius is pushed out along the wall normal. Sweeps repeat (at most ``sweeps``) until one
    changes nothing; then the point is clamped to the arena [r, arena - r]^2. Returns (x, y,
    deepest penetration removed, whether the last sweep still changed the point)."""
    worst = 0.0
    changed = False
    for sweep in range(sweeps):
        changed = False
        for k in range(n_walls[w]):
            ax = walls[w, k, 0]
            ay = walls[w, k, 1]
            bx = walls[w, k, 2]
            by = walls[w, k, 3]
            qx, qy = closest_on_segment(px, py, ax, ay, bx, by)
            move2 = (px - sx) ** 2 + (py - sy) ** 2
            gap2 = (px - qx) ** 2 + (py - qy) ** 2
            if gap2 >= r * r and gap2 > move2:
                continue  # clear of this wall and too far from it to have crossed it
            if segments_cross(sx, sy, px, py, ax, ay, bx, by):
                # the move crossed the wall: go back to where the step started (a valid place)
                px = sx
                py = sy
                worst = max(worst, r)
                changed = True
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
                    if (sx - qx) * nx + (sy - qy) * ny < 0.0:
                        nx = -nx
                        ny = -ny
                worst = max(worst, r - d)
                px = qx + nx * r
                py = qy + ny * r
                changed = changed or r - d > 1e-9  # not a rounding-level touch-up
        if not changed:
            break
    lo = r
    hi = arena - r
    px = min(max(px, lo), hi)
    py = min(max(py, lo), hi)
    return px, py, worst, changed


@njit(cache=True, inline="always")
def _wall_depth(px, py, w, walls, n_walls, phys):
    """How deep the robot at (px, py) is inside its deepest wall (<= 0: clear of every wall)."""
    return wall_depth_disc(px, py, w, walls, n_walls, phys[RADIUS])


@njit(cache=True, inline="always")
def wall_depth_disc(px, py, w, walls, n_walls, r):
    """How deep the disc of radius ``r`` at (px, py) is inside its deepest wall (<= 0: clear)."""
    deepest = -r
    for k in range(n_walls[w]):
        d = segment_distance(px, py, walls[w, k, 0], walls[w, k, 1], walls[w, k, 2], walls[w, k, 3])
        deepest = max(deepest, r - d)
    return deepest


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
def lidar_walls(w, i, pos, theta, walls, n_walls, rng, ray_cs, out):
    """Start agent i's raw lidar: every ray at the range ``rng``, then the walls' hits. Returns the
    ray origin and heading (ox, oy, theta, cos, sin) for the bodies' pass (``_lidar``, and the lidar of
    worlds with objects in ``object_kernels``)."""
    n_rays = ray_cs.shape[0]
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
    return ox, oy, th, th_c, th_s


@njit(cache=True, inline="always")
def _lidar(w, i, pos, theta, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, out):
    """Raw lidar distances of agent i (metres, capped at the range) into out[w, i, :]."""
    n_rays = ray_cs.shape[0]
    rng = phys[RANGE]
    r = phys[RADIUS]
    ox, oy, th, th_c, th_s = lidar_walls(w, i, pos, theta, walls, n_walls, rng, ray_cs, out)
    x0, x1, y0, y1 = cell_span(ox, oy, rng + r, phys[CELL], g)  # robots whose disc the range can reach
    for yy in range(y0, y1 + 1):
        for xx in range(x0, x1 + 1):
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
def phase_contacts(w, i, pos, active, walls, n_walls, phys, g, cell_start, cell_items, nbr, n_nbr, near_wall):
    """Collect agent i's contact candidates (robots and walls) once per step, before the passes."""
    if active[w, i]:
        _find_contacts(w, i, pos, walls, n_walls, phys, g, cell_start, cell_items, nbr, n_nbr, near_wall)
    else:
        n_nbr[w, i] = 0
        near_wall[w, i] = WALL_FAR


@njit(cache=True, inline="always")
def phase_push(w, i, src, dst, active, walls, n_walls, phys, start, nbr, n_nbr, near_wall, contact):
    """One Jacobi pass for agent i: dst = src + half of every robot overlap, then out of the walls.

    Robots and walls are solved together in every pass, so that the last pass leaves no robot
    pushed into a wall by its neighbours (nor pushed back into them by a wall afterwards). A robot
    that two sweeps over the walls leave inside one (wedged where walls meet at a sharp angle or
    in a slot narrower than itself) goes back to its start and stays there for the remaining
    passes, so that its neighbours move out of its way before the step ends. Agents
    without robot candidates (n_nbr == 0, inactive ones included) cannot move in the passes and
    are nobody's candidate: the drivers skip them (only ``pos`` holds their position)."""
    sx, sy, worst = _agent_push(w, i, src, phys, nbr, n_nbr)
    px = src[w, i, 0] + sx
    py = src[w, i, 1] + sy
    if worst > CONTACT_TOL:
        contact[w, i] = True
    if near_wall[w, i] == WALL_NEAR:
        px, py, deep, changed = _wall_fix(px, py, start[w, i, 0], start[w, i, 1], w, walls, n_walls, phys, 2)
        if deep > CONTACT_TOL:
            contact[w, i] = True
        if changed and _wall_depth(px, py, w, walls, n_walls, phys) > WALL_SLOP:
            near_wall[w, i] = WALL_STUCK  # wedged: back to the start, where it stays for this step
    if near_wall[w, i] == WALL_STUCK:
        px = start[w, i, 0]
        py = start[w, i, 1]
    dst[w, i, 0] = px
    dst[w, i, 1] = py


@njit(cache=True, inline="always")
def _root(w, islands, base, i):
    """Union-find root of agent i (parents at islands[w, base + i]), halving the path."""
    while islands[w, base + i] != i:
        islands[w, base + i] = islands[w, base + islands[w, base + i]]
        i = islands[w, base + i]
    return i


@njit(cache=True)
def build_islands(w, n_nbr, nbr, islands):
    """Group world w's agents that take part in the passes (n_nbr > 0) into islands: sets linked by
    contact candidates. No pass moves an agent by anything outside its island, so each island can
    be solved start to finish by one thread, in any order, with the same result.

    islands [E, 4N + 2] int32: [0] number of islands S; [1 : S + 2] offsets into the members,
    [N + 2 : 2N + 2] members sorted by island (ascending agent index within one); [2N + 2 :] scratch
    (parents, labels). Islands are numbered by their smallest agent index."""
    n = n_nbr.shape[1]
    items = n + 2
    parent = 2 * n + 2
    label = 3 * n + 2
    for i in range(n):
        islands[w, parent + i] = i
    for i in range(n):
        for k in range(n_nbr[w, i]):
            a = _root(w, islands, parent, i)
            b = _root(w, islands, parent, nbr[w, i, k])
            if a != b:
                islands[w, parent + max(a, b)] = min(a, b)
    count = 0
    for i in range(n):
        if n_nbr[w, i] > 0:
            r = _root(w, islands, parent, i)
            islands[w, parent + i] = r
            if r == i:
                islands[w, label + i] = count
                count += 1
    for c in range(count + 1):
        islands[w, 1 + c] = 0
    for i in range(n):
        if n_nbr[w, i] > 0:
            islands[w, 2 + islands[w, label + islands[w, parent + i]]] += 1
    for c in range(count):
        islands[w, 2 + c] += islands[w, 1 + c]
    for i in range(n):  # counting sort; each island's offset advances by one per member ...
        if n_nbr[w, i] > 0:
            c = islands[w, label + islands[w, parent + i]]
            islands[w, items + islands[w, 1 + c]] = i
            islands[w, 1 + c] += 1
    for c in range(count, 0, -1):  # ... so shift the offsets back
        islands[w, 1 + c] = islands[w, c]
    islands[w, 1] = 0
    islands[w, 0] = count


@njit(cache=True)
def solve_island(w, s, islands, iterations, pos, tmp, active, walls, n_walls, phys, start, nbr, n_nbr, near_wall,
                 contact):
    """Every Jacobi pass over the members of island s of world w; their results end in ``pos``.

    A pass that leaves every member exactly where it was is a fixed point: each later pass would
    compute the same positions from the same inputs (a robot newly marked wedged in it was already
    at its start), so the remaining passes are skipped. The result is bit-identical to running
    them all (``reference.resolve_reference`` does), only cheaper for islands that have settled."""
    n = pos.shape[1]
    first = n + 2 + islands[w, 1 + s]
    last = n + 2 + islands[w, 2 + s]
    in_tmp = False  # whether the latest positions are in tmp rather than pos
    for it in range(iterations):
        src = pos if it % 2 == 0 else tmp
        dst = tmp if it % 2 == 0 else pos
        moved = False
        for m in range(first, last):
            i = islands[w, m]
            phase_push(w, i, src, dst, active, walls, n_walls, phys, start, nbr, n_nbr, near_wall, contact)
            if dst[w, i, 0] != src[w, i, 0] or dst[w, i, 1] != src[w, i, 1]:
                moved = True
        in_tmp = it % 2 == 0
        if not moved:
            break  # both buffers now hold the same positions
    if in_tmp:
        for m in range(first, last):
            i = islands[w, m]
            pos[w, i, 0] = tmp[w, i, 0]
            pos[w, i, 1] = tmp[w, i, 1]


@njit(cache=True, inline="always")
def phase_settle(w, i, pos, vel, active, walls, n_walls, phys, start, moved, contact):
    """Every wall, exhaustively: walls win over robots; a robot still wedged inside a wall goes
    back to where the step started; position corrections become velocity changes (PBD)."""
    if not active[w, i]:
        return
    sx = start[w, i, 0]
    sy = start[w, i, 1]
    px, py, deep, changed = _wall_fix(pos[w, i, 0], pos[w, i, 1], sx, sy, w, walls, n_walls, phys, SETTLE_SWEEPS)
    if deep > CONTACT_TOL:
        contact[w, i] = True
    if changed and _wall_depth(px, py, w, walls, n_walls, phys) > WALL_SLOP:
        px = sx
        py = sy
        contact[w, i] = True
    pos[w, i, 0] = px
    pos[w, i, 1] = py
    dt = phys[DT]
    vmax = phys[V_MAX]
    vx = vel[w, i, 0] + (px - moved[w, i, 0]) / dt
    vy = vel[w, i, 1] + (py - moved[w, i, 1]) / dt
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
