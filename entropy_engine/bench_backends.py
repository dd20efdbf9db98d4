"""Side-by-side backend benchmark: the original's physics path against the compiled backend.

``run_backend_bench`` measures, in one process run on one machine and with one world config
(``n_agents`` robots per world, 32 rays, border and interior walls), the full environment step
(``BatchEnv``: drive, collisions, lidar, reward, observation, autoreset) of:

==========================  ==============================================================
``seed_path``               pymunk physics + one ``segment_query_first`` per ray (the original)
``pymunk_compiled_lidar``   pymunk physics + the compiled ray kernels
``pymunk_workers``          as above, worlds spread over ``workers`` processes (ShmBatchEnv)
``numba``                   the compiled backend (numba threads), ``numba_worlds`` worlds
``numba_same_worlds``       the compiled backend with the pymunk cases' number of worlds
==========================  ==============================================================

Every entry has ``agent_steps_per_s`` and ``ratio_to_seed_path``. Used by ``entropy bench
--backends`` (``entropy_engine.bench``), which prints ``print_backend_table`` and writes the JSON.
"""
from __future__ import annotations

import os
from typing import Any

REFERENCE = "seed_path"


def backend_cases(num_worlds: int, n_agents: int, workers: int, numba_worlds: int) -> dict[str, dict[str, Any]]:
    """The cases of the comparison: name -> constructor arguments (``workers`` > 0: ShmBatchEnv)."""
    pym = {"backend": "pymunk", "num_worlds": num_worlds, "n_agents": n_agents}
    return {
        "seed_path": {**pym, "pymunk_lidar": "pymunk"},
        "pymunk_compiled_lidar": {**pym, "pymunk_lidar": "compiled"},
        "pymunk_workers": {**pym, "pymunk_lidar": "compiled", "workers": workers},
        "numba": {"backend": "numba", "num_worlds": numba_worlds, "n_agents": n_agents},
        "numba_same_worlds": {"backend": "numba", "num_worlds": num_worlds, "n_agents": n_agents},
    }


def run_backend_bench(seconds_per_case: float = 3.0, num_worlds: int = 8, n_agents: int = 10,
                      workers: int | None = None, numba_worlds: int = 64, seed: int = 0,
                      cases: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Measure every backend case for ``seconds_per_case`` seconds; returns name -> result dict.

    Defaults reproduce the original's layout for the pymunk cases (8 worlds x 10 agents);
    ``workers`` defaults to the number of cores (``8`` is the original's process count).
    Each result holds ``agent_steps_per_s``, ``env_steps_per_s``, ``steps``, ``seconds``,
    the case's settings and ``ratio_to_seed_path`` (when ``seed_path`` was measured).
    """
    import numba

    from .bench_measure import measure_env
    from .envs.batch import BatchEnv

    workers = workers or os.cpu_count() or 1
    specs = backend_cases(num_worlds, n_agents, min(workers, num_worlds), numba_worlds)
    results: dict[str, dict[str, Any]] = {}
    for name in cases or list(specs):
        spec = dict(specs[name])
        if spec.get("workers"):
            from .envs.shm import ShmBatchEnv

            env = ShmBatchEnv(seed=seed, **spec)
        else:
            env = BatchEnv(seed=seed, **spec)
        try:
            threads = 1 if spec.get("workers") else numba.get_num_threads()  # workers run 1 numba thread each
            results[name] = {**spec, "workers": spec.get("workers", 0), "numba_threads": threads,
                             **measure_env(env, seconds_per_case)}
        finally:
            env.close()
    if REFERENCE in results:
        ref = results[REFERENCE]["agent_steps_per_s"]
        for r in results.values():
            r["ratio_to_seed_path"] = r["agent_steps_per_s"] / ref
    return results


def format_backend_table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a Markdown table (for the README and the console)."""
    lines = ["| case | physics | lidar | worlds x agents | processes x numba threads | agent-steps/s | x seed_path |",
             "|---|---|---|---|---|---:|---:|"]
    for name, r in results.items():
        lidar = r.get("pymunk_lidar", "compiled") if r["backend"] == "pymunk" else "compiled"
        procs = f"{r['workers'] or 1} x {r['numba_threads']}"
        ratio = r.get("ratio_to_seed_path")
        lines.append(f"| {name} | {r['backend']} | {lidar} | {r['num_worlds']} x {r['n_agents']} | {procs} | "
                     f"{r['agent_steps_per_s']:,.0f} | {'' if ratio is None else f'{ratio:,.1f}'} |")
    return "\n".join(lines)


def print_backend_table(results: dict[str, dict[str, Any]]) -> None:
    """Print the comparison with Rich (agent-steps/s and the ratio to the original's path)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Backends side by side (full env step, same world config)")
    for col, just in (("case", "left"), ("physics", "left"), ("lidar", "left"), ("worlds x agents", "right"),
                      ("procs x threads", "right"), ("agent-steps/s", "right"), ("x seed_path", "right")):
        table.add_column(col, justify=just)
    for name, r in results.items():
        lidar = r.get("pymunk_lidar", "compiled") if r["backend"] == "pymunk" else "compiled"
        ratio = r.get("ratio_to_seed_path")
        table.add_row(name, r["backend"], lidar, f"{r['num_worlds']} x {r['n_agents']}",
                      f"{r['workers'] or 1} x {r['numba_threads']}",
                      f"{r['agent_steps_per_s']:,.0f}", "" if ratio is None else f"{ratio:,.1f}")
    Console().print(table)


if __name__ == "__main__":  # python -m entropy_engine.bench_backends [seconds]
    import sys

    res = run_backend_bench(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
    print_backend_table(res)
    print(format_backend_table(res))
