"""Thread counts and OpenMP set-up shared by numba's threading layer and PyTorch.

A numba step is a few parallel regions of tens of microseconds each. On a machine where every
core is taken, a region waits at its join for whichever of its threads the kernel scheduler has
put aside, so an oversubscribed process runs several times slower than one thread would
(measurements in the README, "Benchmark"). Two things keep the speed on a shared machine:

- ``configure_openmp`` shortens OpenMP's spin-wait between regions (``GOMP_SPINCOUNT``), so idle
  pool threads give their core back quickly. Any ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` the
  user set is kept. It must run before an OpenMP runtime loads, which is why
  ``entropy_engine/__init__.py`` calls it first thing.
- Automatic thread counts (``set_threads(0)``, the default): every ``INTERVAL_S`` seconds of
  stepping, ``tick()`` measures how much CPU the *other* processes used since the last look
  (``/proc/stat`` minus this process's own CPU time) and sets numba's threads to
  ``choose_threads(cores, others)``: the cores this process may run on
  (``os.sched_getaffinity``) minus the cores others keep busy, rounded so that a neighbour using
  more than ``1 - HEADROOM`` (0.75) of a core takes a thread away; never fewer than 1. Two runs
  started together therefore settle on one thread each on a 2-core machine, and a run beside a
  busy process on the cores left to it. Where ``/proc/stat`` cannot be read the count stays at
  every core.

``set_threads(n)`` with ``n >= 1`` fixes numba's threads at ``n`` (``--threads n``). A call of
``numba.set_num_threads`` by anyone else also wins: the automatic choice then stays out of the
way in that (Python) thread. Thread counts never change results (the kernels are bit-identical
for any count).
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass

SPINCOUNT = "10000"
INTERVAL_S = 0.25   # seconds of stepping between two looks at the machine's load
HEADROOM = 0.25     # a core counts as free while others use less than 1 - HEADROOM of it


def configure_openmp() -> None:
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPINCOUNT


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def choose_threads(cores: int, others_busy: float, limit: int | None = None,
                   headroom: float = HEADROOM) -> int:
    """Threads to run on ``cores`` cores while other processes keep ``others_busy`` cores busy.

    ``floor(cores - others_busy + headroom)`` clipped to [1, min(cores, limit)]: a neighbour that
    uses 0.8 of a core takes one thread away, one that uses 0.2 does not.
    """
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores!r}")
    if not others_busy >= 0:   # also refuses NaN
        raise ValueError(f"others_busy must be >= 0, got {others_busy!r}")
    top = cores if limit is None else max(1, min(cores, limit))
    free = int(cores - others_busy + headroom)
    return max(1, min(top, free))


@dataclass(frozen=True)
class CpuSample:
    """One look at the machine: wall clock, CPU seconds used by all processes (``/proc/stat``,
    including time stolen by the hypervisor) and by this process, all in seconds."""

    wall: float
    all_busy: float
    own: float


def others_busy(before: CpuSample, after: CpuSample) -> float:
    """Cores kept busy by other processes between two samples (>= 0)."""
    dt = after.wall - before.wall
    if dt <= 0:
        return 0.0
    return max(0.0, ((after.all_busy - before.all_busy) - (after.own - before.own)) / dt)


def parse_proc_stat(text: str, ticks_per_s: float) -> float:
    """CPU seconds all cores spent busy, from the ``cpu`` line of ``/proc/stat``: user, nice,
    system, irq, softirq and steal (idle and iowait are not busy; guest time is inside user)."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            f = [int(x) for x in line.split()[1:]]
            f += [0] * (8 - len(f))
            return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / ticks_per_s
    raise ValueError("no 'cpu' line in /proc/stat")


def read_sample() -> CpuSample | None:
    """A ``CpuSample`` of now, or None where ``/proc/stat`` is not available."""
    try:
        with open("/proc/stat") as f:
            text = f.read(4096)
        busy = parse_proc_stat(text, os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, AttributeError):
        return None
    return CpuSample(time.monotonic(), busy, time.process_time())


class _State(threading.local):
    """numba's thread count belongs to the calling Python thread, and so does this state."""

    def __init__(self) -> None:
        self.fixed: int | None = None          # set_threads(n >= 1)
        self.auto = True                       # False: fixed, or numba.set_num_threads called by others
        self.applied: int | None = None        # the count tick() last set
        self.sample: CpuSample | None = None
        self.next_look = 0.0


_state = _State()


def _numba():
    import numba

    return numba


def max_threads() -> int:
    """numba's thread pool size (``NUMBA_NUM_THREADS``, by default every core)."""
    return int(_numba().config.NUMBA_NUM_THREADS)


def set_threads(n: int) -> int:
    """``n >= 1``: run numba on ``n`` threads from now on (capped at ``max_threads()``);
    ``n == 0``: choose automatically from the free cores (the default). Returns numba's count."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"threads must be an integer >= 0 (0 = automatic), got {n!r}")
    numba = _numba()
    st = _state
    if n == 0:
        st.fixed, st.auto = None, True
        count = min(available_cores(), max_threads())
        st.sample, st.next_look = read_sample(), time.monotonic() + INTERVAL_S
    else:
        st.fixed, st.auto = n, False
        count = min(n, max_threads())
    numba.set_num_threads(count)
    st.applied = count
    return count


def tick() -> None:
    """Called once per step by the worlds: every ``INTERVAL_S`` seconds, re-choose numba's thread
    count from the load of the other processes (automatic mode only). Costs a clock read otherwise."""
    st = _state
    if not st.auto:
        return
    now = time.monotonic()
    if now < st.next_look:
        return
    st.next_look = now + INTERVAL_S
    numba = _numba()
    current = numba.get_num_threads()
    if current != (max_threads() if st.applied is None else st.applied):
        st.auto = False        # someone called numba.set_num_threads: theirs wins
        return
    sample = read_sample()
    if sample is None:
        st.auto = False
        return
    if st.sample is not None:
        count = choose_threads(available_cores(), others_busy(st.sample, sample), max_threads())
        if count != current:
            numba.set_num_threads(count)
        st.applied = count
    st.sample = sample


_fast: tuple | None = None


def _fast_get_set():
    """numba's own get/set of the calling thread's count without the public functions' checks
    (a tenth of their cost: the one-thread block runs at every step of a small env); the public
    functions where this numba lacks them."""
    global _fast
    if _fast is None:
        numba = _numba()
        numba.get_num_threads()          # starts the pool, which binds the two functions below
        from numba.np.ufunc import parallel

        get, put = getattr(parallel, "_get_num_threads", None), getattr(parallel, "_set_num_threads", None)
        _fast = (get, put) if callable(get) and callable(put) else (numba.get_num_threads, numba.set_num_threads)
    return _fast


class OneThread:
    """``with OneThread():`` runs numba's parallel kernels on the calling thread only (numba's
    count set to 1, restored on exit). The prange kernels at one thread are faster than the same
    loops compiled serially, so small batches use this instead of serial copies."""

    __slots__ = ("prev",)

    def __enter__(self) -> "OneThread":
        get, put = _fast or _fast_get_set()
        self.prev = get()
        if self.prev != 1:
            put(1)
        return self

    def __exit__(self, *exc) -> None:
        if self.prev != 1:
            _fast[1](self.prev)


AS_IS = contextlib.nullcontext()   # the thread setting as it is


def current_threads() -> int:
    """numba's thread count in this Python thread now."""
    return int(_numba().get_num_threads())
