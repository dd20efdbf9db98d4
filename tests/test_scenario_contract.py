"""The scenario contract: a scenario defined here, with its own observation width, three action
values (one of them in [0, 1]), its own info keys, episode statistics, metrics and drawing, runs
through every entry point without any change outside this file: BatchEnv (both episode modes),
the shared-memory workers, the SB3 VecEnv with ``PPO.learn``, the PettingZoo env (PettingZoo's
``parallel_api_test`` and ``parallel_seed_test``), the native trainer via ``entropy train``,
``entropy eval``, ``entropy play --gif`` and the run's GIFs.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest
from gymnasium import spaces

from entropy_engine.config import ConfigError, field, require
from entropy_engine.core.backends import make_world
from entropy_engine.core.rng import world_generator
from entropy_engine.scenarios import register
from entropy_engine.scenarios.base import Scenario, ScenarioConfig


@dataclass(frozen=True)
class BeaconConfig(ScenarioConfig):
    """Every robot drives to its world's beacon and may broadcast a signal level on the way."""

    arena_size: Optional[float] = field(8.0, "Side of the square arena, metres.")
    n_rays: int = field(8, "Lidar rays.")
    max_steps: int = field(120, "Episode length limit, steps.")
    beacon_radius: float = field(0.6, "A robot whose centre is this close to the beacon has arrived.")
    signal_cost: float = field(0.01, "Reward cost per step of |signal - 0.5|.")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.beacon_radius > 0, "beacon_radius must be positive")


