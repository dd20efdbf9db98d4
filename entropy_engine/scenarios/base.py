"""What every scenario provides: batched reset, step, reward and termination over a World."""
from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from gymnasium.spaces import Box

from ..core.world import World


def check_shaping_scale(scale: float) -> float:
    """``scale`` as a float, or ValueError unless it is a finite number >= 0."""
    scale = float(scale)
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"shaping scale must be a finite number >= 0, got {scale!r}")
    return scale


class Scenario:
    """Base class of scenarios. Subclasses set ``name``, ``Config`` and implement the methods.

    Arrays owned by a scenario (all preallocated, written in place):

    - ``obs``       float32 [E, N, obs_dim]
    - ``reward``    float32 [E, N]   reward of the last step
    - ``reached``   bool    [E, N]   the agent reached its goal in the last step (terminates it)
    - ``world.contact`` bool [E, N]  the agent collided in the last step
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    act_dim: ClassVar[int] = 2

    world: World
    obs: np.ndarray
    reward: np.ndarray
    reached: np.ndarray

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[-1])

    @property
    def max_steps(self) -> int:
        return int(self.config.max_steps)

    def observation_space(self) -> Box:
        """One agent's observation space: a float32 Box whose bounds ``obs`` never leaves."""
        raise NotImplementedError

    def action_space(self) -> Box:
        """One agent's action space: ``act_dim`` values in [-1, 1] (out-of-range values are clipped)."""
        return Box(low=-1.0, high=1.0, shape=(self.act_dim,), dtype=np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in the worlds where ``mask`` [E] is True (all if None)."""
        raise NotImplementedError

    def respawn(self, mask: np.ndarray) -> None:
        """Restart the agents where ``mask`` [E, N] is True inside their running worlds."""
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> None:
        """Advance all worlds with float32 actions [E, N, 2] in [-1, 1]; refresh obs/reward/reached."""
        raise NotImplementedError

    def set_shaping_scale(self, scale: float) -> None:
        """Multiply the scenario's optional reward-shaping terms by ``scale`` (>= 0) from the next step
        on (a curriculum: ``TrainConfig.shaping_warmup``). Scenarios without shaping terms ignore it."""

    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """A scripted policy: actions [..., 2] from observations [..., obs_dim]."""
        raise NotImplementedError
