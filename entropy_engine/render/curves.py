"""The learning-curve PNG of a run: the scenario's metrics and the episode return over training steps.

Input is the run's metrics: a CSV file (one row per log, a header with metric names) or a list of
dicts. Rows without a value for a metric (missing key, empty string, NaN) are skipped for that
metric only. matplotlib is imported lazily and draws with its Agg canvas, so no display or global
backend switch is involved: ``pip install entropy-engine[render]``.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..optional import optional_import

STEP_KEYS = ("step", "time/total_timesteps", "global_step")
RETURN_KEY = "rollout/ep_rew_mean"
NOT_CURVES = ("env/episodes",)   # env/ columns that are counts, not metrics of the scenario


def curve_panels(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, tuple[float, float] | None]]:
    """(key, label, y-limits) of each panel: the scenario's metrics (``env/<metric>`` columns, in
    the order they first appear) with the episode return second. Rates (``*_rate``) get [0, 1]."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k.startswith("env/") and k not in NOT_CURVES and k not in keys]
    panels = [(k, k[4:].replace("_", " "), (0.0, 1.05) if k.endswith("_rate") else None) for k in keys]
    panels.insert(min(1, len(panels)), (RETURN_KEY, "episode return (mean)", None))
    return panels


def read_metrics(source: str | Path | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of metrics from a CSV path or an iterable of mappings."""
    if isinstance(source, (str, Path)):
        with open(source, newline="") as f:
            return [dict(row) for row in csv.DictReader(f)]
    return [dict(row) for row in source]


def _number(value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of metric ``key`` over the rows that have both, sorted by step."""
    steps, values = [], []
    for row in rows:
        step = next((_number(row[k]) for k in STEP_KEYS if k in row and not math.isnan(_number(row[k]))), math.nan)
        value = _number(row.get(key))
        if not (math.isnan(step) or math.isnan(value)):
            steps.append(step)
            values.append(value)
    order = np.argsort(steps, kind="stable")
    return np.asarray(steps, np.float64)[order], np.asarray(values, np.float64)[order]


def smoothed(rows: Sequence[Mapping[str, Any]], key: str, window: int,
             weight_key: str = "env/episodes") -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key`` averaged over the last ``window`` rows that have it, each row
    weighted by its ``weight_key`` (episodes that ended in it; 1 where missing).

    Training-time episode metrics are taken over the episodes that end in one iteration, so they
    swing from iteration to iteration (e.g. when every world's episode is truncated at once); the
    episode-weighted mean over several iterations is the rate over all those episodes.
    """
    x, y = series(rows, key)
    xw, w = series(rows, weight_key)
    weights = np.ones_like(y)
    if len(xw):
        lookup = dict(zip(xw.tolist(), w.tolist()))
        weights = np.array([lookup.get(step, 1.0) for step in x.tolist()], np.float64)
    csum_wy = np.concatenate([[0.0], np.cumsum(weights * y)])
    csum_w = np.concatenate([[0.0], np.cumsum(weights)])
    hi = np.arange(1, len(y) + 1)
    lo = np.maximum(hi - max(int(window), 1), 0)
    total = csum_w[hi] - csum_w[lo]
    return x, np.where(total > 0, (csum_wy[hi] - csum_wy[lo]) / np.maximum(total, 1e-12), np.nan)


def _import_matplotlib():
    figure = optional_import("matplotlib.figure", "plotting learning curves", "render")
    agg = optional_import("matplotlib.backends.backend_agg", "plotting learning curves", "render")
    return figure.Figure, agg.FigureCanvasAgg


def plot_learning_curves(metrics: str | Path | Iterable[Mapping[str, Any]], path: str | Path,
                         title: str | None = None, dpi: int = 100, window: int = 8) -> Path:
    """Write a PNG with stacked panels over steps (``curve_panels``: navigation's are success rate,
    return, collisions per agent).

    ``metrics``: a CSV path or rows (dicts) with a step column (``step``, or
    ``time/total_timesteps``), ``rollout/ep_rew_mean`` and the scenario's ``env/<metric>`` columns.
    A metric without data is shown as an empty panel. Each panel shows the raw values (thin) and
    their episode-weighted mean over ``window`` logs (``smoothed``).
    """
    rows = read_metrics(metrics)
    panels = curve_panels(rows)
    Figure, FigureCanvasAgg = _import_matplotlib()
    fig = Figure(figsize=(7.0, 2.5 * max(3, len(panels))), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True))
    for ax, (key, label, ylim) in zip(axes, panels):
        x, y = series(rows, key)
        if len(x):
            ax.plot(x, y, color="tab:blue", linewidth=0.6, alpha=0.35, marker="o" if len(x) < 30 else None,
                    markersize=3, label="per iteration")
            if len(x) > 1 and window > 1:
                ax.plot(*smoothed(rows, key, window), color="tab:blue", linewidth=1.8,
                        label=f"episode-weighted mean of {window}")
                ax.legend(loc="best", fontsize="small")
        else:
            ax.text(0.5, 0.5, f"no data for {key}", ha="center", va="center", transform=ax.transAxes,
                    color="gray")
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("training steps")
    axes[-1].ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    fig.suptitle(title or "learning curves")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
