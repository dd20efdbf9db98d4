"""Small 2D geometry primitives shared by the kernels (all ``njit``, scalar in, scalar out)."""
from __future__ import annotations

import math

from numba import njit

INF = 1e30


@njit(cache=True, inline="always")
def closest_on_segment(px, py, ax, ay, bx, by):
    """Closest point to (px, py) on segment a-b."""
    dx = bx - ax
    dy = by - ay
    den = dx * dx + dy * dy
    u = 0.0
    if den > 0.0:
        u = ((px - ax) * dx + (py - ay) * dy) / den
        if u < 0.0:
            u = 0.0
        elif u > 1.0:
            u = 1.0
    return ax + u * dx, ay + u * dy


@njit(cache=True, inline="always")
def segment_distance(px, py, ax, ay, bx, by):
    qx, qy = closest_on_segment(px, py, ax, ay, bx, by)
    return math.sqrt((px - qx) ** 2 + (py - qy) ** 2)


@njit(cache=True, inline="always")
def segments_cross(p0x, p0y, p1x, p1y, ax, ay, bx, by):
    """True if segment p0-p1 properly crosses segment a-b (touching at an end does not count)."""
    d1 = (bx - ax) * (p0y - ay) - (by - ay) * (p0x - ax)
    d2 = (bx - ax) * (p1y - ay) - (by - ay) * (p1x - ax)
    d3 = (p1x - p0x) * (ay - p0y) - (p1y - p0y) * (ax - p0x)
    d4 = (p1x - p0x) * (by - p0y) - (p1y - p0y) * (bx - p0x)
    return (d1 * d2 < 0.0) and (d3 * d4 < 0.0)


@njit(cache=True, inline="always")
def ray_segment(ox, oy, dx, dy, ax, ay, bx, by):
    """Distance along the unit ray o + t d to segment a-b, or INF if it misses."""
    ex = bx - ax
    ey = by - ay
    den = dx * ey - dy * ex
    if den == 0.0:
        return INF
    wx = ax - ox
    wy = ay - oy
    t = (wx * ey - wy * ex) / den
    u = (wx * dy - wy * dx) / den
    if t < 0.0 or u < 0.0 or u > 1.0:
        return INF
    return t


@njit(cache=True, inline="always")
def ray_circle(ox, oy, dx, dy, cx, cy, r):
    """Distance along the unit ray o + t d to a circle, 0 if o is inside it, INF if it misses."""
    wx = cx - ox
    wy = cy - oy
    c = wx * wx + wy * wy - r * r
    if c <= 0.0:
        return 0.0
    b = wx * dx + wy * dy
    if b <= 0.0:
        return INF
    disc = b * b - c
    if disc < 0.0:
        return INF
    return b - math.sqrt(disc)


@njit(cache=True, inline="always")
def wrap_angle(a):
    """Wrap an angle to [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@njit(cache=True, inline="always")
def fast_atan2(y, x):
    """atan2 from a degree-11 odd polynomial; |error| < 2e-6 rad (tested against numpy).

    Used only to pick *candidate* lidar rays (with a safety margin far above this error): whether a
    candidate ray hits is then decided by the exact intersection test, so readings stay exact.
    """
    ax = abs(x)
    ay = abs(y)
    mx = max(ax, ay)
    if mx == 0.0:
        return 0.0
    a = min(ax, ay) / mx
    s = a * a
    r = a * (0.99997726 + s * (-0.33262347 + s * (0.19354346 + s * (-0.11643287 + s * (0.05265332
                                                                                    + s * -0.01172120)))))
    if ay > ax:
        r = 0.5 * math.pi - r
    if x < 0.0:
        r = math.pi - r
    return -r if y < 0.0 else r
