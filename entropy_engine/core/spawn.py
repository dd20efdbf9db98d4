"""Putting robots into a world: the state every scenario gives a robot at its (re)start."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .rng import uniform


@njit(cache=True, inline="always")
def start_at_rest(rng, w, i, theta, vel, omega, active):
    """Robot ``i`` of world ``w`` starts at rest, active, with a heading uniform in [-pi, pi).

    One draw from world ``w``'s stream; the caller has written the robot's position.
    """
    theta[w, i] = np.float32(2.0 * math.pi * uniform(rng, w) - math.pi)
    vel[w, i, 0] = 0.0
    vel[w, i, 1] = 0.0
    omega[w, i] = 0.0
    active[w, i] = True
