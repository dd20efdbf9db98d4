"""Curricula against training from scratch, measured back to back (README: "Curricula").

For each of the ``hard_navigation`` presets (no curriculum, staged, automatic level sampling) and
each seed, ``entropy train`` runs with the same budget, then ``entropy eval`` evaluates the final
model at full difficulty (the ``hard_navigation`` task: the run's ``env`` table, a staged run's last
stage) on ``--episodes`` episodes with one fixed seed. Prints a table (mean ± standard deviation
over seeds; for each curriculum the share of (its seed, a scratch seed) pairs it wins and the
exact one-sided permutation test of its mean against training from scratch) and writes every
number to ``--json``::

    python -m entropy_engine.training.curriculum_compare --seeds 0 1 2 3 4 5 6 7 --threads 1 --json docs/curriculum_compare.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

PRESETS = (("none", "hard_navigation"), ("staged", "hard_navigation_staged"), ("levels", "hard_navigation_levels"))


def _run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--kinds", nargs="+", default=[k for k, _ in PRESETS], choices=[k for k, _ in PRESETS])
    ap.add_argument("--total-steps", default=None, help="Budget per run (default: the presets' own).")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--eval-seed", type=int, default=12345)
    ap.add_argument("--out", default="runs/curriculum_compare")
    ap.add_argument("--json", dest="json_path", default=None)
    ap.add_argument("--table", action="store_true", help="Only print the table of the --json file's runs (and refresh its summary).")
    ap.add_argument("--threads", type=int, default=0,
                    help="numba and torch threads of each training run (0 = automatic; 1 on a shared machine).")
    args = ap.parse_args(argv)
    if args.table and not (args.json_path and Path(args.json_path).is_file()):
        ap.error("--table needs --json FILE of an earlier comparison")
    out = Path(args.out)
    results = []
    if args.json_path and Path(args.json_path).is_file():   # continue a table that was cut short
        results = json.loads(Path(args.json_path).read_text()).get("runs", [])
    if args.table:     # the table (and the JSON's summary) of the runs already measured
        print(table(results))
        Path(args.json_path).write_text(json.dumps({"runs": results, "table": summary(results)}, indent=1) + "\n")
        return 0
    done = {(r["kind"], r["seed"]) for r in results}
    for seed in args.seeds:            # one seed of every kind after another: back to back
        for kind, preset in PRESETS:
            if kind not in args.kinds or (kind, seed) in done:
                continue
            run_dir = out / f"{kind}_s{seed}"
            train = [sys.executable, "-m", "entropy_engine.cli", "train", "--preset", preset, "--seed", str(seed),
                     "--out", str(run_dir), "--overwrite", "--videos", "false", "--console", "plain"]
            if args.total_steps:
                train += ["--total-steps", str(args.total_steps)]
            if args.threads:
                train += ["--threads", str(args.threads), "--torch-threads", str(args.threads)]
            t0 = time.perf_counter()
            log = _run(train)
            train_s = time.perf_counter() - t0
            stages = [line for line in log.splitlines() if "stage" in line]
            ev = run_dir / "eval.json"
            _run([sys.executable, "-m", "entropy_engine.cli", "eval", str(run_dir), "--episodes", str(args.episodes),
                  "--seed", str(args.eval_seed), "--json", str(ev)])
            res = json.loads(ev.read_text())
            row = {"kind": kind, "preset": preset, "seed": seed, "train_s": round(train_s, 1),
                   "success_rate": res["success_rate"], "collisions_per_agent": res["collisions_per_agent"],
                   "mean_episode_length": res["mean_episode_length"], "agent_episodes": res["agent_episodes"],
                   "last_log_line": stages[-1] if stages else log.strip().splitlines()[-2:]}
            results.append(row)
            print(f"{kind:>7} seed {seed}: success {row['success_rate']:.3f}  collisions "
                  f"{row['collisions_per_agent']:.3f}  ({train_s:.0f} s)", flush=True)
            if args.json_path:
                Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json_path).write_text(json.dumps({"runs": results}, indent=1) + "\n")
    print(table(results))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"runs": results, "table": summary(results)}, indent=1) + "\n")
    return 0


def permutation_p(a: list[float], b: list[float]) -> float:
    """Exact one-sided permutation test: the share of the ways to split ``a + b`` into groups of
    their sizes whose difference of means is at least ``mean(a) - mean(b)`` (the observed split
    included). With 5 seeds against 5 the smallest possible value is 1/252 = 0.004, with 8 against 8
    1/12,870 = 7.8e-05."""
    pool, n = list(a) + list(b), len(a)
    total = sum(pool)
    observed = statistics.fmean(a) - statistics.fmean(b)
    hits = count = 0
    for idx in itertools.combinations(range(len(pool)), n):
        sa = sum(pool[i] for i in idx)
        diff = sa / n - (total - sa) / len(b)
        hits += diff >= observed - 1e-12
        count += 1
    return hits / count


def pair_wins(a: list[float], b: list[float]) -> float:
    """The share of pairs (x from a, y from b) with x > y (ties count a half)."""
    return sum((x > y) + 0.5 * (x == y) for x in a for y in b) / (len(a) * len(b))


def summary(results: list[dict]) -> dict[str, dict[str, float]]:
    out = {}
    scratch = [r["success_rate"] for r in results if r["kind"] == "none"]
    for kind, _ in PRESETS:
        rows = [r for r in results if r["kind"] == kind]
        if not rows:
            continue
        entry = {"seeds": [r["seed"] for r in rows]}
        for m in ("success_rate", "collisions_per_agent", "mean_episode_length"):
            vals = [r[m] for r in rows]
            entry[m] = statistics.fmean(vals)
            entry[m + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
            entry[m + "_per_seed"] = vals
        if kind != "none" and len(scratch) > 1 and len(rows) > 1:
            ours = entry["success_rate_per_seed"]
            entry["wins_vs_none"] = pair_wins(ours, scratch)
            entry["p_vs_none"] = permutation_p(ours, scratch)
        out[kind] = entry
    return out


def table(results: list[dict]) -> str:
    lines = ["| curriculum | seeds | success_rate (mean ± std) | per seed | pairs won vs none | p vs none | "
             "collisions_per_agent | episode length |",
             "|---|---|---:|---|---:|---:|---:|---:|"]
    for kind, e in summary(results).items():
        wins = f"{e['wins_vs_none']:.2f}" if "wins_vs_none" in e else "–"
        p = f"{e['p_vs_none']:.2g}" if "p_vs_none" in e else "–"
        lines.append(f"| {kind} | {', '.join(map(str, e['seeds']))} | {e['success_rate']:.3f} ± "
                     f"{e['success_rate_std']:.3f} | {' / '.join(f'{v:.3f}' for v in e['success_rate_per_seed'])} | "
                     f"{wins} | {p} | {e['collisions_per_agent']:.3f} ± {e['collisions_per_agent_std']:.3f} | "
                     f"{e['mean_episode_length']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
