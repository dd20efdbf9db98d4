"""Run one evaluation episode in one world of a scenario with a policy, calling back after each step.

The policy protocol (what ``entropy_engine.load_policy`` returns, and what GIF recording and
``entropy play`` drive)::

    class Policy(Protocol):
        def initial_state(self, n_agents: int) -> Any: ...          # recurrent state, or None
        def act(self, obs, state, deterministic: bool = True) -> tuple[actions, state]: ...

``obs`` is float32 [N, obs_dim] (the N agents of one world), ``actions`` float [N, 2]. A plain
callable ``obs -> actions`` is wrapped by ``as_policy`` into a stateless policy.

Episodes use the evaluation semantics of ``BatchEnv(on_goal="deactivate")``: an agent that
reaches its goal leaves the world; the episode ends when every agent has left or after
``max_steps`` steps. The runner drives the scenario directly, so give it a scenario of its own
(``make_scenario(name, 1, n_agents, seed, **config)``), not the one a training env is stepping.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """A (possibly recurrent) policy over the agents of one world."""

    def initial_state(self, n_agents: int) -> Any: ...

    def act(self, obs: np.ndarray, state: Any, deterministic: bool = True) -> tuple[np.ndarray, Any]: ...


class FunctionPolicy:
    """A stateless policy from a function ``obs [N, D] -> actions [N, 2]``."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn

    def initial_state(self, n_agents: int) -> None:
        return None

    def act(self, obs: np.ndarray, state: Any = None, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return self.fn(obs), None


class HeuristicPolicy(FunctionPolicy):
    """The scenario's scripted policy (``scenario.heuristic``)."""

    def __init__(self, scenario: Any):
        super().__init__(getattr(scenario, "scenario", scenario).heuristic)


class RandomPolicy:
    """Uniform random wheel powers in [-1, 1], from its own seeded generator."""

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def initial_state(self, n_agents: int) -> None:
        return None

    def act(self, obs: np.ndarray, state: Any = None, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return self.rng.uniform(-1.0, 1.0, (obs.shape[0], 2)).astype(np.float32), None


def as_policy(policy: Any) -> Policy:
    """``policy`` itself if it has ``initial_state`` and ``act``, else a wrapped callable."""
    if hasattr(policy, "act") and hasattr(policy, "initial_state"):
        return policy
    if callable(policy):
        return FunctionPolicy(policy)
    raise TypeError(
        f"a policy needs initial_state(n_agents) and act(obs, state, deterministic), or must be a "
        f"callable obs -> actions; got {type(policy).__name__}"
    )


@dataclass
class EpisodeResult:
    """Statistics of one episode (over the agents of the recorded world)."""

    steps: int = 0
    n_agents: int = 0
    reached: int = 0            # agents that reached their goal
    collisions: int = 0         # contacts started (an agent touching a wall or robot), summed over agents
    total_return: float = 0.0   # rewards summed over agents and steps

    @property
    def success_rate(self) -> float:
        return self.reached / max(1, self.n_agents)

    @property
    def collisions_per_agent(self) -> float:
        return self.collisions / max(1, self.n_agents)

    @property
    def mean_return(self) -> float:
        return self.total_return / max(1, self.n_agents)

    def summary(self) -> str:
        return (f"{self.steps} steps, reached {self.reached}/{self.n_agents} "
                f"({100 * self.success_rate:.0f}%), {self.collisions_per_agent:.2f} collisions/agent, "
                f"return {self.mean_return:.2f}/agent")


def run_episode(scenario: Any, policy: Any, world_index: int = 0, max_steps: int | None = None,
                deterministic: bool = True, reset: bool = True,
                on_step: Callable[[int, EpisodeResult], Any] | None = None) -> EpisodeResult:
    """Play one episode in world ``world_index``; other worlds of the scenario get zero actions.

    ``on_step(t, result)`` is called after the reset (t = 0) and after every step (t = 1, 2, ...),
    e.g. to render a frame; returning ``False`` stops the episode early.
    """
    sc = getattr(scenario, "scenario", scenario)
    policy = as_policy(policy)
    w, wi = sc.world, int(world_index)
    E, N = w.num_worlds, w.n_agents
    max_steps = sc.max_steps if max_steps is None else int(max_steps)
    if reset:
        mask = np.zeros(E, np.bool_)
        mask[wi] = True
        sc.reset(mask)
    actions = np.zeros((E, N, 2), np.float32)          # [E, N, 2]
    prev_contact = np.zeros(N, np.bool_)                # [N]
    result = EpisodeResult(n_agents=N)
    state = policy.initial_state(N)
    if on_step is not None and on_step(0, result) is False:
        return result
    for t in range(1, max_steps + 1):
        if not w.active[wi].any():
            break
        act, state = policy.act(sc.obs[wi], state, deterministic=deterministic)
        act = np.asarray(act, np.float32).reshape(N, 2)
        if not np.isfinite(act).all():
            raise ValueError("the policy returned NaN or infinite actions")
        active = w.active[wi].copy()                    # [N] alive during this step
        actions[wi] = np.clip(act, -1.0, 1.0) * active[:, None]
        sc.step(actions)
        contact = w.contact[wi] & active
        result.steps = t
        result.collisions += int((contact & ~prev_contact).sum())
        prev_contact = contact
        result.total_return += float(sc.reward[wi][active].sum())
        reached = sc.reached[wi] & active
        result.reached += int(reached.sum())
        w.active[wi, reached] = False                   # reached agents leave the world
        if on_step is not None and on_step(t, result) is False:
            break
    return result
