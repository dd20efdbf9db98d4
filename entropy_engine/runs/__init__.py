"""Run folders and training monitoring: crash-safe files, config, metrics CSV, console,
TensorBoard and W&B. Nothing heavy is imported here (Rich, TensorBoard and W&B load lazily)."""
from __future__ import annotations

from .files import (
    RunPaths,
    atomic_save,
    atomic_write_bytes,
    atomic_write_text,
    default_run_dir,
    read_config,
    run_layout,
    write_config,
)
from .monitor import Monitor

__all__ = [
    "Monitor",
    "RunPaths",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "default_run_dir",
    "read_config",
    "run_layout",
    "write_config",
]
