"""``DeviceNavigationEnv``: the navigation env with every array on the GPU, for training and benchmarks.

The same episodes as ``envs.batch.BatchEnv("navigation", ..., on_goal="respawn", autoreset=True)``
(the training env): the physics step (``gpu.device_world``), the scenario's reward, observation,
respawns and resets (``gpu.navigation``) and the episode bookkeeping (``gpu.env_kernels``) are CUDA
kernels compiled from the CPU code, and the per-world random streams are the CPU's, so a seed gives
the same layouts and, within float rounding, the same trajectories. ``step`` takes the actions as a
torch tensor on the GPU and returns torch tensors that view the env's device arrays (no copies to the
host; overwritten by the next step), like ``BatchEnv`` returns views of its numpy arrays.

What it does not do (use ``BatchEnv`` with ``backend="cuda"`` or ``"numba"`` for these): other
scenarios, communication channels, curricula beyond the shaping ramp, ``on_goal="deactivate"`` and
``autoreset=False`` (evaluation runs on the CPU env; a model file does not depend on where it trained).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..config import ConfigError
from ..core.kernels import CELL
from ..core.rng import seed_states
from .target import download, require, simulated, synchronize, to_device, torch_view, upload

THREADS = 32 if simulated() else 256


class DeviceNavigationEnv:
    """E worlds x N agents of the navigation scenario on the GPU (see the module docstring)."""

    on_device = True

    def __init__(self, scenario: str = "navigation", num_worlds: int = 8, n_agents: int = 10,
                 seed: int | None = None, **config: Any):
        if scenario != "navigation":
            raise ConfigError(f"the device env runs the navigation scenario only, got {scenario!r}; other "
                              "scenarios run on the GPU through BatchEnv with backend 'cuda' (physics on the "
                              "GPU, scenario on the CPU)")
        config.pop("backend", None)
        if config.get("comm_dim", 0):
            raise ConfigError("the device env has no communication channel yet: comm_dim must be 0 "
                              "(use the CPU env, backend 'numba', for channels)")
        require()
        import torch

        from ..scenarios import make_scenario
        from . import env_kernels, navigation
        from .device_world import DeviceWorld

        self._nk, self._ek = navigation, env_kernels
        self.host = sc = make_scenario("navigation", num_worlds, n_agents, seed, **config)   # numba: layouts, spaces
        self.config = sc.config
        self.num_worlds = E = sc.world.num_worlds
        self.n_agents = N = sc.n_learners
        self.num_slots = S = E * N
        self.observation_space, self.action_space = sc.observation_space(), sc.action_space()
        self.agent_action_space = self.action_space
        self.tokens = None
        self.obs_dim = D = int(self.observation_space.shape[0])
        self.act_dim = A = int(self.action_space.shape[0])
        self.max_steps = sc.max_steps
        self.stat_names = tuple(sc.episode_stats)
        self.success_stat = sc.success_stat
        self.metrics = dict(sc.metrics)
        self.info_keys = tuple(sc.info_keys)
        K = len(self.stat_names)
        self.device = torch.device("cpu" if simulated() else "cuda")
        self.world = DeviceWorld(sc.world)
        f32, b = np.float32, np.bool_
        new = to_device
        # the scenario's state (navigation.Navigation's arrays)
        self.rng = new(sc.rng)
        self.params = new(sc._params)
        self.goals = new(sc.goals)
        self.dist = new(sc.dist)
        self.prev_contact = new(sc.prev_contact)
        self.order = new(sc._order)
        self.placed = new(sc._placed)
        self.respawned = new(sc._respawned)
        self.obs_d = new(np.zeros((E, N, D), f32))
        self.reward_d = new(np.zeros((E, N), f32))
        self.reached = new(np.zeros((E, N), b))
        self.stats = new(np.zeros((K, E, N), f32))
        # the episode engine's state (envs.batch.BatchEnv's arrays)
        self.t = new(np.zeros(E, np.int64))
        self.ep_return = new(np.zeros((E, N), f32))
        self.ep_length = new(np.zeros((E, N), np.int64))
        self.ep_stats = new(np.zeros((K, E, N), f32))
        self.terminated_d = new(np.zeros((E, N), b))
        self.truncated_d = new(np.zeros((E, N), b))
        self.world_done = new(np.zeros(E, b))
        self.refresh = new(np.zeros(E, b))
        self.respawn_mask = new(np.zeros((E, N), b))
        self.terminal_obs_d = new(np.zeros((E, N, D), f32))
        self.out_return = new(np.zeros((E, N), f32))
        self.out_length = new(np.zeros((E, N), np.int64))
        self.out_stats = new(np.zeros((K, E, N), f32))
        self.info_reached = new(np.zeros((E, N), b))
        self.info_contact = new(np.zeros((E, N), b))
        self.actions_d = new(np.zeros((E, N, A), f32))
        self._all = new(np.ones(E, b))
        # torch views over the slots (no copies)
        tv = torch_view
        self.obs = tv(self.obs_d).view(S, D)
        self.reward = tv(self.reward_d).view(S)
        self.terminated = tv(self.terminated_d).view(S)
        self.truncated = tv(self.truncated_d).view(S)
        self.actions = tv(self.actions_d).view(S, A)
        self._params_t = tv(self.params)
        self.info = {"reached_goal": tv(self.info_reached).view(S), "collided": tv(self.info_contact).view(S),
                     "terminal_obs": tv(self.terminal_obs_d).view(S, D), "world_done": tv(self.world_done),
                     "episode_return": tv(self.out_return).view(S), "episode_length": tv(self.out_length).view(S)}
        for j, name in enumerate(self.stat_names):
            self.info["episode_" + name] = tv(self.out_stats)[j].view(S)
        self._running = (tv(self.ep_return).view(S), tv(self.ep_length).view(S), tv(self.ep_stats).view(K, S))
        self._cell = float(sc.world.phys[CELL])
        self._shaping_cols = [sc.settings[name] for name in sc.shaping_terms]
        self._shaping_base = sc._params[0, self._shaping_cols].copy()
        self._needs_reset = True

    # ------------------------------------------------------------------ launches
    def _agents(self) -> tuple[int, int]:
        n = min(THREADS, self.num_slots)
        return (self.num_slots + n - 1) // n, n

    def _worlds(self) -> tuple[int, int]:
        n = min(THREADS, self.num_worlds)
        return (self.num_worlds + n - 1) // n, n

    def _reset_worlds(self, mask) -> None:
        w = self.world
        self._nk.reset_worlds[self._worlds()](mask, self.rng, self.params, w.walls, w.n_walls, w.pos, w.vel,
                                              w.theta, w.omega, w.active, self.goals, self.order, self.placed,
                                              w.contact, self.prev_contact)

    def _refresh(self, mask) -> None:
        """Lidar and observations of the worlds where ``mask`` (after resets and respawns)."""
        w = self.world
        w.refresh_lidar(mask)
        self._nk.observe[self._agents()](mask, w.pos, w.vel, w.theta, self.goals, w.lidar, w.active, self.params,
                                         self.obs_d, self.dist)

    # ------------------------------------------------------------------ the env API
    def seed(self, seed: int | None) -> None:
        upload(self.rng, seed_states(seed, self.num_worlds))

    def reset(self, seed: int | None = None):
        """Reset every world; returns the observation view [S, D] (a torch tensor on the GPU)."""
        if seed is not None:
            self.seed(seed)
        self._reset_worlds(self._all)
        self._refresh(self._all)
        for arr in (self.t, self.ep_return, self.ep_length, self.ep_stats):
            torch_view(arr).zero_()
        placed = torch_view(self.placed)
        short = placed < self.n_agents
        if bool(short.any()):
            bad = int(short.nonzero()[0, 0])
            raise RuntimeError(f"world {bad}: could place only {int(placed[bad])} of {self.n_agents} agents or "
                               "goals; the arena is too crowded (raise arena_size or lower n_obstacles)")
        self._needs_reset = False
        return self.obs

    def step(self, actions):
        """Step with actions [S, A] (a torch tensor, on the GPU for speed, or anything torch takes);
        returns obs [S, D], reward [S], terminated [S], truncated [S], info (torch views)."""
        import torch

        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        a = torch.as_tensor(actions, device=self.device)
        if a.shape not in ((self.num_slots, self.act_dim), (self.num_worlds, self.n_agents, self.act_dim)):
            raise ValueError(f"actions must have shape ({self.num_slots}, {self.act_dim}) or "
                             f"({self.num_worlds}, {self.n_agents}, {self.act_dim}), got {tuple(a.shape)}")
        if not bool(torch.isfinite(a).all()):
            raise ValueError("actions contain NaN or inf")
        self.actions.copy_(a.reshape(self.num_slots, self.act_dim)).clamp_(-1.0, 1.0)
        w, nk, ek = self.world, self._nk, self._ek
        agents, worlds = self._agents(), self._worlds()
        w.step(self.actions_d)
        nk.reward_observe[agents](w.pos, w.vel, w.theta, self.goals, w.active, w.contact, self.prev_contact, w.lidar,
                                  self.params, self.dist, self.reward_d, self.reached, self.stats, self.obs_d)
        ek.advance_time[worlds](self.t, self.max_steps, self.world_done, self.refresh)
        ek.bookkeep[agents](self.world_done, w.active, self.reward_d, self.reached, self.stats, w.contact,
                            self.ep_return, self.ep_length, self.ep_stats, self.terminated_d, self.truncated_d,
                            self.obs_d, self.terminal_obs_d, self.out_return, self.out_length, self.out_stats,
                            self.info_reached, self.info_contact, self.respawn_mask)
        nk.respawn_worlds[worlds](self.respawn_mask, self.rng, self.params, w.walls, w.n_walls, w.pos, w.vel,
                                  w.theta, w.omega, w.active, self.goals, w.grid_size, self._cell,
                                  w.cell_start, w.cell_items, self.respawned, self.prev_contact, self.refresh)
        self._reset_worlds(self.world_done)
        self._refresh(self.refresh)
        return self.obs, self.reward, self.terminated, self.truncated, self.info

    def running_episodes(self) -> dict[str, Any]:
        """The statistics of the episodes still running, as host numpy copies."""
        ret, length, stats = self._running
        out = {"episode_return": ret.cpu().numpy(), "episode_length": length.cpu().numpy()}
        for j, name in enumerate(self.stat_names):
            out["episode_" + name] = stats[j].cpu().numpy()
        return out

    def set_shaping_scale(self, scale: float) -> None:
        """The shaping ramp (``TrainConfig.shaping_warmup``): the scenario's shaping terms times ``scale``."""
        from ..scenarios.base import check_shaping_scale

        s = check_shaping_scale(scale)
        for col, base in zip(self._shaping_cols, self._shaping_base):
            self._params_t[:, col] = float(base) * s

    def heuristic_actions(self):
        """The scenario's scripted policy on the current observations, [S, A] (computed on the host)."""
        import torch

        return torch.as_tensor(self.host.heuristic(self.obs.cpu().numpy()), device=self.device)

    def episode_metrics(self):
        """A collector of finished agent-episodes for this env's info tensors (``gpu.metrics``)."""
        from .metrics import DeviceEpisodeMetrics

        return DeviceEpisodeMetrics(self.metrics, self.device)

    def rng_state(self) -> np.ndarray:
        """The per-world random streams, as a host copy (for checkpoints)."""
        out = np.zeros(self.num_worlds, np.uint64)
        download(self.rng, out)
        return out

    def set_rng_state(self, state: np.ndarray) -> None:
        upload(self.rng, np.asarray(state, np.uint64))

    def synchronize(self) -> None:
        synchronize()

    def close(self) -> None:
        pass
