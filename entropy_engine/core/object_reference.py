"""Slow, readable numpy reference of one step of a world with movable objects (``core.objects``).

It follows the documented model directly, every pair of bodies tested, every pass over every
body; the compiled step (``core.object_kernels``) must agree with it up to float rounding
(``tests/test_objects.py``). Robots' driving is the drive model of ``reference.drive_reference``
and is taken as given here: the reference starts from the robots' positions after driving.
"""
from __future__ import annotations

import math

import numpy as np

from .objects import GRAVITY
from .reference import _wall_fix_reference, wall_depth


def object_step_reference(start, moved, vel, active, opos, ovel, oradius, omass, ofriction, oactive, walls,
                          radius, mass, arena, dt, vmax, iterations, tol=1e-4, slop=1e-5, touch=1e-3):
    """One world's step after the robots drove: robots ``start``/``moved`` [N, 2] (before and after
    driving), ``vel`` [N, 2] (after driving); objects ``opos``/``ovel`` [M, 2] at the step's start,
    ``oradius``/``omass``/``ofriction`` [M], ``oactive`` [M]; ``walls`` [W, 4].

    Returns (robot positions [N, 2], robot velocities [N, 2], object positions [M, 2], object
    velocities [M, 2], robot contact [N]).

    1. every active object moves by its velocity;
    2. bodies (active robots, then active objects) whose discs are within one robot radius of
       each other are contact candidates; a body with candidates and a wall within its radius plus
       one robot radius is "near a wall". ``iterations`` Jacobi passes: each body with candidates
       moves by ``m_j / (m_i + m_j)`` of its overlap with each candidate j, summed, then (near a
       wall) out of the walls in two sweeps; a body left more than ``slop`` inside a wall goes back
       to its start for the rest of the step;
    3. every active object's velocity over the step loses ``mu m g dt / (m + mass of the robots
       touching it)`` of speed (not below zero; touching: centres closer than the sum of radii +
       ``touch``, which then move with it and share the friction), is capped at ``vmax``; the object moves by it from its start, out of the walls (four sweeps;
       still inside: back to its start);
    4. every active robot moves out of the final discs of its candidate objects (two sweeps), then
       out of the walls (four sweeps; still inside: back to its start); its velocity changes by its
       position correction / dt, capped at ``vmax``.
    """
    start = np.asarray(start, np.float64)
    moved = np.asarray(moved, np.float64)
    walls = np.asarray(walls, np.float64)
    n, n_obj = len(moved), len(opos)
    ostart = np.asarray(opos, np.float64).copy()
    pred = ostart + np.where(np.asarray(oactive)[:, None], np.asarray(ovel, np.float64) * dt, 0.0)
    bodies = [("r", i) for i in range(n) if active[i]] + [("o", m) for m in range(n_obj) if oactive[m]]
    pos = np.array([moved[i] if k == "r" else pred[i] for k, i in bodies]).reshape(-1, 2)
    bstart = np.array([start[i] if k == "r" else ostart[i] for k, i in bodies]).reshape(-1, 2)
    rad = np.array([radius if k == "r" else float(oradius[i]) for k, i in bodies])
    inv = np.array([1.0 / mass if k == "r" else 1.0 / float(omass[i]) for k, i in bodies])
    nb = len(bodies)
    cand = [[j for j in range(nb) if j != b and math.hypot(*(pos[b] - pos[j])) < rad[b] + rad[j] + radius]
            for b in range(nb)]
    near = [bool(cand[b]) and wall_depth(pos[b], walls, rad[b]) > -radius for b in range(nb)]
    stuck = [False] * nb
    touched = np.zeros(nb, bool)
    for _ in range(iterations):
        new = pos.copy()
        for b in range(nb):
            if not cand[b]:
                continue
            for j in cand[b]:
                delta = pos[b] - pos[j]
                dist = math.hypot(*delta)
                rs = rad[b] + rad[j]
                if dist < rs:
                    normal = delta / dist if dist > 1e-9 else np.array([1.0 if b < j else -1.0, 0.0])
                    new[b] += inv[b] / (inv[b] + inv[j]) * (rs - dist) * normal
                    touched[b] |= (rs - dist) > tol
            if near[b] and not stuck[b]:
                new[b], hit = _wall_fix_reference(new[b], bstart[b], walls, rad[b], arena, 2, tol)
                touched[b] |= hit
                stuck[b] = wall_depth(new[b], walls, rad[b]) > slop
            if stuck[b]:
                new[b] = bstart[b]
        pos = new
    out_opos = np.asarray(opos, np.float64).copy()
    out_ovel = np.zeros((n_obj, 2))
    index = {key: b for b, key in enumerate(bodies)}
    for m in range(n_obj):
        if not oactive[m]:
            continue
        b = index[("o", m)]
        carried = sum(mass for j in cand[b] if bodies[j][0] == "r"
                      and math.hypot(*(pos[b] - pos[j])) < rad[b] + rad[j] + touch)
        u = (pos[b] - ostart[m]) / dt
        sp = math.hypot(*u)
        keep = 0.0
        if sp > 0:
            mo = float(omass[m])
            keep = max(sp - float(ofriction[m]) * GRAVITY * dt * mo / (mo + carried), 0.0) / sp
            keep = min(keep, vmax / sp)
        p, _ = _wall_fix_reference(ostart[m] + u * keep * dt, ostart[m], walls, float(oradius[m]), arena, 4, tol)
        if wall_depth(p, walls, float(oradius[m])) > slop:
            p = ostart[m].copy()
        out_opos[m] = p
        out_ovel[m] = (p - ostart[m]) / dt
    out_pos = moved.copy()
    out_vel = np.asarray(vel, np.float64).copy()
    contact = np.zeros(n, bool)
    for i in range(n):
        if not active[i]:
            continue
        b = index[("r", i)]
        p = pos[b].copy()
        for _sweep in range(2):
            for j in cand[b]:
                kind, m = bodies[j]
                if kind != "o":
                    continue
                d = p - out_opos[m]
                dist = math.hypot(*d)
                rs = float(oradius[m]) + radius
                if 1e-9 < dist < rs:
                    p = out_opos[m] + d / dist * rs
        p, hit = _wall_fix_reference(p, start[i], walls, radius, arena, 4, tol)
        contact[i] = touched[b] or hit
        if wall_depth(p, walls, radius) > slop:
            p = start[i].copy()
            contact[i] = True
        out_pos[i] = p
        v = out_vel[i] + (p - moved[i]) / dt
        sp = math.hypot(*v)
        out_vel[i] = v * (vmax / sp) if sp > vmax else v
    return out_pos, out_vel, out_opos, out_ovel, contact
