"""``entropy sweep``: many training runs (settings x seeds) on Ray Tune, and their report.

::

    entropy sweep SWEEP.toml [--out DIR] [--max-concurrent N] [--cpus-per-trial N] [--address ADDR]
                             [--searcher grid|random|optuna] [--num-samples N]
    entropy sweep --report DIR

The sweep file is described in ``sweep.spec``. Without ``--address`` a local Ray starts on this
machine and stops at the end; ``--address HOST:PORT`` (or ``auto``) joins a running cluster
(``ray start --head`` on one machine, ``ray start --address HOST:PORT`` on the others; the sweep
folder must then be on a file system every machine sees). Running the same command again resumes
the sweep in ``DIR``. At the end (and with ``--report``) the results table and plots are written
into ``DIR`` (``sweep.report``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import ConfigError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_file", nargs="?", default=None, help="The sweep file (TOML or YAML).")
    parser.add_argument("--out", default=None, help="Sweep folder (default sweeps/<sweep file name>).")
    parser.add_argument("--report", default=None, metavar="DIR",
                        help="Write the results table and plots of the sweep in DIR again, and print the table.")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to use (HOST:PORT or 'auto'); default: start a local Ray on this machine.")
    parser.add_argument("--max-concurrent", dest="max_concurrent", type=int, default=None,
                        help="Trials at once (overrides the sweep file).")
    parser.add_argument("--cpus-per-trial", dest="cpus_per_trial", type=int, default=None,
                        help="Ray CPUs (= simulation and torch threads) per trial (overrides the sweep file).")
    parser.add_argument("--searcher", default=None, choices=["grid", "random", "optuna"],
                        help="Search algorithm (overrides the sweep file).")
    parser.add_argument("--num-samples", dest="num_samples", type=int, default=None,
                        help="random/optuna: points to try (overrides the sweep file).")


def run(args: argparse.Namespace) -> int:
    from .report import write_report

    if args.report is not None:
        if args.sweep_file is not None:
            raise ConfigError("--report DIR takes no sweep file")
        print(write_report(Path(args.report)))
        return 0
    if args.sweep_file is None:
        raise ConfigError("expected a sweep file (entropy sweep SWEEP.toml) or --report DIR")
    from .runner import run_sweep
    from .spec import load_spec

    path = Path(args.sweep_file)
    spec, data = load_spec(path, max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
                           searcher=args.searcher, num_samples=args.num_samples)
    out = Path(args.out) if args.out else Path("sweeps") / path.stem
    return run_sweep(spec, data, out, address=args.address)
