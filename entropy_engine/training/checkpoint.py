"""Rolling crash-recovery checkpoint of a run (``checkpoints/checkpoint.zip``), for both trainers.

Every ``checkpoint_every`` agent-steps the trainer's whole state is written atomically (temp file,
fsync, rename: ``runs.files.atomic_save``); the previous checkpoint is first renamed to
``checkpoint.prev.zip``, so the last two are kept. Running the same command again resumes from the
newest one that can be read *and* fits the run; a corrupt or incompatible newest one is reported
(file name and reason), moved aside to ``checkpoint.corrupt.zip`` and the previous one is used. If
none is usable the run stops with a ``CheckpointError`` naming every file. A finished run deletes
both after saving its final model.

Native checkpoints are ``torch.save`` archives of ``NativeTrainer.state_dict()`` (tensors and plain
data, the config as JSON text, a sha256 of it all), read with ``weights_only=True``; SB3 checkpoints
are ``RecurrentPPO.save`` archives with an ``entropy_engine.json`` entry, read without unpickling
(``safe_files``, ``sb3_files``). Both record the resolved config, checked by ``check_compatible``.
A checkpoint that fails its checksum, holds NaN or inf, or would need an unsafe unpickler counts as
corrupt: the previous one is used. Non-finite state is never written (``TrainingDiverged``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from ..runs.files import atomic_save

CHECKPOINT_FORMAT = "entropy-engine-checkpoint"
CHECKPOINT_VERSION = 2
PREV_NAME = "checkpoint.prev.zip"
CORRUPT_NAME = "checkpoint.corrupt.zip"
T = TypeVar("T")

# config keys a checkpoint must share with the run that resumes it (shapes of weights and env state)
STRUCTURAL_KEYS = ("algo", "scenario", "num_worlds", "n_agents", "lstm_hidden_size", "shared_lstm", "net_arch",
                   "encoder_size", "curriculum")


class CheckpointError(RuntimeError):
    """No checkpoint of the run can be used to resume it."""


def check_compatible(saved: Mapping[str, Any] | None, current: Mapping[str, Any]) -> None:
    """Raise ``CheckpointError`` if a checkpoint written with config ``saved`` cannot resume ``current``."""
    if not saved:
        raise CheckpointError("it holds no run config (not written by `entropy train`?)")
    diff = [f"{k}={saved.get(k)!r} (this run: {current.get(k)!r})" for k in STRUCTURAL_KEYS
            if k in current and saved.get(k, current[k]) != current[k]]
    if diff:
        raise CheckpointError("it was written by a run with a different config: " + ", ".join(diff))


def save_checkpoint(path: str | Path, writer_fn: Callable[[Path], Any]) -> Path:
    """Keep the current checkpoint as ``checkpoint.prev.zip``, then write the new one atomically
    through ``writer_fn(tmp_path)``. A crash at any point leaves at least one complete checkpoint."""
    path = Path(path)
    if path.exists():
        os.replace(path, path.with_name(PREV_NAME))
    return atomic_save(path, writer_fn)


def save_torch_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a native trainer's ``state`` (tensors, plain data, ``config`` as a dict) as the rolling
    checkpoint. Raises ``TrainingDiverged`` without writing anything if a value is NaN or inf."""
    import json

    from .guards import TrainingDiverged
    from .safe_files import describe, nonfinite_entries, save_torch_file

    bad = nonfinite_entries(state)
    if bad:
        raise TrainingDiverged(f"refusing to write checkpoint {path}: it would hold non-finite values (NaN or inf) "
                               f"in {describe(bad)}")
    payload = {**state, "config": json.dumps(state.get("config") or {})}
    return save_checkpoint(path, lambda tmp: save_torch_file(tmp, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, payload))


def restore_checkpoint(path: str | Path, apply: Callable[[Path], T],
                       warn: Callable[[str], None] = print) -> tuple[T, Path] | None:
    """``(apply(file), file)`` for the newest usable checkpoint, or None if the run has none.

    ``apply`` loads a checkpoint file into the trainer and raises if it is corrupt or does not fit.
    A failure is reported through ``warn`` and the previous checkpoint is tried; if none works a
    ``CheckpointError`` names each file and what was wrong with it.
    """
    from .safe_files import ModelFileError

    path = Path(path)
    candidates = [c for c in (path, path.with_name(PREV_NAME)) if c.is_file()]
    errors = []
    for i, cand in enumerate(candidates):
        try:
            return apply(cand), cand
        except Exception as exc:
            reason = (str(exc) if isinstance(exc, (CheckpointError, ModelFileError))
                      else f"{type(exc).__name__}: {exc}")
            errors.append(f"checkpoint {cand} is unusable: {reason}")
            if i + 1 < len(candidates):
                moved = cand.with_name(CORRUPT_NAME)
                os.replace(cand, moved)
                warn(f"{errors[-1]}; moved it to {moved} and falling back to the previous checkpoint "
                     f"{candidates[i + 1]}")
    if errors:
        raise CheckpointError("\n".join(errors) + f"\nNo usable checkpoint left: delete {path.parent} to start "
                              "the run from scratch (or from --prev-model).")
    return None


def load_torch_checkpoint(path: str | Path) -> dict[str, Any]:
    """A native checkpoint file's state dict, read with ``weights_only=True`` and checked (sha256,
    finite values); raises ``ModelFileError`` or ``CheckpointError`` on a corrupt or unsafe file."""
    import json

    from .safe_files import load_torch_file, verified_payload

    obj = load_torch_file(path)
    state = dict(verified_payload(path, obj, CHECKPOINT_FORMAT, "checkpoint"))
    if "model" not in state:
        raise CheckpointError("it is not a native trainer checkpoint (no 'model' entry)")
    state["config"] = json.loads(state.get("config") or "{}")
    return state


def delete_checkpoints(path: str | Path) -> None:
    path = Path(path)
    for cand in (path, path.with_name(PREV_NAME)):
        try:
            cand.unlink()
        except FileNotFoundError:
            pass


class Checkpointer:
    """Calls ``save(trainer)`` each time ``trainer.num_timesteps`` crosses a multiple of ``every``."""

    def __init__(self, save: Callable[[Any], Any], every: int, start_step: int = 0):
        self.save, self.every = save, int(every)
        self.last = start_step // self.every if self.every > 0 else 0

    def __call__(self, trainer: Any) -> bool:
        if self.every <= 0:
            return False
        k = trainer.num_timesteps // self.every
        if k > self.last:
            self.save(trainer)
            self.last = k
            return True
        return False
