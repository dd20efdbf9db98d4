"""What ``ShmBatchEnv`` (``envs/shm.py``) and its workers (``envs/shm_worker.py``) agree on.

- One-byte commands on each worker's pipe, the supervisor's: ``STEP`` (actions are in the
  segment), ``RESET`` and ``SEED`` (followed by ``encode_seed``'s bytes), ``SHAPING`` (followed
  by a little-endian float64), ``CLOSE``; the worker's answers: ``OK``, or ``ERROR`` followed by a
  pickled ``(exception, traceback text)``.
- The shared-memory segment: named arrays at 64-byte aligned offsets (``layout``), mapped as
  numpy views on both sides (``views``). The supervisor sizes it from what the workers report at
  start-up (spaces, info keys) and sends ``(name, layout)`` to every worker once.
"""
from __future__ import annotations

import numpy as np

from ..core.rng import check_seed

ALIGN = 64
STEP, RESET, SEED, CLOSE, OK, ERROR, SHAPING = b"s", b"r", b"d", b"c", b"k", b"e", b"h"


def layout(fields: dict[str, tuple[tuple[int, ...], str]]) -> tuple[dict[str, tuple[int, tuple, str]], int]:
    """Byte offsets of every array in the segment: name -> (offset, shape, dtype), and its size."""
    out, off = {}, 0
    for name, (shape, dtype) in fields.items():
        out[name] = (off, shape, dtype)
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        off += -(-max(size, 1) // ALIGN) * ALIGN
    return out, max(off, ALIGN)


def views(buf, layout) -> dict[str, np.ndarray]:
    """Numpy views of every array of ``layout`` in the segment's buffer ``buf``."""
    return {name: np.ndarray(shape, dtype, buffer=buf, offset=off) for name, (off, shape, dtype) in layout.items()}


def encode_seed(seed: int | None) -> bytes:
    """A seed for the pipe, checked here in the main process (``check_seed``): a refused seed
    never reaches a worker, so the env keeps running."""
    seed = check_seed(seed)
    return b"" if seed is None else str(seed).encode()


def decode_seed(data: bytes) -> int | None:
    return None if not data else int(data.decode())
