"""GPU speed: the physics step, the device env and end-to-end training on one NVIDIA GPU.

``entropy bench --backend cuda`` runs ``run_gpu_bench``: each case is timed with the GPU
synchronised before the clock is read, after a warm-up (compilation), as the median of five
stretches; agent-steps/s = worlds x agents x steps / seconds. It prints a table and writes JSON.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import numpy as np


def _timed(fn: Callable[[], None], sync: Callable[[], None], seconds: float, stretches: int = 5) -> float:
    """Median seconds per call over ``stretches`` stretches of about ``seconds / stretches`` each."""
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    one = max(time.perf_counter() - t0, 1e-6)
    calls = max(1, int(seconds / stretches / one))
    per = []
    for _ in range(stretches):
        sync()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        per.append((time.perf_counter() - t0) / calls)
    return statistics.median(per)


def physics_case(num_worlds: int, n_agents: int, seconds: float = 3.0, schedule: str | None = None,
                 scenario: str = "navigation", **config: Any) -> dict[str, Any]:
    """The physics step alone (``DeviceWorld.step``) on a layout of ``scenario`` (navigation; transport: with
    its movable objects), random actions fixed on the GPU."""
    from ..scenarios import make_scenario
    from .device_world import DeviceWorld
    from .target import cuda

    t0 = time.perf_counter()
    sc = make_scenario(scenario, num_worlds, n_agents, 0, **config)
    sc.reset()
    dev = DeviceWorld(sc.world)
    if schedule is not None:
        dev.schedule_override = schedule
    rs = np.random.default_rng(0)
    act = cuda().to_device(rs.uniform(-1, 1, (num_worlds, n_agents, 2)).astype(np.float32))
    setup = time.perf_counter() - t0
    sec = _timed(lambda: dev.step(act), cuda().synchronize, seconds)
    n = num_worlds * n_agents
    return {"case": "physics" if scenario == "navigation" else f"physics ({scenario})", "num_worlds": num_worlds,
            "n_agents": n_agents, "n_rays": sc.config.n_rays,
            "schedule": dev.schedule, "step_ms": sec * 1e3, "agent_steps_per_s": n / sec, "setup_s": setup}


def cpu_case(num_worlds: int, n_agents: int, seconds: float = 3.0, **config: Any) -> dict[str, Any]:
    """The numba backend's physics step on the same layout, for the ratio."""
    from ..scenarios import make_scenario

    sc = make_scenario("navigation", num_worlds, n_agents, 0, **config)
    sc.reset()
    rs = np.random.default_rng(0)
    act = rs.uniform(-1, 1, (num_worlds, n_agents, 2)).astype(np.float32)
    sec = _timed(lambda: sc.world.step(act), lambda: None, seconds)
    n = num_worlds * n_agents
    return {"case": "physics_numba_cpu", "num_worlds": num_worlds, "n_agents": n_agents, "n_rays": sc.config.n_rays,
            "schedule": sc.world.schedule, "step_ms": sec * 1e3, "agent_steps_per_s": n / sec}


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| case | worlds x agents | schedule | ms per step | agent-steps/s |", "|---|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['num_worlds']} x {r['n_agents']} | {r.get('schedule', '')} | "
                     f"{r['step_ms']:.3f} | {r['agent_steps_per_s']:.3g} |")
    return "\n".join(lines)


def env_case(num_worlds: int, n_agents: int, seconds: float = 3.0, scenario: str = "navigation",
             **config: Any) -> dict[str, Any]:
    """``DeviceEnv.step`` of ``scenario`` (physics, sensors, reward, observation, respawns, resets,
    bookkeeping; with ``comm_dim`` in ``config`` the channel) with fixed random actions already on the GPU
    (continuous messages: random tokens would be refused)."""
    import torch

    from .env import DeviceEnv
    from .target import synchronize

    env = DeviceEnv(scenario, num_worlds, n_agents, seed=0, **config)
    env.reset()
    gen = torch.Generator(device=env.device).manual_seed(0)
    act = torch.rand((env.num_slots, env.act_dim), generator=gen, device=env.device) * 2 - 1
    sec = _timed(lambda: env.step(act), synchronize, seconds)
    label = scenario + (f", channel of {env.config.comm_dim} values" if env.config.comm_dim else "")
    return {"case": f"env ({label})", "num_worlds": num_worlds, "n_agents": n_agents, "n_rays": env.config.n_rays,
            "schedule": env.world.schedule, "step_ms": sec * 1e3, "agent_steps_per_s": env.num_slots / sec}


