"""Keep the update's large buffers in the heap instead of fresh pages from the kernel.

glibc's malloc serves every block above ``M_MMAP_THRESHOLD`` (at most 32 MiB with its dynamic
threshold) with its own ``mmap`` and gives it back with ``munmap`` when it is freed. The update of
the ``seed`` network (2 LSTMs of 256 units, minibatches of 4096 agent-steps) asks for such blocks:
``strace`` shows a 48 MiB ``mmap``/``munmap`` pair several times per minibatch, about the size of
the LSTM's training workspace. Each allocation then starts on untouched pages, and filling them
costs one page fault per 4 KiB: measured 1.8 million page faults and 4.3 s of kernel time in every
update of the ``seed`` preset (README of training/: "Memory"). Raising the mmap threshold to
256 MiB and the trim threshold to 1 GiB lets malloc keep and reuse the freed blocks: about 30,000
page faults per update instead, and the update ran 1.4x faster.

The price is that up to about 1 GiB of freed memory stays with the process instead of going back
to the system, which a training process can afford. Only glibc (Linux) has ``mallopt``; elsewhere
this is a no-op.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 1 << 30

_done = False


def reuse_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (once per process); True if they were set."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # no C library found, or one without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
