"""Gymnasium spaces of one agent (shared by the PettingZoo and SB3 adapters)."""
from __future__ import annotations

import numpy as np
from gymnasium import spaces


def observation_space(config) -> spaces.Box:
    """Lidar in [0, 1] (n_rays), ego velocity / max_speed and scaled ego goal vector in [-1, 1]."""
    n = config.n_rays
    low = np.concatenate([np.zeros(n), -np.ones(4)]).astype(np.float32)
    high = np.ones(n + 4, np.float32)
    return spaces.Box(low=low, high=high, dtype=np.float32)


def action_space() -> spaces.Box:
    """Left and right wheel power."""
    return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)
