"""OpenMP set-up shared by numba's threading layer and PyTorch.

On a 2-core laptop the simulation shares the cores with PyTorch and with everything else the user
runs. A numba step is a handful of parallel regions of tens of microseconds each; what the
OpenMP threads do between regions decides the speed. Measured with ``entropy bench`` (64 worlds x
10 agents, agent-steps/s, 2-core AMD EPYC VM), idle machine / with one busy process beside it:

| setting                                   | idle      | one busy process |
|-------------------------------------------|-----------|------------------|
| OpenMP default (spin ~300,000 iterations) | ~1.8M     | 26k-81k          |
| ``GOMP_SPINCOUNT=30000``                  | 1.65M     | 277k             |
| ``GOMP_SPINCOUNT=10000`` (our default)    | 1.62M     | 442k             |
| ``OMP_WAIT_POLICY=PASSIVE`` (never spin)  | 0.95-1.15M| 764k             |
| numba ``workqueue`` layer                 | 0.83-0.94M| 590k-630k        |

The default's long spinning collapses as soon as another process wants the cores; a short spin
keeps nearly all of the idle-machine speed. Users on a busy machine may prefer
``OMP_WAIT_POLICY=PASSIVE``; any ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` they set is kept.
The variable must be set before the OpenMP runtime loads, which is why
``entropy_engine/__init__.py`` calls ``configure_openmp()`` first thing (a program that imports
torch before entropy_engine gets OpenMP's defaults).
"""
from __future__ import annotations

import os

SPINCOUNT = "10000"


def configure_openmp() -> None:
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
