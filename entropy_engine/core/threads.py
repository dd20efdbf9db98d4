"""Numba threading set-up.

On a 2-core laptop the simulation shares the cores with PyTorch and with everything else the user
runs. numba's default OpenMP layer busy-waits between parallel regions; when another process
wants the same cores, that spinning made a step up to 10x slower in our measurements. numba's
own ``workqueue`` layer sleeps instead and was never slower here, so it is the default unless the
user chose a layer with ``NUMBA_THREADING_LAYER``.
"""
from __future__ import annotations

import os

import numba


def configure_threading_layer() -> None:
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    try:
        from numba.np.ufunc import parallel

        if getattr(parallel, "_is_initialized", False):
            return  # a layer is already running in this process: leave it
    except ImportError:  # pragma: no cover - numba internals moved
        pass
    numba.config.THREADING_LAYER = "workqueue"


configure_threading_layer()
