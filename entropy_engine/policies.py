"""Policies that need no training: a wrapped function, the scenario's heuristic, uniform random.

The policy protocol (what ``entropy_engine.load_policy`` returns, and what evaluation, GIF
recording and ``entropy play`` drive)::

    class Policy(Protocol):
        def initial_state(self, n_agents: int) -> Any: ...          # recurrent state, or None
        def act(self, obs, state, deterministic=True, episode_start=None) -> tuple[actions, state]: ...

``obs`` is float32 [n, obs_dim] (one row per agent), ``actions`` float [n, act_dim];
``episode_start`` [n] marks rows whose episode starts now (recurrent policies reset them). A plain
callable ``obs -> actions`` is wrapped by ``as_policy`` into a stateless policy.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """A (possibly recurrent) policy over rows of agents."""

    def initial_state(self, n_agents: int) -> Any: ...

    def act(self, obs: np.ndarray, state: Any, deterministic: bool = True) -> tuple[np.ndarray, Any]: ...


class FunctionPolicy:
    """A stateless policy from a function ``obs [n, D] -> actions [n, A]``."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn
        self.config: dict = {}

    def initial_state(self, n_agents: int) -> None:
        return None

    def act(self, obs: np.ndarray, state: Any = None, deterministic: bool = True,
            episode_start: Any = None) -> tuple[np.ndarray, None]:
        return self.fn(obs), None


class HeuristicPolicy(FunctionPolicy):
    """The scenario's scripted policy (``Scenario.heuristic``) of a scenario or of an env holding one
    (with the env's communication channel on, it sees the scenario's part of the observation and
    sends zero messages, unless the scenario's heuristic uses the channel:
    ``envs.comm.heuristic_with_channel``)."""

    def __init__(self, scenario_or_env: Any):
        sc = getattr(scenario_or_env, "scenario", scenario_or_env)
        if getattr(scenario_or_env, "channel", None) is None:
            super().__init__(sc.heuristic)
        else:
            from .envs.comm import heuristic_with_channel

            super().__init__(lambda obs: heuristic_with_channel(sc.heuristic, obs, sc.config,
                                                                sc.heuristic_uses_channel))


class RandomPolicy:
    """Uniform random actions within a Box action space, from its own seeded generator; for the
    ``Dict`` space of discrete messages (``BatchEnv.agent_action_space``, PettingZoo's) uniform
    wheel values and uniform tokens, as the engine's flat rows (move values, then tokens)."""

    def __init__(self, action_space: Any, seed: int | None = None):
        from gymnasium import spaces

        self.vocab = None
        if isinstance(action_space, spaces.Dict):
            self.vocab = np.asarray(action_space["message"].nvec, np.int64)   # [comm_dim]
            action_space = action_space["move"]
        self.low = np.asarray(action_space.low, np.float32)
        self.high = np.asarray(action_space.high, np.float32)
        self.rng = np.random.default_rng(seed)
        self.config: dict = {}

    def initial_state(self, n_agents: int) -> None:
        return None

    def act(self, obs: np.ndarray, state: Any = None, deterministic: bool = True,
            episode_start: Any = None) -> tuple[np.ndarray, None]:
        u = self.rng.uniform(0.0, 1.0, (obs.shape[0],) + self.low.shape)
        act = (self.low + u * (self.high - self.low)).astype(np.float32)
        if self.vocab is not None:
            tokens = self.rng.integers(0, self.vocab, (obs.shape[0], len(self.vocab)))
            act = np.concatenate([act, tokens.astype(np.float32)], axis=1)
        return act, None


def as_policy(policy: Any) -> Any:
    """``policy`` itself if it has ``initial_state`` and ``act``, else a wrapped callable."""
    if hasattr(policy, "act") and hasattr(policy, "initial_state"):
        return policy
    if callable(policy):
        return FunctionPolicy(policy)
    raise TypeError(
        f"a policy needs initial_state(n_agents) and act(obs, state, deterministic), or must be a "
        f"callable obs -> actions; got {type(policy).__name__}"
    )
