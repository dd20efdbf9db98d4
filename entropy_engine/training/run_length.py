"""How long a run goes, the same for both trainers: rollout lengths that end at the step total,
and the wall-clock stop of ``time_limit_s``."""
from __future__ import annotations

import time
from typing import Callable


def rollout_steps(n_steps: int, n_slots: int, remaining: int) -> int:
    """Steps per slot of the next rollout: ``n_steps``, or fewer for the last one, so that the run ends
    at its total (exactly when ``remaining`` is a multiple of ``n_slots``, else at the next multiple)."""
    return n_steps if remaining <= 0 else min(n_steps, -(-remaining // n_slots))


def time_limit(seconds: float) -> Callable[[], bool] | None:
    """A ``stop()`` that is true once ``seconds`` of wall-clock time have passed (None for 0 = no limit)."""
    if seconds <= 0:
        return None
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline
