"""What a training run shows of itself: GIFs of the swarm in ``videos/`` and ``learning_curves.png``.

- ``videos/start.gif``: the untrained policy, recorded before training (kept on resume);
- ``videos/end.gif``: the trained policy on the same layout (same scenario seed), at the end;
- ``videos/comparison.gif``: both side by side;
- ``learning_curves.png`` (run folder): success rate, return and collisions over steps, from
  ``metrics.csv``; refreshed when a checkpoint is written (at most once a minute) and at the end.

One world, deterministic actions, ``video_steps`` steps (at most one episode) rendered at ``video_size`` pixels keeping
every ``video_frame_skip``-th frame, so a default run spends a few seconds on it. Rendering needs
no display: without one, ``SDL_VIDEODRIVER=dummy`` is set (unless already set).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .config import TrainConfig

CURVES_FILE = "learning_curves.png"
REFRESH_S = 60.0


def ensure_headless() -> None:
    """Let pygame render off-screen when the machine has no display."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


class RunVideos:
    """The GIFs and the learning-curve PNG of one run folder (``runs.files.RunPaths``)."""

    def __init__(self, cfg: TrainConfig, paths: Any, warn: Callable[[str], None] = print):
        self.cfg, self.paths, self.warn = cfg, paths, warn
        self.start_gif = Path(paths.videos) / "start.gif"
        self.curves_png = Path(paths.root) / CURVES_FILE
        self._last_plot = time.monotonic()
        if cfg.videos:
            ensure_headless()

    def record(self, policy: Any, caption: str) -> list:
        """Frames of one episode of ``policy`` in one world of the run's scenario (fixed seed)."""
        from ..render.episode import episode_env
        from ..render.gif import record_episode

        cfg = self.cfg
        env = episode_env(cfg.scenario, cfg.n_agents, cfg.seed, **cfg.eval_env_kwargs)   # the hardest stage
        steps = min(cfg.video_steps or env.max_steps, env.max_steps)
        return record_episode(env, policy, steps=steps, size=cfg.video_size,
                              frame_skip=cfg.video_frame_skip, caption=caption, seed=cfg.seed)

    def start(self, make_policy: Callable[[], Any]) -> Path | None:
        """Record ``start.gif`` of the untrained policy unless it exists (a resumed run)."""
        if not self.cfg.videos or self.start_gif.exists():
            return None
        from ..render.gif import write_gif
        from ..runs.files import atomic_save

        try:
            frames = self.record(make_policy(), "untrained")
            return atomic_save(self.start_gif, lambda tmp: write_gif(tmp, frames, self.cfg.video_fps))
        except Exception as exc:  # videos are a by-product: never lose a run over them
            self.warn(f"could not record {self.start_gif}: {type(exc).__name__}: {exc}")
            return None

    def finish(self, policy: Any) -> dict[str, Path]:
        """Record the trained policy; write ``end.gif``, ``comparison.gif`` and the learning curves."""
        out: dict[str, Path] = {}
        if self.cfg.videos:
            from ..render.gif import read_gif, write_gif, write_run_videos

            start = None
            if self.start_gif.exists():
                try:
                    start = list(read_gif(self.start_gif))
                except Exception as exc:
                    self.warn(f"could not read {self.start_gif} ({type(exc).__name__}: {exc}); "
                              "writing end.gif without a comparison")
            try:
                end = self.record(policy, "trained")
                if start:
                    out.update(write_run_videos(self.paths.videos, start, end, self.cfg.video_fps))
                else:
                    out["end"] = write_gif(Path(self.paths.videos) / "end.gif", end, self.cfg.video_fps)
            except Exception as exc:
                self.warn(f"could not write the run's GIFs: {type(exc).__name__}: {exc}")
        png = self.plot()
        if png is not None:
            out["curves"] = png
        return out

    def plot(self) -> Path | None:
        """Write ``learning_curves.png`` from ``metrics.csv`` (if there is one)."""
        csv = Path(self.paths.metrics_csv)
        if not csv.is_file():
            return None
        from ..render.curves import plot_learning_curves
        from ..runs.files import atomic_save

        try:
            self._last_plot = time.monotonic()
            return atomic_save(self.curves_png, lambda tmp: plot_learning_curves(csv, tmp, title=Path(self.paths.root).name))
        except Exception as exc:
            self.warn(f"could not plot {self.curves_png}: {type(exc).__name__}: {exc}")
            return None

    def refresh(self) -> None:
        """Re-plot the learning curves if the last plot is older than a minute (cheap to call often)."""
        if time.monotonic() - self._last_plot >= REFRESH_S:
            self.plot()
