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


def measure_env(env, seconds: float, n_actions: int = 64, start_at: float | None = None) -> dict[str, Any]:
    """Step ``env`` (anything with reset/step/num_slots) with fixed random actions for ``seconds``
    (timed from the wall-clock time ``start_at`` if given, after waiting for it)."""
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (n_actions, env.num_slots, env.act_dim)).astype(np.float32)
    env.reset()
    for k in range(3):  # warm-up (first call compiles or loads the kernels)
        env.step(actions[k])
    if start_at is not None:
        time.sleep(max(0.0, start_at - time.time()))
    steps = 0
    t0 = time.perf_counter()
    while True:
        env.step(actions[steps % n_actions])
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and steps >= 5:
            break
    return {"agent_steps_per_s": steps * env.num_slots / elapsed, "env_steps_per_s": steps / elapsed,
            "steps": steps, "seconds": elapsed, "slots": env.num_slots}
