"""``entropy train``: train a swarm with the native recurrent PPO (default) or SB3 RecurrentPPO.

::

    entropy train [--preset NAME] [--config FILE] [--out DIR] [--total-steps N] [--algo native|sb3]
                  [--device cpu|cuda|auto] [--backend numba|pymunk] [--workers N] [--prev-model PATH]
                  [--env KEY=VALUE ...] [--trust-pickle] [--<any TrainConfig field> VALUE]

Config layers: preset, then the TOML/YAML file, then command-line options; an unknown key is an
error. The run folder (default ``runs/<timestamp>``) receives ``config.yaml``, ``metrics.csv``,
TensorBoard events, ``checkpoints/``, ``models/`` (final model), ``videos/`` (GIFs) and
``learning_curves.png``.

Start: if the run folder holds a checkpoint, training resumes from it ("Resuming from checkpoint
at N steps"); otherwise from ``--prev-model`` if given, else from scratch. Running the same command
again after a crash is all it takes. At the end the final model is saved, the GIFs and the curves
written, and the rolling checkpoint deleted.

Safety (README: "Crash-safe runs"): everything that can be checked before training is checked
before the run folder is created (config, device, ``--prev-model``, memory, the folder's path), and
a refused start is one line on stderr with exit code 2. The run folder is locked for the whole run
(``training.run_folder``); a finished run is refused unless ``--overwrite``. Ctrl-C or SIGTERM stops
after the current update, writes a checkpoint, prints the command that resumes and exits with
130 / 143 (``training.interrupt``). A full disk stops the run with "no space left on device", naming
the file, and keeps the last good checkpoint (exit code 1).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import shlex
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
    parser.add_argument("--trust-pickle", dest="trust_pickle", action="store_true",
                        help="Resume an --algo sb3 checkpoint of an earlier release with SB3's own loader, which "
                             "unpickles the file and can run code from it: only for files you wrote yourself.")
    parser.add_argument("--console", default="auto", choices=["auto", "rich", "plain", "none"],
                        help="Console output: Rich live view, plain lines, or nothing.")
    parser.add_argument("--overwrite", action="store_true",
                        help="Train the run folder again from scratch, deleting its previous results (final model, "
                             "checkpoints, metrics.csv, TensorBoard events, GIFs); without it a finished run is "
                             "refused and an interrupted one resumes.")
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
    from ..runs.files import is_disk_full
    from ..runs.lock import RunInUseError
    from .checkpoint import CheckpointError
    from .guards import TrainingDiverged
    from .interrupt import StopSignals

    signals = StopSignals()
    state = _State(args)
    try:
        with signals:
            return _run(args, signals, state)
    except (ConfigError, CheckpointError, RunInUseError) as exc:
        if not state.started:
            state.discard()
        print(f"entropy train: error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"entropy train: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:       # a second Ctrl-C / SIGTERM: stop at once, without a new checkpoint
        code = signals.exit_code if signals.signum else 130
        if not state.started:
            state.discard()
            print("entropy train: interrupted before training began; nothing was saved", file=sys.stderr)
        else:
            print(f"entropy train: stopped at once; {state.kept()}{state.resume_hint()}", file=sys.stderr)
        return code
    except Exception as exc:
        if not is_disk_full(exc, state.root or "."):
            raise
        if not state.started:
            state.discard()
        print(f"entropy train: error: no space left on device while writing {_failed_file(exc, state)}; "
              f"{state.kept()}free some space, then{state.resume_hint(lower=True)}", file=sys.stderr)
        return 1
    finally:
        state.release()


def _failed_file(exc: BaseException, state: "_State") -> str:
    """The file named by the first ``OSError`` in ``exc``'s chain (else the run folder)."""
    e: BaseException | None = exc
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.filename:
            return str(e.filename)
        e = e.__cause__ or e.__context__
    return f"the run folder {state.root}"


