"""The learning-curve PNG of a run: success rate, episode return and collisions over training steps.

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
CURVES = (
    ("env/success_rate", "success rate", (0.0, 1.05)),
    ("rollout/ep_rew_mean", "episode return (mean)", None),
    ("env/collisions_per_agent", "collisions per agent", None),
)


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


def _import_matplotlib():
    figure = optional_import("matplotlib.figure", "plotting learning curves", "render")
    agg = optional_import("matplotlib.backends.backend_agg", "plotting learning curves", "render")
    return figure.Figure, agg.FigureCanvasAgg


def plot_learning_curves(metrics: str | Path | Iterable[Mapping[str, Any]], path: str | Path,
                         title: str | None = None, dpi: int = 100) -> Path:
    """Write a PNG with three stacked panels (success rate, return, collisions per agent) over steps.

    ``metrics``: a CSV path or rows (dicts) with a step column (``step``, or
    ``time/total_timesteps``) and any of ``env/success_rate``, ``rollout/ep_rew_mean``,
    ``env/collisions_per_agent``. A metric without data is shown as an empty panel.
    """
    rows = read_metrics(metrics)
    Figure, FigureCanvasAgg = _import_matplotlib()
    fig = Figure(figsize=(7.0, 7.5), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(CURVES), 1, sharex=True)
    for ax, (key, label, ylim) in zip(axes, CURVES):
        x, y = series(rows, key)
        if len(x):
            ax.plot(x, y, color="tab:blue", linewidth=1.5, marker="o" if len(x) < 30 else None, markersize=3)
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
