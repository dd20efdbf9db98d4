"""PettingZoo ``ParallelEnv`` over one world (agents ``robot_0`` ... ``robot_{N-1}``).

This is the edge where dicts appear: underneath is the episode engine every other entry point
uses (``BatchEnv`` with one world, leave-on-done, no autoreset). Spaces, per-agent ``info`` keys
and what ends an agent's episode are the scenario's (``scenarios.base``; navigation: an agent that
reaches its goal terminates and leaves the world, no longer simulated nor seen by other robots'
lidar).

Conventions (what PettingZoo's tests and the clients users bring expect):

- At the time limit every live agent is truncated (Gymnasium's ``TimeLimit``): an agent that
  also terminates in that last step gets ``terminated=True`` and ``truncated=True``.
- Actions of agents that have already left are accepted and ignored (TorchRL's masked mode sends
  an action for every agent at every step); names that are not agents of this env are refused,
  and every live agent needs an action.
- ``step()`` after the end returns empty dicts; ``reset()`` starts the next episode; ``step()``
  before the first ``reset()`` is an error.
- ``reset()`` returns the same ``info`` keys as ``step()`` (all zero/False at the start).
- With discrete messages (``comm_vocab``) an agent's action space is a ``Dict`` of ``"move"`` (the
  scenario's Box) and ``"message"`` (``MultiDiscrete``: one token per channel); ``step`` takes
  such dicts (or the engine's flat row: move values, then the tokens as numbers).
- ``state()`` is every agent's observation, concatenated in ``possible_agents`` order, with zeros
  for agents that have left; ``state_space`` is its Box.
- A copy (``pickle``, ``copy.deepcopy``; SuperSuit's ``concat_vec_envs_v1`` makes one per vector
  env) is a new env with the same settings, not yet reset. Copying the live state instead would
  split the arrays that share memory underneath (pickling copies each view separately), and the
  copy would silently see zero observations and rewards.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from .batch import BatchEnv
from .comm import flatten_action


class SwarmParallelEnv(ParallelEnv):
    """A swarm scenario with PettingZoo's parallel API (one world)."""

    metadata = {"render_modes": ["human", "rgb_array"], "name": "entropy_swarm_v0",
                "is_parallelizable": True, "render_fps": 10}

    def __init__(self, scenario: str = "navigation", n_agents: int = 10, seed: int | None = None,
                 render_mode: str | None = None, **config: Any):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self._init_args = dict(scenario=scenario, n_agents=n_agents, seed=seed, render_mode=render_mode, **config)
        self.env = BatchEnv(scenario, 1, n_agents, seed=seed, on_goal="deactivate", autoreset=False, **config)
        self.scenario = self.env.scenario
        self.metadata = dict(self.metadata, name=f"entropy_{scenario}_v0")
        self.render_mode = render_mode
        self.n_agents = N = self.env.n_agents
        self.possible_agents = [f"robot_{i}" for i in range(N)]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        self._obs_space = self.env.observation_space
        self._act_space = self.env.agent_action_space    # a Dict of move and message tokens with comm_vocab
        self.observation_spaces = {a: self._obs_space for a in self.possible_agents}
        self.action_spaces = {a: self._act_space for a in self.possible_agents}
        low, high = self._obs_space.low, self._obs_space.high
        self.state_space = spaces.Box(low=np.minimum(np.tile(low, N), 0), high=np.maximum(np.tile(high, N), 0),
                                      dtype=np.float32)
        self._actions = np.zeros((N, self.env.act_dim), np.float32)   # [N, A]; rows of departed agents stay 0
        self._reset_info = {k: self.env.info[k].dtype.type(0).item() for k in self.env.info_keys}
        self._started = False
        self._renderer = None

    def __getstate__(self) -> dict[str, Any]:
        return {"init_args": self._init_args}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["init_args"])  # a fresh env with the same settings (see the module docstring)

    def observation_space(self, agent: str):
        return self._obs_space

    def action_space(self, agent: str):
        return self._act_space

    @property
    def t(self) -> int:
        """Steps since the last reset."""
        return int(self.env.t[0])

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs = self.env.reset(seed=seed)
        self._started = True
        self.agents = self.possible_agents[:]
        return ({a: obs[i].copy() for i, a in enumerate(self.agents)},
                {a: dict(self._reset_info) for a in self.agents})

    def step(self, actions: dict[str, Any]):
        unknown = [a for a in actions if a not in self._index]
        if unknown:
            raise ValueError(f"actions for unknown agents {unknown}; this env's agents are "
                             f"{self.possible_agents[0]} .. {self.possible_agents[-1]}")
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if not self.agents:   # after the end: harmless, nothing happens (RLlib and others may still call)
            return {}, {}, {}, {}, {}
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"missing actions for live agents {missing}; every live agent needs one")
        A = self.env.act_dim
        if self.env.tokens is None:
            try:
                arr = np.asarray([actions[a] for a in self.agents], np.float64)
            except (ValueError, TypeError):
                raise ValueError(f"every action must be an array of shape ({A},)") from None
            if arr.shape != (len(self.agents), A):
                raise ValueError(f"every action must be an array of shape ({A},), got {arr.shape[1:]}")
        else:   # discrete messages: {"move": [..], "message": [tokens]} (or the engine's flat row)
            arr = np.stack([flatten_action(actions[a], self._act_space, A) for a in self.agents])
        live = [self._index[a] for a in self.agents]
        self._actions[:] = 0
        self._actions[live] = arr
        obs, reward, term, trunc, info = self.env.step(self._actions)
        at_limit = self.t >= self.env.max_steps
        out_obs = {a: obs[i].copy() for a, i in zip(self.agents, live)}
        rewards = {a: float(reward[i]) for a, i in zip(self.agents, live)}
        terms = {a: bool(term[i]) for a, i in zip(self.agents, live)}
        truncs = {a: bool(trunc[i]) or at_limit for a, i in zip(self.agents, live)}
        keys = self.env.info_keys
        infos = {a: {k: info[k][i].item() for k in keys} for a, i in zip(self.agents, live)}
        self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
        if self.render_mode == "human":
            self.render()
        return out_obs, rewards, terms, truncs, infos

    def render(self):
        if self.render_mode is None:
            return None
        if self._renderer is None:
            from ..render.renderer import Renderer  # optional dependency (pygame)

            self._renderer = Renderer(self.env, world_index=0, render_mode=self.render_mode)
        return self._renderer.render()

    def state(self) -> np.ndarray:
        """Global state [N * obs_dim]: every agent's observation, zeros for agents that have left."""
        out = self.env.obs.copy()
        live = np.zeros(self.n_agents, np.bool_)
        live[[self._index[a] for a in self.agents]] = True
        out[~live] = 0.0
        return out.reshape(-1)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
