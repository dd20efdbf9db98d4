"""Run folders and crash-safe file writes.

A run folder holds everything one training run produces::

    runs/<run-name>/
        config.yaml          resolved config (written atomically, read back on resume)
        metrics.csv          one row per logged iteration (``step`` + metric names)
        events.out.tfevents.* TensorBoard scalars
        checkpoints/         rolling crash-recovery checkpoint
        models/              final model(s)
        videos/              GIFs / videos of the swarm

Every file that must survive a crash (config, checkpoints) is written with :func:`atomic_save`:
the new content goes to a temporary file in the same folder, is flushed and fsynced, and only
then replaces the old file with ``os.replace`` (atomic on POSIX and Windows); the folder is
fsynced so the rename itself is durable. A crash or an exception mid-way leaves the previous
file untouched and no half-written file under the final name.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import errno
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
DEFAULT_RUNS_ROOT = Path("runs")


# --------------------------------------------------------------------------- atomic writes
def _fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows: folders cannot be opened; os.replace is durable enough there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_path(path: Path) -> Path:
    """A fresh, hidden temporary name beside ``path`` keeping its suffix (SB3 appends ``.zip``
    to suffix-less paths, so the temp file must end like the target)."""
    while True:
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


# names of temporary files: ``_temp_path``'s, and the ``<name>.tmp`` of older final-model writers
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.[^.]*)?$|^[^.].*\.(pt|zip)\.tmp$")


def clean_temp_files(*folders: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that interrupted writes (``kill -9`` mid-save) left in ``folders``
    (not recursive); returns what was deleted. Only call it on folders no other process writes to
    (a run folder whose lock this process holds)."""
    removed = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if _TEMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
                except FileNotFoundError:
                    pass
    return removed


def atomic_save(path: str | os.PathLike, writer_fn: Callable[[Path], Any]) -> Path:
    """Write ``path`` crash-safely through ``writer_fn(tmp_path)``.

    ``writer_fn`` receives a temporary path in the same folder (same suffix as ``path``, e.g.
    ``model.save`` or ``torch.save`` can write to it) and must write the complete content there.
    The temp file is then fsynced and atomically renamed over ``path``. If ``writer_fn`` raises,
    the temp file is removed, the exception propagates and the old ``path`` is left intact.
    Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        writer_fn(tmp)
        if not tmp.is_file():
            raise FileNotFoundError(
                f"atomic_save: the writer did not produce {tmp} (did it write to another name?)"
            )
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        full = isinstance(exc, Exception) and is_disk_full(exc, path.parent)   # asked before the temp file goes
        try:
            tmp.unlink()
        except OSError:
            pass
        if full and not isinstance(exc, DiskFullError):
            raise DiskFullError(path) from exc
        raise
    _fsync_dir(path.parent)
    return path


# --------------------------------------------------------------------------- full disks
class DiskFullError(OSError):
    """A write failed because the disk (or the user's quota) is full; ``filename`` is the file."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(errno.ENOSPC, "no space left on device", os.fspath(path))

    def __str__(self) -> str:
        return f"no space left on device while writing {self.filename}"


# torch.save to a path reports a full disk as a RuntimeError from its zip writer, without errno
_TORCH_WRITE_FAILED = ("inline_container", "PytorchStreamWriter", "iostream error")
LOW_SPACE_BYTES = 64 << 20


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Bytes an unprivileged user can still write in ``folder``'s file system (None if unknown)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def is_disk_full(exc: BaseException, folder: str | os.PathLike) -> bool:
    """Whether ``exc``, raised while writing into ``folder``, means the disk is full: an ``OSError``
    with ``ENOSPC``/``EDQUOT`` anywhere in its chain, or torch's zip-writer ``RuntimeError`` while
    the file system has less than ``LOW_SPACE_BYTES`` free."""
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, RuntimeError) and any(s in str(e) for s in _TORCH_WRITE_FAILED):
            free = free_bytes(folder)
            return free is not None and free < LOW_SPACE_BYTES
        e = e.__cause__ or e.__context__
    return False


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically replace ``path`` with ``data`` (see :func:`atomic_save`)."""
    data = bytes(data)

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)  # atomic_save fsyncs before the rename

    return atomic_save(path, _write)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Atomically replace ``path`` with ``text``."""
    return atomic_write_bytes(path, text.encode(encoding))


# --------------------------------------------------------------------------- config files
def to_plain(value: Any) -> Any:
    """Convert a config value to something ``yaml.safe_dump`` writes (and reads back)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return to_plain(value.item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays
        return to_plain(value.tolist())
    return str(value)


def write_config(run_dir: str | os.PathLike, config: Mapping[str, Any] | Any) -> Path:
    """Write the resolved ``config`` (a mapping or a dataclass) to ``run_dir/config.yaml``.

    The file is written atomically, keys keep their order, and values are converted to plain
    YAML types (tuples become lists, paths and enums strings/values). Returns the file path.
    """
    import yaml

    from .. import __version__

    data = to_plain(config)
    if not isinstance(data, dict):
        raise TypeError(f"write_config expects a mapping or a dataclass, got {type(config).__name__}")
    stamp = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    header = f"# Resolved config written by entropy-engine {__version__} at {stamp}\n"
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return atomic_write_text(Path(run_dir) / CONFIG_FILE, header + body)


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read the config written by :func:`write_config` (``run_dir`` or the YAML file itself)."""
    import yaml

    path = Path(run_dir)
    if path.is_dir() or path.suffix.lower() not in (".yaml", ".yml"):
        path = path / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no run config at {path} (is this a run folder?)")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a mapping of config keys")
    return data


# --------------------------------------------------------------------------- run folders
@dataclasses.dataclass(frozen=True)
class RunPaths:
    """The paths of one run folder (see the module docstring)."""

    root: Path
    """The run folder itself (TensorBoard event files are written here)."""
    checkpoints: Path
    """Folder of the rolling crash-recovery checkpoint."""
    models: Path
    """Folder of the final model(s)."""
    videos: Path
    """Folder of GIFs / videos."""
    config_file: Path
    """``config.yaml``: the resolved config of the run."""
    metrics_csv: Path
    """``metrics.csv``: one row per logged iteration."""

    @property
    def checkpoint_file(self) -> Path:
        """The rolling checkpoint, overwritten every ``checkpoint_every`` steps."""
        return self.checkpoints / "checkpoint.zip"


def run_layout(out_dir: str | os.PathLike) -> RunPaths:
    """Create (if needed) the folders of the run at ``out_dir`` and return its paths."""
    root = Path(out_dir)
    paths = RunPaths(
        root=root,
        checkpoints=root / "checkpoints",
        models=root / "models",
        videos=root / "videos",
        config_file=root / CONFIG_FILE,
        metrics_csv=root / METRICS_FILE,
    )
    for folder in (paths.root, paths.checkpoints, paths.models, paths.videos):
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    return paths


def default_run_dir(name: str | None = None) -> Path:
    """``runs/<name>`` (relative to the working folder), or ``runs/<YYYYmmdd-HHMMSS>`` without
    a name. The name must be a plain folder name (no ``/``, ``\\`` or ``..``)."""
    if name is None or not str(name).strip():
        name = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = str(name).strip()
    if name in (".", "..") or any(sep in name for sep in ("/", "\\", os.sep)):
        raise ValueError(f"run name {name!r} must be a plain folder name (use --out for a path)")
    return DEFAULT_RUNS_ROOT / name
