"""The one-command GPU check: ``entropy bench --backend cuda [--json FILE]`` (or ``python -m entropy_engine.gpu.check``).

On a machine with an NVIDIA GPU: the agreement of the cuda backend with numba on small worlds (both
schedules, 40 steps; the device env of every scenario it carries against BatchEnv), then the speed
cases of ``gpu.bench``: the physics step of 16,384 worlds x 10 agents and of one world of 1,000,000
agents (each schedule), the device env, end-to-end training (``gpu.bench.TRAIN_CASE``) and the numba
CPU backend beside them. Prints a table; writes everything
as JSON. ``--quick`` uses small sizes (a smoke test, also in numba's CUDA simulator).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="gpu_check.json")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--skip", nargs="*", default=[], help="parts to skip: agreement physics env train")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the command")
    args = ap.parse_args(argv)
    return run(args.json, args.seconds, args.skip, args.quick)


def run(json_path, seconds: float = 2.0, skip=(), quick: bool = False) -> int:
    import numba

    from . import bench
    from .agreement import compare_envs, compare_worlds
    from .target import cuda

    out: dict = {"python": sys.version.split()[0], "numba": numba.__version__, "machine": platform.node()}
    try:
        out["gpu"] = cuda().get_current_device().name.decode() if hasattr(
            cuda().get_current_device().name, "decode") else str(cuda().get_current_device().name)
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        out["gpu"] = f"unknown ({exc})"
    print(f"python {out['python']}, numba {out['numba']}, gpu {out['gpu']}", flush=True)
    if "agreement" not in skip:
        for sched in ("world", "agent"):
            t0 = time.perf_counter()
            r = compare_worlds("navigation", 4, 12, 5 if quick else 40, schedule=sched, n_obstacles=4)
            r["seconds"] = time.perf_counter() - t0
            out[f"agreement_{sched}"] = r
            print(f"agreement ({sched}): {r}", flush=True)
        envs = {"navigation": dict(max_steps=12, goal_radius=1.2, n_obstacles=3),
                "flocking": dict(max_steps=12, waypoint_radius=4.0, waypoint_min_distance=1.0),
                "aggregation": dict(max_steps=12, link_distance=1.5),
                "coverage": dict(max_steps=12, landmark_radius=0.7, landmark_spacing=1.4),
                "formation": dict(max_steps=12, ref_waypoint_radius=2.5, ref_waypoint_min_distance=0.5, ref_speed=0.9)}
        for name, kw in envs.items():   # the device env against BatchEnv through respawns and resets
            r = compare_envs(name, steps=5 if quick else 30, **kw)
            out[f"agreement_env_{name}"] = r
            print(f"agreement of the device env ({name}): {r}", flush=True)
    rows = []

    def add(r):
        rows.append(r)
        print(r, flush=True)

    big, huge = (8, 10) if quick else (16384, 10), (1, 2000) if quick else (1, 1_000_000)
    if "physics" not in skip:
        for (E, N) in (big, huge):
            for sched in ("world", "agent") if N <= 128 else ("agent",):
                add(bench.physics_case(E, N, seconds, schedule=sched))
        add(bench.cpu_case(64, 10, seconds))
    if "env" not in skip:
        add(bench.env_case(*big, seconds))
        add(bench.env_case(*big, seconds, scenario="flocking"))
    if "train" not in skip:
        add(bench.train_case(**(dict(num_worlds=4, n_steps=32, batch_size=640, iterations=1) if quick else {})))
    out["rows"] = rows
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=1)
    print(bench.format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
