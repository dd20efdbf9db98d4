"""The one-command GPU check: ``entropy bench --backend cuda [--json FILE]`` (or ``python -m entropy_engine.gpu.check``).

On a machine with an NVIDIA GPU: the agreement of the cuda backend with numba on small worlds (both
schedules, 40 steps, with and without movable objects; the device env of every scenario it carries, navigation with two kinds of
communication channel and navigation with a level curriculum, against BatchEnv), then the speed
cases of ``gpu.bench``: the physics step of 16,384 worlds x 10 agents and of one world of 1,000,000
agents (each schedule), of 16,384 transport worlds (10 robots and a movable object each; each
schedule), the device env (navigation with and without a channel, flocking, pursuit, transport, foraging),
end-to-end training (``gpu.bench.TRAIN_CASE``) and the numba CPU backend beside them; last the
quality target: the ``default`` preset trained on the device env for 60 s of wall time
(``gpu.bench.QUALITY_CASE``) and evaluated over 100 episodes on the CPU env. Prints a table; writes
everything as JSON. ``--quick`` uses small sizes (a smoke test, also in numba's CUDA
simulator).
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
    ap.add_argument("--skip", nargs="*", default=[], help="parts to skip: agreement physics env train quality")
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
            # movable objects: transport with clutter, each object started just ahead of a robot driving into it
            r = compare_worlds("transport", 4, 6, 5 if quick else 40, schedule=sched, push=0.8, objects_ahead=True,
                               n_objects=2, object_friction=0.01)
            out[f"agreement_objects_{sched}"] = r
            print(f"agreement with movable objects ({sched}): {r}", flush=True)
        nav = dict(max_steps=12, goal_radius=1.2, n_obstacles=3)
        envs = {"navigation": ("navigation", nav),
                "flocking": ("flocking", dict(max_steps=12, waypoint_radius=4.0, waypoint_min_distance=1.0)),
                "aggregation": ("aggregation", dict(max_steps=12, link_distance=1.5)),
                "coverage": ("coverage", dict(max_steps=12, landmark_radius=0.7, landmark_spacing=1.4)),
                "formation": ("formation", dict(max_steps=12, ref_waypoint_radius=2.5, ref_waypoint_min_distance=0.5,
                                                ref_speed=0.9)),
                "rendezvous": ("rendezvous", dict(max_steps=12, goal_radius=2.0, comm_dim=3, comm_combine="nearest")),
                "pursuit": ("pursuit", dict(max_steps=12, arena_size=6.0, capture_range=2.0, n_evaders=2)),
                # objects pushed by the scripted pushers (plus noise), some starting in the goal (deliveries)
                "transport": ("transport", dict(max_steps=30, goal_radius=1.3, goal_min_distance=1.0, n_objects=2,
                                                object_friction=0.0, heuristic=True, push=0.2)),
                "foraging": ("foraging", dict(max_steps=12, n_items=10, item_radius=0.3, item_margin=0.3,
                                              nest_radius=2.0, nest_margin=2.0, item_spacing=0.0, nest_clearance=0.0,
                                              arena_size=7.0)),
                # communication channels: continuous messages with noise, loss and delay; tokens to the nearest
                "navigation_channel": ("navigation", dict(nav, comm_dim=2, comm_noise=0.1, comm_dropout=0.3,
                                                          comm_delay=1, comm_range=4.0)),
                "navigation_tokens": ("navigation", dict(nav, comm_dim=2, comm_vocab=3, comm_combine="nearest",
                                                         comm_k=2, comm_range=4.0, comm_occlusion=True))}
        for label, (name, kw) in envs.items():   # the device env against BatchEnv through respawns and resets
            r = compare_envs(name, steps=5 if quick else 30, **kw)
            out[f"agreement_env_{label}"] = r
            print(f"agreement of the device env ({label}): {r}", flush=True)
        from ..envs.curriculum import CurriculumSpec   # a level curriculum: per-world settings drawn at resets

        levels = CurriculumSpec("levels", ("n_obstacles", "min_goal_distance"), ((0.0, 0.5), (3.0, 1.5)), "success",
                                "success_rate", uniform_share=0.3, stats_window=20)
        r = compare_envs("navigation", steps=5 if quick else 30, max_steps=6, goal_radius=1.2, n_obstacles=3,
                         curriculum=levels)
        out["agreement_env_levels"] = r
        print(f"agreement of the device env (navigation with a level curriculum): {r}", flush=True)
    rows = []

    def add(r):
        rows.append(r)
        print(r, flush=True)

    big, huge = (8, 10) if quick else (16384, 10), (1, 2000) if quick else (1, 1_000_000)
    if "physics" not in skip:
        for (E, N) in (big, huge):
            for sched in ("world", "agent") if N <= 128 else ("agent",):
                add(bench.physics_case(E, N, seconds, schedule=sched))
        for sched in ("world", "agent"):   # with a movable object per world (transport's layout: 11 bodies)
            add(bench.physics_case(*big, seconds, schedule=sched, scenario="transport"))
        add(bench.cpu_case(64, 10, seconds))
    if "env" not in skip:
        add(bench.env_case(*big, seconds))
        add(bench.env_case(*big, seconds, scenario="flocking"))
        add(bench.env_case(*big, seconds, scenario="pursuit"))   # + 3 scripted evaders per world
        add(bench.env_case(*big, seconds, scenario="transport"))
        add(bench.env_case(*big, seconds, scenario="foraging"))
        add(bench.env_case(*big, seconds, comm_dim=2, comm_noise=0.1, comm_dropout=0.2))   # the channel's cost
    if "train" not in skip:
        add(bench.train_case(**(dict(num_worlds=4, n_steps=32, batch_size=640, iterations=1) if quick else {})))
    if "quality" not in skip:   # the default preset trained for 60 s of wall time, then 100 evaluation episodes
        r = bench.quality_case(**(dict(seconds=1.0, episodes=4, num_worlds=4, n_steps=32, batch_size=640)
                                  if quick else {}))
        out["quality"] = r
        add(r)
        print(f"quality in {r['budget_s']:g} s: success_rate {r['success_rate']:.3f} (target {r['target_success_rate']})"
              f", {r['agent_steps']:,} agent-steps in {r['wall_s']:.1f} s", flush=True)
    out["rows"] = rows
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=1)
    print(bench.format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
