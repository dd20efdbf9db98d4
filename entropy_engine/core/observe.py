"""Observation blocks that several scenarios share, written in place for robot ``i`` of world ``w``.

Compiled helpers inlined into each scenario's agent kernel: the lidar at the start of the
observation, a departed robot's zeros, the ego-frame velocity and the neighbour sensor's slots.
"""
from __future__ import annotations

from numba import njit


@njit(cache=True, inline="always")
def copy_lidar(obs, w, i, lidar):
    """obs[w, i, :R] = the robot's R lidar readings (distance / range, in [0, 1])."""
    for r in range(lidar.shape[2]):
        obs[w, i, r] = lidar[w, i, r]


@njit(cache=True, inline="always")
def leave_out(obs, w, i, base, with_reward, rew, prev_contact, stats):
    """A robot that is out of the world: zeros from column ``base`` on; with ``with_reward`` also no
    reward, no episode stats and no remembered contact."""
    for c in range(base, obs.shape[2]):
        obs[w, i, c] = 0.0
    if with_reward:
        rew[w, i] = 0.0
        prev_contact[w, i] = False
        for q in range(stats.shape[0]):
            stats[q, w, i] = 0.0


@njit(cache=True, inline="always")
def ego_velocity(obs, w, i, col, vx, vy, c, s, vmax):
    """obs[w, i, col:col + 2] = the world-frame velocity (vx, vy) in the robot's frame (forward, left),
    for heading cos ``c`` / sin ``s``, over ``vmax`` and clipped to [-1, 1]."""
    obs[w, i, col] = min(max((vx * c + vy * s) / vmax, -1.0), 1.0)
    obs[w, i, col + 1] = min(max((-vx * s + vy * c) / vmax, -1.0), 1.0)


@njit(cache=True, inline="always")
def neighbour_slots(obs, w, i, base, nb):
    """The K slots of ``core.neighbours.NeighbourSensor`` (nb [E, N, K, 5]) from column ``base``, five
    values each: relative position / range in [-1, 1], relative velocity / max speed in [-2, 2], mask."""
    for s in range(nb.shape[2]):
        o = base + 5 * s
        obs[w, i, o] = min(max(nb[w, i, s, 0], -1.0), 1.0)
        obs[w, i, o + 1] = min(max(nb[w, i, s, 1], -1.0), 1.0)
        obs[w, i, o + 2] = min(max(nb[w, i, s, 2], -2.0), 2.0)
        obs[w, i, o + 3] = min(max(nb[w, i, s, 3], -2.0), 2.0)
        obs[w, i, o + 4] = nb[w, i, s, 4]
