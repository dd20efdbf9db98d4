"""One training run per run folder: an exclusive lock on ``<run>/.lock`` held for the whole run.

``lock_run_folder(root)`` takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` on the lock file and writes the
holder's pid into it. The lock belongs to the open file, so it ends with the process however the
process ends (normal exit, exception, Ctrl-C, ``kill -9``): a crashed run never leaves a stale
lock behind, and there is nothing to clean up. A second run on the same folder is refused with a
``RunInUseError`` naming the holder's pid. The lock file itself stays in the folder (removing it
would let two runs lock two different files of the same name).

Platforms without ``fcntl`` (Windows) run without the lock.
"""
from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunInUseError(RuntimeError):
    """Another process holds the run folder's lock."""


class RunLock:
    """The held lock of one run folder; ``release()`` (or process exit) frees it."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self._fd = path, fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)       # closing the file ends the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"


def lock_run_folder(root: str | os.PathLike) -> RunLock:
    """Lock the existing folder ``root`` for this process, or raise ``RunInUseError``."""
    path = Path(root) / LOCK_FILE
    if fcntl is None:
        return RunLock(path, None)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)     # not inherited by child processes
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(fd)
        os.close(fd)
        raise RunInUseError(f"run folder {root} is in use by another training run (pid {pid}); wait for it "
                            "to end or stop it, or train into another folder (--out/--name)") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return RunLock(path, fd)
