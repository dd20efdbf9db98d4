"""Training: config layers, CLI smoke runs of both algorithms, evaluation, load_policy, learning."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from entropy_engine.config import ConfigError
from entropy_engine.training.config import PRESETS, TrainConfig, preset, resolve_config

TINY = ["--num-worlds", "2", "--n-agents", "4", "--n-steps", "16", "--seq-len", "8", "--batch-size", "64",
        "--n-epochs", "2", "--lstm-hidden-size", "16", "--net-arch", "16", "--max-episode-steps", "30",
        "--tensorboard", "false", "--videos", "false"]


def test_seed_preset_is_the_original():
    cfg = preset("seed")
    assert (cfg.num_worlds, cfg.n_agents, cfg.lstm_hidden_size, cfg.learning_rate, cfg.n_steps, cfg.batch_size,
            cfg.total_steps) == (8, 10, 256, 3e-4, 512, 4096, 1_000_000)
    assert not cfg.shared_lstm and cfg.encoder_size == 0 and cfg.n_epochs == 10 and cfg.net_arch == 64


def test_config_layers_and_unknown_keys(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[train]\nn_steps = 128\nlearning_rate = 1e-3\n")
    yml = tmp_path / "c.yaml"
    yml.write_text("n_steps: 256\nent_coef: 0.01\n")
    cfg = resolve_config("seed", toml, {"learning_rate": "2e-3"})
    assert (cfg.n_steps, cfg.learning_rate, cfg.num_worlds) == (128, 2e-3, 8)
    cfg = resolve_config("default", yml)
    assert (cfg.n_steps, cfg.ent_coef) == (256, 0.01)
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_stepz: 3\n")
    with pytest.raises(ConfigError, match="n_stepz"):
        resolve_config("default", bad)
    with pytest.raises(ConfigError):
        resolve_config("nope")
    for name in PRESETS:
        assert isinstance(preset(name), TrainConfig)


def test_cli_has_an_option_per_field():
    from entropy_engine.cli import build_parser

    parser, _ = build_parser(["train"])
    args = parser.parse_args(["train", "--gae-lambda", "0.9", "--shared-lstm", "true", "--total-steps", "7"])
    from entropy_engine.training.command import overrides_from_args

    assert overrides_from_args(args) == {"gae_lambda": "0.9", "shared_lstm": "true", "total_steps": "7"}
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--no-such-field", "1"])


def _entropy(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entropy_engine.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.mark.parametrize("algo", ["native", "sb3"])
def test_train_smoke_and_eval(tmp_path, algo):
    out = tmp_path / "run"
    r = _entropy("train", "--algo", algo, "--out", str(out), "--total-steps", "256", "--console", "plain", *TINY)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "config.yaml").exists() and (out / "metrics.csv").exists()
    model = out / "models" / ("model.pt" if algo == "native" else "model.zip")
    assert model.exists()
    header = (out / "metrics.csv").read_text().splitlines()[0]
    for key in ("time/fps", "train/loss", "train/value_loss", "train/policy_gradient_loss", "train/entropy_loss",
                "train/explained_variance", "train/approx_kl", "train/clip_fraction", "train/std"):
        assert key in header, (key, header)
    js = tmp_path / "eval.json"
    r = _entropy("eval", str(out), "--episodes", "2", "--num-worlds", "2", "--json", str(js))
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(js.read_text())
    assert 0.0 <= res["success_rate"] <= 1.0 and res["collisions_per_agent"] >= 0
    assert res["mean_episode_length"] > 0 and res["agent_episodes"] == 8


def test_native_trainer_state_roundtrip():
    from entropy_engine.training.native import NativeTrainer

    cfg = resolve_config("default", overrides=dict(num_worlds=2, n_agents=4, n_steps=16, seq_len=8, batch_size=64,
                                                  n_epochs=1, lstm_hidden_size=8, net_arch=8, total_steps=128))
    a = NativeTrainer(cfg)
    a.learn(128)
    state = a.state_dict()
    b = NativeTrainer(cfg)
    b.load_state_dict(state)
    assert b.num_timesteps == a.num_timesteps == 128
    for (k, v), v2 in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert np.array_equal(v.numpy(), v2.numpy()), k


def test_load_policy_with_pettingzoo_env(tmp_path):
    import entropy_engine
    from entropy_engine.training.native import NativeTrainer

    cfg = resolve_config("default", overrides=dict(num_worlds=1, n_agents=3, n_steps=8, seq_len=8, batch_size=24,
                                                  n_epochs=1, lstm_hidden_size=8, net_arch=8, total_steps=24))
    tr = NativeTrainer(cfg)
    path = tr.save(tmp_path)
    policy = entropy_engine.load_policy(tmp_path)          # the run folder
    assert entropy_engine.load_policy(path).hidden_size == 8
    env = entropy_engine.parallel_env(n_agents=3, seed=0)
    obs, _ = env.reset(seed=0)
    state = policy.initial_state(3)
    index = {a: i for i, a in enumerate(env.possible_agents)}
    for _ in range(5):
        o = np.stack([obs.get(a, np.zeros(36, np.float32)) for a in env.possible_agents])
        actions, state = policy.act(o, state, deterministic=True)
        assert actions.shape == (3, 2) and np.all(np.abs(actions) <= 1)
        obs, *_ = env.step({a: actions[index[a]] for a in env.agents})
    # decentralised: an agent's action does not depend on the other rows
    o = np.random.default_rng(0).normal(size=(3, 36)).astype(np.float32)
    a_all, _ = policy.act(o, policy.initial_state(3))
    a_one, _ = policy.act(o[1:2], policy.initial_state(1))
    assert np.allclose(a_all[1], a_one[0], atol=1e-6)


@pytest.mark.slow
def test_default_preset_beats_untrained_policy(tmp_path):
    """The default preset shortened to 4M steps (about 90 s here, stopped at two minutes) clearly beats
    the untrained network (deterministic success 0.85 vs 0.0 when written)."""
    from entropy_engine.training.evaluate import evaluate
    from entropy_engine.training.native import NativeTrainer
    from entropy_engine.training.policy import RecurrentPolicy

    cfg = resolve_config("default", overrides=dict(total_steps=4_000_000))   # ~90 s alone on 2 cores
    tr = NativeTrainer(cfg)
    before = evaluate(RecurrentPolicy(tr.model, {"n_agents": 10}), episodes=20)
    tr.model.train()
    deadline = time.monotonic() + 120
    tr.learn(stop=lambda: time.monotonic() > deadline)
    after = evaluate(RecurrentPolicy(tr.model, {"n_agents": 10}), episodes=20)
    assert after["success_rate"] > before["success_rate"] + 0.5, (before, after)


@pytest.mark.slow
@pytest.mark.parametrize("algo, total, every", [("native", 60000, 2048), ("sb3", 6000, 512)])
def test_sigkill_twice_then_resume_to_exact_step_count(tmp_path, algo, total, every):
    """A real training process killed twice resumes from its rolling checkpoint and ends exactly
    (rollouts of 16 x 2 x 4 = 128 agent-steps: both totals end with a short one)."""
    import re
    import signal

    out = tmp_path / "run"
    ckpt = out / "checkpoints" / "checkpoint.zip"
    cmd = [sys.executable, "-m", "entropy_engine.cli", "train", "--algo", algo, "--out", str(out),
           "--total-steps", str(total), "--checkpoint-every", str(every), "--console", "plain", *TINY,
           *(["--encoder-size", "0"] if algo == "sb3" else [])]
    seen = []
    for _ in range(2):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        before = ckpt.stat().st_mtime_ns if ckpt.exists() else None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt.exists() and ckpt.stat().st_mtime_ns != before:
                time.sleep(0.3)
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        seen.append(proc.stdout.read())
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Resuming from checkpoint at" in r.stdout + r.stderr
    assert "Resuming from checkpoint at" in seen[1]
    resumed_at = int(re.search(r"Resuming from checkpoint at (\d+) steps", r.stdout + r.stderr).group(1))
    assert 0 < resumed_at < total and resumed_at % 128 == 0      # written at a rollout boundary
    assert f"after {total} steps" in r.stdout + r.stderr      # exactly: the last rollout is shortened
    assert (out / "models" / ("model.pt" if algo == "native" else "model.zip")).exists()
    assert not ckpt.exists() and not (out / "checkpoints" / "checkpoint.prev.zip").exists()
    from entropy_engine import load_policy

    policy = load_policy(out)                  # the final model loads and acts
    actions, _ = policy.act(np.zeros((4, 36), np.float32), policy.initial_state(4))
    assert actions.shape == (4, 2) and np.isfinite(actions).all()


def test_run_ends_exactly_at_total_steps_with_a_short_last_rollout():
    """800 agent-steps with rollouts of 32 x 8 = 256: three full rollouts and one of 4 steps."""
    from entropy_engine.training.native import NativeTrainer

    cfg = resolve_config("default", overrides=dict(
        num_worlds=2, n_agents=4, n_steps=32, seq_len=8, batch_size=64, n_epochs=1, total_steps=800,
        lstm_hidden_size=16, encoder_size=16, net_arch=16, checkpoint_every=0, tensorboard=False))
    trainer = NativeTrainer(cfg, log=lambda step, metrics: None)
    try:
        trainer.learn()
        assert trainer.num_timesteps == 800
        assert trainer.n_updates == 4
    finally:
        trainer.close()


def test_sb3_run_ends_exactly_at_total_steps_with_a_short_last_rollout(tmp_path):
    """--algo sb3, the same 800 = 3 x 256 + 32 agent-steps: the short rollout's 32 agent-steps are one
    minibatch smaller than batch_size 48 (which does not divide 256 either), n_steps and the buffer are
    restored after it, and a checkpoint written before it is a normal one that also resumes to 800."""
    import entropy_engine
    from entropy_engine.runs.files import run_layout
    from entropy_engine.training.run_length import rollout_steps
    from entropy_engine.training.sb3_trainer import (load_sb3_checkpoint, make_env, make_model,
                                                     save_sb3_checkpoint, train_sb3)

    assert [rollout_steps(32, 8, r) for r in (1000, 256, 32, 35, 1)] == [32, 32, 4, 5, 1]   # 803 -> 808, as native
    cfg = resolve_config("default", overrides=dict(
        algo="sb3", num_worlds=2, n_agents=4, n_steps=32, seq_len=8, batch_size=48, n_epochs=1, total_steps=800,
        lstm_hidden_size=16, encoder_size=0, net_arch=16, checkpoint_every=0, tensorboard=False, videos=False))
    paths = run_layout(tmp_path / "run")
    starts: list[int] = []

    def on_rollout(model) -> None:
        starts.append(model.num_timesteps)
        if model.num_timesteps == 768:          # at the start of the short rollout
            save_sb3_checkpoint(model, paths.checkpoint_file, cfg)

    env = make_env(cfg)
    try:
        model = make_model(cfg, env)
        path = train_sb3(cfg, paths, model=model, on_rollout=on_rollout)
        assert starts == [0, 256, 512, 768]
        assert (model.num_timesteps, model._n_updates) == (800, 4)
        assert model.n_steps == model.rollout_buffer.buffer_size == 32
        resumed = load_sb3_checkpoint(paths.checkpoint_file, env, cfg)
        assert (resumed.num_timesteps, resumed._n_updates, resumed.n_steps) == (768, 3, 32)
        train_sb3(cfg, paths, model=resumed)
        assert (resumed.num_timesteps, resumed._n_updates) == (800, 4)
    finally:
        env.close()
    policy = entropy_engine.load_policy(path, trust_pickle=True)      # SB3's loader: the algorithm's counters
    assert policy.model.num_timesteps == 800 and policy.model.n_steps == 32
    policy = entropy_engine.load_policy(path)                         # the safe loader: weights only
    actions, _ = policy.act(np.zeros((4, 36), np.float32), policy.initial_state(4))
    assert actions.shape == (4, 2) and np.isfinite(actions).all()


@pytest.mark.parametrize("algo", ["native", "sb3"])
def test_time_limit_stops_after_the_current_update(tmp_path, capsys, algo):
    """time_limit_s: the run stops after the update during which the limit passes (here the first),
    then saves its final model and deletes its checkpoints, as a finished run does."""
    from entropy_engine import load_policy
    from entropy_engine.cli import main

    out = tmp_path / "run"
    assert main(["train", "--algo", algo, "--out", str(out), "--total-steps", "100000", "--time-limit-s", "1e-9",
                 "--checkpoint-every", "128", "--encoder-size", "0", "--console", "plain", *TINY]) == 0
    text = "".join(capsys.readouterr())
    assert "after 128 steps" in text                       # one rollout: 16 steps x 2 worlds x 4 agents
    assert (out / "models" / ("model.pt" if algo == "native" else "model.zip")).exists()
    assert not list((out / "checkpoints").iterdir())
    policy = load_policy(out)
    actions, _ = policy.act(np.zeros((4, 36), np.float32), policy.initial_state(4))
    assert actions.shape == (4, 2) and np.isfinite(actions).all()


@pytest.mark.parametrize("algo", ["native", "sb3"])
def test_shaping_warmup_ramps_the_scale_in_both_trainers(tmp_path, algo):
    """shaping_warmup: the scale each rollout ran with is logged and grows 0 -> 1 over the warm-up."""
    import csv

    out = tmp_path / "run"
    r = _entropy("train", "--algo", algo, "--out", str(out), "--total-steps", "1024", "--console", "plain",
                 "--shaping-warmup", "0.5", *TINY)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "metrics.csv", newline="") as f:
        scales = [float(row["train/shaping_scale"]) for row in csv.DictReader(f) if row.get("train/shaping_scale")]
    assert scales[0] == 0.0 and scales[-1] == 1.0, scales
    assert all(b >= a for a, b in zip(scales, scales[1:])) and any(0 < s < 1 for s in scales), scales


def test_native_trainer_with_two_update_threads():
    from entropy_engine.training.native import NativeTrainer

    cfg = resolve_config("default", overrides=dict(num_worlds=2, n_agents=4, n_steps=16, seq_len=8, batch_size=64,
                                                   n_epochs=2, lstm_hidden_size=16, net_arch=16, encoder_size=16,
                                                   total_steps=256, update_threads=2))
    tr = NativeTrainer(cfg)
    try:
        before = [p.detach().clone() for p in tr.model.parameters()]
        tr.learn()
        assert tr.num_timesteps == 256 and tr.update_threads == 2
        assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    finally:
        tr.close()
    assert tr._pool is None


def _shipped_scenarios() -> list[str]:
    from entropy_engine.scenarios import SCENARIOS

    return sorted(n for n, cls in SCENARIOS.items() if cls.__module__.startswith("entropy_engine."))


@pytest.mark.slow
@pytest.mark.parametrize("scenario", _shipped_scenarios())
def test_every_scenario_trains_on_the_sb3_path_and_evaluates(tmp_path, scenario):
    """The SB3 RecurrentPPO trainer and `entropy eval` on every shipped scenario (the native trainer is
    run per scenario by its own preset test): the eval JSON carries the scenario's own metrics."""
    from entropy_engine.scenarios import scenario_class

    out = tmp_path / "run"
    r = _entropy("train", "--algo", "sb3", "--scenario", scenario, "--out", str(out), "--total-steps", "256",
                 "--console", "plain", "--encoder-size", "0", *TINY)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "models" / "model.zip").exists()
    header = (out / "metrics.csv").read_text().splitlines()[0]
    metrics = scenario_class(scenario).metrics
    for name in metrics:
        assert f"env/{name}" in header, (name, header)
    js = tmp_path / "eval.json"
    r = _entropy("eval", str(out), "--episodes", "2", "--num-worlds", "2", "--json", str(js))
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(js.read_text())
    assert res["scenario"] == scenario and res["agent_episodes"] > 0
    for name in metrics:
        assert np.isfinite(res[name]), (name, res)


def test_eval_heuristic_on_a_preset_uses_its_settings(tmp_path):
    """`entropy eval heuristic --preset NAME` runs on the preset's scenario and episode length
    (coverage: 200 steps, not TrainConfig's 500); a wrong or misplaced --preset is a one-line error."""
    js = tmp_path / "eval.json"
    r = _entropy("eval", "heuristic", "--preset", "coverage", "--episodes", "2", "--num-worlds", "2",
                 "--json", str(js))
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(js.read_text())
    assert res["scenario"] == "coverage" and res["mean_episode_length"] == PRESETS["coverage"]["max_episode_steps"]
    assert res["n_agents"] == PRESETS["coverage"]["n_agents"]
    r = _entropy("eval", "heuristic", "--preset", "nope")
    assert r.returncode != 0 and "unknown preset 'nope'" in r.stderr
    r = _entropy("eval", str(tmp_path), "--preset", "coverage")
    assert r.returncode != 0 and "--preset is for 'heuristic'" in r.stderr
