"""The one-command GPU check: ``python -m entropy_engine.gpu.check [--json FILE]``.

On a machine with an NVIDIA GPU: the agreement of the cuda backend with numba on small worlds
(both schedules), then the speed cases of ``gpu.bench``. Prints a table; writes everything as JSON.
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
    args = ap.parse_args(argv)
    import numba

    from . import bench
    from .agreement import compare_worlds
    from .target import cuda

    out: dict = {"python": sys.version.split()[0], "numba": numba.__version__, "machine": platform.node()}
    try:
        out["gpu"] = cuda().get_current_device().name.decode() if hasattr(
            cuda().get_current_device().name, "decode") else str(cuda().get_current_device().name)
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        out["gpu"] = f"unknown ({exc})"
    print(f"python {out['python']}, numba {out['numba']}, gpu {out['gpu']}", flush=True)
    if "agreement" not in args.skip:
        for sched in ("world", "agent"):
            t0 = time.perf_counter()
            r = compare_worlds("navigation", 4, 12, 40, schedule=sched, n_obstacles=4)
            r["seconds"] = time.perf_counter() - t0
            out[f"agreement_{sched}"] = r
            print(f"agreement ({sched}): {r}", flush=True)
    rows = []
    if "physics" not in args.skip:
        for E, N, sched in ((16384, 10, None), (1, 1_000_000, None), (1024, 10, None)):
            r = bench.physics_case(E, N, args.seconds, schedule=sched)
            rows.append(r)
            print(r, flush=True)
        r = bench.cpu_case(64, 10, args.seconds)
        rows.append(r)
        print(r, flush=True)
    out["rows"] = rows
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    print(bench.format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
