"""Does the rendezvous swarm need its radio? The ablation behind README "Communication channels".

    PYTHONPATH=. python docs/ablation_comm.py                 # train 2 x 3 runs, then evaluate them
    PYTHONPATH=. python docs/ablation_comm.py --skip-train    # evaluate the runs already trained

(The runs it trains are ``entropy train --preset rendezvous --seed S --out RUNS/on_sS`` and the same
with ``--env comm_dim=0`` into ``RUNS/off_sS``; training them one by one with these commands and then
``--skip-train`` gives the same results.)

1. Trains the ``rendezvous`` preset with the channel on (the preset: ``comm_dim`` 3, 4 m, nearest
   senders) and off (``--env comm_dim=0``), same budget, seeds 0, 1, 2, into ``--runs``/{on,off}_s<seed>
   (an existing finished run is kept, so a stopped ablation resumes). Each run's wall time is recorded.
2. Evaluates every run: 100 episodes, evaluation seed 12345, deterministic actions; the primary
   metric (``in_zone_fraction``) and the others, then mean and spread (min-max, std) over the seeds.
3. Evaluates the channel-on runs (and the scripted heuristic) under other channel settings with the
   same seed: ``comm_range``, ``comm_dropout``, ``comm_delay`` (``entropy eval RUN --env KEY=VALUE``).

Prints both tables and writes everything to ``--json`` (default docs/ablation_comm.json).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

PRESET = "rendezvous"
METRICS = ("in_zone_fraction", "gathered_rate", "gather_time", "goal_distance", "collisions_per_agent")
ARMS = {"on": [], "off": ["--env", "comm_dim=0"]}
# channel settings evaluated on the trained (channel-on) policy; the preset's own is range 5, no loss or delay
SETTINGS = ([("comm_range", v) for v in (1.0, 2.5, 10.0)] + [("comm_dropout", v) for v in (0.25, 0.5, 0.9)]
            + [("comm_delay", v) for v in (1, 3, 10)])


def train(runs: Path, seeds: list[int], total_steps: int | None) -> dict[str, float]:
    from entropy_engine.cli import main

    wall = {}
    for arm, extra in ARMS.items():
        for seed in seeds:
            out = runs / f"{arm}_s{seed}"
            if (out / "models").exists() and any((out / "models").iterdir()):
                print(f"{out}: trained already, kept")
                continue
            args = ["train", "--preset", PRESET, "--seed", str(seed), "--out", str(out), "--videos", "false",
                    "--tensorboard", "false", "--console", "plain", *extra]
            if total_steps:
                args += ["--total-steps", str(total_steps)]
            t0 = time.perf_counter()
            rc = main(args)
            wall[out.name] = time.perf_counter() - t0
            if rc != 0:
                raise SystemExit(f"training {out} failed ({rc})")
            print(f"{out}: {wall[out.name]:.0f} s")
    return wall


def train_seconds(run: Path) -> float:
    """The run's training time (its last ``time/time_elapsed`` in metrics.csv), seconds."""
    import csv

    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("time/time_elapsed")]
    return float(rows[-1]["time/time_elapsed"])


def _eval(policy, stored, env: dict, episodes: int, seed: int) -> dict:
    from entropy_engine.training.config import stored_config
    from entropy_engine.training.evaluate import evaluate

    cfg = stored_config(stored, env=env or None)
    res = evaluate(policy, episodes, 10, seed, cfg=cfg)
    return {m: float(res[m]) for m in METRICS}


def _summary(rows: list[dict]) -> dict:
    out = {}
    for m in METRICS:
        v = np.array([r[m] for r in rows])
        out[m] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                  "min": float(v.min()), "max": float(v.max()), "values": v.tolist()}
    return out


def evaluate_all(runs: Path, seeds: list[int], episodes: int, seed: int) -> dict:
    from entropy_engine.training.config import PRESETS
    from entropy_engine.training.policy import load_policy

    result: dict = {"episodes": episodes, "eval_seed": seed, "seeds": seeds, "arms": {}, "settings": {}}
    policies = {}
    for arm in ARMS:
        rows = []
        for s in seeds:
            pol = load_policy(runs / f"{arm}_s{s}")
            policies[(arm, s)] = pol
            rows.append(_eval(pol, pol.config, {}, episodes, seed))
            rows[-1]["train_s"] = train_seconds(runs / f"{arm}_s{s}")
            print(f"{arm} seed {s}: " + ", ".join(f"{m} {rows[-1][m]:.3f}" for m in METRICS))
        result["arms"][arm] = {"per_seed": rows, **_summary(rows)}
    stored = dict(PRESETS[PRESET])
    for arm, env in (("heuristic", {}), ("heuristic_off", {"comm_dim": 0})):
        result["arms"][arm] = _eval("heuristic", stored, env, episodes, seed)
    from entropy_engine import BatchEnv
    from entropy_engine.policies import RandomPolicy

    space = BatchEnv(PRESET, 1, stored["n_agents"], **stored["env"]).action_space
    result["arms"]["random"] = _eval(RandomPolicy(space, 0), stored, {}, episodes, seed)
    for key, value in SETTINGS:
        name = f"{key}={value}"
        rows = [_eval(policies[("on", s)], policies[("on", s)].config, {key: value}, episodes, seed) for s in seeds]
        heur = _eval("heuristic", stored, {key: value}, episodes, seed)
        result["settings"][name] = {"trained": _summary(rows), "trained_per_seed": rows, "heuristic": heur}
        print(f"{name}: trained {result['settings'][name]['trained']['in_zone_fraction']['mean']:.3f}, "
              f"heuristic {heur['in_zone_fraction']:.3f}")
    return result


def print_tables(result: dict) -> None:
    m = "in_zone_fraction"
    print(f"\n| arm | {m} mean ± std (min-max) | gathered_rate | gather_time | goal_distance | collisions |")
    for arm in ("on", "off"):
        a = result["arms"][arm]
        print(f"| channel {arm} | {a[m]['mean']:.3f} ± {a[m]['std']:.3f} ({a[m]['min']:.3f}-{a[m]['max']:.3f}) | "
              + " | ".join(f"{a[k]['mean']:.3f}" for k in METRICS[1:]) + " |")
    for arm in ("heuristic", "heuristic_off", "random"):
        a = result["arms"][arm]
        print(f"| {arm} | {a[m]:.3f} | " + " | ".join(f"{a[k]:.3f}" for k in METRICS[1:]) + " |")
    print(f"\n| setting | trained {m} mean ± std | heuristic {m} |")
    for name, r in result["settings"].items():
        t = r["trained"][m]
        print(f"| {name} | {t['mean']:.3f} ± {t['std']:.3f} | {r['heuristic'][m]:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="runs/ablation_comm", help="Folder of the six runs.")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--total-steps", type=int, default=None, help="Override the preset's budget (both arms).")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--eval-seed", type=int, default=12345)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--json", default="docs/ablation_comm.json")
    args = ap.parse_args()
    runs = Path(args.runs)
    wall = {} if args.skip_train else train(runs, args.seeds, args.total_steps)
    result = evaluate_all(runs, args.seeds, args.episodes, args.eval_seed)
    result["train_wall_s"] = wall
    print_tables(result)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
