"""Trainer speed benchmark: the ``seed`` network trained by the native trainer and by SB3.

::

    python -m entropy_engine.training.bench [--steps N] [--preset seed] [--json PATH] [--only native|sb3]

Both trainers run in this one process, one after the other, on the same environment config, for
the same budget of agent-steps (rounded up to whole rollouts), and report agent-steps per second
of training (rollout + update, excluding construction) and the ratio native / sb3.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from .config import resolve_config


def bench_native(cfg, steps: int) -> dict:
    from .native import NativeTrainer

    tr = NativeTrainer(cfg)
    tr.env.step(tr.env.heuristic_actions())   # compile the env kernels outside the timing
    tr._reset_env()
    t0 = time.perf_counter()
    tr.learn(steps)
    dt = time.perf_counter() - t0
    return {"steps": tr.num_timesteps, "seconds": dt, "fps": tr.num_timesteps / dt,
            "update_dtype": tr.update_dtype}


def bench_sb3(cfg, steps: int) -> dict:
    from .sb3_trainer import attach_logging, make_model

    model = make_model(cfg)
    attach_logging(model, None)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    dt = time.perf_counter() - t0
    return {"steps": int(model.num_timesteps), "seconds": dt, "fps": model.num_timesteps / dt}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="seed", help="Network and rollout config to train (default: seed).")
    p.add_argument("--steps", type=int, default=0, help="Agent-steps per trainer (default: one rollout).")
    p.add_argument("--only", choices=["native", "sb3"], default=None, help="Run just one trainer.")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = automatic).")
    p.add_argument("--update-dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="Native update precision (default: auto, as `entropy train`; SB3 always trains "
                        "in float32).")
    p.add_argument("--json", dest="json_path", default=None, help="Write results to this JSON file.")
    args = p.parse_args(argv)
    cfg = resolve_config(args.preset, overrides={"torch_threads": args.threads})
    steps = args.steps or cfg.rollout_size
    steps = -(-steps // cfg.rollout_size) * cfg.rollout_size
    results: dict = {"preset": args.preset, "budget_steps": steps, "num_worlds": cfg.num_worlds,
                     "n_agents": cfg.n_agents, "lstm_hidden_size": cfg.lstm_hidden_size,
                     "n_steps": cfg.n_steps, "batch_size": cfg.batch_size, "n_epochs": cfg.n_epochs,
                     "native_update_dtype": args.update_dtype, "torch_threads": args.threads,
                     "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine()}
    for name, fn in (("native", bench_native), ("sb3", bench_sb3)):
        if args.only in (None, name):
            run_cfg = cfg if name == "sb3" else resolve_config(
                args.preset, overrides={"torch_threads": args.threads, "update_dtype": args.update_dtype})
            results[name] = fn(run_cfg, steps)
            print(f"{name:>7}: {results[name]['steps']:>9,} steps in {results[name]['seconds']:7.1f} s "
                  f"= {results[name]['fps']:9,.0f} steps/s", flush=True)
    if "native" in results and "sb3" in results:
        results["ratio"] = results["native"]["fps"] / results["sb3"]["fps"]
        print(f"  ratio: native / sb3 = {results['ratio']:.1f}x")
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
