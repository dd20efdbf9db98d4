"""``DeviceEnv``: a scenario's training env with every array on the GPU, for training and benchmarks.

The same episodes as ``envs.batch.BatchEnv(scenario, ..., on_goal="respawn", autoreset=True)`` (the
training env): the physics step (``gpu.device_world``), the scenario's reward, observation, respawns
and resets (its adapter: ``gpu.navigation.NavigationOnDevice``, ``gpu.flocking.FlockingOnDevice``,
``gpu.aggregation.AggregationOnDevice``, ``gpu.coverage.CoverageOnDevice``,
``gpu.formation.FormationOnDevice``, ``gpu.rendezvous.RendezvousOnDevice``,
``gpu.pursuit.PursuitOnDevice``, ``gpu.transport.TransportOnDevice``: its objects pushed by
``gpu.object_kernels``, ``gpu.foraging.ForagingOnDevice``: its items in ``gpu.items``) and the
episode bookkeeping (``gpu.env_kernels``) are CUDA kernels compiled from the CPU code, and the
per-world random streams are the CPU's, so a seed gives the same layouts and, within float
rounding, the same trajectories. ``step`` takes the actions as a torch
tensor on the GPU and returns torch tensors that view the env's device arrays (no copies to the
host; overwritten by the next step), like ``BatchEnv`` returns views of its numpy arrays.

Curricula (``curriculum=``, a ``CurriculumSpec``) are ``envs.curriculum.Curriculum`` itself, on the
host: it writes each world's settings into the host scenario's ``_params`` and every write is copied
to the device (``_SettingsOnDevice``). With stages or levels each step copies the finished
agent-episodes' statistic and the world resets to the host (a few hundred bytes to kilobytes), so the
stages promote and the levels are drawn exactly as ``BatchEnv`` does them, in the same order from the
same stream; without a curriculum (the shaping ramp only) nothing is copied.

Scenarios on the GPU: ``DEVICE_SCENARIOS``, each with or without a communication channel
(``comm_dim > 0``, ``gpu.channel``: as in ``BatchEnv``, the action is the scenario's actions then the
message, ``comm_dim`` values in [-1, 1] or with ``comm_vocab = V`` tokens, whole numbers 0 .. V-1
(anything else refused with ``BatchEnv``'s ValueError); the observation is the scenario's then the
received block; a respawned agent and a reset world start with an empty block). Scenarios with
scripted robots (pursuit's evaders: ``scenarios.scripted``) hold them in the device world after the
learners; the env's slots, observations, rewards and ``active_slots`` are the learners', and the
adapter's ``world_actions`` runs the scripted robots' policy before each physics step; with a channel
only the learners talk (``BatchEnv``'s ``talkers``). What it does not do
(use ``BatchEnv`` with ``backend="cuda"`` or ``"numba"`` for these): a scenario without a GPU
adapter (every built-in one has one; a new scenario needs its own, gpu/README.md), ``on_goal="deactivate"`` and ``autoreset=False`` (evaluation runs on the CPU env; a model file does
not depend on where it trained).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..config import ConfigError
from ..core.rng import seed_states
from ..envs.curriculum import Curriculum, CurriculumSpec, trivial_spec
from .target import download, require, simulated, synchronize, to_device, torch_view, upload

THREADS = 32 if simulated() else 256
CROWDED_EVERY = 16   # steps between checks that every autoreset placed everything (a host sync each)
# scenario -> "module:adapter class" (imported when used)
DEVICE_SCENARIOS = {"navigation": "navigation:NavigationOnDevice", "flocking": "flocking:FlockingOnDevice",
                    "aggregation": "aggregation:AggregationOnDevice", "coverage": "coverage:CoverageOnDevice",
                    "formation": "formation:FormationOnDevice", "rendezvous": "rendezvous:RendezvousOnDevice",
                    "pursuit": "pursuit:PursuitOnDevice", "transport": "transport:TransportOnDevice",
                    "foraging": "foraging:ForagingOnDevice"}


class Launch:
    """Launch shapes over a world's agents or over its worlds."""

    def __init__(self, num_worlds: int, n_agents: int) -> None:
        self.num_worlds, self.num_slots = num_worlds, num_worlds * n_agents

    def agents(self) -> tuple[int, int]:
        n = min(THREADS, self.num_slots)
        return (self.num_slots + n - 1) // n, n

    def worlds(self) -> tuple[int, int]:
        n = min(THREADS, self.num_worlds)
        return (self.num_worlds + n - 1) // n, n


