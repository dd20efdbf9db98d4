"""Console views of training progress: a Rich live display on a terminal, plain lines elsewhere.

Both views share a :class:`Clock` that measures speed from the steps done by *this process*
(``step - start_step``), so FPS and ETA are right after resuming from a checkpoint.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Mapping

# key -> (short label for plain lines, hint from the original "Training Metrics Reference").
# The order is the display order; other metrics follow alphabetically in the Rich table.
METRICS_REFERENCE: dict[str, tuple[str, str]] = {
    "time/fps": ("fps", "env steps per second, higher = faster"),
    "env/success_rate": ("success", "share of agents reaching their goal, -> 1"),
    "env/collisions_per_agent": ("collisions", "collisions per agent, -> 0"),
    "rollout/ep_rew_mean": ("return", "mean episode return, should rise"),
    "rollout/ep_len_mean": ("ep_len", "mean episode length"),
    "train/loss": ("loss", "policy + value + entropy, should decrease"),
    "train/value_loss": ("value_loss", "critic error, should decrease"),
    "train/policy_gradient_loss": ("pg_loss", "policy (actor) loss"),
    "train/explained_variance": ("expl_var", "critic quality, 0 -> 1 (higher = better)"),
    "train/entropy_loss": ("entropy_loss", "exploration bonus, shrinks gradually"),
    "train/approx_kl": ("kl", "policy change, < 0.02"),
    "train/clip_fraction": ("clip", "share of clipped updates, < 0.2"),
    "train/std": ("std", "action randomness, decreases as the policy gets confident"),
    "curriculum/stage": ("stage", "curriculum stage (0 = first), rises as each stage's rule is met"),
}
# Upper bounds from the reference table; a value above is highlighted in the Rich table.
WARN_ABOVE = {"train/approx_kl": 0.02, "train/clip_fraction": 0.2}
PERCENT = {"env/success_rate"}


def curriculum_summary(metrics: Mapping[str, float]) -> list[tuple[str, float]]:
    """(label, value) of a level curriculum's summary: the mean over worlds of each setting it varies
    (``curriculum/mean_<setting>``). Its per-level entries (``curriculum/level<i>_*``) go to
    TensorBoard and metrics.csv only."""
    prefix = "curriculum/mean_"
    return [(k[len("curriculum/"):], metrics[k]) for k in sorted(metrics) if k.startswith(prefix)]


def _per_level(key: str) -> bool:
    return key.startswith("curriculum/level")


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (``Nd HH:MM:SS`` beyond a day); ``--:--`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_metric(key: str, value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if key in PERCENT:
        return f"{100.0 * value:.1f}%"
    if key == "time/fps" or (abs(value) >= 1e4 and float(value).is_integer()):
        return f"{value:,.0f}"
    return f"{value:.4g}"


class Clock:
    """Elapsed time, speed and ETA of this process's share of the run."""

    def __init__(self, total_steps: int, start_step: int = 0, now: float | None = None):
        self.total_steps = int(total_steps)
        self.start_step = int(start_step)
        self.t0 = time.perf_counter() if now is None else now
        self.step = self.start_step
        self.t_step = self.t0

    def restart(self, now: float | None = None) -> None:
        """Start timing now (called once the monitor's sinks are open)."""
        self.t0 = self.t_step = time.perf_counter() if now is None else now

    def update(self, step: int, now: float | None = None) -> None:
        self.step = int(step)
        self.t_step = time.perf_counter() if now is None else now

    def elapsed(self, now: float | None = None) -> float:
        return (time.perf_counter() if now is None else now) - self.t0

    @property
    def fps(self) -> float | None:
        """Steps per second since this process started (``None`` before the first step)."""
        done, dt = self.step - self.start_step, self.t_step - self.t0
        return done / dt if done > 0 and dt > 0 else None

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left, counting down between updates."""
        fps = self.fps
        if fps is None:
            return None
        remaining = max(self.total_steps - self.step, 0) / fps
        since = (time.perf_counter() if now is None else now) - self.t_step
        return max(remaining - since, 0.0)

    @property
    def fraction(self) -> float:
        return min(self.step / self.total_steps, 1.0) if self.total_steps > 0 else 1.0


# ---------------------------------------------------------------------------------- plain
class PlainView:
    """One compact, flushed line per log call (CI, log files, pipes)."""

    def __init__(self, clock: Clock):
        self.clock = clock

    def line(self, step: int, metrics: Mapping[str, float]) -> str:
        c = self.clock
        parts = [f"step {step:,}/{c.total_steps:,} ({100.0 * c.fraction:.1f}%)"]
        fps = metrics.get("time/fps", c.fps)
        if fps is not None:
            parts.append(f"fps {format_metric('time/fps', fps)}")
        for key, (label, _) in METRICS_REFERENCE.items():
            if key != "time/fps" and key in metrics:
                parts.append(f"{label} {format_metric(key, metrics[key])}")
        for label, value in curriculum_summary(metrics):
            parts.append(f"{label} {format_metric(label, value)}")
        parts.append(f"elapsed {format_duration(c.elapsed())}")
        parts.append(f"eta {format_duration(c.eta())}")
        return " | ".join(parts)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        print(self.line(step, metrics), file=sys.stdout, flush=True)

    def message(self, text: str) -> None:
        print(text, file=sys.stdout, flush=True)

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------- rich
class RichView:
    """A progress bar (steps, FPS, elapsed, ETA) above a metrics table, in a ``rich.live.Live``."""

    def __init__(self, clock: Clock, title: str = "training", console=None):
        from rich.console import Console, Group
        from rich.live import Live
        from rich.progress import BarColumn, Progress, ProgressColumn, TaskProgressColumn, TextColumn
        from rich.text import Text

        self.clock = clock
        self._Group = Group

        class _TimeColumn(ProgressColumn):
            """FPS, elapsed and ETA from the shared clock (ticks between updates)."""

            def render(self, task) -> Text:
                fps = clock.fps
                return Text.assemble(
                    (f"{fps:,.0f} fps" if fps is not None else "-- fps", "cyan"), "  ",
                    ("elapsed ", "dim"), (format_duration(clock.elapsed()), "yellow"), "  ",
                    ("eta ", "dim"), (format_duration(clock.eta()), "green"),
                )

        self.console = console or Console()
        self.progress = Progress(
            TextColumn("[bold blue]{task.description}"),
            BarColumn(bar_width=None),
            TaskProgressColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
            _TimeColumn(),
            console=self.console,
            expand=True,
        )
        total = max(clock.total_steps, 1)
        self.task = self.progress.add_task(title, total=total, completed=min(clock.step, total))
        self.metrics: dict[str, float] = {}
        self.live = Live(self._render(), console=self.console, refresh_per_second=2,
                         transient=False, redirect_stdout=True, redirect_stderr=True)
        self.live.start()

    def _table(self):
        from rich.table import Table

        table = Table(expand=False, box=None, pad_edge=False, show_edge=False, header_style="bold")
        table.add_column("metric", style="bold", no_wrap=True)
        table.add_column("value", justify="right", no_wrap=True)
        table.add_column("good values", style="dim")
        shown = [k for k in METRICS_REFERENCE if k in self.metrics]
        shown += sorted(k for k in self.metrics if k not in METRICS_REFERENCE and not _per_level(k))
        for key in shown:
            value = self.metrics[key]
            text = format_metric(key, value)
            limit = WARN_ABOVE.get(key)
            style = "yellow" if limit is not None and value > limit else ""
            hint = METRICS_REFERENCE.get(key, ("", ""))[1]
            table.add_row(key, f"[{style}]{text}[/]" if style else text, hint)
        return table

    def _render(self):
        if not self.metrics:
            return self.progress
        return self._Group(self.progress, self._table())

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        self.metrics.update(metrics)
        total = max(self.clock.total_steps, 1)
        self.progress.update(self.task, completed=min(step, total))
        self.live.update(self._render(), refresh=True)

    def message(self, text: str) -> None:
        self.live.console.print(text)

    def warn(self, text: str) -> None:
        self.live.console.print(f"[bold yellow]warning:[/] {text}", highlight=False)

    def close(self) -> None:
        self.live.update(self._render(), refresh=True)
        self.live.stop()


class NullView:
    """No console output (``console="none"``); warnings still reach stderr."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def make_view(mode: str, clock: Clock, title: str = "training"):
    """``"auto"`` (Rich on a terminal or notebook, plain otherwise), ``"rich"``, ``"plain"``, ``"none"``."""
    if mode not in ("auto", "rich", "plain", "none"):
        raise ValueError(f"console must be 'auto', 'rich', 'plain' or 'none', got {mode!r}")
    if mode == "none":
        return NullView()
    if mode == "plain":
        return PlainView(clock)
    from rich.console import Console

    console = Console()
    if mode == "auto" and not ((console.is_terminal and not console.is_dumb_terminal) or console.is_jupyter):
        return PlainView(clock)
    return RichView(clock, title=title, console=console)
