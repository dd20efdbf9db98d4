"""The scenario contract: what a task is, declared in one place and read by everything else.

A scenario owns its world (``self.world``, a backend from ``core.backends``) and everything that
is specific to its task. ``envs/``, ``render/``, ``training/`` and ``bench`` hold no scenario code:
they size their buffers from the spaces, log the metrics and draw through the hook declared here.

What a subclass declares (class attributes and methods):

- ``name`` and ``Config`` (a frozen dataclass extending ``ScenarioConfig``; an unknown key is an
  error).
- ``observation_space()`` / ``action_space()``: one agent's Gymnasium ``Box`` (any widths). Out-of-
  range actions are clipped to the action space by the envs; NaN/inf are refused.
- ``info_keys``: ``{name: meaning}`` of per-agent, per-step values; the scenario writes them into
  ``self.info[name]`` (``[E, N]`` arrays) at every step. The envs return them as ``info`` entries.
- ``episode_stats``: ``{name: meaning}`` of per-agent-episode statistics. Each is the sum over the
  agent's episode of per-step values that the scenario writes into ``self.stats[k]`` (float32
  ``[K, E, N]``, in the order of ``episode_stats``). The episode engine (``BatchEnv``) adds them up
  and reports them when the episode ends (``info["episode_<name>"]``).
- ``metrics``: ``{metric: (stat, meaning)}``: a metric is the mean of a stat over finished
  agent-episodes. Trainers log it as ``env/<metric>``, ``entropy eval`` prints it.
- ``success_stat``: the stat that says an episode succeeded (SB3's ``is_success``), or None.
- ``heuristic(obs)``: a scripted policy, batched over any leading axes; it may read only
  ``self.config`` (the shared-memory env calls it on a config holder). With a channel on it sees
  the scenario's part of the observation and the engine sends zero messages for it, unless the
  class sets ``heuristic_uses_channel = True``: then it gets the whole observation (the received
  block included) and returns the whole action (its messages included).
- ``settings``: ``{config field: index}`` of the settings that may change during a run and differ
  per world (curricula: ``envs.curriculum``) without changing any array shape. The scenario's
  kernels read them from ``self._params`` (float64): ``[E, P]`` when ``per_world_settings`` (each
  world its own row), else ``[P]`` (one value for every world). ``shaping_terms`` are the settings
  ``set_shaping_scale`` multiplies (``TrainConfig.shaping_warmup``). ``check_settings`` refuses
  values a scenario cannot take (e.g. more walls than its arrays hold).
- ``draw(canvas, world_index)``: optional, draws what the renderer must show besides walls and
  agents (goals, landmarks, objects) through the small ``Canvas`` API of ``render.renderer``.

Arrays the scenario owns (``allocate`` makes them; written in place at every ``reset``/``respawn``/
``step``): ``obs`` float32 ``[E, N, obs_dim]``, ``reward`` float32 ``[E, N]``, ``terminated`` bool
``[E, N]`` (the agent's episode ends by the task's rule: e.g. it reached its goal), ``info`` and
``stats``; and ``rng``, one random stream per world (uint64 ``[E]``, ``core.rng``): a scenario draws
world ``w``'s randomness only from ``rng[w]`` (in kernels with ``core.rng.uniform``, in numpy with
``core.rng.world_generator``), so one seed gives the same worlds however they are split over
threads or worker processes.
Truncation (``max_steps``) and what happens after an episode ends (respawn, leave, reset) are the
episode engine's, not the scenario's. Only the scenario and its world write agent state.

Scripted robots (``n_scripted``, 0 by default): a scenario may fill its world with ``n_agents``
learners followed by ``n_scripted`` non-learning robots (evaders, say) that its own compiled policy
drives inside ``step`` (``scenarios.scripted``). They are ordinary robots for the physics, the lidar
and the neighbour sensor, but not agents of any env: ``N`` above is the number of learners
(``n_learners``), the contract's arrays and every env's observations, actions and rewards cover
robots ``0 .. N-1`` of each world only, and ``learner_active`` [E, N] (a view of ``world.active``)
is what the episode engine reads and clears. Set ``n_scripted`` before ``allocate``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from ..config import field, require
from ..core.channel_config import ChannelConfig
from ..core.params import WorldConfig
from ..core.rng import seed_states
from ..core.state import WorldState


def check_shaping_scale(scale: float) -> float:
    """``scale`` as a float, or ValueError unless it is a finite number >= 0."""
    scale = float(scale)
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"shaping scale must be a finite number >= 0, got {scale!r}")
    return scale


@dataclass(frozen=True)
class ScenarioConfig(ChannelConfig, WorldConfig):
    """Settings every scenario has: the physics of its world, the communication channel (``comm_*``,
    off by default; ``core.channel_config``) and the episode length."""

    max_steps: int = field(500, "Episode length limit (truncation), steps.")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(isinstance(self.max_steps, int) and self.max_steps >= 1,
                f"max_steps must be an integer >= 1, got {self.max_steps!r}")


def unchangeable_message(cls: type, name: str) -> str:
    """Why ``name`` cannot be a curriculum setting of scenario class ``cls`` (one line)."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(cls.Config)}
    allowed = sorted(cls.settings) or "none"
    if name in fields:
        return (f"scenario {cls.name!r}: {name!r} cannot change during a run (it fixes array shapes or is read "
                f"only once); settings that can: {allowed}")
    return f"scenario {cls.name!r} has no setting {name!r}; settings that can change during a run: {allowed}"


