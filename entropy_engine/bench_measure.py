"""Measuring an environment's speed, shared by ``entropy bench`` and the backend comparison."""
from __future__ import annotations

import os
import platform
import time
from typing import Any

import numpy as np


def machine_info() -> dict[str, Any]:
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "numba_threads": numba.get_num_threads(),
            "python": platform.python_version(), "numba": numba.__version__, "numpy": np.__version__}


def measure_env(env, seconds: float, n_actions: int = 64, start_at: float | None = None,
                chunks: int = 5, warmup_s: float = 0.5) -> dict[str, Any]:
    """Step ``env`` (anything with reset/step/num_slots) with fixed random actions for ``seconds``
    (timed from the wall-clock time ``start_at`` if given, after waiting for it).

    The first steps compile or load the kernels, so the env is stepped for ``warmup_s`` seconds
    before the clock starts; a kernel compiled later (a thread schedule first used mid-run, a cold
    numba cache) would still stall one stretch of the window, so the window is timed in ``chunks``
    equal stretches and the rate reported is the median stretch's (``chunk_agent_steps_per_s``
    lists them all; ``mean_agent_steps_per_s`` is the whole window's)."""
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (n_actions, env.num_slots, env.act_dim)).astype(np.float32)
    env.reset()
    k = 0
    t_warm = None
    while k < 3 or time.perf_counter() - t_warm < warmup_s:
        env.step(actions[k % n_actions])
        k += 1
        if k == 1:
            t_warm = time.perf_counter()   # the first call may compile: warm up after it
    if start_at is not None:
        time.sleep(max(0.0, start_at - time.time()))
    chunks = max(1, int(chunks))
    per_chunk = seconds / chunks
    rates, steps, elapsed = [], 0, 0.0
    for _ in range(chunks):
        n = 0
        t0 = time.perf_counter()
        while True:
            env.step(actions[(steps + n) % n_actions])
            n += 1
            dt = time.perf_counter() - t0
            if dt >= per_chunk and n >= 2:
                break
        rates.append(n * env.num_slots / dt)
        steps += n
        elapsed += dt
    rate = float(np.median(rates))
    return {"agent_steps_per_s": rate, "env_steps_per_s": rate / env.num_slots, "steps": steps,
            "seconds": elapsed, "slots": env.num_slots, "chunk_agent_steps_per_s": [float(r) for r in rates],
            "mean_agent_steps_per_s": steps * env.num_slots / elapsed}
