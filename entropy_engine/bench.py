"""``entropy bench``: simulation throughput in agent-steps per second, printed and written as JSON.

Each case builds a ``BatchEnv`` (the full environment step: validation, drive, collisions,
lidar, reward, observation, episode bookkeeping and autoreset), warms it up (numba compilation is
cached and not timed) and steps it with fixed random actions for ``--seconds``. Results are
measured in this process on this machine; nothing is hard-coded.

``--contention`` measures the shared-machine figures with real processes (``run_contention``):
the 64x10 case alone, with ``--threads 1``, two benches at once, and beside a busy process
(``python -c "while True: pass"``), each a fresh ``entropy bench`` subprocess that starts its
timed steps at the same wall-clock instant as its neighbour.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .bench_measure import machine_info, measure_env  # noqa: F401 (re-exported)

CASES: dict[str, dict[str, Any]] = {
    "worlds64_agents10": {"num_worlds": 64, "n_agents": 10},
    "world1_agents10000": {"num_worlds": 1, "n_agents": 10_000},
    # every scenario beside navigation (issue: each steps at >= 50 % of navigation's agent-steps/s)
    "flocking_worlds64_agents10": {"scenario": "flocking", "num_worlds": 64, "n_agents": 10},
    "formation_worlds64_agents10": {"scenario": "formation", "num_worlds": 64, "n_agents": 10},
    "aggregation_worlds64_agents10": {"scenario": "aggregation", "num_worlds": 64, "n_agents": 10},
    "coverage_worlds64_agents10": {"scenario": "coverage", "num_worlds": 64, "n_agents": 10},
    "transport_worlds64_agents10": {"scenario": "transport", "num_worlds": 64, "n_agents": 10},
    "foraging_worlds64_agents10": {"scenario": "foraging", "num_worlds": 64, "n_agents": 10},
    "pursuit_worlds64_agents10": {"scenario": "pursuit", "num_worlds": 64, "n_agents": 10},
    # rendezvous with its channel on (its default: 3 values, 4 m, the 4 nearest senders)
    "rendezvous_worlds64_agents10": {"scenario": "rendezvous", "num_worlds": 64, "n_agents": 10},
    # a 10,000-robot flock (issue: >= 50 % of the 10,000-agent navigation case; linear neighbour sensing):
    # as the preset spawns it (0.8 m lattice, about 8x navigation's density: robots touch, the physics and
    # lidar pay for the crowd) and at navigation's density (10 m^2 per robot: 2.2 m lattice)
    "flocking_world1_agents10000": {"scenario": "flocking", "num_worlds": 1, "n_agents": 10_000},
    "flocking_world1_agents10000_sparse": {"scenario": "flocking", "num_worlds": 1, "n_agents": 10_000,
                                           "spawn_spacing": 2.2},
    # 10,000 robots and 1,000 movable objects in one world (issue: linear in cost; compare world1_agents10000)
    "transport_world1_agents10000_objects1000": {"scenario": "transport", "num_worlds": 1, "n_agents": 10_000,
                                                 "n_objects": 1_000},
    # the communication channel (issue: >= 70 % of the same case without it, and linear at 10,000 agents)
    "worlds64_agents10_comm8": {"num_worlds": 64, "n_agents": 10, "comm_dim": 8, "comm_range": 3.0},
    "world1_agents10000_comm8": {"num_worlds": 1, "n_agents": 10_000, "comm_dim": 8, "comm_range": 3.0},
}
# case -> the navigation case it is compared with (the same sizes; for channel cases the same case
# without the channel): the ratio of their agent-steps/s is reported when both ran in one process
REFERENCE_CASE = {"worlds64_agents10_comm8": "worlds64_agents10", "world1_agents10000_comm8": "world1_agents10000",
                  "flocking_world1_agents10000": "world1_agents10000",
                  "flocking_world1_agents10000_sparse": "world1_agents10000",
                  "transport_world1_agents10000_objects1000": "world1_agents10000",
                  **{name: "worlds64_agents10" for name, spec in CASES.items()
                     if "scenario" in spec and spec["num_worlds"] == 64 and spec["n_agents"] == 10}}
# one world growing 100x at constant density (10 m^2 per agent): linear cost = flat agent-steps/s
SCALING: dict[str, dict[str, Any]] = {
    "world1_agents1000": {"num_worlds": 1, "n_agents": 1_000},
    "world1_agents10000": {"num_worlds": 1, "n_agents": 10_000},
    "world1_agents100000": {"num_worlds": 1, "n_agents": 100_000},
    "world1_agents1000_comm8": {"num_worlds": 1, "n_agents": 1_000, "comm_dim": 8, "comm_range": 3.0},
    "world1_agents10000_comm8": {"num_worlds": 1, "n_agents": 10_000, "comm_dim": 8, "comm_range": 3.0},
}




def run_core_bench(seconds: float = 3.0, cases: list[str] | None = None,
                   table: dict[str, dict[str, Any]] = CASES, start_at: float | None = None) -> dict[str, Any]:
    from .envs.batch import BatchEnv

    results: dict[str, Any] = {}
    for name in cases or list(table):
        spec = table[name]
        env = BatchEnv(seed=0, **spec)
        results[name] = {**spec, **measure_env(env, seconds, start_at=start_at)}
        results[name]["us_per_agent_step"] = 1e6 / results[name]["agent_steps_per_s"]
    for name, plain in REFERENCE_CASE.items():
        if name in results and plain in results:
            results[name]["ratio_to_" + plain] = results[name]["agent_steps_per_s"] / results[plain]["agent_steps_per_s"]
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
    for name, plain in REFERENCE_CASE.items():
        r = results.get(name)
        if isinstance(r, dict) and "ratio_to_" + plain in r:
            print(f"{name}: {r['ratio_to_' + plain]:.2f} x the agent-steps/s of {plain} (same run)")


CONTENTION_CASE = "worlds64_agents10"


def _bench_process(seconds: float, threads: int, out: Path, start_at: float) -> subprocess.Popen:
    """A fresh ``entropy bench`` of the 64x10 case in a subprocess, timed from ``start_at``."""
    cmd = [sys.executable, "-m", "entropy_engine.cli", "bench", "--cases", CONTENTION_CASE, "--seconds", str(seconds),
           "--threads", str(threads), "--json", str(out), "--start-at", repr(start_at)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _collect(proc: subprocess.Popen, out: Path) -> float:
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench subprocess failed ({proc.returncode}): {err.strip()[-500:]}")
    return float(json.loads(out.read_text())[CONTENTION_CASE]["agent_steps_per_s"])


def run_contention(seconds: float = 3.0, threads: int = 0, lead_s: float = 4.0) -> dict[str, Any]:
    """The 64x10 case as separate processes: alone, alone with one thread, two at once, and beside
    one busy process (each with ``threads``; 0 = automatic). ``lead_s`` seconds are left for the
    processes to start and warm up before their timed steps begin together. Returns agent-steps/s
    of every run and the two ratios of the shared-machine targets."""
    runs = {"alone": [threads], "alone_threads1": [1], "two_at_once": [threads, threads],
            "beside_busy": [threads]}
    res: dict[str, Any] = {"threads": threads, "seconds": seconds}
    with tempfile.TemporaryDirectory(prefix="entropy-contention-") as tmp:
        for name, counts in runs.items():
            busy = None
            if name == "beside_busy":
                busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                start_at = time.time() + lead_s
                procs = [(_bench_process(seconds, t, Path(tmp) / f"{name}{k}.json", start_at), Path(tmp) / f"{name}{k}.json")
                         for k, t in enumerate(counts)]
                rates = [_collect(p, out) for p, out in procs]
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
            res[name] = rates if len(rates) > 1 else rates[0]
    res["two_at_once_sum"] = sum(res["two_at_once"])
    res["ratio_two_at_once_sum_to_alone"] = res["two_at_once_sum"] / res["alone"]
    res["ratio_beside_busy_to_alone_threads1"] = res["beside_busy"] / res["alone_threads1"]
    return res


def print_contention(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    label = "automatic" if res["threads"] == 0 else str(res["threads"])
    table = Table(title=f"Shared machine: {CONTENTION_CASE} as separate processes (--threads {label})")
    table.add_column("run")
    table.add_column("agent-steps/s", justify="right")
    table.add_column("ratio", justify="right")
    table.add_row("alone", f"{res['alone']:,.0f}", "1.00")
    table.add_row("alone, --threads 1", f"{res['alone_threads1']:,.0f}", f"{res['alone_threads1'] / res['alone']:.2f}")
    a, b = res["two_at_once"]
    table.add_row("two at once (sum; vs alone)", f"{a + b:,.0f} ({a:,.0f} + {b:,.0f})",
                  f"{res['ratio_two_at_once_sum_to_alone']:.2f}")
    table.add_row("beside one busy process (vs alone, --threads 1)", f"{res['beside_busy']:,.0f}",
                  f"{res['ratio_beside_busy_to_alone_threads1']:.2f}")
    Console().print(table)


def threads_arg(text: str) -> int:
    """``--threads``: an integer >= 0 (0 = automatic)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 (0 = automatic), got {text!r}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per case")
    parser.add_argument("--cases", nargs="*", default=None, choices=sorted(CASES), help="core cases to run")
    parser.add_argument("--scaling", action="store_true",
                        help="also step one world of 1,000 / 10,000 / 100,000 agents (cost per agent vs N)")
    parser.add_argument("--backends", action="store_true",
                        help="also run the side-by-side backend comparison (pymunk paths vs numba)")
    parser.add_argument("--threads", type=threads_arg, default=0,
                        help="numba threads: 0 = automatic (the cores other processes leave free, re-checked "
                             "every 0.25 s; default), N = exactly N")
    parser.add_argument("--contention", action="store_true",
                        help="only the shared-machine check: the 64x10 case alone, with --threads 1, two at once "
                             "and beside a busy process, each in its own process; prints the ratios")
    parser.add_argument("--start-at", type=float, default=None, help=argparse.SUPPRESS)  # --contention's children
    parser.add_argument("--backend", choices=("numba", "cuda"), default="numba",
                        help="'cuda': the GPU check instead (agreement with numba, physics of 16,384 x 10 and of one "
                             "world of 1,000,000 agents, the device env, end-to-end training; entropy_engine/gpu/README.md)")
    parser.add_argument("--quick", action="store_true", help="with --backend cuda: small sizes (a smoke test)")


def run(args: argparse.Namespace) -> int:
    from .core.threads import set_threads

    if args.seconds <= 0:
        print(f"entropy bench: error: --seconds must be positive, got {args.seconds!r}", file=sys.stderr)
        return 2
    set_threads(args.threads)
    if args.backend == "cuda":
        from .gpu import check, target

        target.require()
        return check.run(args.json, args.seconds, quick=args.quick)
    out: dict[str, Any] = {"machine": machine_info(), "threads": args.threads}
    if args.contention:
        res = run_contention(args.seconds, args.threads)
        out["contention"] = res
        print_contention(res)
    else:
        core = run_core_bench(args.seconds, args.cases, start_at=args.start_at)
        out.update(core)
        print_table(core, f"Compiled core ({out['machine']['cpu']}, {out['machine']['cores']} cores)")
    if args.scaling and not args.contention:
        scaling = run_core_bench(args.seconds, table=SCALING)
        out["scaling"] = scaling
        print_table(scaling, "One world, growing (constant density)")
    if args.backends and not args.contention:
        from .bench_backends import print_backend_table, run_backend_bench

        backends = run_backend_bench(seconds_per_case=args.seconds)
        out.update(backends)
        print_backend_table(backends)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0
