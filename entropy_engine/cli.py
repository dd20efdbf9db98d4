"""The ``entropy`` command line: ``entropy {train,eval,play,bench,sweep} ...``.

Each subcommand lives in its own module exposing ``configure(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``entropy bench`` never imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .config import ConfigError

COMMANDS = {
    "train": ("entropy_engine.training.command", "Train a swarm (native recurrent PPO or SB3 RecurrentPPO)."),
    "eval": ("entropy_engine.training.evaluate", "Evaluate a trained policy with decentralised execution."),
    "play": ("entropy_engine.render.play", "Watch a trained swarm in a window, or write a GIF."),
    "bench": ("entropy_engine.bench", "Measure simulation speed in agent-steps per second."),
    "sweep": ("entropy_engine.sweep.command", "Sweep settings and seeds over many runs on Ray Tune."),
}


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, object | None]:
    parser = argparse.ArgumentParser(prog="entropy", description="Entropy Engine: swarm RL on a laptop.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    module = None
    for name, (mod_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(mod_name)
            module.configure(p)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, module = build_parser(argv)
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help()
        return 0 if not argv else 2
    args.command_line = argv          # `entropy train` prints it as the command that resumes a stopped run
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:         # Ctrl-C in eval, play or bench: no traceback
        print(f"entropy {argv[0]}: interrupted", file=sys.stderr)
        return 130
    except (ConfigError, FileNotFoundError) as exc:    # a bad value or path given by the user
        print(f"entropy {argv[0]}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:         # a subcommand's SystemExit("entropy X: why"): one line, status 2
        if not isinstance(exc.code, str):
            raise
        print(exc.code, file=sys.stderr)
        raise UsageExit(exc.code) from None


class UsageExit(SystemExit):
    """A refused command: exit status 2 (argparse's), its one-line message already printed."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


if __name__ == "__main__":
    sys.exit(main())
