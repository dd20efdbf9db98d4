"""Rolling crash-recovery checkpoint of the native trainer (``checkpoints/checkpoint.zip``).

Every ``checkpoint_every`` agent-steps the trainer's whole state (``NativeTrainer.state_dict()``)
is written atomically (temp file, fsync, rename); the previous checkpoint is kept as
``checkpoint.prev.zip`` and used if the newest one cannot be read. Running the same command again
resumes from it; a finished run deletes both after saving its final model.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..runs.files import atomic_save

PREV_NAME = "checkpoint.prev.zip"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    path = Path(path)
    if path.exists():
        os.replace(path, path.with_name(PREV_NAME))
    return atomic_save(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The newest readable checkpoint at ``path`` (or its fallback), or None if there is none."""
    path = Path(path)
    errors = []
    for cand in (path, path.with_name(PREV_NAME)):
        if cand.is_file():
            try:
                return torch.load(cand, map_location="cpu", weights_only=False)
            except Exception as exc:  # a torn or corrupt file: try the fallback
                errors.append(f"{cand}: {exc}")
    if errors:
        raise RuntimeError("no readable checkpoint: " + "; ".join(errors))
    return None


def delete_checkpoints(path: str | Path) -> None:
    path = Path(path)
    for cand in (path, path.with_name(PREV_NAME)):
        try:
            cand.unlink()
        except FileNotFoundError:
            pass


class Checkpointer:
    """Calls ``save_checkpoint`` each time the trainer crosses a multiple of ``every`` steps."""

    def __init__(self, path: str | Path, every: int, start_step: int = 0):
        self.path, self.every = Path(path), int(every)
        self.last = start_step // self.every if self.every > 0 else 0

    def __call__(self, trainer: Any) -> None:
        if self.every <= 0:
            return
        k = trainer.num_timesteps // self.every
        if k > self.last:
            save_checkpoint(self.path, trainer.state_dict())
            self.last = k
