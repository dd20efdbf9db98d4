"""BatchEnv: E worlds x N agents as E*N flat slots, arrays in and arrays out — the episode engine.

This is the one implementation of episode semantics: trainers, evaluation, the SB3 ``VecEnv``,
the PettingZoo env, GIFs and ``entropy play`` all sit on it. Every slot is one agent; one policy
drives all of them. What an agent observes, does and scores is its scenario's (``scenarios.base``);
when episodes end and what happens then is decided here.

Episodes (``on_goal``, for an agent whose episode *terminates* by the scenario's rule, e.g. it
reached its goal):

- ``"respawn"`` (training): the agent is immediately restarted by the scenario inside its running
  world; when a world reaches ``max_steps`` all of its agents are truncated and the world is
  reset. A slot therefore always holds a live agent, as SB3 and recurrent PPO expect.
- ``"deactivate"`` (evaluation, PettingZoo semantics): the agent leaves the world (it is no longer
  simulated nor sensed); a world ends when every agent has left or at ``max_steps``. Slots of
  agents that have left return zero reward and are not ``done`` again.

``autoreset=True`` (default) resets a finished world inside ``step`` (SB3's convention): the
observation returned for a finished slot is already the first of its next episode and the last one
is in ``info["terminal_obs"]``. With ``autoreset=False`` finished worlds wait (an emptied world
has nothing left to simulate; every world is truncated at the same step) and ``over`` becomes True
once every world has finished: call ``reset()`` then.

With a communication channel (any scenario, ``comm_dim > 0``; ``envs/comm.py``, ``core/channel.py``)
an action is the scenario's actions followed by ``comm_dim`` message values in [-1, 1] (with
``comm_vocab = V``: ``comm_dim`` tokens, whole numbers 0 .. V-1, anything else refused), and an
observation is the scenario's followed by what the agent received; a new episode starts with an
empty received block and the agent's or world's old messages forgotten.

Curricula (``envs/curriculum.py``): ``curriculum`` (a ``CurriculumSpec``; None = the configured
settings) says which level of settings each world runs on; a world draws or takes its level when it
resets, finished agent-episodes are recorded for the curriculum's rules, and
``set_shaping_scale`` scales the shaping terms of every world's level.

``info`` holds, as arrays over the slots: the scenario's per-step ``info_keys``, ``terminal_obs``
[S, D], ``world_done`` [E], and for slots whose episode ends in this step ``episode_return``,
``episode_length`` and ``episode_<stat>`` for each of the scenario's ``episode_stats``.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..scenarios import make_scenario
from ..scenarios.base import check_shaping_scale
from .batch_kernels import bookkeep
from .comm import EngineChannel, heuristic_with_channel
from .curriculum import Curriculum, CurriculumSpec, trivial_spec
from .validate import action_bounds, check_actions


class BatchEnv:
    """Vectorised multi-agent env over ``num_worlds`` worlds of ``n_agents`` agents."""

    def __init__(self, scenario: str = "navigation", num_worlds: int = 8, n_agents: int = 10,
                 seed: int | None = None, on_goal: Literal["respawn", "deactivate"] = "respawn",
                 autoreset: bool = True, curriculum: CurriculumSpec | None = None, **config: Any):
        if on_goal not in ("respawn", "deactivate"):
            raise ValueError(f"on_goal must be 'respawn' or 'deactivate', got {on_goal!r}")
        self._init_args = dict(scenario=scenario, num_worlds=num_worlds, n_agents=n_agents, seed=seed,
                               on_goal=on_goal, autoreset=autoreset, curriculum=curriculum, **config)
        self.scenario = sc = make_scenario(scenario, num_worlds, n_agents, seed, **config)
        # each world's settings (one level = the configured values, unless a curriculum is given)
        self.curriculum = Curriculum(curriculum or trivial_spec(sc), sc, seed)
        self.on_goal = on_goal
        self.autoreset = bool(autoreset)
        self.num_worlds = E = sc.world.num_worlds
        self.n_agents = N = sc.n_learners            # the learners (scripted robots are not agents)
        self.num_slots = S = E * N
        # the communication channel (any scenario, comm_dim > 0): messages after the scenario's actions,
        # what was received after its observation (envs/comm.py)
        self.channel = ch = EngineChannel(sc, seed) if sc.config.comm_dim > 0 else None
        self.observation_space = sc.observation_space() if ch is None else ch.observation_space
        self.action_space = sc.action_space() if ch is None else ch.action_space   # the flat Box of the arrays
        # one agent's action space as a user sees it (PettingZoo): a Dict of move and message tokens with
        # comm_vocab, else the Box above; tokens = (first token column, vocabulary) or None
        self.agent_action_space = self.action_space if ch is None else ch.agent_action_space
        self.tokens = None if ch is None else ch.tokens
        self.obs_dim = D = int(self.observation_space.shape[0])
        self.act_dim = A = int(self.action_space.shape[0])
        self.max_steps = sc.max_steps
        self.stat_names = tuple(sc.episode_stats)             # the scenario's per-episode statistics
        self.success_stat = sc.success_stat
        self.metrics = dict(sc.metrics)                        # metric -> (stat, meaning)
        self.info_keys = tuple(sc.info_keys)                   # the scenario's per-step info
        K = len(self.stat_names)
        self.obs = (sc.obs if ch is None else ch.obs).reshape(S, D)   # [S, D] view, updated in place
        self._reward = sc.reward.reshape(S)                   # [S] view
        self._scenario_terminated = sc.terminated.reshape(S)  # [S] view
        self._stats = sc.stats.reshape(K, S)                  # [K, S] view
        self._active = sc.learner_active                     # [E, N] view
        self._actions = np.zeros((E, N, A), np.float32) if ch is None else ch.actions  # [E, N, A] validated
        self._shapes = ((S, A), (E, N, A))
        self._low, self._high = action_bounds(self.action_space, (E, N, A))
        self.t = np.zeros(E, np.int64)                       # [E] steps since world reset
        self._ep_return = np.zeros(S, np.float32)            # [S] running episode stats
        self._ep_length = np.zeros(S, np.int64)
        self._ep_stats = np.zeros((K, S), np.float32)        # [K, S]
        self._terminated = np.zeros(S, np.bool_)              # [S] returned views
        self._truncated = np.zeros(S, np.bool_)
        self._world_trunc = np.zeros(E, np.bool_)             # [E]
        self._finished = np.zeros(E, np.bool_)                # [E] without autoreset: world has ended
        self.terminal_obs = np.zeros((S, D), np.float32)     # [S, D] valid where done
        self.info: dict[str, np.ndarray] = {}
        self._info_copies = []
        for key in sc.info_keys:
            src = sc.info[key].reshape(S)
            self.info[key] = np.zeros(S, src.dtype)          # [S] copy of the scenario's value this step
            self._info_copies.append((self.info[key], src))
        self.info.update({
            "terminal_obs": self.terminal_obs,
            "world_done": np.zeros(E, np.bool_),             # [E] the world ended with this step
            "episode_return": np.zeros(S, np.float32),       # [S] stats of episodes ending now
            "episode_length": np.zeros(S, np.int64),
        })
        for name in self.stat_names:
            self.info["episode_" + name] = np.zeros(S, np.float32)
        cur = self.curriculum
        self._cur_stat = (self.stat_names.index(cur.spec.stat) if cur.active and cur.spec.stat in self.stat_names
                          else None)
        self._needs_reset = True

    @property
    def config(self):
        return self.scenario.config

    @property
    def active_slots(self) -> np.ndarray:
        """[S] bool: the slots whose robot takes part now (False: sitting out its world's episode with
        ``active_fraction`` < 1, or removed with ``on_goal='deactivate'``); the trainer leaves the
        others out of its update."""
        return self._active.reshape(self.num_slots)

    @property
    def over(self) -> bool:
        """Without autoreset: every world has finished its episode (call ``reset()``)."""
        return bool(self._finished.all())

    def __getstate__(self) -> dict[str, Any]:
        return {"init_args": self._init_args}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A copy (pickle, ``copy.deepcopy``) is a fresh env with the same settings: call ``reset()``.
        Copying the live arrays would split the views that share memory (observations, rewards and
        statistics are views of the scenario's arrays), so nothing of the running episodes travels."""
        self.__init__(**state["init_args"])

    def seed(self, seed: int | None) -> None:
        self.scenario.seed(seed)
        self.curriculum.seed(seed)
        if self.channel is not None:
            self.channel.channel.seed(seed)

    def seed_block(self, seed: int | None, total_worlds: int, first: int) -> None:
        """The random streams worlds ``first ..`` have in an env of ``total_worlds`` worlds seeded with
        ``seed`` (a worker process holding a block of the worlds: ``envs.shm``)."""
        from ..core.rng import seed_states

        self.scenario.rng[:] = seed_states(seed, total_worlds)[first:first + self.num_worlds]
        if self.channel is not None:
            self.channel.channel.seed_worlds(seed, total_worlds, first)

    def rng_state(self) -> np.ndarray:
        """A copy of the per-world random streams (uint64): the scenario's [E], then the channel's [E]
        when it is on (checkpoints: a resumed run continues the same draws)."""
        parts = [self.scenario.rng] + ([self.channel.channel.rng] if self.channel is not None else [])
        return np.concatenate(parts)

    def set_rng_state(self, state: np.ndarray) -> None:
        """Restore ``rng_state()``; ValueError (nothing changed) for another shape."""
        state = np.asarray(state, np.uint64)
        want = self.rng_state().shape
        if state.shape != want:
            raise ValueError(f"random streams of shape {want} expected, got {state.shape}")
        E = self.num_worlds
        self.scenario.rng[:] = state[:E]
        if self.channel is not None:
            self.channel.channel.rng[:] = state[E:]

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every world; returns the observation view [S, D]."""
        if seed is not None:
            self.seed(seed)
        self.curriculum.on_reset(np.ones(self.num_worlds, np.bool_))
        self.scenario.reset()
        if self.channel is not None:
            self.channel.restart()
        self.t[:] = 0
        self._finished[:] = False
        self._clear_episodes(slice(None))
        self._needs_reset = False
        return self.obs

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Step with actions [S, A] (or [E, N, A]); returns obs, reward, terminated, truncated, info.

        Returned arrays are views of internal buffers, overwritten by the next call.
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        if not self.autoreset and self._finished.all():
            raise RuntimeError("every world has finished its episode: call reset()")
        check_actions(actions, self._shapes, self._actions, self._low, self._high, self.tokens)
        sc = self.scenario
        E, N = self.num_worlds, self.n_agents
        with sc.world.threads(step=True):   # small batches on one thread; automatic thread count (core/threads)
            if self.channel is None:
                sc.step(self._actions)
            else:
                sc.step(self.channel.own_actions())
                self.channel.deliver()
            self.t += 1
        info = self.info
        for dst, src in self._info_copies:
            np.copyto(dst, src)
        terminated, truncated = self._terminated, self._truncated
        world_done = info["world_done"]
        n_done = bookkeep(self._active, self._reward, self._scenario_terminated, self._stats, self.t,
                          self.max_steps, N, self._ep_return, self._ep_length, self._ep_stats,
                          terminated, truncated, self._world_trunc, world_done)
        if n_done:
            idx = np.flatnonzero(terminated | truncated)
            self.terminal_obs[idx] = self.obs[idx]
            info["episode_return"][idx] = self._ep_return[idx]
            info["episode_length"][idx] = self._ep_length[idx]
            for j, name in enumerate(self.stat_names):
                info["episode_" + name][idx] = self._ep_stats[j, idx]
            if self._cur_stat is not None:
                self.curriculum.record(idx // N, self._ep_stats[self._cur_stat, idx])
            self._clear_episodes(idx)
            ended = terminated.reshape(E, N)
            if self.on_goal == "respawn":
                respawn = ended & ~self._world_trunc[:, None]
                if respawn.any():
                    sc.respawn(respawn)
                    if self.channel is not None:
                        self.channel.restart(agents=respawn)
            elif ended.any():
                sc.remove(ended)
                world_done |= ~self._active.any(axis=1)   # every learner has left
        self.curriculum.advance(self.num_slots)
        if self.autoreset:
            if world_done.any():
                self.curriculum.on_reset(world_done)
                with sc.world.threads():
                    sc.reset(world_done)
                if self.channel is not None:
                    self.channel.restart(worlds=world_done)
                self.t[world_done] = 0
                self._clear_episodes(np.repeat(world_done, N))
        else:
            world_done &= ~self._finished
            self._finished |= world_done
        return self.obs, self._reward, terminated, truncated, info

    def running_episodes(self) -> dict[str, np.ndarray]:
        """The statistics of the episodes still running, so far, as ``info``-style arrays over the
        slots (``episode_return``, ``episode_length``, ``episode_<stat>``): copies."""
        out = {"episode_return": self._ep_return.copy(), "episode_length": self._ep_length.copy()}
        for j, name in enumerate(self.stat_names):
            out["episode_" + name] = self._ep_stats[j].copy()
        return out

    def _clear_episodes(self, slots) -> None:
        """Zero the running episode stats of ``slots`` (an index, mask or slice)."""
        self._ep_return[slots] = 0
        self._ep_length[slots] = 0
        self._ep_stats[:, slots] = 0

    def set_shaping_scale(self, scale: float) -> None:
        """Scale the scenario's optional reward-shaping terms (``Scenario.shaping_terms``) of every
        world's level by ``scale`` >= 0 (``TrainConfig.shaping_warmup``)."""
        self.curriculum.set_scale(check_shaping_scale(scale))

    def heuristic_actions(self) -> np.ndarray:
        """The scenario's scripted policy on the current observations, [S, A] (zero messages unless
        the scenario's heuristic uses the channel)."""
        sc = self.scenario
        return heuristic_with_channel(sc.heuristic, self.obs, sc.config, sc.heuristic_uses_channel)

    def close(self) -> None:
        pass
