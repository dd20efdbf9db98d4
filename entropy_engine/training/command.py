"""``entropy train``: train a swarm with the native recurrent PPO (default) or SB3 RecurrentPPO.

::

    entropy train [--preset NAME] [--config FILE] [--out DIR] [--total-steps N] [--algo native|sb3]
                  [--device cpu|cuda|auto] [--backend numba|pymunk] [--workers N] [--prev-model PATH]
                  [--env KEY=VALUE ...] [--<any TrainConfig field> VALUE]

Config layers: preset, then the TOML/YAML file, then command-line options; an unknown key is an
error. The run folder (default ``runs/<timestamp>``) receives ``config.yaml``, ``metrics.csv``,
TensorBoard events, ``checkpoints/``, ``models/`` (final model), ``videos/`` (GIFs) and
``learning_curves.png``.

Start: if the run folder holds a checkpoint, training resumes from it ("Resuming from checkpoint
at N steps"); otherwise from ``--prev-model`` if given, else from scratch. Running the same command
again after a crash is all it takes. At the end the final model is saved, the GIFs and the curves
written, and the rolling checkpoint deleted.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
from pathlib import Path
from typing import Any

from ..config import ConfigError, field_help
from .config import DEFAULT_PRESET, PRESETS, TrainConfig, config_dict, resolve_config

_EXPLICIT = ("total_steps", "algo", "device", "env")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                        help=f"Named preset (default {DEFAULT_PRESET!r}; 'seed' = the original's settings).")
    parser.add_argument("--config", default=None, help="TOML or YAML file of config keys (flat or under [train]).")
    parser.add_argument("--out", default=None, help="Run folder (default runs/<timestamp>).")
    parser.add_argument("--name", default=None, help="Run name: the run folder is runs/<name>.")
    parser.add_argument("--total-steps", dest="total_steps", default=None, help=field_help(TrainConfig, "total_steps"))
    parser.add_argument("--algo", default=None, choices=["native", "sb3"], help=field_help(TrainConfig, "algo"))
    parser.add_argument("--device", default=None, help=field_help(TrainConfig, "device"))
    parser.add_argument("--env", dest="env", action="append", default=None, metavar="KEY=VALUE",
                        help="A scenario config key (repeatable), e.g. --env goal_reward=5 --env arena_size=12.")
    parser.add_argument("--console", default="auto", choices=["auto", "rich", "plain", "none"],
                        help="Console output: Rich live view, plain lines, or nothing.")
    group = parser.add_argument_group("config fields (override the preset and the file)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in _EXPLICIT:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None, metavar="VALUE",
                           help=f"{f.metadata.get('help', '')} (field default: {default!r}; presets may differ)")


def parse_env_options(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` from ``--env`` to a dict (values are converted by the scenario's config)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--env expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def overrides_from_args(args: argparse.Namespace) -> dict:
    out = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
           if getattr(args, f.name, None) is not None}
    if "env" in out:
        out["env"] = parse_env_options(out["env"])
    return out


def run(args: argparse.Namespace) -> int:
    from .checkpoint import CheckpointError

    try:
        return _run(args)
    except (ConfigError, CheckpointError) as exc:
        print(f"entropy train: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from ..runs.files import default_run_dir, run_layout, write_config
    from .videos import RunVideos

    cfg = resolve_config(args.preset, args.config, overrides_from_args(args))
    run_dir = Path(args.out) if args.out else default_run_dir(args.name)
    paths = run_layout(run_dir)
    write_config(run_dir, config_dict(cfg))
    notes: list[str] = []           # printed once the console is up
    videos = RunVideos(cfg, paths, warn=notes.append)
    if cfg.algo == "sb3":
        return _train_sb3(cfg, paths, args, videos, notes)
    return _train_native(cfg, paths, args, videos, notes)


def _monitor(cfg: TrainConfig, paths: Any, args: argparse.Namespace, start_step: int):
    from ..runs.monitor import Monitor

    return Monitor(paths.root, cfg.total_steps, start_step, config_dict(cfg), tensorboard=cfg.tensorboard,
                   wandb=cfg.wandb, console=args.console)


def _start(mon: Any, notes: list[str], videos: Any, resumed_at: int | None) -> None:
    for note in notes:
        mon.message(note)
    videos.warn = mon.message
    if resumed_at is not None:
        mon.message(f"Resuming from checkpoint at {resumed_at} steps...")


def _train_native(cfg: TrainConfig, paths: Any, args: argparse.Namespace, videos: Any, notes: list[str]) -> int:
    from .checkpoint import (Checkpointer, check_compatible, delete_checkpoints, load_torch_checkpoint,
                             restore_checkpoint, save_torch_checkpoint)
    from .native import NativeTrainer
    from .policy import RecurrentPolicy
    from .run_length import time_limit

    trainer = NativeTrainer(cfg)
    notes.append(f"Native trainer on {trainer.device}: update in {trainer.update_dtype}, "
                 f"{trainer.threads} torch thread(s), minibatches split over {trainer.update_threads} thread(s), "
                 f"simulation on {cfg.threads or 'automatic'} thread(s)")
    try:
        def policy() -> RecurrentPolicy:   # a copy: RecurrentPolicy switches its model to eval mode
            return RecurrentPolicy(copy.deepcopy(trainer.model), config_dict(cfg))

        videos.start(policy)    # before any checkpoint or base model is loaded: the untrained policy

        def apply(file: Path) -> None:
            state = load_torch_checkpoint(file)
            check_compatible(state.get("config"), config_dict(cfg))
            trainer.load_state_dict(state)

        restored = restore_checkpoint(paths.checkpoint_file, apply, warn=notes.append)
        if restored is None and cfg.prev_model:
            notes.append(f"Starting from base model {trainer.load_base_model(cfg.prev_model)}")

        def save(tr: NativeTrainer) -> None:
            save_torch_checkpoint(paths.checkpoint_file, tr.state_dict())
            videos.refresh()

        with _monitor(cfg, paths, args, trainer.num_timesteps) as mon:
            _start(mon, notes, videos, trainer.num_timesteps if restored else None)
            trainer.log = mon.log
            trainer.learn(stop=time_limit(cfg.time_limit_s),
                          on_iteration=Checkpointer(save, cfg.checkpoint_every, trainer.num_timesteps))
            path = trainer.save(paths.root)
            videos.finish(policy())
            delete_checkpoints(paths.checkpoint_file)
            mon.message(f"Final model saved to {path} after {trainer.num_timesteps} steps")
    finally:
        trainer.close()
    return 0


def _train_sb3(cfg: TrainConfig, paths: Any, args: argparse.Namespace, videos: Any, notes: list[str]) -> int:
    from .checkpoint import Checkpointer, delete_checkpoints, restore_checkpoint
    from .policy import SB3Policy
    from .sb3_trainer import (load_sb3_base, load_sb3_checkpoint, make_env, make_model, save_sb3_checkpoint,
                              train_sb3)

    env = make_env(cfg)
    try:
        model = make_model(cfg, env)
        videos.start(lambda: SB3Policy.from_model(model))
        restored = restore_checkpoint(paths.checkpoint_file, lambda f: load_sb3_checkpoint(f, env, cfg),
                                      warn=notes.append)
        if restored is not None:
            model = restored[0]
        elif cfg.prev_model:
            notes.append(f"Starting from base model {load_sb3_base(model, cfg.prev_model)}")

        def save(m: Any) -> None:
            save_sb3_checkpoint(m, paths.checkpoint_file, cfg)
            videos.refresh()

        with _monitor(cfg, paths, args, model.num_timesteps) as mon:
            _start(mon, notes, videos, model.num_timesteps if restored else None)
            checkpointer = Checkpointer(save, cfg.checkpoint_every, model.num_timesteps)
            path = train_sb3(cfg, paths, mon.log, model=model, on_rollout=checkpointer)
            videos.finish(SB3Policy.from_model(model))
            delete_checkpoints(paths.checkpoint_file)
            mon.message(f"Final model saved to {path} after {model.num_timesteps} steps")
    finally:
        env.close()
    return 0
