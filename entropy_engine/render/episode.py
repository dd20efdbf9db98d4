"""Play one episode in one world with a policy, calling back after each step (GIFs, ``entropy play``).

The world is a ``BatchEnv`` of one world with evaluation semantics (``episode_env``): an agent
whose episode ends (navigation: it reached its goal) leaves the world, and the episode is over when
every agent has left or after ``max_steps`` steps — the same engine as training, evaluation and
the PettingZoo env. Policies follow the protocol of ``entropy_engine.policies``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..envs.batch import BatchEnv
from ..envs.metrics import EpisodeMetrics
from ..policies import FunctionPolicy, HeuristicPolicy, Policy, RandomPolicy, as_policy  # noqa: F401 (re-exported)


def episode_env(scenario: str, n_agents: int, seed: int | None = None, **config: Any) -> BatchEnv:
    """A one-world env for recording and watching episodes (agents leave when their episode ends)."""
    return BatchEnv(scenario, 1, n_agents, seed=seed, on_goal="deactivate", autoreset=False, **config)


@dataclass
class EpisodeResult:
    """Statistics of one episode over the agents of the world."""

    steps: int = 0
    n_agents: int = 0
    ended: int = 0               # agents whose episode has ended (they left, or the time ran out)
    total_return: float = 0.0    # rewards summed over agents and steps
    metrics: dict[str, float] = field(default_factory=dict)   # the scenario's metrics over its agents

    @property
    def mean_return(self) -> float:
        return self.total_return / max(1, self.n_agents)

    def summary(self) -> str:
        parts = [f"{self.steps} steps"]
        parts += [f"{name} {value:.2f}" for name, value in self.metrics.items()]
        parts.append(f"return {self.mean_return:.2f}/agent")
        return ", ".join(parts)


def run_episode(env: Any, policy: Any, max_steps: int | None = None, deterministic: bool = True,
                reset: bool = True, seed: int | None = None,
                on_step: Callable[[int, EpisodeResult], Any] | None = None) -> EpisodeResult:
    """Play one episode of ``env`` (an ``episode_env``) with ``policy``.

    ``on_step(t, result)`` is called after the reset (t = 0) and after every step (t = 1, 2, ...),
    e.g. to render a frame; returning ``False`` stops the episode early. ``max_steps`` stops it
    after that many steps even if the scenario's limit is later. Agents still live at the end count
    with the statistics they have so far.
    """
    policy = as_policy(policy)
    if getattr(env, "num_worlds", 1) != 1 or getattr(env, "autoreset", False):
        raise ValueError("run_episode needs a one-world env without autoreset: use render.episode.episode_env")
    N = env.n_agents
    limit = env.max_steps if max_steps is None else int(max_steps)
    obs = env.reset(seed=seed) if reset else env.obs
    result = EpisodeResult(n_agents=N)
    collected = EpisodeMetrics(env.metrics)
    state = policy.initial_state(N)
    if on_step is not None and on_step(0, result) is False:
        return result
    t = 0
    for t in range(1, limit + 1):
        act, state = policy.act(obs, state, deterministic=deterministic)
        live = env.scenario.learner_active.reshape(-1).copy()
        obs, reward, terminated, truncated, info = env.step(np.asarray(act, np.float32).reshape(N, env.act_dim))
        result.steps = t
        result.total_return += float(reward[live].sum())
        done = terminated | truncated
        if done.any():
            collected.add(info, done)
            result.ended += int(done.sum())
        if on_step is not None and on_step(t, result) is False:
            break
        if env.over:
            break
    if result.ended < N:   # the rest of the agents, as far as they got
        collected.add(env.running_episodes(), env.scenario.learner_active.reshape(-1))
    result.metrics = {m: v for m, v in collected.means().items() if m in env.metrics}
    return result