class _State:
    """What ``run`` needs to report a stop or a failure: the run folder, whether training started."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.root: Path | None = None
        self.folder: Any = None
        self.started = False

    def discard(self) -> None:
        if self.folder is not None:
            self.folder.discard()

    def release(self) -> None:
        if self.folder is not None:
            self.folder.release()

    def kept(self) -> str:
        """Which checkpoint a rerun resumes from, as the start of a sentence."""
        from .run_folder import checkpoint_files

        files = checkpoint_files(self.folder.paths) if self.folder is not None and self.folder.paths else []
        return f"the last good checkpoint {files[0]} is kept; " if files else "no checkpoint was written yet; "

    def resume_hint(self, lower: bool = False) -> str:
        """`` Resume with: entropy train ...``: the same command line, with ``--out`` if the folder was
        a fresh timestamp and without ``--overwrite``."""
        argv = [a for a in (getattr(self.args, "command_line", None) or sys.argv[1:]) if a != "--overwrite"]
        if argv[:1] != ["train"]:
            argv = ["train", *argv]
        if self.args.out is None and self.args.name is None and self.root is not None:
            argv += ["--out", str(self.root)]
        return (" resume" if lower else " Resume") + " with: entropy " + shlex.join(argv)


def _read_config(args: argparse.Namespace) -> TrainConfig:
    """The run's config; a missing, unreadable or malformed config file is a ``ConfigError``."""
    from .config import load_file

    if args.config is not None:
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"config file {path} " + ("is a folder" if path.is_dir() else "does not exist"))
        try:
            load_file(path)        # read once here so that its syntax errors are reported as such
        except ConfigError:
            raise
        except Exception as exc:   # tomllib.TOMLDecodeError, yaml.YAMLError, OSError, UnicodeDecodeError
            mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)   # YAML
            why = (f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None and problem
                   else " ".join(str(exc).split()))
            raise ConfigError(f"cannot read config file {path}: {why}") from None
    return resolve_config(args.preset, args.config, overrides_from_args(args))


def _run_dir(args: argparse.Namespace) -> Path:
    from ..runs.files import default_run_dir

    if args.out:
        return Path(args.out)
    try:
        return default_run_dir(args.name)
    except ValueError as exc:
        raise ConfigError(f"--name: {exc}") from None


def _preflight(cfg: TrainConfig, run_dir: Path) -> None:
    """Checks that need no run folder: the device, the base model, the memory."""
    from .checkpoint import PREV_NAME
    from .footprint import check_memory
    from .native import resolve_device
    from .model_file import find_model

    resolve_device(cfg.device)
    if cfg.ray_workers:
        from ..optional import optional_import

        try:
            optional_import("ray", "ray_workers", "sweep", "ray[tune]")
        except ImportError as exc:
            raise ConfigError(str(exc)) from None
    if cfg.prev_model and not any((run_dir / "checkpoints" / n).is_file() for n in ("checkpoint.zip", PREV_NAME)):
        try:
            find_model(cfg.prev_model)
        except FileNotFoundError as exc:
            raise ConfigError(f"prev_model {cfg.prev_model}: "
                              + (str(exc) if Path(cfg.prev_model).exists() else "no such file or folder")) from None
    check_memory(cfg)


def _run(args: argparse.Namespace, signals: Any, state: _State) -> int:
    from ..runs.files import write_config
    from .run_folder import RunFolder
    from .videos import RunVideos

    cfg = _read_config(args)
    run_dir = _run_dir(args)
    folder = RunFolder(run_dir)
    folder.check()
    _preflight(cfg, run_dir)
    state.root, state.folder = run_dir, folder
    paths = folder.open(overwrite=args.overwrite)
    write_config(run_dir, config_dict(cfg))
    notes: list[str] = []           # printed once the console is up
    videos = RunVideos(cfg, paths, warn=notes.append)
    if cfg.algo == "sb3":
        return _train_sb3(cfg, paths, args, videos, notes, signals, state)
    return _train_native(cfg, paths, args, videos, notes, signals, state)


def _monitor(cfg: TrainConfig, paths: Any, args: argparse.Namespace, start_step: int):
    from ..runs.monitor import Monitor

    mon = Monitor(paths.root, cfg.total_steps, start_step, config_dict(cfg), tensorboard=cfg.tensorboard,
                  wandb=cfg.wandb, console=args.console)
    hook = getattr(args, "on_log", None)       # a sweep trial also reports every line to Ray Tune
    if hook is not None:
        log = mon.log

        def log_and_hook(step: int, metrics: Any) -> None:
            log(step, metrics)
            hook(step, metrics)

        mon.log = log_and_hook
    return mon


def _start(mon: Any, notes: list[str], videos: Any, resumed_at: int | None) -> None:
    for note in notes:
        mon.message(note)
    videos.warn = mon.message
    if resumed_at is not None:
        mon.message(f"Resuming from checkpoint at {resumed_at} steps...")


def _stopped(signals: Any, steps: int, checkpoint: Path, state: _State) -> int:
    """The one line after a Ctrl-C / SIGTERM stop, and the conventional exit code."""
    print(f"Stopped by {signals.name} at {steps} steps; checkpoint saved to {checkpoint}."
          f"{state.resume_hint()}", file=sys.stderr, flush=True)
    return signals.exit_code