@register
class Beacon(Scenario):
    """Test scenario: robots drive to one beacon per world.

    Observation (n_rays + 5): lidar [0, 1], ego velocity / max_speed [-1, 1], ego beacon vector /
    max(5 m, distance) [-1, 1], the robot's last signal [0, 1]. Action (3): left and right wheel
    power in [-1, 1], a signal level in [0, 1]. Reward: metres of progress towards the beacon, +5 on
    arrival, minus signal_cost * |signal - 0.5|. An agent terminates when it arrives.
    """

    name = "beacon_test"
    Config = BeaconConfig
    info_keys = {"arrived": "reached the beacon in this step", "signal": "the signal level sent in this step"}
    episode_stats = {"arrived": "1 if the robot reached the beacon", "signal": "signal levels summed over the episode"}
    metrics = {"arrival_rate": ("arrived", "fraction of robots that reached the beacon"),
               "signal_per_episode": ("signal", "signal summed over an episode")}
    success_stat = "arrived"

    def __init__(self, config: BeaconConfig, num_worlds: int, n_agents: int, seed: int | None = None):
        self.config = config
        self.world = w = make_world(config, num_worlds, n_agents, max_walls=4)
        E, N, R = w.num_worlds, w.n_agents, config.n_rays
        self._cells = int(w.arena // 1.0)
        if self._cells ** 2 < N:
            raise ConfigError(f"arena of {w.arena} m is too small for {N} robots")
        self.allocate(R + 5, seed)
        self.beacon = np.zeros((E, 2), np.float32)        # [E, 2]
        self.signal = np.zeros((E, N), np.float32)        # [E, N]
        self.dist = np.zeros((E, N), np.float32)          # [E, N]
        self._drive = np.zeros((E, N, 2), np.float32)     # [E, N, 2] wheel powers for the world
        self.info = {"arrived": self.terminated, "signal": self.signal}

    def observation_space(self) -> spaces.Box:
        R = self.config.n_rays
        low = np.concatenate([np.zeros(R), -np.ones(4), np.zeros(1)]).astype(np.float32)
        return spaces.Box(low=low, high=np.ones(R + 5, np.float32), dtype=np.float32)

    def action_space(self) -> spaces.Box:
        return spaces.Box(low=np.array([-1, -1, 0], np.float32), high=np.ones(3, np.float32), dtype=np.float32)

    def reset(self, mask: np.ndarray | None = None) -> None:
        w = self.world
        mask = np.ones(w.num_worlds, np.bool_) if mask is None else np.asarray(mask, np.bool_)
        a, m, N = w.arena, self._cells, w.n_agents
        for e in np.flatnonzero(mask):       # a test scenario: clarity over speed
            g = world_generator(self.rng, e)
            cells = g.permutation(m * m)[:N]                                        # distinct cells
            w.pos[e] = np.stack([cells % m + 0.5, cells // m + 0.5], -1) * (a / m)
            w.theta[e] = g.uniform(-np.pi, np.pi, N)
            self.beacon[e] = g.uniform(1.0, a - 1.0, 2)
        w.vel[mask] = 0.0
        w.omega[mask] = 0.0
        w.active[mask] = True
        w.walls[mask, :4] = np.array([[0, 0, a, 0], [a, 0, a, a], [a, a, 0, a], [0, a, 0, 0]], np.float32)
        w.n_walls[mask] = 4
        self.signal[mask] = 0.0
        w.sync(mask)
        w.refresh_lidar()
        self._observe()

    def respawn(self, mask: np.ndarray) -> None:
        w = self.world
        for e, i in zip(*np.nonzero(mask)):
            w.pos[e, i] = world_generator(self.rng, e).uniform(0.5, w.arena - 0.5, 2)
        w.vel[mask] = 0.0
        self.signal[mask] = 0.0
        w.sync(mask.any(axis=1))
        w.refresh_lidar()
        self._observe()

    def _observe(self) -> None:
        w, R = self.world, self.config.n_rays
        c, s = np.cos(w.theta), np.sin(w.theta)
        vel, rel = w.vel, self.beacon[:, None, :] - w.pos
        self.dist[:] = np.linalg.norm(rel, axis=-1)
        scale = 1.0 / np.maximum(5.0, self.dist)
        obs = self.obs
        obs[..., :R] = w.lidar
        obs[..., R] = np.clip((vel[..., 0] * c + vel[..., 1] * s) / self.config.max_speed, -1, 1)
        obs[..., R + 1] = np.clip((-vel[..., 0] * s + vel[..., 1] * c) / self.config.max_speed, -1, 1)
        obs[..., R + 2] = np.clip((rel[..., 0] * c + rel[..., 1] * s) * scale, -1, 1)
        obs[..., R + 3] = np.clip((-rel[..., 0] * s + rel[..., 1] * c) * scale, -1, 1)
        obs[..., R + 4] = self.signal
        obs[~w.active, R:] = 0.0

    def step(self, actions: np.ndarray) -> None:
        w, cfg = self.world, self.config
        before = self.dist.copy()
        self._drive[:] = actions[..., :2]
        self.signal[:] = actions[..., 2] * w.active
        w.step(self._drive)
        self._observe()
        arrived = (self.dist < cfg.beacon_radius) & w.active
        self.terminated[:] = arrived
        self.reward[:] = ((before - self.dist) + 5.0 * arrived - cfg.signal_cost * np.abs(self.signal - 0.5)) * w.active
        self.stats[0] = arrived
        self.stats[1] = self.signal

    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        R = self.config.n_rays
        goal = obs[..., R + 2:R + 4]
        heading = np.arctan2(goal[..., 1], goal[..., 0])
        forward = np.clip(np.cos(heading), 0.0, 1.0)
        turn = np.clip(1.5 * heading, -1.0, 1.0)
        return np.stack([forward - turn, forward + turn, np.full_like(forward, 0.5)], -1).astype(np.float32)

    def draw(self, canvas, world_index: int) -> None:
        canvas.ring(self.beacon[world_index], self.config.beacon_radius, (200, 120, 0))


# ----------------------------------------------------------------------------- the episode engine
def test_batch_env_sizes_everything_from_the_scenario():
    from entropy_engine.envs.batch import BatchEnv

    env = BatchEnv("beacon_test", num_worlds=3, n_agents=4, seed=0)
    assert (env.obs_dim, env.act_dim) == (13, 3)
    obs = env.reset()
    assert obs.shape == (12, 13)
    wild = np.tile(np.array([[2.0, -3.0, 7.0]], np.float32), (12, 1))
    _, _, _, _, info = env.step(wild)
    assert np.all(info["signal"] == 1.0)                      # clipped to the action space's [0, 1]
    _, _, _, _, info = env.step(np.tile(np.array([[0.0, 0.0, -5.0]], np.float32), (12, 1)))
    assert np.all(info["signal"] == 0.0)
    assert {"arrived", "signal", "episode_arrived", "episode_signal", "terminal_obs"} <= set(info)
    with pytest.raises(ValueError, match=r"\(12, 3\)"):
        env.step(np.zeros((12, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full((12, 3), np.nan, np.float32))
    assert env.observation_space.contains(env.obs[0])


def test_heuristic_beats_random_with_the_scenarios_metrics():
    from entropy_engine.policies import RandomPolicy
    from entropy_engine.training.config import TrainConfig
    from entropy_engine.training.evaluate import evaluate

    cfg = TrainConfig(scenario="beacon_test", n_agents=4, max_episode_steps=120)
    heur = evaluate("heuristic", episodes=8, num_worlds=4, cfg=cfg)
    rand = evaluate(RandomPolicy(_space(), 0), episodes=8, num_worlds=4, cfg=cfg)
    assert heur["arrival_rate"] > rand["arrival_rate"] + 0.3, (heur, rand)
    assert set(heur) >= {"arrival_rate", "signal_per_episode", "mean_episode_length"}
    assert "success_rate" not in heur and heur["agent_episodes"] == 32
    # the heuristic always signals 0.5: the statistic is 0.5 per step of the episode
    assert heur["signal_per_episode"] == pytest.approx(0.5 * heur["mean_episode_length"], rel=1e-4)


def test_respawn_keeps_every_slot_live_and_deactivate_lets_agents_leave():
    from entropy_engine.envs.batch import BatchEnv

    env = BatchEnv("beacon_test", 2, 4, seed=1, on_goal="respawn")
    env.reset()
    ended = 0
    for _ in range(150):
        _, _, term, trunc, _ = env.step(env.heuristic_actions())
        ended += int(term.sum())
        assert env.scenario.world.active.all()
    assert ended > 8
    env = BatchEnv("beacon_test", 2, 4, seed=1, on_goal="deactivate", autoreset=False)
    env.reset()
    while not env.over:
        env.step(env.heuristic_actions())
    assert not env.scenario.world.active.any() or (env.t >= env.max_steps).all()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.heuristic_actions())


def _space():
    return spaces.Box(low=np.array([-1, -1, 0], np.float32), high=np.ones(3, np.float32), dtype=np.float32)


def test_shared_memory_workers_carry_the_scenario():
    from entropy_engine.envs.batch import BatchEnv
    from entropy_engine.envs.shm import ShmBatchEnv

    # the workers are spawned processes: they receive the scenario class and import this module
    a = BatchEnv("beacon_test", 4, 3, seed=5)
    b = ShmBatchEnv("beacon_test", 4, 3, seed=5, workers=2)
    try:
        assert (b.obs_dim, b.act_dim, b.stat_names) == (13, 3, ("arrived", "signal"))
        np.testing.assert_array_equal(a.reset(), b.reset())
        acts = np.random.default_rng(0).uniform(-1, 1, (20, 12, 3)).astype(np.float32)
        for t in range(20):
            oa, ra, *_ = a.step(acts[t])
            ob, rb, *_ = b.step(acts[t])
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
    finally:
        b.close()


# ----------------------------------------------------------------------------- the adapters
def test_sb3_vec_env_learns_with_ppo():
    from stable_baselines3 import PPO

    import entropy_engine as ee

    venv = ee.vec_env("beacon_test", num_worlds=2, n_agents=4, seed=0)
    assert venv.observation_space.shape == (13,) and venv.action_space.shape == (3,)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    assert model.num_timesteps >= 256
    venv.close()


def test_pettingzoo_conformance():
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    import entropy_engine as ee

    parallel_api_test(ee.parallel_env("beacon_test", n_agents=3, seed=0), num_cycles=200)
    parallel_seed_test(lambda: ee.parallel_env("beacon_test", n_agents=3, seed=0), num_cycles=50)
    env = ee.parallel_env("beacon_test", n_agents=3, seed=0)
    obs, infos = env.reset(seed=1)
    assert set(infos["robot_0"]) == {"arrived", "signal"}
    while env.agents:
        obs, *_ = env.step({a: env.scenario.heuristic(obs[a]) for a in env.agents})


# ----------------------------------------------------------------------------- training, eval, play
def test_train_eval_play_and_gifs(tmp_path, capsys):
    pytest.importorskip("pygame")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.cli import main
    from entropy_engine.render.gif import read_gif

    run = tmp_path / "run"
    assert main(["train", "--preset", "default", "--scenario", "beacon_test", "--out", str(run),
                 "--total-steps", "1024", "--num-worlds", "2", "--n-agents", "4", "--n-steps", "32",
                 "--seq-len", "16", "--batch-size", "128", "--n-epochs", "1", "--max-episode-steps", "40",
                 "--video-steps", "20", "--video-size", "64", "--tensorboard", "false", "--console", "plain"]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "env/arrival_rate" in header and "env/signal_per_episode" in header
    assert "env/success_rate" not in header
    assert read_gif(run / "videos" / "comparison.gif").shape[-1] == 3
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--episodes", "4", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["scenario"] == "beacon_test" and 0.0 <= res["arrival_rate"] <= 1.0 and res["agent_episodes"] == 16
    gif = tmp_path / "play.gif"
    assert main(["play", str(run), "--gif", str(gif), "--size", "64"]) == 0
    assert read_gif(gif).shape[1:] == (64, 64, 3)
    assert "arrival_rate" in capsys.readouterr().out
