"""Learning curve of a preset in wall-clock time: train, snapshot every minute, evaluate snapshots.

::

    python -m entropy_engine.training.curve [--preset default] [--minutes 5] [--episodes 50] [--out DIR]
                                            [--<TrainConfig field> VALUE ...]

Prints a Markdown table (minutes, agent-steps, the scenario's metrics and mean_episode_length of
the deterministic policy, decentralised, ``on_goal="deactivate"``) and
writes ``curve.json`` to ``--out``. Evaluation happens after training, so it does not eat into
the training time.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

from .config import config_dict, resolve_config
from .evaluate import evaluate
from .native import NativeTrainer
from .policy import RecurrentPolicy


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="default")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--every", type=float, default=1.0, help="Snapshot interval in minutes.")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--out", default="runs/curve")
    args, rest = p.parse_known_args(argv)
    overrides = {rest[i].lstrip("-").replace("-", "_"): rest[i + 1] for i in range(0, len(rest), 2)}
    cfg = resolve_config(args.preset, overrides=overrides)
    tr = NativeTrainer(cfg)
    snaps = [(0.0, 0, copy.deepcopy(tr.model))]
    start = time.monotonic()
    next_snap = args.every * 60

    def on_iteration(t: NativeTrainer) -> None:
        nonlocal next_snap
        el = time.monotonic() - start
        if el >= next_snap:
            snaps.append((el / 60, t.num_timesteps, copy.deepcopy(t.model)))
            next_snap += args.every * 60

    tr.learn(stop=lambda: time.monotonic() - start >= args.minutes * 60, on_iteration=on_iteration)
    el = time.monotonic() - start
    if el - snaps[-1][0] * 60 > 1.0:
        snaps.append((el / 60, tr.num_timesteps, copy.deepcopy(tr.model)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tr.save(out)
    rows = []
    names = [*tr.env.metrics, "mean_episode_length"]
    print("| minutes | agent-steps | " + " | ".join(names) + " |")
    print("|---:|---:|" + "---:|" * len(names))
    for minutes, steps, model in snaps:
        res = evaluate(RecurrentPolicy(model, config_dict(cfg)), episodes=args.episodes)   # the run's scenario
        rows.append({"minutes": minutes, "steps": steps, **res})
        print(f"| {minutes:.2f} | {steps:,} | " + " | ".join(f"{res[n]:.3f}" for n in names) + " |", flush=True)
    (out / "curve.json").write_text(json.dumps({"preset": args.preset, "overrides": overrides, "rows": rows},
                                               indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