# end-to-end training on the GPU: the ``seed`` preset's network (LSTM 256 per head, 64-unit MLP) with an update
# sized for 40,960 slots (minibatches of 65,536 agent-steps, 4 epochs)
TRAIN_CASE = dict(num_worlds=4096, n_agents=10, n_steps=64, seq_len=32, batch_size=65536, n_epochs=4)


def train_case(iterations: int = 3, **overrides: Any) -> dict[str, Any]:
    """agent-steps/s of ``NativeTrainer`` on the device env (rollout + update), the first iteration
    (compilation, allocation) left out."""
    from ..training.config import PRESETS, TrainConfig, build_config
    from ..training.native import NativeTrainer
    from .target import simulated, synchronize

    spec = dict(PRESETS["seed"], **TRAIN_CASE, backend="cuda", device="cuda", total_steps=10 ** 12)
    spec.update(overrides)
    if simulated():
        spec["device"] = "cpu"
    cfg = build_config(TrainConfig, spec)
    tr = NativeTrainer(cfg)
    tr.train_iteration()
    synchronize()
    t0, s0 = time.perf_counter(), tr.num_timesteps
    rollout = update = 0.0
    for _ in range(iterations):
        m = tr.train_iteration()
        rollout += m["time/rollout_s"]
        update += m["time/update_s"]
    synchronize()
    sec = time.perf_counter() - t0
    steps = tr.num_timesteps - s0
    return {"case": "train", "num_worlds": cfg.num_worlds, "n_agents": cfg.n_agents, "n_rays": tr.env.config.n_rays,
            "schedule": tr.env.world.schedule, "step_ms": sec / (steps / tr.env.num_slots) * 1e3,
            "agent_steps_per_s": steps / sec, "rollout_s": rollout, "update_s": update, "agent_steps": steps,
            "network": f"lstm {cfg.lstm_hidden_size} (shared {cfg.shared_lstm}), mlp {cfg.net_arch}",
            "update": f"n_steps {cfg.n_steps}, batch {cfg.batch_size}, epochs {cfg.n_epochs}"}


# the 60-second quality target: the default preset (network, rewards, shaping ramp) on 1,024 worlds with
# minibatches of 40,960 agent-steps and its schedules (learning rate, shaping ramp) laid over 40M agent-steps
# (the best of the H200 runs in the README), trained for a wall-clock budget
QUALITY_CASE = dict(num_worlds=1024, batch_size=40960, total_steps=40_000_000)


def quality_case(seconds: float = 60.0, episodes: int = 100, **overrides: Any) -> dict[str, Any]:
    """The issue's quality target: train the ``default`` preset (with ``QUALITY_CASE``) on the device env
    until ``seconds`` of wall time have passed since the trainer was built (compilation included, as
    ``entropy train --time-limit-s``), then evaluate the policy as ``entropy eval --episodes 100``
    does (seed 12345, deterministic, the CPU env at full difficulty)."""
    import copy
    import dataclasses

    from ..training.config import PRESETS, TrainConfig, build_config, config_dict
    from ..training.evaluate import evaluate
    from ..training.native import NativeTrainer
    from ..training.policy import RecurrentPolicy
    from .target import simulated

    spec = dict(PRESETS["default"], **QUALITY_CASE, backend="cuda", device="cuda")
    spec.update(overrides)
    if simulated():
        spec["device"] = "cpu"
    cfg = build_config(TrainConfig, spec)
    t0 = time.perf_counter()
    tr = NativeTrainer(cfg)
    tr.learn(stop=lambda: time.perf_counter() - t0 >= seconds)
    wall = time.perf_counter() - t0
    policy = RecurrentPolicy(copy.deepcopy(tr.model), config_dict(cfg))
    res = evaluate(policy, episodes=episodes, cfg=dataclasses.replace(cfg, backend="numba"))
    return {"case": "quality", "num_worlds": cfg.num_worlds, "n_agents": cfg.n_agents, "schedule": tr.env.world.schedule
            if hasattr(tr.env, "world") else "", "step_ms": wall / max(tr.num_timesteps / tr.env.num_slots, 1) * 1e3,
            "agent_steps_per_s": tr.num_timesteps / wall, "wall_s": wall, "agent_steps": tr.num_timesteps,
            "budget_s": seconds, "target_success_rate": 0.99,
            **{k: v for k, v in res.items() if k in ("success_rate", "collisions_per_agent", "mean_episode_length",
                                                   "episodes", "agent_episodes")}}
