"""The sweep driver on Ray Tune: search space, scheduler, fault tolerance, resume.

Layout of a sweep folder ``DIR``::

    DIR/sweep.yaml        the sweep file's data (a rerun with a different file is refused)
    DIR/tune/             Ray Tune's experiment state (trials, searcher, scheduler)
    DIR/runs/<trial>/     one ordinary run folder per trial (trial.json, config.yaml, metrics.csv, ...)
    DIR/status.json       each trial's Tune status and error, written when the driver ends
    DIR/results.md|csv, DIR/*.png   the report (``report``)

Grid and random points are fixed before the sweep starts (``spec.points``) and crossed with the
seeds through Tune's grid search; Optuna's TPE proposes points as results come in, each repeated
once per seed (``Repeater``: the searcher learns the mean over seeds). ASHA stops weak trials on
the sweep's metric with agent-steps as its time axis. A crashing trial is retried up to
``max_failures`` times (resuming from its run folder's checkpoint). Running the command again on
the same folder restores the Tune experiment: finished trials are kept, unfinished and failed ones
start again and resume from their checkpoints.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from ..config import ConfigError
from ..optional import optional_import
from .spec import SweepSpec, points
from .trial import TIME_ATTR, run_trial

SPEC_FILE = "sweep.yaml"
STATUS_FILE = "status.json"
TUNE_DIR = "tune"


def check_folder(out: Path, data: dict[str, Any]) -> None:
    """Refuse a folder that holds another sweep, or a file; creates nothing."""
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            raise ConfigError(f"{p} is a file, not a folder: it cannot hold the sweep")
    stored = out / SPEC_FILE
    if stored.is_file():
        old = yaml.safe_load(stored.read_text())
        if old != data:
            raise ConfigError(f"{out} holds a different sweep (its {SPEC_FILE} differs from this sweep file); "
                              "use another --out, or delete the folder to start it again")


def _param_space(spec: SweepSpec, out: Path) -> tuple[dict[str, Any], Any, int]:
    """Tune's param_space, search algorithm and num_samples."""
    from dataclasses import asdict

    from ray import tune

    base = {"spec": asdict(spec), "sweep_dir": str(out)}
    fixed = points(spec)
    if fixed is not None:
        space = {**base, "point": tune.grid_search([{"id": i, "values": p} for i, p in enumerate(fixed)]),
                 "seed": tune.grid_search(list(spec.seeds))}
        return space, None, 1
    from ray.tune.search import Repeater
    from ray.tune.search.optuna import OptunaSearch

    values: dict[str, Any] = {}
    for key, value in spec.search.items():
        if isinstance(value, list):
            values[key] = tune.choice(value)
        else:
            kind, (lo, hi) = next(iter(value.items()))
            values[key] = {"uniform": tune.uniform, "loguniform": tune.loguniform}[kind](lo, hi) \
                if kind != "randint" else tune.randint(lo, hi + 1)
    import optuna

    searcher = OptunaSearch(metric=spec.metric, mode=spec.mode,
                            sampler=optuna.samplers.TPESampler(seed=spec.searcher_seed))
    searcher = Repeater(searcher, repeat=len(spec.seeds), set_index=True)
    space = {**base, "point": {"id": -1, "values": values}}
    return space, searcher, spec.num_samples * len(spec.seeds)


def _trial_name(trial: Any) -> str:
    """``p003_s1``: point 3, seed 1 (grid/random); ``<trial id>`` for Optuna's points."""
    cfg = trial.config
    point = cfg.get("point", {})
    if isinstance(point, dict) and point.get("id", -1) >= 0 and "seed" in cfg:
        return f"p{point['id']:03d}_s{cfg['seed']}"
    return f"t{trial.trial_id}"


def run_sweep(spec: SweepSpec, data: dict[str, Any], out: Path, address: str | None = None,
              echo: Any = print) -> int:
    """Run (or resume) the sweep in ``out``; returns 0 if every trial finished or was stopped by ASHA."""
    out = out.resolve()
    check_folder(out, data)
    ray = optional_import("ray", "entropy sweep", "sweep", "ray[tune]")
    tune = optional_import("ray.tune", "entropy sweep", "sweep", "ray[tune]")
    from ray.tune.schedulers import ASHAScheduler

    out.mkdir(parents=True, exist_ok=True)
    (out / SPEC_FILE).write_text(yaml.safe_dump(data, sort_keys=False))
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=True)
    try:
        trainable = tune.with_resources(run_trial, {"cpu": spec.cpus_per_trial})
        tune_dir = out / TUNE_DIR
        if tune.Tuner.can_restore(str(tune_dir)):
            echo(f"Resuming sweep {out}: finished trials are kept, unfinished ones resume from their checkpoints")
            tuner = tune.Tuner.restore(str(tune_dir), trainable=trainable, resume_unfinished=True,
                                       resume_errored=True)
        else:
            space, searcher, num_samples = _param_space(spec, out)
            scheduler = None
            if spec.scheduler == "asha":
                scheduler = ASHAScheduler(time_attr=TIME_ATTR, metric=spec.metric, mode=spec.mode,
                                          grace_period=spec.grace_steps, reduction_factor=spec.reduction_factor,
                                          max_t=10**15)
            tuner = tune.Tuner(
                trainable, param_space=space,
                tune_config=tune.TuneConfig(
                    search_alg=searcher, scheduler=scheduler, num_samples=num_samples,
                    max_concurrent_trials=spec.max_concurrent, trial_name_creator=_trial_name,
                    trial_dirname_creator=_trial_name, reuse_actors=False),
                run_config=tune.RunConfig(
                    name=TUNE_DIR, storage_path=str(out), failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                    verbose=1))
        grid = tuner.fit()
        statuses = {}
        for result in grid:
            name = Path(result.path).name
            statuses[name] = {"error": None if result.error is None else " ".join(str(result.error).split())[-500:],
                              "steps": (result.metrics or {}).get(TIME_ATTR)}
        (out / STATUS_FILE).write_text(json.dumps(statuses, indent=1))
    finally:
        ray.shutdown()
    from .report import write_report

    table = write_report(out)
    echo(table)
    failed = [n for n, s in statuses.items() if s["error"]]
    if failed:
        echo(f"{len(failed)} trial(s) failed after {spec.max_failures} retries: {', '.join(sorted(failed))} "
             f"(errors in {out / STATUS_FILE}); run the command again to retry them")
        return 1
    return 0
