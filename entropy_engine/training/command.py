"""``entropy train``: train a swarm with the native recurrent PPO (default) or SB3 RecurrentPPO.

::

    entropy train [--preset NAME] [--config FILE] [--out DIR] [--total-steps N] [--algo native|sb3]
                  [--device cpu|cuda|auto] [--<any TrainConfig field> VALUE]

Config layers: preset, then the TOML/YAML file, then command-line options; an unknown key is an
error. The run folder (default ``runs/<timestamp>``) receives ``config.yaml``, ``metrics.csv``,
TensorBoard events, ``checkpoints/``, ``models/`` (final model) and ``videos/``.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from ..config import field_help
from .config import DEFAULT_PRESET, PRESETS, TrainConfig, resolve_config

_EXPLICIT = ("total_steps", "algo", "device")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                        help=f"Named preset (default {DEFAULT_PRESET!r}; 'seed' = the original's settings).")
    parser.add_argument("--config", default=None, help="TOML or YAML file of config keys (flat or under [train]).")
    parser.add_argument("--out", default=None, help="Run folder (default runs/<timestamp>).")
    parser.add_argument("--name", default=None, help="Run name: the run folder is runs/<name>.")
    parser.add_argument("--total-steps", dest="total_steps", default=None, help=field_help(TrainConfig, "total_steps"))
    parser.add_argument("--algo", default=None, choices=["native", "sb3"], help=field_help(TrainConfig, "algo"))
    parser.add_argument("--device", default=None, help=field_help(TrainConfig, "device"))
    parser.add_argument("--console", default="auto", choices=["auto", "rich", "plain", "none"],
                        help="Console output: Rich live view, plain lines, or nothing.")
    group = parser.add_argument_group("config fields (override the preset and the file)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in _EXPLICIT:
            continue
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None, metavar="VALUE",
                           help=f"{f.metadata.get('help', '')} (field default: {f.default!r}; presets may differ)")


def overrides_from_args(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(args, f.name, None) is not None}


def run(args: argparse.Namespace) -> int:
    from ..runs.files import default_run_dir, run_layout, write_config
    from ..runs.monitor import Monitor

    cfg = resolve_config(args.preset, args.config, overrides_from_args(args))
    run_dir = Path(args.out) if args.out else default_run_dir(args.name)
    paths = run_layout(run_dir)
    write_config(run_dir, dataclasses.asdict(cfg))
    if cfg.algo == "sb3":
        from .sb3_trainer import train_sb3

        with Monitor(run_dir, cfg.total_steps, 0, dataclasses.asdict(cfg), tensorboard=cfg.tensorboard,
                     wandb=cfg.wandb, console=args.console) as mon:
            path = train_sb3(cfg, paths, mon.log)
            mon.message(f"Final model saved to {path}")
        return 0
    from .checkpoint import Checkpointer, delete_checkpoints, load_checkpoint
    from .native import NativeTrainer

    trainer = NativeTrainer(cfg)
    ckpt = load_checkpoint(paths.checkpoint_file)
    if ckpt is not None:
        trainer.load_state_dict(ckpt)
    with Monitor(run_dir, cfg.total_steps, trainer.num_timesteps, dataclasses.asdict(cfg),
                 tensorboard=cfg.tensorboard, wandb=cfg.wandb, console=args.console) as mon:
        if ckpt is not None:
            mon.message(f"Resuming from checkpoint at {trainer.num_timesteps} steps...")
        trainer.log = mon.log
        deadline = time.monotonic() + cfg.time_limit_s if cfg.time_limit_s > 0 else None
        trainer.learn(stop=(lambda: time.monotonic() >= deadline) if deadline else None,
                      on_iteration=Checkpointer(paths.checkpoint_file, cfg.checkpoint_every, trainer.num_timesteps))
        path = trainer.save(run_dir)
        delete_checkpoints(paths.checkpoint_file)
        mon.message(f"Final model saved to {path} after {trainer.num_timesteps} steps")
    return 0
