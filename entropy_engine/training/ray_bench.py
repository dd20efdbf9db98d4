"""Throughput of ``--ray-workers K`` against the single-process trainer, measured in one session.

::

    python -m entropy_engine.training.ray_bench [--preset default] [--workers 1 2] [--iterations 6]
                                                [--threads 1] [--json FILE]

For each configuration: one warm-up iteration (rollout + update; numba and torch warm up), then
``--iterations`` timed ones; agent-steps per second over the timed ones, the rollout and update
times of the slowest worker, and the ratio to the single-process trainer with the same total
worlds and the same threads per process. Prints a table and writes the numbers as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path


def _measure(trainer, iterations: int, slots: int) -> dict[str, float]:
    rollout = update = 0.0
    trainer_iter = getattr(trainer, "train_iteration", None)
    if trainer_iter is not None:       # NativeTrainer
        trainer_iter(10**15)
        t0 = time.perf_counter()
        for _ in range(iterations):
            m = trainer_iter(10**15)
            rollout += m["time/rollout_s"]
            update += m["time/update_s"]
        wall = time.perf_counter() - t0
        steps = iterations * trainer.cfg.n_steps * slots
    else:                              # RayTrainer: learn() one iteration at a time
        import ray

        ray.get([w.iteration.remote(10**15) for w in trainer.workers])
        t0 = time.perf_counter()
        for _ in range(iterations):
            results = ray.get([w.iteration.remote(10**15) for w in trainer.workers])
            rollout += max(r["time/rollout_s"] for r in results)
            update += max(r["time/update_s"] for r in results)
        wall = time.perf_counter() - t0
        steps = iterations * trainer.cfg.n_steps * slots
    return {"agent_steps_per_s": steps / wall, "rollout_s": rollout / iterations, "update_s": update / iterations,
            "iteration_s": wall / iterations}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--iterations", type=int, default=6)
    p.add_argument("--threads", type=int, default=1, help="Simulation and torch threads per process.")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    from .config import resolve_config
    from .native import NativeTrainer
    from .ray_workers import RayTrainer

    base = resolve_config(args.preset, overrides=dict(threads=args.threads, videos=False))
    rows = []
    tr = NativeTrainer(base)
    try:
        ref = _measure(tr, args.iterations, base.num_slots)
    finally:
        tr.close()
    rows.append({"config": "single process", "workers": 0, **ref, "ratio": 1.0})
    import ray

    ray.init(include_dashboard=False, configure_logging=False)
    try:
        for k in args.workers:
            cfg = dataclasses.replace(base, ray_workers=k)
            rt = RayTrainer(cfg)
            try:
                m = _measure(rt, args.iterations, cfg.num_slots)
            finally:
                rt.close()
            rows.append({"config": f"--ray-workers {k}", "workers": k, **m,
                         "ratio": m["agent_steps_per_s"] / ref["agent_steps_per_s"]})
    finally:
        ray.shutdown()
    print(f"preset {args.preset}: {base.num_worlds} worlds x {base.n_agents} agents, n_steps {base.n_steps}, "
          f"{args.threads} thread(s) per process, {args.iterations} timed iterations")
    print("| trainer | agent-steps/s | rollout s | update s | iteration s | vs single |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['config']} | {r['agent_steps_per_s']:,.0f} | {r['rollout_s']:.2f} | {r['update_s']:.2f} | "
              f"{r['iteration_s']:.2f} | {r['ratio']:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "threads": args.threads, "rows": rows},
                                              indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
