"""The communication channel inside the episode engine, for any scenario (``comm_dim > 0``).

With a channel on, an agent's action is the scenario's actions followed by its message
(``comm_dim`` values in [-1, 1]) and its observation is the scenario's observation followed by
what it received (``core.channel``: the combined messages, then the heard count). Nothing here
knows a particular scenario: widths come from its spaces and its ``ChannelConfig`` settings.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

from ..core.channel import Channel


def channel_obs_bounds(config) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the received block [comm_obs_width] (message values are unbounded with noise)."""
    C, W = config.comm_dim, config.comm_obs_width
    m = np.inf if config.comm_noise > 0 else 1.0
    low, high = np.full(W, -m, np.float32), np.full(W, m, np.float32)
    if config.comm_combine == "nearest":
        for s in range(config.comm_k):
            o = s * (C + 3)
            low[o + C:o + C + 2], high[o + C:o + C + 2] = -1.0, 1.0     # ego-frame position / range
            low[o + C + 2], high[o + C + 2] = 0.0, 1.0                   # mask
    low[-1], high[-1] = 0.0, 1.0                                         # heard count
    return low, high


def with_channel(obs_space: spaces.Box, act_space: spaces.Box, config) -> tuple[spaces.Box, spaces.Box]:
    """One agent's observation and action spaces with the channel appended (as they are without)."""
    if config.comm_dim == 0:
        return obs_space, act_space
    low, high = channel_obs_bounds(config)
    obs = spaces.Box(low=np.concatenate([obs_space.low, low]).astype(np.float32),
                     high=np.concatenate([obs_space.high, high]).astype(np.float32), dtype=np.float32)
    C = config.comm_dim
    act = spaces.Box(low=np.concatenate([act_space.low, -np.ones(C)]).astype(np.float32),
                     high=np.concatenate([act_space.high, np.ones(C)]).astype(np.float32), dtype=np.float32)
    return obs, act


def heuristic_with_channel(heuristic, obs: np.ndarray, config, uses_channel: bool = False) -> np.ndarray:
    """A scenario heuristic (which knows only the scenario's own observation and actions) on
    observations that may carry a received block: it sees the scenario's part and sends zeros;
    one that ``uses_channel`` (``Scenario.heuristic_uses_channel``) sees all and sends its own."""
    if config.comm_dim == 0 or uses_channel:
        return heuristic(obs)
    act = np.asarray(heuristic(obs[..., :obs.shape[-1] - config.comm_obs_width]), np.float32)
    return np.concatenate([act, np.zeros(act.shape[:-1] + (config.comm_dim,), np.float32)], axis=-1)


class EngineChannel:
    """The arrays ``BatchEnv`` uses when the channel is on: the full actions and observations,
    split from and joined to the scenario's own."""

    def __init__(self, scenario, seed: int | None):
        cfg = scenario.config
        self.scenario = scenario
        self.channel = Channel(scenario.world, cfg, seed)
        E, N = scenario.world.num_worlds, scenario.world.n_agents
        self.obs_dim0, self.act_dim0 = D0, A0 = scenario.obs_dim, scenario.act_dim
        self.observation_space, self.action_space = with_channel(scenario.observation_space(),
                                                                 scenario.action_space(), cfg)
        D, A = D0 + self.channel.width, A0 + self.channel.dim
        self.obs = np.zeros((E, N, D), np.float32)          # [E, N, D0 + W] scenario obs, then received
        self.actions = np.zeros((E, N, A), np.float32)      # [E, N, A0 + C] validated actions
        self._own = np.zeros((E, N, A0), np.float32)        # [E, N, A0] the scenario's part, contiguous

    def own_actions(self) -> np.ndarray:
        """The scenario's part of the validated actions (a contiguous copy)."""
        np.copyto(self._own, self.actions[..., :self.act_dim0])
        return self._own

    def deliver(self) -> None:
        """After the scenario's step: run the channel and join the observations."""
        out = self.channel.step(self.actions[..., self.act_dim0:])
        self.obs[..., :self.obs_dim0] = self.scenario.obs
        self.obs[..., self.obs_dim0:] = out

    def restart(self, worlds: np.ndarray | None = None, agents: np.ndarray | None = None) -> None:
        """After a reset of ``worlds`` [E] (all when both are None) or a respawn of ``agents`` [E, N]:
        their messages are forgotten and they start with an empty received block."""
        self.channel.clear(worlds, agents)
        self.obs[..., :self.obs_dim0] = self.scenario.obs
        self.obs[..., self.obs_dim0:] = self.channel.out
