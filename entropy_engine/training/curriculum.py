"""Curricula in the run config: typed frozen configs, their checks, and the spec the env runs.

A run's ``curriculum`` table (``[train.curriculum]`` in a TOML file, ``curriculum:`` in YAML, a
preset's ``curriculum=dict(...)``, or ``--curriculum JSON`` on the command line) holds either
``stages`` or ``levels``. Every setting it names is one of the scenario's changeable settings
(``Scenario.settings``: e.g. navigation's ``n_obstacles``, ``min_goal_distance``,
``active_fraction``, reward weights); anything else, an unknown key, a threshold outside the
metric's range or a value the scenario cannot take (more walls than configured) is a
``ConfigError`` when the config is resolved, before training starts.

The run's ``env`` table is the full-difficulty task: stages and levels override some of its
settings, ``entropy eval`` evaluates on the last stage (stages) or on the ``env`` settings
themselves (levels) unless told otherwise.

Stages::

    [train.curriculum]
    metric = "success_rate"                      # a metric of the scenario (default: its success metric)
    [[train.curriculum.stages]]
    env = { n_obstacles = 0, min_goal_distance = 1.0 }
    threshold = 0.8                              # promote when the window's mean reaches it
    window = 200                                 # agent-episodes
    min_steps = 0                                # agent-steps at least in the stage
    max_steps = 2_000_000                        # promote anyway after this many (0 = never)
    [[train.curriculum.stages]]                  # the last stage: never promoted
    env = {}

Levels (automatic sampling by learnability)::

    [train.curriculum.levels]
    grid = { n_obstacles = [0, 4, 8, 12] }       # every combination of the listed values
    ranges = { min_goal_distance = [1.0, 5.0, 3] }   # low, high, count: evenly spaced values
    uniform_share = 0.2
    stats_window = 200
    top_k = 0                                    # > 0: learnability only among the k most learnable levels
    target_share = 0.0                           # share of draws on the full task (the env settings)
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Optional

import numpy as np

from ..config import ConfigError, build_config, field
from ..envs.curriculum import CurriculumSpec

MAX_LEVELS = 256


@dataclass(frozen=True)
class StageConfig:
    """One stage: setting overrides and the rule that promotes the run to the next stage."""

    env: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"help": (
        "Overrides of the scenario's changeable settings in this stage (e.g. n_obstacles, goal_reward).")})
    threshold: Optional[float] = field(None, "Promote when the metric over the last `window` agent-episodes of "
                                             "the stage reaches this (None = only max_steps promotes).")
    window: int = field(100, "Agent-episodes the promotion metric is averaged over.")
    min_steps: int = field(0, "Agent-steps the run spends in this stage at least.")
    max_steps: int = field(0, "Promote after this many agent-steps in the stage whatever the metric (0 = never).")


@dataclass(frozen=True)
class LevelsConfig:
    """A set of levels (a grid of setting values), sampled per world by learnability."""

    grid: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"help": (
        "Setting -> list of values; the levels are every combination (with `ranges`).")})
    ranges: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"help": (
        "Setting -> [low, high, count]: count evenly spaced values from low to high.")})
    uniform_share: float = field(0.2, "Share of draws that pick a level uniformly at random.")
    stats_window: int = field(200, "A level's success estimate forgets its older episodes over about this many.")
    top_k: int = field(0, "Sample by learnability only among the k most learnable levels (JaxNav's buffer); "
                          "the others get only the uniform share (0 = every level).")
    target_share: float = field(0.0, "Share of draws on the full task (the run's env settings; added as a level "
                                      "when the grid lacks it): practice on what is evaluated.")


@dataclass(frozen=True)
class CurriculumConfig:
    """A run's curriculum: ``stages`` or ``levels`` (not both)."""

    metric: str = field("", "Scenario metric the rules read ('' = its success metric, e.g. success_rate).")
    compare: Literal[">=", "<="] = field(">=", "Stages: promote when the metric is >= (or <=) the threshold.")
    stages: tuple = field((), "Ordered stages (tables with env, threshold, window, min_steps, max_steps).")
    levels: Any = field(None, "Levels sampled per world (a table with grid, ranges, uniform_share, stats_window).")


