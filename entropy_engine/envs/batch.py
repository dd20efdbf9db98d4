"""BatchEnv: E worlds x N agents as E*N flat slots, arrays in and arrays out, with autoreset.

This is the engine's own vectorised environment: trainers, evaluation and the SB3 ``VecEnv``
adapter all sit on it. Every slot is one agent; one policy drives all of them.

Episodes (``on_goal``):

- ``"respawn"`` (training): an agent that reaches its goal terminates and is immediately respawned
  at a free place with a new goal, inside its running world; when a world reaches ``max_steps``
  all of its agents are truncated and the world is reset (new walls). A slot therefore always
  holds a live agent, as SB3 and recurrent PPO expect.
- ``"deactivate"`` (evaluation, PettingZoo semantics): an agent that reaches its goal terminates
  and leaves the world; a world ends when every agent has left or at ``max_steps``, and is then
  reset. Slots of agents that have left return zero reward and are not ``done`` again.

Autoreset is SB3's: the observation returned for a finished slot is already the first
observation of its next episode; the last one is in ``info["terminal_obs"]``.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..scenarios import make_scenario
from .batch_kernels import bookkeep
from .validate import check_actions


class BatchEnv:
    """Vectorised multi-agent env over ``num_worlds`` worlds of ``n_agents`` agents."""

    def __init__(self, scenario: str = "navigation", num_worlds: int = 8, n_agents: int = 10,
                 seed: int | None = None, on_goal: Literal["respawn", "deactivate"] = "respawn", **config: Any):
        if on_goal not in ("respawn", "deactivate"):
            raise ValueError(f"on_goal must be 'respawn' or 'deactivate', got {on_goal!r}")
        self.scenario = make_scenario(scenario, num_worlds, n_agents, seed, **config)
        self.on_goal = on_goal
        self.num_worlds = E = self.scenario.world.num_worlds
        self.n_agents = N = self.scenario.world.n_agents
        self.num_slots = S = E * N
        self.obs_dim = D = self.scenario.obs_dim
        self.act_dim = 2
        self.max_steps = self.scenario.max_steps
        self.obs = self.scenario.obs.reshape(S, D)            # [S, D] view, updated in place
        self._actions = np.zeros((E, N, 2), np.float32)      # [E, N, 2] validated actions
        self._shapes = ((S, 2), (E, N, 2))
        self.t = np.zeros(E, np.int64)                       # [E] steps since world reset
        self._ep_return = np.zeros(S, np.float32)            # [S] running episode stats
        self._ep_length = np.zeros(S, np.int64)
        self._ep_collisions = np.zeros(S, np.int64)
        self._prev_contact = np.zeros(S, np.bool_)
        self._terminated = np.zeros(S, np.bool_)              # [S] returned views
        self._truncated = np.zeros(S, np.bool_)
        self._world_trunc = np.zeros(E, np.bool_)             # [E]
        self.terminal_obs = np.zeros((S, D), np.float32)     # [S, D] valid where done
        self.info: dict[str, np.ndarray] = {
            "reached_goal": np.zeros(S, np.bool_),           # [S] reached its goal this step
            "collided": np.zeros(S, np.bool_),               # [S] in contact this step
            "terminal_obs": self.terminal_obs,
            "world_done": np.zeros(E, np.bool_),             # [E] the world was reset after this step
            "episode_return": np.zeros(S, np.float32),       # [S] stats of episodes ending now
            "episode_length": np.zeros(S, np.int64),
            "episode_success": np.zeros(S, np.bool_),
            "episode_collisions": np.zeros(S, np.int64),
        }
        self._needs_reset = True

    @property
    def config(self):
        return self.scenario.config

    def seed(self, seed: int | None) -> None:
        self.scenario.seed(seed)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every world; returns the observation view [S, D]."""
        if seed is not None:
            self.scenario.seed(seed)
        self.scenario.reset()
        self.t[:] = 0
        self._clear_episodes(slice(None))
        self._needs_reset = False
        return self.obs

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Step with actions [S, 2] (or [E, N, 2]); returns obs, reward, terminated, truncated, info.

        Returned arrays are views of internal buffers, overwritten by the next call.
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        check_actions(actions, self._shapes, self._actions)
        sc = self.scenario
        E, N = self.num_worlds, self.n_agents
        sc.step(self._actions)
        self.t += 1
        info = self.info
        reward = sc.reward.reshape(-1)
        terminated, truncated = self._terminated, self._truncated
        n_done = bookkeep(sc.world.active.reshape(-1), reward, sc.reached.reshape(-1), sc.world.contact.reshape(-1),
                          self.t, self.max_steps, N, self.on_goal == "deactivate",
                          self._ep_return, self._ep_length, self._ep_collisions, self._prev_contact,
                          info["reached_goal"], info["collided"], terminated, truncated,
                          self._world_trunc, info["world_done"])
        world_trunc, world_done = self._world_trunc, info["world_done"]
        if n_done:
            idx = np.flatnonzero(terminated | truncated)
            self.terminal_obs[idx] = self.obs[idx]
            info["episode_return"][idx] = self._ep_return[idx]
            info["episode_length"][idx] = self._ep_length[idx]
            info["episode_success"][idx] = terminated[idx]
            info["episode_collisions"][idx] = self._ep_collisions[idx]
            self._clear_episodes(idx)
            if self.on_goal == "respawn":
                respawn = (terminated.reshape(E, N) & ~world_trunc[:, None])
                if respawn.any():
                    sc.respawn(respawn)
        if world_done.any():
            sc.reset(world_done)
            self.t[world_done] = 0
            self._clear_episodes(np.repeat(world_done, N))
        return self.obs, reward, terminated, truncated, info

    def _clear_episodes(self, slots) -> None:
        """Zero the running episode stats of ``slots`` (an index, mask or slice)."""
        self._ep_return[slots] = 0
        self._ep_length[slots] = 0
        self._ep_collisions[slots] = 0
        self._prev_contact[slots] = False

    def set_shaping_scale(self, scale: float) -> None:
        """Scale the scenario's optional reward-shaping terms (``Scenario.set_shaping_scale``)."""
        self.scenario.set_shaping_scale(scale)

    def heuristic_actions(self) -> np.ndarray:
        """The scenario's scripted policy on the current observations, [S, 2]."""
        return self.scenario.heuristic(self.obs)

    def close(self) -> None:
        pass
