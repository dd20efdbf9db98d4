"""``entropy bench``: simulation throughput in agent-steps per second, printed and written as JSON.

Each case builds a ``BatchEnv`` (the full environment step: validation, drive, collisions,
lidar, reward, observation, episode bookkeeping and autoreset), warms it up (numba compilation is
cached and not timed) and steps it with fixed random actions for ``--seconds``. Results are
measured in this process on this machine; nothing is hard-coded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

CASES: dict[str, dict[str, Any]] = {
    "worlds64_agents10": {"num_worlds": 64, "n_agents": 10},
    "world1_agents10000": {"num_worlds": 1, "n_agents": 10_000},
}
# one world growing 100x at constant density (10 m^2 per agent): linear cost = flat agent-steps/s
SCALING: dict[str, dict[str, Any]] = {
    "world1_agents1000": {"num_worlds": 1, "n_agents": 1_000},
    "world1_agents10000": {"num_worlds": 1, "n_agents": 10_000},
    "world1_agents100000": {"num_worlds": 1, "n_agents": 100_000},
}


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


def measure_env(env, seconds: float, n_actions: int = 64) -> dict[str, Any]:
    """Step ``env`` (anything with reset/step/num_slots) with fixed random actions for ``seconds``."""
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (n_actions, env.num_slots, env.act_dim)).astype(np.float32)
    env.reset()
    for k in range(3):  # warm-up (first call compiles or loads the kernels)
        env.step(actions[k])
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


def run_core_bench(seconds: float = 3.0, cases: list[str] | None = None,
                   table: dict[str, dict[str, Any]] = CASES) -> dict[str, Any]:
    from .envs.batch import BatchEnv

    results: dict[str, Any] = {}
    for name in cases or list(table):
        spec = table[name]
        env = BatchEnv(seed=0, **spec)
        results[name] = {**spec, **measure_env(env, seconds)}
        results[name]["us_per_agent_step"] = 1e6 / results[name]["agent_steps_per_s"]
    return results


def print_table(results: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("case")
    table.add_column("agent-steps/s", justify="right")
    table.add_column("env steps/s", justify="right")
    table.add_column("us per agent-step", justify="right")
    for name, r in results.items():
        if not isinstance(r, dict) or "agent_steps_per_s" not in r:
            continue
        row = [name, f"{r['agent_steps_per_s']:,.0f}", f"{r.get('env_steps_per_s', float('nan')):,.1f}",
               f"{1e6 / r['agent_steps_per_s']:.3f}"]
        table.add_row(*row)
    Console().print(table)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per case")
    parser.add_argument("--cases", nargs="*", default=None, choices=sorted(CASES), help="core cases to run")
    parser.add_argument("--scaling", action="store_true",
                        help="also step one world of 1,000 / 10,000 / 100,000 agents (cost per agent vs N)")
    parser.add_argument("--backends", action="store_true",
                        help="also run the side-by-side backend comparison (pymunk paths vs numba)")
    parser.add_argument("--threads", type=int, default=None, help="numba threads (default: all cores)")


def run(args: argparse.Namespace) -> int:
    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
    out: dict[str, Any] = {"machine": machine_info()}
    core = run_core_bench(args.seconds, args.cases)
    out.update(core)
    print_table(core, f"Compiled core ({out['machine']['cpu']}, {out['machine']['cores']} cores)")
    if args.scaling:
        scaling = run_core_bench(args.seconds, table=SCALING)
        out["scaling"] = scaling
        print_table(scaling, "One world, growing (constant density)")
    if args.backends:
        from .bench_backends import print_backend_table, run_backend_bench

        backends = run_backend_bench(seconds_per_case=args.seconds)
        out.update(backends)
        print_backend_table(backends)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0