def _train_native(cfg: TrainConfig, paths: Any, args: argparse.Namespace, videos: Any, notes: list[str],
                  signals: Any, state: _State) -> int:
    from .checkpoint import (Checkpointer, check_compatible, delete_checkpoints, load_torch_checkpoint,
                             restore_checkpoint, save_torch_checkpoint)
    from .interrupt import any_of
    from .native import NativeTrainer
    from .policy import RecurrentPolicy
    from .run_length import time_limit

    if cfg.ray_workers > 0:
        from .ray_workers import RayTrainer

        trainer = RayTrainer(cfg)
        notes.append(f"{cfg.ray_workers} Ray workers, each with {cfg.num_worlds // cfg.ray_workers} worlds and a "
                     "policy replica; gradients averaged every minibatch; Ray node of each rank: "
                     + ", ".join(trainer.nodes))
    else:
        trainer = NativeTrainer(cfg)
    notes.append(f"Native trainer on {trainer.device}: update in {trainer.update_dtype}, "
                 f"{trainer.threads} torch thread(s), minibatches split over {trainer.update_threads} thread(s), "
                 f"simulation on {cfg.threads or 'automatic'} thread(s)")
    if getattr(trainer, "on_device", False):
        notes.append("Environment on the GPU (backend cuda: physics, rewards, resets and episode bookkeeping as CUDA "
                     "kernels; observations and actions never leave the device)")
    elif cfg.backend == "cuda":
        notes.append("Physics on the GPU (backend cuda), scenario and episodes on the CPU: state copied each step "
                     "(the whole-GPU env takes navigation, flocking, aggregation or coverage with a CUDA device, "
                     "channels and curricula included, one process)")
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
            notes.append(f"Starting from base model {trainer.load_base_model(cfg.prev_model, notes.append)}")
        saved_at = [trainer.num_timesteps if restored else -1]

        def save(tr: NativeTrainer) -> None:
            save_torch_checkpoint(paths.checkpoint_file, tr.state_dict())
            saved_at[0] = tr.num_timesteps
            videos.refresh()

        state.started = True
        with _monitor(cfg, paths, args, trainer.num_timesteps) as mon:
            _start(mon, notes, videos, trainer.num_timesteps if restored else None)
            trainer.log = mon.log
            trainer.learn(stop=any_of(time_limit(cfg.time_limit_s), signals),
                          on_iteration=Checkpointer(save, cfg.checkpoint_every, trainer.num_timesteps))
            if signals() and trainer.num_timesteps < cfg.total_steps:
                if saved_at[0] != trainer.num_timesteps:
                    save_torch_checkpoint(paths.checkpoint_file, trainer.state_dict())
            else:
                path = trainer.save(paths.root)
                videos.finish(policy())
                delete_checkpoints(paths.checkpoint_file)
                mon.message(f"Final model saved to {path} after {trainer.num_timesteps} steps")
                return 0
    finally:
        trainer.close()
    return _stopped(signals, trainer.num_timesteps, paths.checkpoint_file, state)


def _train_sb3(cfg: TrainConfig, paths: Any, args: argparse.Namespace, videos: Any, notes: list[str],
               signals: Any, state: _State) -> int:
    from .checkpoint import Checkpointer, delete_checkpoints, restore_checkpoint
    from .policy import SB3Policy
    from .sb3_trainer import (load_sb3_base, load_sb3_checkpoint, make_env, make_model, save_sb3_checkpoint,
                              train_sb3)

    env = make_env(cfg)
    try:
        model = make_model(cfg, env)
        videos.start(lambda: SB3Policy.from_model(model))
        trust = bool(getattr(args, "trust_pickle", False))
        restored = restore_checkpoint(paths.checkpoint_file, lambda f: load_sb3_checkpoint(f, env, cfg, trust, model),
                                      warn=notes.append)
        if restored is not None:
            model = restored[0]
        elif cfg.prev_model:
            notes.append(f"Starting from base model {load_sb3_base(model, cfg.prev_model)}")
        saved_at = [model.num_timesteps if restored else -1]

        def save(m: Any) -> None:
            save_sb3_checkpoint(m, paths.checkpoint_file, cfg)
            saved_at[0] = m.num_timesteps
            videos.refresh()

        state.started = True
        with _monitor(cfg, paths, args, model.num_timesteps) as mon:
            _start(mon, notes, videos, model.num_timesteps if restored else None)
            checkpointer = Checkpointer(save, cfg.checkpoint_every, model.num_timesteps)
            path = train_sb3(cfg, paths, mon.log, model=model, on_rollout=checkpointer, interrupted=signals)
            if path is None:            # stopped by a signal before the end
                if saved_at[0] != model.num_timesteps:
                    save_sb3_checkpoint(model, paths.checkpoint_file, cfg)
            else:
                videos.finish(SB3Policy.from_model(model))
                delete_checkpoints(paths.checkpoint_file)
                mon.message(f"Final model saved to {path} after {model.num_timesteps} steps")
                return 0
    finally:
        env.close()
    return _stopped(signals, model.num_timesteps, paths.checkpoint_file, state)