def parse_curriculum(value: Any) -> CurriculumConfig | None:
    """The ``curriculum`` table (a mapping, JSON text from the command line, or empty = none) as a
    ``CurriculumConfig`` with typed stages and levels; ConfigError on unknown keys or bad types."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "{}", "none", "None")):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"curriculum must be a table (JSON on the command line): {exc}") from None
    if not isinstance(value, Mapping):
        raise ConfigError(f"curriculum must be a table, got {value!r}")
    if not value:
        return None
    try:
        cur = build_config(CurriculumConfig, value)
    except ConfigError as exc:
        raise ConfigError(f"curriculum: {exc}") from None
    stages = cur.stages
    if not isinstance(stages, (list, tuple)) or not all(isinstance(s, Mapping) for s in stages):
        raise ConfigError("curriculum.stages must be a list of tables")
    typed = []
    for i, s in enumerate(stages):
        try:
            st = build_config(StageConfig, s)
        except ConfigError as exc:
            raise ConfigError(f"curriculum stage {i}: {exc}") from None
        if not isinstance(st.env, Mapping):
            raise ConfigError(f"curriculum stage {i}: env must be a table of settings, got {st.env!r}")
        typed.append(dataclasses.replace(st, env=dict(st.env)))
    levels = cur.levels
    if levels is not None:
        if not isinstance(levels, Mapping):
            raise ConfigError(f"curriculum.levels must be a table, got {levels!r}")
        try:
            levels = build_config(LevelsConfig, levels)
        except ConfigError as exc:
            raise ConfigError(f"curriculum levels: {exc}") from None
    if bool(typed) == (levels is not None):
        raise ConfigError("curriculum needs either stages or levels (exactly one of them)")
    return dataclasses.replace(cur, stages=tuple(typed), levels=levels)


def curriculum_dict(cur: CurriculumConfig | None) -> dict[str, Any]:
    """Plain data (for config.yaml, checkpoints and model files); {} = no curriculum."""
    if cur is None:
        return {}
    out = dataclasses.asdict(cur)
    out["stages"] = [dataclasses.asdict(s) for s in cur.stages]
    return out


def _metric(cur: CurriculumConfig, scenario_cls: type) -> tuple[str, str]:
    """(metric, its episode statistic)."""
    metrics = scenario_cls.metrics
    name = cur.metric
    if not name:
        stat = scenario_cls.success_stat
        found = [m for m, (s, _) in metrics.items() if s == stat] if stat else []
        if not found:
            raise ConfigError(f"scenario {scenario_cls.name!r} has no success metric: set curriculum.metric to one "
                              f"of {sorted(metrics)}")
        name = found[0]
    if name not in metrics:
        raise ConfigError(f"curriculum.metric {name!r} is not a metric of scenario {scenario_cls.name!r}; "
                          f"its metrics: {sorted(metrics)}")
    return name, metrics[name][0]


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{what} must be a finite number, got {v!r}")
    return float(v)


def _level_rows(levels: LevelsConfig) -> tuple[tuple[str, ...], list[tuple[float, ...]]]:
    axes: dict[str, list[float]] = {}
    for name, values in levels.grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"curriculum levels: grid[{name!r}] must be a non-empty list of values, got {values!r}")
        axes[name] = [_number(v, f"curriculum levels: grid[{name!r}] value") for v in values]
    for name, spec in levels.ranges.items():
        if name in axes:
            raise ConfigError(f"curriculum levels: {name!r} is both in grid and in ranges")
        if not (isinstance(spec, (list, tuple)) and len(spec) == 3):
            raise ConfigError(f"curriculum levels: ranges[{name!r}] must be [low, high, count], got {spec!r}")
        lo, hi = (_number(v, f"curriculum levels: ranges[{name!r}] bound") for v in spec[:2])
        n = spec[2]
        if isinstance(n, bool) or not isinstance(n, int) or n < 2 or not lo < hi:
            raise ConfigError(f"curriculum levels: ranges[{name!r}] needs low < high and an integer count >= 2, "
                              f"got {spec!r}")
        axes[name] = [float(x) for x in np.linspace(lo, hi, n)]
    if not axes:
        raise ConfigError("curriculum levels: name at least one setting in grid or ranges")
    names = tuple(axes)
    rows = list(itertools.product(*(axes[n] for n in names)))
    if len(rows) > MAX_LEVELS:
        raise ConfigError(f"curriculum levels: {len(rows)} levels, at most {MAX_LEVELS}")
    return names, rows


def build_spec(cur: CurriculumConfig, scenario: str, scenario_config: Any, workers: int = 0) -> CurriculumSpec:
    """The spec ``BatchEnv`` runs, checked against the scenario (configured as ``scenario_config``):
    settings it can change, values it can take, the metric and its range. ConfigError otherwise."""
    from ..scenarios import scenario_class

    cls = scenario_class(scenario)
    if workers > 1:
        raise ConfigError("a curriculum needs the worlds in this process: use workers 0 or 1")
    metric, stat = _metric(cur, cls)
    bounded = stat == cls.success_stat     # a success statistic is 0 or 1 per episode
    if cur.stages:
        checked, thresholds = [], []
        for i, s in enumerate(cur.stages):
            what = f"curriculum stage {i}"
            try:
                values = {n: _number(v, f"setting {n!r}") for n, v in s.env.items()}
                cls.check_settings(scenario_config, values)
            except ConfigError as exc:
                raise ConfigError(f"{what}: {exc}") from None
            last = i == len(cur.stages) - 1
            t = s.threshold
            if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)
                                  or (bounded and not 0.0 <= t <= 1.0)):
                raise ConfigError(f"{what}: threshold must be " + ("in [0, 1] for " if bounded else "finite for ")
                                  + f"metric {metric!r} (or none: only max_steps promotes), got {t!r}")
            if s.window < 1 or s.min_steps < 0 or s.max_steps < 0:
                raise ConfigError(f"{what}: need window >= 1, min_steps >= 0 and max_steps >= 0")
            if s.max_steps and s.max_steps < s.min_steps:
                raise ConfigError(f"{what}: max_steps ({s.max_steps}) is below min_steps ({s.min_steps})")
            if not last and t is None and not s.max_steps:
                raise ConfigError(f"{what}: set a threshold or max_steps, or the run never leaves this stage")
            checked.append(values)
            thresholds.append(math.nan if t is None else float(t))
        names: tuple[str, ...] = tuple(dict.fromkeys(k for v in checked for k in v))
        base = {n: float(getattr(scenario_config, n)) for n in names}
        rows = [tuple({**base, **v}[n] for n in names) for v in checked]
        return CurriculumSpec("stages", names, tuple(rows), stat, metric, cur.compare == ">=", tuple(thresholds),
                              tuple(s.window for s in cur.stages), tuple(s.min_steps for s in cur.stages),
                              tuple(s.max_steps for s in cur.stages))
    lv = cur.levels
    if not cls.per_world_settings:
        raise ConfigError(f"scenario {scenario!r} reads its settings once for all worlds: levels need per-world "
                          "settings (use stages)")
    if not (0.0 <= lv.uniform_share <= 1.0 and 0.0 <= lv.target_share <= 1.0
            and lv.uniform_share + lv.target_share <= 1.0) or lv.stats_window < 1 or lv.top_k < 0:
        raise ConfigError("curriculum levels: need uniform_share and target_share in [0, 1] with a sum <= 1, "
                          f"stats_window >= 1 and top_k >= 0, got uniform_share={lv.uniform_share!r}, "
                          f"target_share={lv.target_share!r}, stats_window={lv.stats_window!r}, top_k={lv.top_k!r}")
    names, rows = _level_rows(lv)
    target = -1
    if lv.target_share > 0:     # the full task: the env's values of the level settings
        full = tuple(float(getattr(scenario_config, n)) for n in names)
        if full not in rows:
            if len(rows) >= MAX_LEVELS:
                raise ConfigError(f"curriculum levels: {len(rows)} levels and the full task, at most {MAX_LEVELS}")
            rows.append(full)
        target = rows.index(full)
    for n in names:
        cls.setting_columns([n])
    for row in rows:
        try:
            cls.check_settings(scenario_config, dict(zip(names, row)))
        except ConfigError as exc:
            raise ConfigError(f"curriculum level {dict(zip(names, row))}: {exc}") from None
    return CurriculumSpec("levels", names, tuple(rows), stat, metric, uniform_share=lv.uniform_share,
                          stats_window=lv.stats_window, top_k=lv.top_k, target_share=lv.target_share,
                          target_level=target)


def hardest_env(cur: CurriculumConfig | None) -> dict[str, Any]:
    """Setting overrides of the hardest stage (the last one); {} for levels (the run's ``env`` is
    the full task) and without a curriculum."""
    if cur is None or not cur.stages:
        return {}
    return dict(cur.stages[-1].env)
