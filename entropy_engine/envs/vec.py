"""Stable-Baselines3 ``VecEnv`` over E worlds x N agents: one slot per agent, one shared policy.

SB3's algorithms run on it directly (``PPO("MlpPolicy", vec_env(...)).learn(...)``): autoreset
happens inside ``step_wait``; a finished slot's ``info`` carries ``terminal_observation``,
``TimeLimit.truncated`` and an ``episode`` entry (``r``, ``l``, ``t``, like SB3's ``Monitor``), so
``rollout/ep_rew_mean`` is logged without any wrapper. Observations and rewards cross as whole
``[E*N, ...]`` arrays (one copy each, because SB3 keeps the previous observation while stepping).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from ..core.rng import check_seed
from . import validate
from .shm import make_batch_env


SB3_TOKENS_ERROR = ("the SB3 path takes continuous messages only (comm_vocab=0), got comm_vocab={vocab}: SB3 has "
                    "no action space for wheel powers and message tokens together; train discrete messages with "
                    "the native trainer (--algo native)")


class SwarmVecEnv(VecEnv):
    """SB3 VecEnv: ``num_worlds * n_agents`` slots, agent ``k`` is world ``k // n_agents``."""

    def __init__(self, scenario: str = "navigation", num_worlds: int = 8, n_agents: int = 10,
                 seed: int | None = None, render_mode: str | None = None, workers: int = 0, **config: Any):
        # workers > 1: worlds run in worker processes over shared memory (how the pymunk backend
        # uses several cores); otherwise in this process, on numba threads
        self.engine = make_batch_env(scenario, num_worlds, n_agents, seed=seed, on_goal="respawn",
                                     workers=workers, **config)
        if self.engine.tokens is not None:
            self.engine.close()
            raise ValueError(SB3_TOKENS_ERROR.format(vocab=self.engine.tokens[1]))
        self.render_mode = render_mode
        self.n_agents = n_agents
        self.num_worlds = num_worlds
        self._next_seed = seed
        S, A = self.engine.num_slots, self.engine.act_dim
        self._shapes = ((S, A), (num_worlds, n_agents, A))    # what step_async accepts
        self._checked = np.zeros((S, A), np.float32)          # [S, A] scratch of its check
        self._actions: np.ndarray | None = None
        self._t0 = time.time()
        super().__init__(self.engine.num_slots, self.engine.observation_space, self.engine.action_space)

    # -- the VecEnv contract --------------------------------------------------------------
    def reset(self) -> np.ndarray:
        seed = self._seeds[0] if self._seeds[0] is not None else self._next_seed
        self._next_seed = None
        obs = self.engine.reset(seed=seed)
        self._reset_seeds()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        # checked (dtype, shape, NaN) and copied here: a refused call leaves nothing pending and
        # changes nothing; the engine clips to the action space in step_wait
        validate.check_actions(actions, self._shapes, self._checked)
        self._actions = np.array(actions, np.float32)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        actions, self._actions = self._actions, None      # consumed even if the step fails: never replayed
        obs, reward, terminated, truncated, info = self.engine.step(actions)
        dones = terminated | truncated
        keys = self.engine.info_keys
        infos: list[dict[str, Any]] = [dict(zip(keys, row))
                                       for row in zip(*(info[k].tolist() for k in keys))] if keys else \
            [{} for _ in range(self.num_envs)]
        if dones.any():
            elapsed = round(time.time() - self._t0, 6)
            term_obs = info["terminal_obs"]
            for k in np.flatnonzero(dones).tolist():
                d = infos[k]
                d["terminal_observation"] = term_obs[k].copy()
                d["TimeLimit.truncated"] = bool(truncated[k])
                d["episode"] = {"r": float(info["episode_return"][k]), "l": int(info["episode_length"][k]),
                                "t": elapsed}
                d["episode_stats"] = {name: float(info["episode_" + name][k]) for name in self.engine.stat_names}
                if self.engine.success_stat is not None:
                    d["is_success"] = bool(info["episode_" + self.engine.success_stat][k] > 0)
        return obs.copy(), reward.copy(), dones, infos

    def close(self) -> None:
        self.engine.close()

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        # one engine-wide seed: every world derives its own stream from it; a bad seed is refused
        # here (check_seed) instead of breaking every later reset()
        self._seeds = [check_seed(seed)] + [None] * (self.num_envs - 1)
        return self._seeds

    # -- attribute plumbing (all slots share one engine) --------------------------------------
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name) if attr_name == "render_mode" else getattr(self.engine, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.engine, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        result = getattr(self.engine, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        from ..render.renderer import Renderer  # optional dependency

        if not hasattr(self.engine, "scenario"):
            raise RuntimeError("rendering needs the worlds in this process: create the VecEnv with workers=0")
        if not hasattr(self, "_renderer"):
            self._renderer = Renderer(self.engine.scenario, world_index=0, render_mode="rgb_array")
        return [self._renderer.render()]