class _SettingsOnDevice:
    """What ``envs.curriculum.Curriculum`` needs of a scenario, for the device env: the host scenario's
    setting columns, and ``write_settings`` that writes the host's ``_params`` and copies them to the
    device array the kernels read."""

    def __init__(self, host, params_d) -> None:
        self.host, self.params_d = host, params_d
        self.world, self.shaping_terms = host.world, host.shaping_terms

    def setting_columns(self, names) -> np.ndarray:
        return self.host.setting_columns(names)

    def write_settings(self, columns: np.ndarray, values: np.ndarray) -> None:
        if len(columns):
            self.host.write_settings(columns, values)
            upload(self.params_d, self.host._params)


def _adapter(scenario: str):
    import importlib

    module, _, name = DEVICE_SCENARIOS[scenario].partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


class DeviceEnv:
    """E worlds x N agents of a scenario on the GPU (see the module docstring)."""

    on_device = True

    def __init__(self, scenario: str = "navigation", num_worlds: int = 8, n_agents: int = 10,
                 seed: int | None = None, curriculum: CurriculumSpec | None = None, **config: Any):
        if scenario not in DEVICE_SCENARIOS:
            raise ConfigError(f"the device env runs {sorted(DEVICE_SCENARIOS)}, got {scenario!r}; other scenarios "
                              "run on the GPU through BatchEnv with backend 'cuda' (physics on the GPU, scenario on "
                              "the CPU)")
        config.pop("backend", None)
        require()
        import torch

        from ..scenarios import make_scenario
        from . import env_kernels
        from .device_world import DeviceWorld

        self._ek = env_kernels
        self.host = host = make_scenario(scenario, num_worlds, n_agents, seed, **config)   # numba: layouts, spaces
        self.config = host.config
        self.num_worlds = E = host.world.num_worlds
        self.n_agents = N = host.n_learners
        self.num_slots = S = E * N
        self.observation_space, self.action_space = host.observation_space(), host.action_space()
        self.agent_action_space = self.action_space
        self.tokens = None
        self.world = DeviceWorld(host.world)   # the learners, then the scenario's scripted robots (if any)
        self.launch = Launch(E, N)             # over the learners (the env's slots)
        self.sc = sc = _adapter(scenario)(host, self.world, self.launch)
        self.channel = None   # comm_dim > 0: gpu.channel (messages after the scenario's actions, received after its obs)
        if host.config.comm_dim:
            from .channel import DeviceChannel

            self.channel = ch = DeviceChannel(host, seed, self.world, self.launch, sc.obs)
            self.observation_space, self.action_space = ch.observation_space, ch.action_space
            self.agent_action_space, self.tokens = ch.agent_action_space, ch.tokens
        self._obs = sc.obs if self.channel is None else self.channel.obs    # [E, N, D] the observations
        self._clamped = self.action_space.shape[0] if self.tokens is None else self.tokens[0]   # columns in [-1, 1]
        self.obs_dim = D = int(self.observation_space.shape[0])
        self.act_dim = A = int(self.action_space.shape[0])
        self.max_steps = host.max_steps
        self.stat_names = tuple(host.episode_stats)
        self.success_stat = host.success_stat
        self.metrics = dict(host.metrics)
        self.info_keys = tuple(host.info_keys)
        K = len(self.stat_names)
        self.device = torch.device("cpu" if simulated() else "cuda")
        f32, b = np.float32, np.bool_
        new = to_device
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
        # copies of the scenario's per-step info (taken before resets and respawns change it)
        self.info_d = {key: new(np.zeros((E, N), host.info[key].dtype)) for key in self.info_keys}
        self.actions_d = new(np.zeros((E, N, A), f32))
        self._all = new(np.ones(E, b))
        # torch views over the slots (no copies)
        tv = torch_view
        self.obs = tv(self._obs).view(S, D)
        self.reward = tv(sc.reward).view(S)
        self.terminated = tv(self.terminated_d).view(S)
        self.truncated = tv(self.truncated_d).view(S)
        self.actions = tv(self.actions_d).view(S, A)
        self.info = {key: tv(arr).view(S) for key, arr in self.info_d.items()}
        self.info.update({"terminal_obs": tv(self.terminal_obs_d).view(S, D), "world_done": tv(self.world_done),
                          "episode_return": tv(self.out_return).view(S), "episode_length": tv(self.out_length).view(S)})
        for j, name in enumerate(self.stat_names):
            self.info["episode_" + name] = tv(self.out_stats)[j].view(S)
        self._running = (tv(self.ep_return).view(S), tv(self.ep_length).view(S), tv(self.ep_stats).view(K, S))
        # each world's settings (one level = the configured values, unless a curriculum is given)
        self.curriculum = Curriculum(curriculum or trivial_spec(host), _SettingsOnDevice(host, sc.params), seed)
        cur = self.curriculum
        self._cur_stat = (self.stat_names.index(cur.spec.stat) if cur.active and cur.spec.stat in self.stat_names
                          else None)
        self._crowded = torch.zeros(E, dtype=torch.bool, device=self.device)   # [E] autoresets that fell short
        self._steps = 0
        self._needs_reset = True

    # ------------------------------------------------------------------ the env API
    def seed(self, seed: int | None) -> None:
        upload(self.sc.rng, seed_states(seed, self.num_worlds))
        self.curriculum.seed(seed)
        if self.channel is not None:
            self.channel.seed(seed)

    def reset(self, seed: int | None = None):
        """Reset every world; returns the observation view [S, D] (a torch tensor on the GPU)."""
        if seed is not None:
            self.seed(seed)
        self.curriculum.on_reset(np.ones(self.num_worlds, np.bool_))
        self.sc.reset(self._all)
        self.world.refresh_lidar(self._all)
        self.sc.observe(self._all)
        if self.channel is not None:
            self.channel.restart(worlds=self._all)
        for arr in (self.t, self.ep_return, self.ep_length, self.ep_stats):
            torch_view(arr).zero_()
        short = self.sc.short()
        if short is not None:
            self._crowded.zero_()
            self._raise_if_crowded(short, "")
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
        a = a.reshape(self.num_slots, self.act_dim)
        bad = ~torch.isfinite(a).all()
        tokens = None if self.channel is None else self.channel.bad_tokens(a)
        if bool(bad if tokens is None else bad | tokens):   # one host sync for both checks
            if bool(bad):
                raise ValueError("actions contain NaN or inf")
            self.channel.check_tokens(a)   # comm_vocab: whole numbers in 0 .. V-1, else ValueError
        self.actions.copy_(a)
        self.actions[:, :self._clamped].clamp_(-1.0, 1.0)
        w, sc, ek = self.world, self.sc, self._ek
        agents, worlds = self.launch.agents(), self.launch.worlds()
        w.step(sc.world_actions(self.actions_d))   # scripted robots: their policy runs first, in the adapter
        sc.after_step()
        if self.channel is not None:
            self.channel.deliver(self.actions_d)   # the physics read only the scenario's columns
        for key, dst in self.info_d.items():
            ek.copy_flags[agents](sc.info[key], dst)
        ek.advance_time[worlds](self.t, self.max_steps, self.world_done, self.refresh)
        ek.bookkeep[agents](self.world_done, w.active, sc.reward, sc.terminated, sc.stats, self.ep_return,
                            self.ep_length, self.ep_stats, self.terminated_d, self.truncated_d, self._obs,
                            self.terminal_obs_d, self.out_return, self.out_length, self.out_stats, self.respawn_mask)
        sc.respawn(self.respawn_mask, self.refresh)
        if self.curriculum.active:
            self._curriculum_step()
        sc.reset(self.world_done)
        short = sc.short()
        if short is not None:      # the CPU env checks every reset; here every CROWDED_EVERY steps (a sync)
            self._crowded |= short & self.info["world_done"]
            self._steps += 1
            if self._steps % CROWDED_EVERY == 0:
                self._raise_if_crowded(self._crowded, f" (an episode reset within the last {CROWDED_EVERY} steps)")
        w.refresh_lidar(self.refresh)
        sc.observe(self.refresh)
        if self.channel is not None:
            self.channel.restart(self.respawn_mask, self.world_done)
        return self.obs, self.reward, self.terminated, self.truncated, self.info

    def _curriculum_step(self) -> None:
        """``BatchEnv.step``'s curriculum calls: record the agent-episodes that ended with this step,
        advance the stage, draw the levels of the worlds about to reset (their settings reach the
        device before ``sc.reset`` reads them)."""
        cur, N = self.curriculum, self.n_agents
        if self._cur_stat is not None:
            done = (self.terminated | self.truncated).cpu().numpy()
            idx = np.flatnonzero(done)
            if len(idx):
                stat = self.info["episode_" + self.stat_names[self._cur_stat]].cpu().numpy()
                cur.record(idx // N, stat[idx])
        cur.advance(self.num_slots)
        world_done = self.info["world_done"].cpu().numpy()
        if world_done.any():
            cur.on_reset(world_done)

    @staticmethod
    def _raise_if_crowded(short, when: str) -> None:
        if bool(short.any()):
            bad = int(short.nonzero()[0, 0])
            raise RuntimeError(f"world {bad}: could not place every agent and goal{when}; the arena is too crowded "
                               "(raise arena_size or lower n_obstacles)")

    @property
    def active_slots(self):
        """[S] bool: the slots whose robot takes part now (``BatchEnv.active_slots``): a torch view of the
        world's flags, or with scripted robots a copy of the learners' columns."""
        return torch_view(self.world.active)[:, :self.n_agents].reshape(self.num_slots)

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

        self.curriculum.set_scale(check_shaping_scale(scale))

    def heuristic_actions(self):
        """The scenario's scripted policy on the current observations, [S, A] (computed on the host; zero
        messages unless the scenario's heuristic uses the channel, as ``BatchEnv``'s)."""
        import torch

        from ..envs.comm import heuristic_with_channel

        h = self.host
        act = heuristic_with_channel(h.heuristic, self.obs.cpu().numpy(), h.config, h.heuristic_uses_channel)
        return torch.as_tensor(act, device=self.device)

    def episode_metrics(self):
        """A collector of finished agent-episodes for this env's info tensors (``gpu.metrics``)."""
        from .metrics import DeviceEpisodeMetrics

        return DeviceEpisodeMetrics(self.metrics, self.device)

    def rng_state(self) -> np.ndarray:
        """The per-world random streams, as a host copy (for checkpoints): the scenario's [E], then with a
        channel its loss/noise streams [E]."""
        out = np.zeros(self.num_worlds, np.uint64)
        download(self.sc.rng, out)
        return out if self.channel is None else np.concatenate([out, self.channel.rng_state()])

    def set_rng_state(self, state: np.ndarray) -> None:
        state = np.asarray(state, np.uint64)
        E = self.num_worlds
        if state.shape != ((E,) if self.channel is None else (2 * E,)):
            raise ValueError(f"the random streams of this env have shape {self.rng_state().shape}, got {state.shape}")
        upload(self.sc.rng, np.ascontiguousarray(state[:E]))
        if self.channel is not None:
            self.channel.set_rng_state(state[E:])

    def synchronize(self) -> None:
        synchronize()

    def close(self) -> None:
        pass

