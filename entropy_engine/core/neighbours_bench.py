"""Speed of the neighbour sensor against a ``World.step`` of the same world, in one process.

    python -m entropy_engine.core.neighbours_bench [--seconds 2] [--k 8] [--range 3] [--json out.json]

For each case (one world growing from 1,000 to 100,000 agents at the default density of 10 m^2
per agent, and the 64 worlds x 10 agents training shape) the world is stepped with fixed random
actions, then three things are timed on the same state, each for ``--seconds``:

- ``World.step``: the whole compiled physics step (drive, grid, collisions, lidar);
- ``sense`` with ``grid=`` the current grid: the neighbour sensor alone (as a scenario calls it
  right after a step, when the grid is already built);
- ``sense()``: the sensor including a rebuild of the grid.

A linear-cost sensor keeps its agent-steps/s flat as N grows. The small-batch cases also time the
two parallel schedules (per agent, per world) against a non-parallel build of the same loop
(``candidates_examined``, which also stores one count per agent), with one thread and with all.
Nothing is hard-coded: every number is measured in this run.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

CASES = [(1, 1_000), (1, 10_000), (1, 100_000), (64, 10)]
SMALL = [(1, 10), (4, 10), (16, 10), (64, 10)]


def _rate(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of ``fn`` (after two warm-up calls)."""
    fn()
    fn()
    calls = 0
    t0 = time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and calls >= 5:
            return calls / elapsed


def _world(num_worlds: int, n_agents: int, seed: int = 0):
    from .params import WorldConfig
    from .world import World

    w = World(WorldConfig(), num_worlds, n_agents, max_walls=4)
    rng = np.random.default_rng(seed)
    L = w.arena
    w.walls[:, :4] = [(0, 0, L, 0), (L, 0, L, L), (L, L, 0, L), (0, L, 0, 0)]
    w.n_walls[:] = 4
    w.pos[:] = rng.uniform(0.3, L - 0.3, w.pos.shape)
    w.theta[:] = rng.uniform(-np.pi, np.pi, w.theta.shape)
    w.active[:] = True
    actions = rng.uniform(-1, 1, (8, num_worlds, n_agents, 2)).astype(np.float32)
    for k in range(20):  # get moving: velocities are part of the sensed features
        w.step(actions[k % 8])
    return w, actions


def run_case(num_worlds: int, n_agents: int, k: int, sense_range: float, seconds: float) -> dict[str, Any]:
    from .neighbours import NeighbourSensor

    w, actions = _world(num_worlds, n_agents)
    slots = num_worlds * n_agents
    counter = [0]

    def step():
        w.step(actions[counter[0] % 8])
        counter[0] += 1

    step_rate = _rate(step, seconds) * slots
    sensor = NeighbourSensor(w, k=k, sense_range=sense_range)
    grid = tuple(a.copy() for a in w.grid())
    sense_rate = _rate(lambda: sensor.sense(grid=grid), seconds) * slots
    sense_grid_rate = _rate(sensor.sense, seconds) * slots
    filled = float(sensor.out[..., 4].sum(axis=-1).mean())
    return {"num_worlds": num_worlds, "n_agents": n_agents, "k": k, "sense_range": sense_range,
            "schedule": sensor.schedule, "mean_neighbours": filled,
            "world_step_agent_steps_per_s": step_rate, "sensor_agent_steps_per_s": sense_rate,
            "sensor_with_grid_agent_steps_per_s": sense_grid_rate,
            "sensor_time_over_step_time": step_rate / sense_rate}


def run_schedules(num_worlds: int, n_agents: int, k: int, sense_range: float, seconds: float) -> dict[str, float]:
    import numba

    from .neighbours import NeighbourSensor, candidates_examined

    w, _ = _world(num_worlds, n_agents)
    sensor = NeighbourSensor(w, k=k, sense_range=sense_range)
    grid = tuple(a.copy() for a in w.grid())
    counts = np.zeros((num_worlds, n_agents), np.int64)
    args = sensor._args(None, grid)
    slots = num_worlds * n_agents
    out = {"serial": _rate(lambda: candidates_examined(*args, counts), seconds) * slots}
    threads = numba.get_num_threads()
    for n_threads in sorted({1, threads}):
        numba.set_num_threads(n_threads)
        for schedule in ("agent", "world"):
            sensor.schedule_override = schedule
            out[f"{schedule}_{n_threads}t"] = _rate(lambda: sensor.sense(grid=grid), seconds) * slots
    numba.set_num_threads(threads)
    return out


def main(argv: list[str] | None = None) -> int:
    import numba

    from ..bench import machine_info

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds per measurement")
    p.add_argument("--k", type=int, default=8, help="neighbour slots per agent")
    p.add_argument("--range", type=float, default=3.0, dest="sense_range", help="sense range, metres")
    p.add_argument("--threads", type=int, default=None, help="numba threads (default: all cores)")
    p.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)
    result: dict[str, Any] = {"machine": machine_info(), "cases": [], "schedules": []}
    print(f"neighbour sensor, K={args.k}, range {args.sense_range} m, {numba.get_num_threads()} threads, "
          f"{result['machine']['cpu']}")
    print("| worlds x agents | neighbours (mean) | World.step agent-steps/s | sensor agent-steps/s "
          "| sensor + grid rebuild | sensor time / step time |")
    print("|---|---|---|---|---|---|")
    for E, N in CASES:
        r = run_case(E, N, args.k, args.sense_range, args.seconds)
        result["cases"].append(r)
        print(f"| {E} x {N:,} | {r['mean_neighbours']:.2f} | {r['world_step_agent_steps_per_s']:,.0f} "
              f"| {r['sensor_agent_steps_per_s']:,.0f} | {r['sensor_with_grid_agent_steps_per_s']:,.0f} "
              f"| {100 * r['sensor_time_over_step_time']:.0f} % |", flush=True)
    print("\nschedules, sensor alone (agent-steps/s)")
    t = numba.get_num_threads()
    cols = ["serial"] + [f"{s}_{n}t" for n in sorted({1, t}) for s in ("agent", "world")]
    print("| worlds x agents | " + " | ".join(c.replace("serial", "non-parallel build").replace("_", ", ")
                                             .replace("agent,", "per agent,").replace("world,", "per world,")
                                             for c in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for E, N in SMALL:
        s = run_schedules(E, N, args.k, args.sense_range, args.seconds / 2)
        result["schedules"].append({"num_worlds": E, "n_agents": N, **s})
        print(f"| {E} x {N} | " + " | ".join(f"{s[c]:,.0f}" for c in cols) + " |", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
