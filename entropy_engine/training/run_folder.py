"""The run folder of one ``entropy train``: created, locked, checked and cleaned.

``RunFolder(root).open(overwrite)`` is called once the config and the command line have been
checked, so a refused start never creates a folder. It then

- creates the folder (remembering which folders it created) and takes its lock
  (``runs.lock``): a second run on the same folder is refused, naming the first one's pid;
- refuses a finished run (a final model in ``models/`` and no checkpoint) unless ``overwrite``,
  which deletes the previous results first (final model, checkpoints, ``metrics.csv``,
  TensorBoard events, GIFs, learning curves, W&B id) so the run starts from scratch;
- deletes the temporary files of writes that a killed run left behind (``runs.files.clean_temp_files``).

``discard()`` after a failed start removes what ``open`` created (the whole folder if it created
it); ``close()`` deletes temporary files again and releases the lock. The lock is released by the
operating system however the process ends.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..config import ConfigError
from ..runs.files import CONFIG_FILE, METRICS_FILE, RunPaths, clean_temp_files, run_layout
from ..runs.lock import RunLock, lock_run_folder
from .checkpoint import CORRUPT_NAME, PREV_NAME

FINAL_MODELS = ("model.pt", "model.zip")


def final_model(paths: RunPaths) -> Path | None:
    """The run's final model file, if it has one."""
    for name in FINAL_MODELS:
        if (paths.models / name).is_file():
            return paths.models / name
    return None


def checkpoint_files(paths: RunPaths) -> list[Path]:
    """The run's rolling checkpoints (newest first) that exist."""
    ckpt = paths.checkpoint_file
    return [c for c in (ckpt, ckpt.with_name(PREV_NAME)) if c.is_file()]


class RunFolder:
    """See the module docstring."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.paths: RunPaths | None = None
        self.lock: RunLock | None = None
        self._created: list[Path] = []           # folders this process created, outermost first
        self._new_inside: list[Path] = []        # subfolders and config.yaml it created in an existing one

    def check(self) -> None:
        """Refuse a path that cannot be a run folder, creating nothing."""
        for p in (self.root, *self.root.parents):
            if p.exists() and not p.is_dir():
                what = "the run folder" if p == self.root else f"a parent of the run folder {self.root}"
                raise ConfigError(f"{p} is a file, not a folder: it cannot be {what} (--out expects a folder)")

    def open(self, overwrite: bool = False) -> RunPaths:
        self.check()
        self._created = [p for p in reversed((self.root, *self.root.parents)) if not p.exists()]
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = lock_run_folder(self.root)
        inside = [self.root / n for n in ("checkpoints", "models", "videos", CONFIG_FILE)]
        self._new_inside = [] if self._created else [p for p in inside if not p.exists()]
        try:
            paths = run_layout(self.root)
        except NotADirectoryError as exc:
            raise ConfigError(f"{exc}: this is not a run folder") from None
        model = final_model(paths)
        if model is not None and not checkpoint_files(paths) and not overwrite:
            raise ConfigError(f"run {self.root} is finished (final model {model}); train into another folder "
                              "(--out/--name), or add --overwrite to train this one again from scratch")
        if overwrite:
            self._wipe(paths)
        clean_temp_files(*self._folders(paths))
        self.paths = paths
        return paths

    @staticmethod
    def _folders(paths: RunPaths) -> tuple[Path, ...]:
        return paths.root, paths.checkpoints, paths.models, paths.videos

    def _wipe(self, paths: RunPaths) -> None:
        """Delete the previous results of the run (``--overwrite``); other files stay."""
        from ..runs.monitor import WANDB_ID_FILE
        from .videos import CURVES_FILE

        doomed = [paths.models / n for n in FINAL_MODELS]
        doomed += [paths.checkpoint_file.with_name(n) for n in (paths.checkpoint_file.name, PREV_NAME, CORRUPT_NAME)]
        doomed += [paths.root / METRICS_FILE, paths.root / CURVES_FILE, paths.root / WANDB_ID_FILE]
        doomed += list(paths.root.glob("events.out.tfevents.*"))
        doomed += list(paths.videos.glob("*.gif"))
        for f in doomed:
            try:
                f.unlink()
            except FileNotFoundError:
                pass

    def discard(self) -> None:
        """After a failed start: remove the folders ``open`` created (with what was written into them)."""
        self.release()
        if self._created:                 # the outermost one holds the others
            shutil.rmtree(self._created[0], ignore_errors=True)
        for p in self._new_inside:        # in a folder that existed before: only what this run added
            try:
                p.unlink() if p.name == CONFIG_FILE else p.rmdir()
            except OSError:
                pass
        self._created, self._new_inside = [], []

    def release(self) -> None:
        if self.paths is not None:
            clean_temp_files(*self._folders(self.paths))
        if self.lock is not None:
            self.lock.release()
            self.lock = None

