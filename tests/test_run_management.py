"""Run management: scenario keys in the config, checkpoint fallback, --prev-model, SB3 resume, GIFs, backends."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from entropy_engine.config import ConfigError
from entropy_engine.training.checkpoint import (CheckpointError, PREV_NAME, load_torch_checkpoint, restore_checkpoint,
                                                save_torch_checkpoint)
from entropy_engine.training.config import config_dict, resolve_config

SMALL = dict(num_worlds=2, n_agents=4, n_steps=16, seq_len=8, batch_size=64, n_epochs=1, lstm_hidden_size=8,
             net_arch=8, max_episode_steps=30, tensorboard=False, videos=False)
TINY = ["--num-worlds", "2", "--n-agents", "4", "--n-steps", "16", "--seq-len", "8", "--batch-size", "64",
        "--n-epochs", "1", "--lstm-hidden-size", "8", "--net-arch", "8", "--max-episode-steps", "30",
        "--tensorboard", "false", "--console", "plain"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entropy_engine.cli", *args], capture_output=True, text=True,
                          timeout=300)


# ----------------------------------------------------------------------------- config: scenario keys
def test_env_table_layers_validation_and_reproduction(tmp_path):
    from entropy_engine.runs.files import write_config
    from entropy_engine.training.command import overrides_from_args
    from entropy_engine.cli import build_parser

    f = tmp_path / "c.toml"
    f.write_text('[train]\nbackend = "pymunk"\nworkers = 2\n[train.env]\ngoal_reward = 4\narena_size = 9.0\n')
    parser, _ = build_parser(["train"])
    args = parser.parse_args(["train", "--env", "goal_reward=7", "--env", "time_penalty=0.02"])
    cfg = resolve_config("default", f, overrides_from_args(args))
    from entropy_engine.training.config import PRESETS

    # preset, file and command line merged key by key, typed
    assert cfg.env == {**PRESETS["default"]["env"], "goal_reward": 7.0, "arena_size": 9.0, "time_penalty": 0.02}
    assert (cfg.backend, cfg.workers) == ("pymunk", 2)
    kw = cfg.env_kwargs
    assert kw["goal_reward"] == 7.0 and kw["backend"] == "pymunk" and kw["max_steps"] == cfg.max_episode_steps
    # the written config.yaml, given back as --config, is the same config
    write_config(tmp_path, config_dict(cfg))
    assert resolve_config("seed", tmp_path / "config.yaml") == cfg
    with pytest.raises(ConfigError, match="goal_rewrd"):
        resolve_config(overrides={"env": {"goal_rewrd": 1}})
    with pytest.raises(ConfigError, match="max_episode_steps"):
        resolve_config(overrides={"env": {"max_steps": 10}})
    with pytest.raises(ConfigError, match="backend"):
        resolve_config(overrides={"backend": "box2d"})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        overrides_from_args(parser.parse_args(["train", "--env", "goal_reward"]))


def test_evaluate_uses_the_runs_scenario_keys(monkeypatch):
    from entropy_engine.training import evaluate as ev

    seen = {}

    class Stop(Exception):
        pass

    def fake_env(scenario, W, n, seed=None, on_goal=None, **kw):
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(ev, "BatchEnv", fake_env)
    policy = type("P", (), {"config": {"env": {"goal_reward": 3.0, "n_obstacles": 2}, "backend": "pymunk",
                                       "max_episode_steps": 77}})()
    with pytest.raises(Stop):
        ev.evaluate(policy, episodes=1)
    assert seen["goal_reward"] == 3.0 and seen["backend"] == "pymunk" and seen["n_obstacles"] == 2
    assert seen["max_steps"] == 77


# ----------------------------------------------------------------------------- checkpoints
def _trainer(**kw):
    from entropy_engine.training.native import NativeTrainer

    return NativeTrainer(resolve_config("default", overrides={**SMALL, "total_steps": 1024, **kw}))


def test_corrupt_checkpoint_falls_back_to_previous_with_message(tmp_path):
    ckpt = tmp_path / "checkpoints" / "checkpoint.zip"
    tr = _trainer()
    tr.learn(128)
    save_torch_checkpoint(ckpt, tr.state_dict())
    tr.learn(256)
    save_torch_checkpoint(ckpt, tr.state_dict())
    assert (ckpt.with_name(PREV_NAME)).exists()
    ckpt.write_bytes(b"garbage, not a zip archive" * 10)       # torn newest checkpoint
    fresh = _trainer()
    messages: list[str] = []
    _, used = restore_checkpoint(ckpt, lambda f: fresh.load_state_dict(load_torch_checkpoint(f)), messages.append)
    assert used == ckpt.with_name(PREV_NAME) and fresh.num_timesteps == 128
    assert len(messages) == 1 and str(ckpt) in messages[0] and "falling back" in messages[0]
    assert (ckpt.with_name("checkpoint.corrupt.zip")).exists()
    # both unusable: a clear error naming each file
    ckpt.write_bytes(b"garbage")
    ckpt.with_name(PREV_NAME).write_bytes(b"more garbage")
    with pytest.raises(CheckpointError) as err:
        restore_checkpoint(ckpt, lambda f: fresh.load_state_dict(load_torch_checkpoint(f)), messages.append)
    assert str(ckpt) in str(err.value) and str(ckpt.with_name(PREV_NAME)) in str(err.value)
    assert restore_checkpoint(tmp_path / "none" / "checkpoint.zip", lambda f: 1) is None


def test_incompatible_checkpoint_is_named(tmp_path):
    from entropy_engine.training.checkpoint import check_compatible

    ckpt = tmp_path / "checkpoint.zip"
    save_torch_checkpoint(ckpt, _trainer(n_agents=3).state_dict())
    other = _trainer()

    def apply(f):
        state = load_torch_checkpoint(f)
        check_compatible(state["config"], config_dict(other.cfg))
        other.load_state_dict(state)

    with pytest.raises(CheckpointError, match=r"n_agents=3 \(this run: 4\)") as err:
        restore_checkpoint(ckpt, apply)
    assert str(ckpt) in str(err.value)


@pytest.mark.slow
def test_cli_resumes_from_previous_checkpoint_and_keeps_start_gif(tmp_path):
    """Garbage in checkpoint.zip: the run says so, resumes from checkpoint.prev.zip and ends exactly;
    the start GIF is not re-recorded; end/comparison GIFs and the learning curves are written."""
    out = tmp_path / "run"
    cfg = resolve_config("default", overrides={**SMALL, "videos": True, "total_steps": 640})
    from entropy_engine.runs.files import run_layout
    from entropy_engine.training.native import NativeTrainer

    paths = run_layout(out)
    start = paths.videos / "start.gif"
    start.write_bytes(b"")                       # a marker: a resumed run must not re-record it
    start_mtime = start.stat().st_mtime_ns
    tr = NativeTrainer(cfg)
    tr.learn(256)
    save_torch_checkpoint(paths.checkpoint_file, tr.state_dict())
    save_torch_checkpoint(paths.checkpoint_file, tr.state_dict())     # the first one becomes the previous
    paths.checkpoint_file.write_bytes(b"\x00" * 100)                   # the newest is torn
    r = _cli("train", "--out", str(out), "--total-steps", "640", *TINY, "--videos", "true", "--video-steps", "12",
             "--video-size", "64")
    text = r.stdout + r.stderr
    assert r.returncode == 0, text
    assert f"checkpoint {paths.checkpoint_file} is unusable" in text and "falling back" in text
    assert "Resuming from checkpoint at 256 steps" in text and "after 640 steps" in text
    assert start.stat().st_mtime_ns == start_mtime
    assert not (paths.videos / "comparison.gif").exists()       # start.gif was no GIF: end.gif only
    assert (paths.videos / "end.gif").stat().st_size > 0 and (out / "learning_curves.png").stat().st_size > 0
    # both checkpoints corrupt: a clear error naming the file, exit status 2, no traceback
    paths.checkpoint_file.write_bytes(b"junk")
    (paths.checkpoints / PREV_NAME).write_bytes(b"junk")
    r = _cli("train", "--out", str(out), "--total-steps", "640", *TINY, "--videos", "false")
    assert r.returncode == 2 and str(paths.checkpoint_file) in r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- base model
def test_native_prev_model(tmp_path):
    a = _trainer()
    a.learn(128)
    a.save(tmp_path / "a")
    b = _trainer(seed=1)
    assert b.load_base_model(tmp_path / "a") == tmp_path / "a" / "models" / "model.pt"
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(v, w), k
    with pytest.raises(ConfigError, match="does not fit"):
        _trainer(lstm_hidden_size=16).load_base_model(tmp_path / "a")


@pytest.mark.slow
def test_cli_prev_model_and_videos(tmp_path):
    base, out = tmp_path / "base", tmp_path / "run"
    r = _cli("train", "--out", str(base), "--total-steps", "128", *TINY, "--videos", "false")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _cli("train", "--out", str(out), "--total-steps", "128", "--prev-model", str(base), *TINY,
             "--video-steps", "10", "--video-size", "128", "--video-frame-skip", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Starting from base model {base / 'models' / 'model.pt'}" in r.stdout + r.stderr
    from entropy_engine.render.gif import read_gif

    for name in ("start", "end", "comparison"):
        frames = read_gif(out / "videos" / f"{name}.gif")
        assert len(frames) >= 2 and frames.shape[1] >= 128, (name, frames.shape)
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- SB3
@pytest.mark.slow
def test_sb3_checkpoint_resume_exact_total(tmp_path, capsys):
    """SB3 run interrupted after a checkpoint; running the command again resumes and ends exactly."""
    from entropy_engine.cli import main
    from entropy_engine.runs.files import run_layout
    from entropy_engine.training.checkpoint import Checkpointer
    from entropy_engine.training.sb3_trainer import save_sb3_checkpoint, train_sb3

    out = tmp_path / "run"
    cfg = resolve_config("default", overrides={**SMALL, "algo": "sb3", "total_steps": 512, "encoder_size": 0})
    paths = run_layout(out)

    class Crash(Exception):
        pass

    def save_then_crash(model):
        save_sb3_checkpoint(model, paths.checkpoint_file, cfg)
        if model.num_timesteps >= 256:
            raise Crash

    with pytest.raises(Crash):
        train_sb3(cfg, paths, on_rollout=Checkpointer(save_then_crash, 128))
    assert paths.checkpoint_file.exists() and (paths.checkpoints / PREV_NAME).exists()
    args = ["train", "--algo", "sb3", "--out", str(out), "--total-steps", "512", *TINY, "--videos", "false",
            "--encoder-size", "0"]
    assert main(args) == 0
    text = "".join(capsys.readouterr())
    assert "Resuming from checkpoint at 256 steps" in text and "after 512 steps" in text
    assert (out / "models" / "model.zip").exists() and not paths.checkpoint_file.exists()
    from sb3_contrib import RecurrentPPO

    assert RecurrentPPO.load(str(out / "models" / "model.zip")).num_timesteps == 512


# ----------------------------------------------------------------------------- backends, headless
@pytest.mark.slow
def test_pymunk_workers_train_and_resume_state():
    """--backend pymunk with worker processes trains; its state (no env RNG) round-trips."""
    from entropy_engine.envs.shm import ShmBatchEnv

    a = _trainer(backend="pymunk", workers=2)
    try:
        assert isinstance(a.env, ShmBatchEnv) and a.env.config.backend == "pymunk"
        a.learn(256)
        state = a.state_dict()
        assert state["env_rng"] is None and state["num_timesteps"] == 256
        a.load_state_dict(state)                   # reseeds the workers' streams
        a.learn(384)
        assert a.num_timesteps == 384
    finally:
        a.close()
    assert a.env.closed


def test_headless_sets_dummy_video_driver(monkeypatch):
    from entropy_engine.training.videos import ensure_headless

    for var in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    ensure_headless()
    assert os.environ["SDL_VIDEODRIVER"] == "dummy"
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    ensure_headless()
    assert os.environ["SDL_VIDEODRIVER"] == "x11"
