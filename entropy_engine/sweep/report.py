"""The results of a sweep, from its run folders alone: ``results.md``, ``results.csv`` and plots.

Each trial's score is the sweep's metric over its last ``LAST_LOGS`` log lines (weighted by the
episodes that ended in each: a single line holds few episodes). Points are ranked by the mean of
their seeds' scores (± the sample standard deviation over seeds). A trial's status: ``finished``
(its run folder holds the final model), ``stopped`` (ended early by ASHA), ``failed`` (errored
after its retries; ``status.json``) or ``incomplete`` (the driver did not get to finish it).

Plots: ``metric_vs_<field>.png`` (each trial's score against each swept field, the points' means
joined) and ``learning_curves.png`` (the metric over agent-steps, one line per trial). Ray is not
needed: ``entropy sweep --report DIR`` works on a copied folder.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..config import ConfigError
from ..runs.metrics_csv import read_metrics
from .trial import TRIAL_FILE

LAST_LOGS = 5


def _status(run: Path, statuses: dict[str, Any]) -> str:
    if (run / "models").is_dir() and any((run / "models").glob("model.*")) and not any(
            (run / "checkpoints").glob("checkpoint*.zip")):
        return "finished"
    s = statuses.get(run.name)
    if s is None:
        return "incomplete"
    return "failed" if s.get("error") else "stopped"


def load_trials(out: Path, metric: str) -> list[dict[str, Any]]:
    """One dict per trial run folder: point, seed, status, steps, score and the metric's curve."""
    from ..render.curves import series, smoothed

    status_file = out / "status.json"
    statuses = json.loads(status_file.read_text()) if status_file.is_file() else {}
    trials = []
    for info_file in sorted((out / "runs").glob(f"*/{TRIAL_FILE}")):
        run = info_file.parent
        info = json.loads(info_file.read_text())
        rows = read_metrics(run / "metrics.csv")
        steps, values = series(rows, metric)
        s_steps, s_values = smoothed(rows, metric, LAST_LOGS)
        last_step = max((float(r["step"]) for r in rows if r.get("step")), default=0.0)
        trials.append({"trial": run.name, "label": info["label"], "point": info["point"], "seed": info["seed"],
                       "status": _status(run, statuses), "steps": int(last_step),
                       "score": float(s_values[-1]) if len(s_values) else math.nan,
                       "curve": (steps, values), "run": str(run)})
    return trials


def summarise(trials: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """Points ranked best first: label, point, seeds, mean, std (over seeds), statuses."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for t in trials:
        groups.setdefault(t["label"], []).append(t)
    rows = []
    for label, ts in groups.items():
        scores = np.array([t["score"] for t in ts if not math.isnan(t["score"])])
        rows.append({"label": label, "point": ts[0]["point"], "seeds": [t["seed"] for t in ts],
                     "mean": float(scores.mean()) if len(scores) else math.nan,
                     "std": float(scores.std(ddof=1)) if len(scores) > 1 else math.nan,
                     "n": len(scores), "steps": min(t["steps"] for t in ts),
                     "status": ",".join(sorted({t["status"] for t in ts}))})
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda r: (math.isnan(r["mean"]), sign * r["mean"] if not math.isnan(r["mean"]) else 0.0))
    return rows


def _fmt(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.3f}"


def markdown_table(rows: list[dict[str, Any]], metric: str) -> str:
    keys = list(rows[0]["point"]) if rows else []
    head = ["rank", *keys, f"{metric} (mean ± std over seeds)", "seeds", "steps (min)", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows, 1):
        spread = "" if math.isnan(r["std"]) else f" ± {_fmt(r['std'])}"
        cells = [str(i), *(f"{r['point'][k]:.4g}" if isinstance(r["point"][k], float) else str(r["point"][k])
                           for k in keys),
                 _fmt(r["mean"]) + spread, f"{r['n']}/{len(r['seeds'])}", f"{r['steps']:,}", r["status"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plots(out: Path, trials: list[dict[str, Any]], rows: list[dict[str, Any]], metric: str) -> list[Path]:
    from ..optional import optional_import

    optional_import("matplotlib", "sweep plots", "render")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written = []
    for key in (rows[0]["point"] if rows else {}):
        fig = Figure(figsize=(5, 3.5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        numeric = all(isinstance(t["point"][key], (int, float)) and not isinstance(t["point"][key], bool)
                      for t in trials)
        cats = sorted({str(t["point"][key]) for t in trials})
        x_of = (lambda v: float(v)) if numeric else (lambda v: float(cats.index(str(v))))
        ax.scatter([x_of(t["point"][key]) for t in trials], [t["score"] for t in trials], s=14, alpha=0.6,
                   label="trials")
        means: dict[float, list[float]] = {}
        for t in trials:
            if not math.isnan(t["score"]):
                means.setdefault(x_of(t["point"][key]), []).append(t["score"])
        xs = sorted(means)
        ax.plot(xs, [float(np.mean(means[x])) for x in xs], "o-", color="C1", label="mean over the other fields")
        if not numeric:
            ax.set_xticks(range(len(cats)), cats)
        else:
            if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
                ax.set_xscale("log")
            if 0 < len(xs) <= 8:               # few values: label exactly those
                ax.set_xticks(xs, [f"{x:.4g}" for x in xs])
                ax.minorticks_off()
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"metric_vs_{key.replace('/', '_')}.png"
        fig.savefig(path)
        written.append(path)
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for t in trials:
        steps, values = t["curve"]
        if len(steps):
            ax.plot(steps, values, lw=1, label=f"{t['label']} s{t['seed']}")
    ax.set_xlabel("agent-steps")
    ax.set_ylabel(metric)
    if len(trials) <= 12:
        ax.legend(fontsize=6)
    fig.tight_layout()
    path = out / "learning_curves.png"
    fig.savefig(path)
    written.append(path)
    return written


def write_report(out: str | Path) -> str:
    """Write ``results.md``, ``results.csv`` and the plots into the sweep folder; returns the table."""
    out = Path(out)
    spec_file = out / "sweep.yaml"
    if not spec_file.is_file():
        raise ConfigError(f"{out} is not a sweep folder (no sweep.yaml)")
    sweep = yaml.safe_load(spec_file.read_text()).get("sweep") or {}
    metric, mode = sweep.get("metric", "rollout/ep_rew_mean"), sweep.get("mode", "max")
    trials = load_trials(out, metric)
    if not trials:
        raise ConfigError(f"sweep {out} has no trial run folders yet (runs/*/{TRIAL_FILE})")
    rows = summarise(trials, mode)
    table = markdown_table(rows, metric)
    best = rows[0]
    text = (f"# Sweep {out.name}: {metric} ({mode}), {len(trials)} trials\n\n{table}\n\n"
            f"Best: {best['label']} ({_fmt(best['mean'])}). Score of a trial: {metric} over its last "
            f"{LAST_LOGS} log lines.\n")
    (out / "results.md").write_text(text)
    buf = io.StringIO()
    w = csv.writer(buf)
    keys = list(trials[0]["point"])
    w.writerow(["trial", *keys, "seed", "status", "steps", "score", "run"])
    for t in trials:
        w.writerow([t["trial"], *(t["point"][k] for k in keys), t["seed"], t["status"], t["steps"], t["score"],
                    t["run"]])
    (out / "results.csv").write_text(buf.getvalue())
    _plots(out, trials, rows, metric)
    return table
