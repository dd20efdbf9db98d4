"""Scripted robots: non-learning robots that a scenario drives inside its own ``step`` (evaders, say).

A scenario with ``n_scripted = M`` (``scenarios.base``) builds its world with ``N + M`` robots:
robots ``0 .. N-1`` of every world are the learners (the envs' agents), robots ``N .. N+M-1`` are
scripted. For the physics, the lidar and the neighbour sensor they are ordinary robots; only their
wheel powers come from the scenario's compiled policy instead of an env's actions. ``ScriptedRobots``
holds what that takes:

| array      | shape           | dtype   | meaning                                                    |
|------------|-----------------|---------|------------------------------------------------------------|
| ``actions``| [E, N + M, 2]   | float32 | every robot's wheel powers, what ``world.step`` receives: the learners' (scaled) copied in by ``world_actions``, the scripted robots' written by the scenario's policy |
| ``kind``   | [E, N + M, 1]   | float32 | 1 for scripted robots, 0 for learners: an attribute column for ``NeighbourSensor(..., n_attributes=1)`` so that a robot can tell scripted neighbours from teammates |

Nothing here knows a particular scenario; ``pursuit`` is the first user.
"""
from __future__ import annotations

import numpy as np

from ..config import ConfigError


def check_scripted(n_learners: int, n_scripted: int, min_learners: int = 1) -> None:
    """ConfigError unless there are at least ``min_learners`` learners and ``n_scripted >= 1``."""
    if isinstance(n_scripted, bool) or not isinstance(n_scripted, (int, np.integer)) or n_scripted < 1:
        raise ConfigError(f"the number of scripted robots must be an integer >= 1, got {n_scripted!r}")
    if isinstance(n_learners, bool) or not isinstance(n_learners, (int, np.integer)) or n_learners < min_learners:
        raise ConfigError(f"n_agents must be an integer >= {min_learners} here, got {n_learners!r}")


class ScriptedRobots:
    """The scripted robots of a world of ``world.n_agents`` robots, the last ``n_scripted`` of each world."""

    def __init__(self, world, n_scripted: int):
        E, T = world.num_worlds, world.n_agents
        self.count = M = int(n_scripted)
        self.first = N = T - M                                 # index of the first scripted robot
        self.actions = np.zeros((E, T, 2), np.float32)         # [E, N + M, 2] wheel powers of every robot
        self.kind = np.zeros((E, T, 1), np.float32)            # [E, N + M, 1] 1 = scripted, 0 = learner
        self.kind[:, N:] = 1.0

    def world_actions(self, learner_actions: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """``actions`` with the learners' rows set to ``scale * learner_actions`` ([E, N, 2], in place,
        no allocation); the scripted rows keep what the scenario's policy wrote."""
        np.multiply(learner_actions, np.float32(scale), out=self.actions[:, :self.first])
        return self.actions
