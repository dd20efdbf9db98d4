"""The sweep file: which run to start from, what to vary, how to search, what to optimise.

A TOML (or YAML) file with three tables::

    [sweep]
    preset = "default"              # the base run: a preset ...
    # config = "base.toml"          # ... and optionally a train config file (relative to this file)
    metric = "env/success_rate"     # a logged metric: env/<scenario metric>, rollout/ep_rew_mean, ...
    mode = "max"                    # or "min"
    searcher = "grid"               # grid | random | optuna (Optuna's TPE; needs optuna installed)
    seeds = [0, 1]                  # every point is trained once per seed
    max_concurrent = 2              # trials at once
    cpus_per_trial = 1              # Ray CPUs per trial = its simulation and torch threads
    scheduler = "asha"              # asha (early stopping on `metric`) | none
    grace_steps = 200000            # ASHA: agent-steps before a trial may be stopped

    [train]                         # fixed settings of every trial (any TrainConfig field)
    total_steps = 2000000
    env = { n_obstacles = 4 }

    [search]                        # what varies: a TrainConfig field or env.<scenario key>
    learning_rate = [3e-4, 1e-3]            # a list: grid values (random/optuna: a choice)
    "env.goal_reward" = [10.0, 20.0]
    # gamma = { uniform = [0.98, 0.999] }   # random/optuna only: uniform, loguniform, randint [lo, hi]

Everything is checked before Ray starts: an unknown key, a value a ``TrainConfig`` refuses, or a
metric the scenario does not log is a one-line ``ConfigError``.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

import numpy as np

from ..config import ConfigError, build_config, field, require

DISTRIBUTIONS = ("uniform", "loguniform", "randint")
ENV_PREFIX = "env."
MAX_GRID_POINTS = 10_000


@dataclass(frozen=True)
class SweepSpec:
    """One sweep: the base run, the search space and how Ray Tune explores it."""

    preset: str = field("default", "Preset of the base run.")
    config: Optional[str] = field(None, "A train config file (TOML/YAML) on top of the preset, relative to the sweep file.")
    metric: str = field("rollout/ep_rew_mean", "Metric to optimise: a logged metric such as env/success_rate.")
    mode: Literal["max", "min"] = field("max", "Whether a larger or a smaller metric is better.")
    searcher: Literal["grid", "random", "optuna"] = field(
        "grid", "grid: every combination; random: num_samples random points; optuna: Optuna's TPE.")
    num_samples: int = field(8, "random/optuna: how many points (each trained once per seed).")
    searcher_seed: int = field(0, "Seed of the random and Optuna searchers.")
    seeds: list = dataclasses.field(default_factory=lambda: [0], metadata={"help": "Training seeds of every point."})
    max_concurrent: int = field(1, "Trials running at once.")
    cpus_per_trial: int = field(1, "Ray CPUs per trial; the trial runs that many simulation and torch threads.")
    max_failures: int = field(2, "Retries of a crashing trial (from its last checkpoint) before it counts as failed.")
    scheduler: Literal["asha", "none"] = field("asha", "Early stopping: ASHA on `metric`, or none.")
    grace_steps: int = field(100_000, "ASHA: agent-steps a trial runs before it can be stopped.")
    reduction_factor: int = field(2, "ASHA: keep the best 1/reduction_factor at each rung.")
    train: dict = dataclasses.field(default_factory=dict, metadata={"help": "Fixed TrainConfig keys of every trial."})
    search: dict = dataclasses.field(default_factory=dict, metadata={"help": "Field -> values or distribution."})

    def __post_init__(self) -> None:
        require(isinstance(self.seeds, list) and self.seeds and all(isinstance(s, int) and not isinstance(s, bool)
                                                                     for s in self.seeds),
                f"seeds must be a non-empty list of integers, got {self.seeds!r}")
        require(len(set(self.seeds)) == len(self.seeds), f"seeds must differ from each other, got {self.seeds!r}")
        for name in ("num_samples", "max_concurrent", "cpus_per_trial", "grace_steps"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        require(self.max_failures >= 0, f"max_failures must be >= 0, got {self.max_failures!r}")
        require(self.reduction_factor >= 2, f"reduction_factor must be >= 2, got {self.reduction_factor!r}")
        require(isinstance(self.train, Mapping), "[train] must be a table of TrainConfig keys")
        require(isinstance(self.search, Mapping) and len(self.search) > 0,
                "[search] must name at least one field to vary")
        require("seed" not in self.train and "seed" not in self.search,
                "set the training seeds with `seeds = [...]` in [sweep], not as a train or search key")


def load_spec(path: str | Path, **overrides: Any) -> tuple[SweepSpec, dict[str, Any]]:
    """The sweep file as a checked ``SweepSpec`` (``overrides``: command-line values, None = keep) and
    the file's plain data (stored next to the sweep to detect a changed file on resume)."""
    from ..training.config import load_file

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"cannot read sweep file {path}: {exc}") from None
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot read sweep file {path}: {' '.join(str(exc).split())}") from None
    else:
        raise ConfigError(f"sweep file {path} must end in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise ConfigError(f"sweep file {path} must hold tables [sweep], [train] and [search]")
    unknown = sorted(set(data) - {"sweep", "train", "search"})
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown tables {unknown}; expected [sweep], [train], [search]")
    values = dict(data.get("sweep") or {})
    values["train"] = dict(data.get("train") or {})
    values["search"] = dict(data.get("search") or {})
    if values.get("config"):
        base = (path.parent / str(values["config"])).resolve()
        if not base.is_file():
            raise ConfigError(f"sweep file {path}: config file {base} does not exist")
        load_file(base)
        values["config"] = str(base)
    values.update({k: v for k, v in overrides.items() if v is not None})
    spec = build_config(SweepSpec, values)
    check_spec(spec)
    return spec, data


def _is_distribution(value: Any) -> bool:
    return isinstance(value, Mapping)


def _check_values(key: str, value: Any, searcher: str) -> None:
    if isinstance(value, list):
        require(len(value) > 0, f"search key {key!r}: an empty list of values")
        return
    if _is_distribution(value):
        require(searcher != "grid", f"search key {key!r}: a distribution needs searcher 'random' or 'optuna' "
                                    "(grid takes a list of values)")
        require(len(value) == 1 and next(iter(value)) in DISTRIBUTIONS,
                f"search key {key!r}: expected one of {{uniform|loguniform|randint = [lo, hi]}}, got {value!r}")
        kind, bounds = next(iter(value.items()))
        require(isinstance(bounds, list) and len(bounds) == 2
                and all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
                and bounds[0] < bounds[1],
                f"search key {key!r}: {kind} expects [lo, hi] with lo < hi, got {bounds!r}")
        require(kind != "loguniform" or bounds[0] > 0, f"search key {key!r}: loguniform needs lo > 0")
        require(kind != "randint" or all(isinstance(b, int) for b in bounds),
                f"search key {key!r}: randint expects integer bounds")
        return
    raise ConfigError(f"search key {key!r}: expected a list of values or {{uniform|loguniform|randint = [lo, hi]}}, "
                      f"got {value!r}")


def overrides_for(spec: SweepSpec, point: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The ``resolve_config`` overrides of one trial: [train], then the point, then the seed."""
    out = {k: v for k, v in spec.train.items() if k != "env"}
    env = dict(spec.train.get("env") or {})
    for key, value in point.items():
        if key.startswith(ENV_PREFIX):
            env[key[len(ENV_PREFIX):]] = value
        else:
            out[key] = value
    if env:
        out["env"] = env
    out["seed"] = int(seed)
    return out


def trial_config(spec: SweepSpec, point: Mapping[str, Any], seed: int):
    """The ``TrainConfig`` of one trial (``ConfigError`` if a value does not fit)."""
    from ..training.config import resolve_config

    return resolve_config(spec.preset, spec.config, overrides_for(spec, point, seed))


def check_spec(spec: SweepSpec) -> None:
    """Every search key and value, the metric and the base run, checked by building trial configs."""
    from ..scenarios import scenario_class
    from ..training.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed", "env"}
    for key, value in spec.search.items():
        if not key.startswith(ENV_PREFIX) and key not in fields:
            raise ConfigError(f"search key {key!r} is neither a TrainConfig field nor env.<scenario key>; "
                              f"fields: {sorted(fields)}")
        _check_values(key, value, spec.searcher)
    if spec.searcher == "optuna":
        from ..optional import optional_import

        optional_import("optuna", "searcher 'optuna'", "sweep")
    base = trial_config(spec, {}, spec.seeds[0])
    # each value on its own (and both bounds of a distribution), on top of the base run
    for key, value in spec.search.items():
        options = value if isinstance(value, list) else next(iter(value.values()))
        for v in options:
            try:
                trial_config(spec, {key: v}, spec.seeds[0])
            except ConfigError as exc:
                raise ConfigError(f"search key {key!r} = {v!r}: {exc}") from None
    allowed = {"rollout/ep_rew_mean", "rollout/ep_len_mean"}
    allowed |= {f"env/{m}" for m in scenario_class(base.scenario).metrics}
    if spec.metric not in allowed:
        raise ConfigError(f"metric {spec.metric!r} is not logged by scenario {base.scenario!r}; "
                          f"choose one of {sorted(allowed)}")
    if spec.searcher == "grid":
        n = math.prod(len(v) for v in spec.search.values())
        require(n <= MAX_GRID_POINTS, f"the grid has {n} points (at most {MAX_GRID_POINTS})")
        for point in grid_points(spec):          # combinations can clash (e.g. n_steps vs seq_len)
            try:
                trial_config(spec, point, spec.seeds[0])
            except ConfigError as exc:
                raise ConfigError(f"grid point {point}: {exc}") from None


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of the search lists, in file order (the last key varies fastest)."""
    keys = list(spec.search)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(spec.search[k] for k in keys))]


def random_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """``num_samples`` points drawn with ``searcher_seed``: lists are choices, distributions sampled."""
    rng = np.random.default_rng(spec.searcher_seed)
    points = []
    for _ in range(spec.num_samples):
        point: dict[str, Any] = {}
        for key, value in spec.search.items():
            if isinstance(value, list):
                point[key] = value[int(rng.integers(len(value)))]
                continue
            kind, (lo, hi) = next(iter(value.items()))
            if kind == "uniform":
                point[key] = float(rng.uniform(lo, hi))
            elif kind == "loguniform":
                point[key] = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            else:
                point[key] = int(rng.integers(lo, hi + 1))
        points.append(point)
    return points


def points(spec: SweepSpec) -> list[dict[str, Any]] | None:
    """The points of a grid or random sweep, fixed before it starts (None for optuna: chosen as it runs)."""
    if spec.searcher == "grid":
        return grid_points(spec)
    if spec.searcher == "random":
        return random_points(spec)
    return None


def point_label(point: Mapping[str, Any]) -> str:
    """``learning_rate=0.001,env.goal_reward=20``: a point as text (for tables and folder names)."""
    return ",".join(f"{k}={_short(v)}" for k, v in point.items())


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
