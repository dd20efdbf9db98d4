"""Thread set-up shared by numba and PyTorch.

On a 2-core laptop the simulation shares the cores with PyTorch and with everything else the user
runs. OpenMP's default busy-waiting between parallel regions made a step 10-25x slower in our
measurements as soon as another process wanted the same cores (``entropy bench``, 64 worlds x 10
agents, 2 cores with one other busy process: OpenMP default 26k-81k agent-steps/s, numba's
``workqueue`` layer 590k-630k, OpenMP with ``OMP_WAIT_POLICY=PASSIVE`` 690k-760k). The variable must be
set before the OpenMP runtime loads, which is why ``entropy_engine/__init__.py`` calls
``configure_openmp()`` first thing: a user who sets ``OMP_WAIT_POLICY`` or
``NUMBA_THREADING_LAYER`` keeps their choice, and one who imports torch before entropy_engine
gets OpenMP's defaults.
"""
from __future__ import annotations

import os


def configure_openmp() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
