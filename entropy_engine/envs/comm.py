"""The communication channel inside the episode engine, for any scenario (``comm_dim > 0``).

With a channel on, an agent's action is the scenario's actions followed by its message
(``comm_dim`` values in [-1, 1], or with ``comm_vocab = V`` ``comm_dim`` tokens: whole numbers
0 .. V-1 in those columns of the flat float action array) and its observation is the scenario's
observation followed by what it received (``core.channel``: the combined messages, then the heard
count). Nothing here knows a particular scenario: widths come from its spaces and its
``ChannelConfig`` settings.

The engine's arrays are flat: ``BatchEnv.action_space`` is one Box (token columns bounded by
0 and V-1). ``agent_action_space`` is one agent's action space as a user sees it at the
PettingZoo edge: that Box for continuous messages, and for tokens a ``Dict`` of the scenario's
``"move"`` Box and a ``"message"`` ``MultiDiscrete([V] * comm_dim)``.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

from ..core.channel import Channel


def channel_obs_bounds(config) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the received block [comm_obs_width] (message values are unbounded with noise)."""
    C, W = config.comm_values, config.comm_obs_width
    m = np.inf if config.comm_noise > 0 else 1.0
    low, high = np.full(W, -m, np.float32), np.full(W, m, np.float32)
    if config.comm_vocab and config.comm_noise == 0:
        low[:] = 0.0                                                     # one-hots, histograms: [0, 1]
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
    lo, hi = (0.0, config.comm_vocab - 1.0) if config.comm_vocab else (-1.0, 1.0)
    act = spaces.Box(low=np.concatenate([act_space.low, np.full(C, lo)]).astype(np.float32),
                     high=np.concatenate([act_space.high, np.full(C, hi)]).astype(np.float32), dtype=np.float32)
    return obs, act


def agent_action_space(own: spaces.Box, flat: spaces.Box, config) -> spaces.Space:
    """One agent's action space as a user sees it: ``flat`` (the engine's Box) unless messages are
    tokens, then ``Dict(move=own, message=MultiDiscrete([comm_vocab] * comm_dim))``."""
    if config.comm_dim == 0 or not config.comm_vocab:
        return flat
    return spaces.Dict({"move": own, "message": spaces.MultiDiscrete([config.comm_vocab] * config.comm_dim)})


def flatten_action(action, space: spaces.Space, width: int) -> np.ndarray:
    """One agent's action (a flat row, or for a ``Dict`` space a mapping with ``move`` and
    ``message``) as the engine's flat float64 row [width]; raises ValueError naming the form."""
    if isinstance(space, spaces.Dict) and isinstance(action, dict):
        if set(action) != {"move", "message"}:
            raise ValueError(f"an action must be a dict with keys 'move' and 'message', got keys {sorted(action)}")
        n_move, n_msg = space["move"].shape[0], space["message"].shape[0]
        try:
            move = np.asarray(action["move"], np.float64).reshape(-1)
            msg = np.asarray(action["message"], np.float64).reshape(-1)
        except (ValueError, TypeError):
            raise ValueError(f"'move' must be {n_move} numbers and 'message' {n_msg} tokens") from None
        if move.shape != (n_move,) or msg.shape != (n_msg,):
            raise ValueError(f"'move' must have shape ({n_move},) and 'message' ({n_msg},), got "
                             f"{move.shape} and {msg.shape}")
        return np.concatenate([move, msg])
    try:
        row = np.asarray(action, np.float64)
    except (ValueError, TypeError):
        raise ValueError(f"every action must be an array of shape ({width},)") from None
    if row.shape != (width,):
        raise ValueError(f"every action must be an array of shape ({width},), got {row.shape}")
    return row


def heuristic_with_channel(heuristic, obs: np.ndarray, config, uses_channel: bool = False) -> np.ndarray:
    """A scenario heuristic (which knows only the scenario's own observation and actions) on
    observations that may carry a received block: it sees the scenario's part and sends zeros;
    one that ``uses_channel`` (``Scenario.heuristic_uses_channel``) sees all and sends its own."""
    if uses_channel and config.comm_dim and config.comm_vocab:
        raise ValueError(f"this scenario's heuristic talks in continuous message values and cannot send "
                         f"comm_vocab={config.comm_vocab} tokens; evaluate it with comm_vocab=0")
    if config.comm_dim == 0 or uses_channel:
        return heuristic(obs)
    act = np.asarray(heuristic(obs[..., :obs.shape[-1] - config.comm_obs_width]), np.float32)   # + token 0
    return np.concatenate([act, np.zeros(act.shape[:-1] + (config.comm_dim,), np.float32)], axis=-1)


class EngineChannel:
    """The arrays ``BatchEnv`` uses when the channel is on: the full actions and observations,
    split from and joined to the scenario's own."""

    def __init__(self, scenario, seed: int | None):
        cfg = scenario.config
        self.scenario = scenario
        E, N = scenario.world.num_worlds, scenario.n_learners
        # the learners talk; a scenario's scripted robots (its last ones) have no radio
        self.channel = Channel(scenario.world, cfg, seed, talkers=N)
        self.obs_dim0, self.act_dim0 = D0, A0 = scenario.obs_dim, scenario.act_dim
        self.observation_space, self.action_space = with_channel(scenario.observation_space(),
                                                                 scenario.action_space(), cfg)
        self.agent_action_space = agent_action_space(scenario.action_space(), self.action_space, cfg)
        self.tokens = (A0, cfg.comm_vocab) if cfg.comm_vocab else None   # (first token column, vocabulary)
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
        self.obs[..., self.obs_dim0:] = out[:, :self.obs.shape[1]]

    def restart(self, worlds: np.ndarray | None = None, agents: np.ndarray | None = None) -> None:
        """After a reset of ``worlds`` [E] (all when both are None) or a respawn of ``agents`` [E, N]:
        their messages are forgotten and they start with an empty received block."""
        self.channel.clear(worlds, agents)
        self.obs[..., :self.obs_dim0] = self.scenario.obs
        self.obs[..., self.obs_dim0:] = self.channel.out[:, :self.obs.shape[1]]
