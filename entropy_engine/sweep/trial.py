"""One trial of a sweep: an ordinary ``entropy train`` run in ``<sweep>/runs/<trial>``.

The trial builds the ``entropy train`` command line of its point and seed, writes it to
``trial.json`` in its run folder (with the point, the seed, the sweep's metric and the Ray node id), and runs it in
the Ray worker through the same code as the command (``training.command.run``): config checks,
run-folder lock, checkpoints, GIFs, ``metrics.csv``, TensorBoard. Every logged line is also
reported to Ray Tune (``steps`` = agent-steps, the ASHA time axis). A trial started again (a retry
after a crash, or a resumed sweep) resumes from its run folder's rolling checkpoint like any run;
a run folder that already holds its final model reports its last logged metrics and returns.

Threads: the trial runs ``--threads N`` with N = the CPUs Ray gave it (``cpus_per_trial``), so
``max_concurrent`` trials on one machine share its cores instead of each taking all of them.
"""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any, Mapping

TRIAL_FILE = "trial.json"
ATTEMPTS_FILE = "attempts.log"
TIME_ATTR = "steps"


def cli_value(value: Any) -> str:
    """A config value as ``entropy train`` reads it back (floats round-trip exactly)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def train_argv(spec: Any, point: Mapping[str, Any], seed: int, run_dir: Path, threads: int) -> list[str]:
    """``entropy train`` arguments of one trial (``spec``: a ``SweepSpec``)."""
    from .spec import overrides_for

    argv = ["train", "--preset", spec.preset]
    if spec.config:
        argv += ["--config", str(spec.config)]
    overrides = overrides_for(spec, point, seed)
    env = overrides.pop("env", {})
    overrides.setdefault("threads", threads)
    for key, value in overrides.items():
        argv += ["--" + key.replace("_", "-"), cli_value(value)]
    for key, value in env.items():
        argv += ["--env", f"{key}={cli_value(value)}"]
    return argv + ["--out", str(run_dir), "--console", "none"]


def assigned_cpus(default: int) -> int:
    """The CPUs Ray reserved for this worker (``default`` outside Ray)."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:
        cpus = None
    return max(1, int(round(cpus))) if cpus else default


class _Reporter:
    """The ``on_log`` hook of a trial: every log line to Ray Tune, once the sweep's metric exists.

    The metric of the last line that had one is carried forward (a line without finished episodes
    has no ``env/...`` values) so that every report carries it, as ASHA requires."""

    def __init__(self, metric: str, report: Any):
        self.metric, self.report, self.last = metric, report, None

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.metric in metrics:
            self.last = float(metrics[self.metric])
        if self.last is None:
            return
        row = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        row[self.metric] = self.last
        row[TIME_ATTR] = int(step)
        self.report(row)


def run_trial(config: dict[str, Any]) -> None:
    """The Ray Tune trainable (a function: Tune calls it in a worker process, again on retry)."""
    import argparse

    import ray
    from ray import tune

    from ..config import build_config
    from ..runs.metrics_csv import read_metrics
    from ..training import command
    from ..training.run_folder import checkpoint_files, final_model, run_layout
    from .spec import SweepSpec, point_label

    spec = build_config(SweepSpec, config["spec"])
    point = dict(config["point"]["values"])
    seed = int(config["seed"]) if "seed" in config else int(spec.seeds[int(config["__trial_index__"])])
    name = tune.get_context().get_trial_name()
    run_dir = Path(config["sweep_dir"]) / "runs" / name
    argv = train_argv(spec, point, seed, run_dir, assigned_cpus(spec.cpus_per_trial))
    with open(Path(config["sweep_dir"]) / ATTEMPTS_FILE, "a") as f:     # one line per start (retries show)
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {name} start\n")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / TRIAL_FILE).write_text(json.dumps(
        {"trial": name, "point": point, "label": point_label(point), "seed": seed, "metric": spec.metric,
         "node": ray.get_runtime_context().get_node_id(), "command": "entropy " + shlex.join(argv)}, indent=1))
    reporter = _Reporter(spec.metric, tune.report)
    paths = run_layout(run_dir)
    if final_model(paths) is not None and not checkpoint_files(paths):      # finished before the driver died
        rows = [(int(float(r["step"])), {k: float(v) for k, v in r.items() if k != "step" and v != ""})
                for r in read_metrics(run_dir / "metrics.csv")]
        for step, metrics in rows:
            if spec.metric in metrics:
                reporter.last = metrics[spec.metric]
        if rows:
            reporter(*rows[-1])
        return
    parser = argparse.ArgumentParser(prog="entropy train")
    command.configure(parser)
    args = parser.parse_args(argv[1:])
    args.command_line = argv
    args.on_log = reporter
    code = command.run(args)
    if code != 0:
        raise RuntimeError(f"trial {name}: `entropy {shlex.join(argv)}` exited with status {code}")
