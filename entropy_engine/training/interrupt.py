"""Ctrl-C and SIGTERM during training: stop at the next iteration boundary, then checkpoint.

``StopSignals`` replaces the SIGINT and SIGTERM handlers while it is entered. The first signal
only records itself (and says so on stderr); the trainers ask ``stop()`` after each update, so the
run stops between two iterations, in a state a checkpoint can hold exactly. A second signal stops
at once (``KeyboardInterrupt`` from wherever the program is); the rolling checkpoint already on
disk is kept. ``exit_code`` is the shell's convention for death by that signal: 128 + its number
(130 for SIGINT, 143 for SIGTERM).
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """A ``stop()`` callable that turns true once SIGINT or SIGTERM arrives (see the module docstring)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum or 0)

    def __call__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt      # the second signal: stop now
        self.signum = signum
        # os.write, not print: a handler may interrupt a print to the same stream
        msg = (f"\n{signal.Signals(signum).name} received: stopping after the current update and writing a "
               "checkpoint (send it again to stop at once)\n")
        try:
            os.write(2, msg.encode())
        except OSError:
            pass

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():   # handlers can only be set there
            for sig in SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def any_of(*stops: Callable[[], bool] | None) -> Callable[[], bool] | None:
    """A ``stop()`` that is true when any of ``stops`` (None entries ignored) is; None if none is given."""
    active = [s for s in stops if s is not None]
    if not active:
        return None
    return lambda: any(s() for s in active)
