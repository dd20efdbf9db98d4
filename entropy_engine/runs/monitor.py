"""Monitor: one object the trainer logs to; it fans out to console, CSV, TensorBoard and W&B.

::

    with Monitor(run_dir, total_steps=1_000_000, start_step=resumed_at, config=cfg_dict) as mon:
        mon.message(f"Resuming from checkpoint at {resumed_at} steps")
        ...
        mon.log(step, {"time/fps": 480.0, "train/loss": 0.12, "env/success_rate": 0.4})

Sinks:

- console: Rich progress bar + metrics table on a terminal, one plain line per call otherwise
  (``console="auto" | "rich" | "plain" | "none"``);
- ``run_dir/metrics.csv`` (always): ``step`` + metric names, resume-safe (see
  :mod:`entropy_engine.runs.metrics_csv`);
- TensorBoard event files in ``run_dir`` (``tensorboard=True``; skipped with a one-line warning
  when TensorBoard is not installed);
- Weights & Biases (``wandb=True``): imported lazily, works offline with ``WANDB_MODE=offline``;
  the W&B run id is stored in ``run_dir/wandb_id.txt`` so a resumed run continues the same
  W&B run.
"""
from __future__ import annotations

import math
import numbers
import secrets
from pathlib import Path
from typing import Any, Mapping

from ..optional import optional_import
from .console import Clock, make_view
from .files import atomic_write_text, to_plain
from .metrics_csv import MetricsCSV
from .tb_writer import MISSING as TENSORBOARD_MISSING
from .tb_writer import ScalarWriter

WANDB_ID_FILE = "wandb_id.txt"
CONSOLE_MODES = ("auto", "rich", "plain", "none")


def _as_float(value: Any) -> float | None:
    """A real number as float (numpy / 0-d torch scalars included), else ``None``."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "item"):
        try:
            item = value.item()
        except (TypeError, ValueError, RuntimeError):
            return None
        return float(item) if isinstance(item, numbers.Real) else None
    return None


def wandb_run_id(run_dir: Path) -> str:
    """The W&B run id of ``run_dir``, created (and stored) on first use."""
    path = Path(run_dir) / WANDB_ID_FILE
    if path.is_file():
        run_id = path.read_text(encoding="utf-8").strip()
        if run_id:
            return run_id
    run_id = secrets.token_hex(4)
    atomic_write_text(path, run_id + "\n")
    return run_id


class Monitor:
    """Training monitor of one run folder (see the module docstring).

    Args:
        run_dir: the run folder (created if missing).
        total_steps: the step count at which training ends (the whole run, not this process).
        start_step: the step this process starts at (> 0 after a resume). FPS and ETA count
            from here; ``metrics.csv`` rows and TensorBoard events after it are dropped.
        config: the resolved config (a dict, or a dataclass), given to W&B and to TensorBoard
            as text.
        tensorboard: write TensorBoard event files into ``run_dir``.
        wandb: log to Weights & Biases (raises ImportError with an install hint if missing).
        wandb_project: the W&B project.
        console: ``"auto"`` (Rich live display on a TTY, plain lines otherwise), ``"rich"``,
            ``"plain"`` or ``"none"``.
    """

    def __init__(
        self,
        run_dir: Path,
        total_steps: int,
        start_step: int = 0,
        config: Mapping[str, Any] | None = None,
        tensorboard: bool = True,
        wandb: bool = False,
        wandb_project: str = "entropy-engine",
        console: str = "auto",
    ):
        if console not in CONSOLE_MODES:
            raise ValueError(f"console must be one of {CONSOLE_MODES}, got {console!r}")
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.total_steps = int(total_steps)
        self.start_step = int(start_step)
        self.config = to_plain(config) if config is not None else None
        self.clock = Clock(self.total_steps, self.start_step)
        self._closed = False
        self._wandb_run = None
        self._tb_writer = None
        # Fail fast on a missing wandb before any file or display is opened.
        wandb_module = self._import_wandb() if wandb else None
        self.csv = MetricsCSV(self.run_dir / "metrics.csv", start_step=self.start_step)
        self._view = make_view(console, self.clock, title=self.run_dir.name or "training")
        try:
            if tensorboard:
                self._tb_writer = self._open_tensorboard()
            if wandb_module is not None:
                self._wandb_run = self._open_wandb(wandb_module, wandb_project)
        except BaseException:
            self.close()
            raise
        # Speed and ETA count from here: imports and W&B start-up are not training time.
        self.clock.restart()

    # ------------------------------------------------------------------ sinks
    @staticmethod
    def _import_wandb():
        return optional_import("wandb", "logging to Weights & Biases", "wandb")

    def _open_tensorboard(self):
        try:
            # Hide events a crashed run logged after its checkpoint (rows <= start_step stay, as in
            # metrics.csv).
            purge = self.start_step + 1 if self.start_step > 0 else None
            writer = ScalarWriter(self.run_dir, purge_step=purge)
        except ImportError:
            self._view.warn(TENSORBOARD_MISSING)
            return None
        if self.config:
            import yaml

            text = yaml.safe_dump(to_plain(self.config), sort_keys=False)
            writer.add_text("config", "```yaml\n" + text + "```", step=self.start_step)
        return writer

    def _open_wandb(self, wandb, project: str):
        run_id = wandb_run_id(self.run_dir)
        return wandb.init(
            project=project,
            dir=str(self.run_dir),
            config=to_plain(self.config) if self.config else None,
            resume="allow",
            id=run_id,
            name=self.run_dir.name or None,
        )

    # ------------------------------------------------------------------ public API
    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Log one row of metrics at ``step`` to every sink."""
        if self._closed:
            raise RuntimeError("Monitor.log called after close()")
        step = int(step)
        self.clock.update(step)
        metrics = {k: v for k, v in metrics.items() if k != "step"}
        numeric = {k: f for k, f in ((k, _as_float(v)) for k, v in metrics.items()) if f is not None}
        self.csv.append(step, metrics)
        if self._tb_writer is not None:
            self._tb_writer.add_scalars(step, numeric)
            self._tb_writer.flush()
        if self._wandb_run is not None:
            self._wandb_run.log({k: v for k, v in numeric.items() if math.isfinite(v)}, step=step)
        self._view.log(step, numeric)

    def message(self, text: str) -> None:
        """Print a line through the console without breaking the live display."""
        self._view.message(str(text))

    def close(self, exit_code: int = 0) -> None:
        """Flush and close every sink (idempotent)."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        for closer in (
            lambda: self._view.close() if hasattr(self, "_view") else None,
            lambda: self.csv.close() if hasattr(self, "csv") else None,
            lambda: self._tb_writer.close() if self._tb_writer is not None else None,
            lambda: self._wandb_run.finish(exit_code=exit_code) if self._wandb_run is not None else None,
        ):
            try:
                closer()
            except Exception as exc:  # close the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exit_code=0 if exc_type is None else 1)


__all__ = ["Monitor", "wandb_run_id", "TENSORBOARD_MISSING"]