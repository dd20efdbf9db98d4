"""PettingZoo ``ParallelEnv`` over one world (agents ``robot_0`` ... ``robot_{N-1}``).

This is the edge where dicts appear: the world underneath is the same batched core (with E = 1)
that the trainers use. An agent that reaches its goal terminates and leaves the world (it is no
longer simulated nor seen by other robots' lidar); the episode is truncated for everyone after
``max_steps`` steps. See ``entropy_engine.scenarios.navigation.Navigation`` for the observation,
action and reward tables.

Conventions that clients rely on (TorchRL's ``PettingZooWrapper``, RLlib's ``ParallelPettingZooEnv``,
PettingZoo's own tests):

- ``step()`` takes an action for every live agent; actions of agents that have already left are
  accepted and ignored (as PettingZoo's environments with departing agents do, and as TorchRL's
  masked mode needs: it sends every agent's action each step). Names that are not agents of this
  env are refused.
- Time limit (Gymnasium's ``TimeLimit`` convention): at ``max_steps`` every live agent is
  truncated, including one that reaches its goal on that very step (it is terminated *and*
  truncated), so ``all(truncations.values())`` marks the end of the episode.
- A ``step()`` after the episode has ended changes nothing and returns five empty dicts.
- ``reset()`` returns the same per-agent info keys as ``step()``.
- ``state()`` is every agent's observation, concatenated, with zeros in the rows of agents that
  have left; ``state_space`` is its Box.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from ..scenarios import make_scenario
from .validate import check_actions


class SwarmParallelEnv(ParallelEnv):
    """Multi-agent navigation with PettingZoo's parallel API."""

    metadata = {"render_modes": ["human", "rgb_array"], "name": "entropy_navigation_v0",
                "is_parallelizable": True, "render_fps": 10}

    def __init__(self, scenario: str = "navigation", n_agents: int = 10, seed: int | None = None,
                 render_mode: str | None = None, **config: Any):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.scenario = make_scenario(scenario, 1, n_agents, seed, **config)
        self.render_mode = render_mode
        self.n_agents = n = self.scenario.world.n_agents
        self.possible_agents = [f"robot_{i}" for i in range(n)]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        self._live = np.zeros(n, np.bool_)                # [N] agents still in self.agents
        self._obs_space = self.scenario.observation_space()
        self._act_space = self.scenario.action_space()
        self.observation_spaces = {a: self._obs_space for a in self.possible_agents}
        self.action_spaces = {a: self._act_space for a in self.possible_agents}
        self.state_space = spaces.Box(low=np.tile(self._obs_space.low, n), high=np.tile(self._obs_space.high, n),
                                      dtype=np.float32)
        self._actions = np.zeros((1, n, self.scenario.act_dim), np.float32)   # [1, N, A]
        self._buf = np.zeros((n, self.scenario.act_dim), np.float32)          # [N, A] scratch for validation
        self.t = 0
        self._started = False
        self._renderer = None

    def observation_space(self, agent: str):
        return self._obs_space

    def action_space(self, agent: str):
        return self._act_space

    def _obs_dict(self) -> dict[str, np.ndarray]:
        obs = self.scenario.obs[0]
        return {a: obs[self._index[a]].copy() for a in self.agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.scenario.seed(seed)
        self.scenario.reset()
        self.t = 0
        self._started = True
        self.agents = self.possible_agents[:]
        self._live[:] = True
        return self._obs_dict(), {a: {"reached_goal": False, "collided": False} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        unknown = [a for a in actions if a not in self._index]
        if unknown:
            raise ValueError(f"actions for unknown agents {unknown}; this env's agents are "
                             f"{self.possible_agents[0]} .. {self.possible_agents[-1]}")
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if not self.agents:  # the episode is over: nothing to do (RLlib and others may still call)
            return {}, {}, {}, {}, {}
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"missing actions for live agents {missing}; every live agent needs one")
        live = [self._index[a] for a in self.agents]
        stacked = [actions[a] for a in self.agents]  # actions of agents that have left are ignored
        try:
            arr = np.asarray(stacked)
        except ValueError:
            raise ValueError("every action must be an array of shape (2,) (left, right wheel power)") from None
        check_actions(arr, ((len(live), self.scenario.act_dim),), self._buf[: len(live)])
        self._actions[0, live] = self._buf[: len(live)]
        sc = self.scenario
        sc.step(self._actions)
        self.t += 1
        reward = sc.reward[0]
        reached = sc.reached[0]
        contact = sc.world.contact[0]
        truncate = self.t >= sc.max_steps
        obs = self._obs_dict()
        rewards = {a: float(reward[self._index[a]]) for a in self.agents}
        terms = {a: bool(reached[self._index[a]]) for a in self.agents}
        truncs = dict.fromkeys(self.agents, truncate)  # at the limit everyone, arrived or not
        infos = {a: {"reached_goal": terms[a], "collided": bool(contact[self._index[a]])} for a in self.agents}
        sc.world.active[0, reached] = False  # arrived robots leave the world
        self._live &= ~reached
        if truncate:
            self._live[:] = False
        self.agents = [a for a in self.agents if self._live[self._index[a]]]
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terms, truncs, infos

    def render(self):
        if self.render_mode is None:
            return None
        if self._renderer is None:
            from ..render.renderer import Renderer  # optional dependency (pygame)

            self._renderer = Renderer(self.scenario, world_index=0, render_mode=self.render_mode)
        return self._renderer.render()

    def state(self) -> np.ndarray:
        """Global state [N * obs_dim]: every agent's observation, concatenated, zeros in the rows of
        agents that have left (reached their goal, or everyone once the episode is over)."""
        obs = self.scenario.obs[0]
        return np.where(self._live[:, None], obs, np.float32(0)).reshape(-1)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
