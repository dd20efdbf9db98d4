"""Slow, readable numpy references of the neighbour sensor and the landmark kernels (tests only).

They follow the documented definitions directly, by brute force over every pair (O(N^2) per
world, O(N L) for landmarks), with no grid. The compiled kernels must give the same slots in the
same order and the same values up to float rounding.
"""
from __future__ import annotations

import math

import numpy as np


def neighbours_reference(pos, vel, theta, active, sense_range, max_speed, k, attributes=None, rows=None):
    """K nearest other active agents within ``sense_range`` of each agent of ONE world.

    pos, vel [N, 2]; theta [N]; active [N] bool; attributes [N, A] or None; rows: the agents to
    compute (all if None; the other rows stay zeros / -1).
    Returns (features [N, K, 5 + A] float64, indices [N, K] int, -1 = empty slot).
    """
    pos = np.asarray(pos, np.float32).astype(np.float64)
    vel = np.asarray(vel, np.float32).astype(np.float64)
    n = len(pos)
    attributes = np.zeros((n, 0)) if attributes is None else np.asarray(attributes, np.float64)
    n_attr = attributes.shape[1]
    feats = np.zeros((n, k, 5 + n_attr))
    indices = np.full((n, k), -1)
    for i in range(n) if rows is None else rows:
        if not active[i]:
            continue
        candidates = []
        for j in range(n):
            if j == i or not active[j]:
                continue
            dx, dy = pos[j] - pos[i]
            d2 = dx * dx + dy * dy
            if d2 <= sense_range * sense_range:
                candidates.append((d2, j))
        candidates.sort()  # by squared distance, then by agent index
        c, s = math.cos(float(theta[i])), math.sin(float(theta[i]))
        to_ego = np.array([[c, s], [-s, c]])  # world frame -> ego frame (x along the heading)
        for slot, (_, j) in enumerate(candidates[:k]):
            indices[i, slot] = j
            feats[i, slot, 0:2] = to_ego @ (pos[j] - pos[i]) / sense_range
            feats[i, slot, 2:4] = to_ego @ (vel[j] - vel[i]) / max_speed
            feats[i, slot, 4] = 1.0
            feats[i, slot, 5:] = attributes[j]
    return feats, indices


def nearest_landmark_reference(pos, theta, active, lm_pos, lm_radius, lm_active, scale):
    """Nearest active landmark (by centre distance, ties: lowest index) of each agent of ONE world.

    Returns (features [N, 4] = ego dx / scale, ego dy / scale, inside, present; index [N], -1 = none).
    """
    pos = np.asarray(pos, np.float32).astype(np.float64)
    lm_pos = np.asarray(lm_pos, np.float32).astype(np.float64)
    n = len(pos)
    feats = np.zeros((n, 4))
    index = np.full(n, -1)
    for i in range(n):
        if not active[i]:
            continue
        best, best_l = math.inf, -1
        for l in range(len(lm_pos)):
            if not lm_active[l]:
                continue
            dx, dy = lm_pos[l] - pos[i]
            d2 = dx * dx + dy * dy
            if d2 < best:
                best, best_l = d2, l
        if best_l < 0:
            continue
        c, s = math.cos(float(theta[i])), math.sin(float(theta[i]))
        rel = lm_pos[best_l] - pos[i]
        r = float(np.float32(lm_radius[best_l]))
        feats[i] = [(c * rel[0] + s * rel[1]) / scale, (-s * rel[0] + c * rel[1]) / scale,
                    1.0 if best <= r * r else 0.0, 1.0]
        index[i] = best_l
    return feats, index


def occupancy_reference(pos, active, lm_pos, lm_radius, lm_active):
    """Number of active agents whose centre is within each active landmark's disc, ONE world [L]."""
    pos = np.asarray(pos, np.float32).astype(np.float64)
    lm_pos = np.asarray(lm_pos, np.float32).astype(np.float64)
    counts = np.zeros(len(lm_pos), np.int64)
    for l in range(len(lm_pos)):
        if not lm_active[l]:
            continue
        r = float(np.float32(lm_radius[l]))
        for i in range(len(pos)):
            if active[i]:
                dx, dy = pos[i] - lm_pos[l]
                counts[l] += dx * dx + dy * dy <= r * r
    return counts