class Scenario:
    """Base class of scenarios; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = ScenarioConfig
    info_keys: ClassVar[dict[str, str]] = {}
    episode_stats: ClassVar[dict[str, str]] = {}
    metrics: ClassVar[dict[str, tuple[str, str]]] = {}
    success_stat: ClassVar[str | None] = None
    n_scripted: int = 0      # non-learning robots per world, the world's last ones (see the module docstring)
    heuristic_uses_channel: ClassVar[bool] = False
    settings: ClassVar[dict[str, int]] = {}
    shaping_terms: ClassVar[tuple[str, ...]] = ()
    per_world_settings: ClassVar[bool] = False

    config: Any
    world: WorldState
    obs: np.ndarray          # float32 [E, N, obs_dim]
    reward: np.ndarray       # float32 [E, N]
    terminated: np.ndarray   # bool [E, N]
    info: dict[str, np.ndarray]   # name -> [E, N]
    stats: np.ndarray        # float32 [K, E, N], K = len(episode_stats)
    _params: np.ndarray      # float64 [E, P] (per_world_settings) or [P]: what the kernels read

    # ------------------------------------------------------------------ spec
    def observation_space(self) -> spaces.Box:
        """One agent's observation space."""
        raise NotImplementedError

    def action_space(self) -> spaces.Box:
        """One agent's action space (the envs clip actions to it)."""
        raise NotImplementedError

    @property
    def obs_dim(self) -> int:
        return int(self.observation_space().shape[0])

    @property
    def act_dim(self) -> int:
        return int(self.action_space().shape[0])

    @property
    def n_learners(self) -> int:
        """Learning robots per world (the envs' agents): the world's first ``n_learners`` robots."""
        return self.world.n_agents - self.n_scripted

    @property
    def learner_active(self) -> np.ndarray:
        """bool [E, n_learners]: the learners' ``world.active`` flags (the array itself without
        scripted robots, else a view of its first columns); writes go to the world."""
        return self.world.active if self.n_scripted == 0 else self.world.active[:, :self.n_learners]

    @property
    def max_steps(self) -> int:
        return int(self.config.max_steps)

    def allocate(self, obs_dim: int, seed: int | None) -> None:
        """Allocate the arrays of the contract for this scenario's world (call in ``__init__``)."""
        E, N = self.world.num_worlds, self.n_learners
        self.rng = seed_states(seed, E)                                      # [E] per-world streams
        self.obs = np.zeros((E, N, obs_dim), np.float32)                    # [E, N, D]
        self.reward = np.zeros((E, N), np.float32)                          # [E, N]
        self.terminated = np.zeros((E, N), np.bool_)                        # [E, N]
        self.stats = np.zeros((len(self.episode_stats), E, N), np.float32)  # [K, E, N]
        self.info = {}

    # ------------------------------------------------------------------ episodes
    def seed(self, seed: int | None) -> None:
        """Restart every world's random stream from ``seed``."""
        self.rng[:] = seed_states(seed, self.world.num_worlds)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in the worlds where ``mask`` [E] is True (all if None)."""
        raise NotImplementedError

    def respawn(self, mask: np.ndarray) -> None:
        """Restart the agents where ``mask`` [E, N] is True inside their running worlds."""
        raise NotImplementedError

    def remove(self, mask: np.ndarray) -> None:
        """Take the agents where ``mask`` [E, N] is True out of their worlds (they left: evaluation
        and PettingZoo semantics). They are no longer simulated nor sensed by others."""
        self.learner_active[mask] = False

    def step(self, actions: np.ndarray) -> None:
        """Advance all worlds with float32 actions [E, N, act_dim] already clipped to the action
        space; refresh ``obs``, ``reward``, ``terminated``, ``info`` and ``stats``."""
        raise NotImplementedError

    def set_shaping_scale(self, scale: float) -> None:
        """Multiply the scenario's optional reward-shaping terms (``shaping_terms``) by ``scale`` (>= 0)
        from the next step on, in every world (``TrainConfig.shaping_warmup``): their configured values
        times ``scale``, written with ``write_settings``. Scenarios without shaping terms ignore it."""
        scale = check_shaping_scale(scale)
        if self.shaping_terms:
            base = np.array([float(getattr(self.config, n)) for n in self.shaping_terms], np.float64)
            self.write_settings(self.setting_columns(self.shaping_terms), base * scale)

    # ------------------------------------------------------------------ settings that change during a run
    @classmethod
    def setting_columns(cls, names) -> np.ndarray:
        """The ``_params`` columns of the settings ``names`` (int64 [K]); ConfigError for a name that
        is not one of ``settings``."""
        from ..config import ConfigError

        bad = [n for n in names if n not in cls.settings]
        if bad:
            raise ConfigError(unchangeable_message(cls, bad[0]))
        return np.array([cls.settings[n] for n in names], np.int64)

    @classmethod
    def check_settings(cls, config: Any, values: dict[str, float]) -> None:
        """ConfigError unless every ``values[name]`` is a setting of this scenario with a finite value
        this scenario (configured as ``config``) can take. Subclasses add their limits."""
        from ..config import ConfigError

        cls.setting_columns(list(values))
        for name, v in values.items():
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)):
                raise ConfigError(f"setting {name!r} must be a finite number, got {v!r}")

    def write_settings(self, columns: np.ndarray, values: np.ndarray) -> None:
        """Write ``values`` (float64 [K] for every world, or [E, K] one row per world) into the
        ``_params`` columns ``columns`` [K]; the kernels read them from the next reset or step on.
        A scenario whose kernels read one ``_params`` row for all worlds refuses rows that differ. Nothing
        to write (no columns) is a no-op, also for scenarios without ``_params``."""
        if len(columns) == 0:
            return
        p = self._params
        values = np.asarray(values, np.float64)
        if p.ndim == 2:
            p[:, columns] = values
            return
        if values.ndim == 2:
            if not (values == values[:1]).all():
                raise ValueError(f"scenario {self.name!r} reads its settings once for all worlds: "
                                 "they cannot differ per world")
            values = values[0]
        p[columns] = values

    # ------------------------------------------------------------------ policies and drawing
    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """A scripted policy: actions [..., act_dim] from observations [..., obs_dim]."""
        raise NotImplementedError

    def draw(self, canvas: Any, world_index: int) -> None:
        """Draw the task's own things (goals, landmarks, ...) of one world; nothing by default."""
