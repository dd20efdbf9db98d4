"""Checks every scenario's test file runs the same way: the physics invariants of a crowded fuzz run,
PettingZoo's conformance tests with full heuristic episodes, and SB3 PPO on the VecEnv."""
from __future__ import annotations

import numpy as np

import entropy_engine as ee
from entropy_engine.core.geometry import segment_distance


def check_physical(world, worst: list) -> None:
    """No NaN, nobody outside the arena; worst[0] = largest robot overlap, worst[1] = deepest
    robot-in-wall penetration so far (metres), updated in place."""
    r = world.radius
    pos = world.pos.astype(np.float64)
    assert np.isfinite(pos).all() and np.isfinite(world.vel).all()
    assert (pos >= r - 1e-5).all() and (pos <= world.arena - r + 1e-5).all()
    for e in range(world.num_worlds):
        p = pos[e][world.active[e]]
        d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1)) + np.eye(len(p)) * 9
        worst[0] = max(worst[0], 2 * r - d.min())
        for k in range(world.n_walls[e]):
            wall = world.walls[e, k].astype(np.float64)
            worst[1] = max(worst[1], r - min(segment_distance(x, y, *wall) for x, y in p))


def check_pettingzoo(scenario: str, info_keys: set) -> dict:
    """parallel_api_test and parallel_seed_test (5 robots), then a full 30-step episode of the
    heuristic whose reset infos carry ``info_keys``; returns the last step's infos."""
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    parallel_api_test(ee.parallel_env(scenario, n_agents=5, seed=0, max_steps=60), num_cycles=200)
    parallel_seed_test(lambda: ee.parallel_env(scenario, n_agents=5, seed=0, max_steps=60), num_cycles=50)
    env = ee.parallel_env(scenario, n_agents=5, seed=0, max_steps=30)
    obs, infos = env.reset(seed=1)
    assert set(infos["robot_0"]) == info_keys
    steps = 0
    while env.agents:
        obs, _, _, _, infos = env.step({a: env.scenario.heuristic(obs[a]) for a in env.agents})
        steps += 1
    assert steps == 30
    return infos


def check_sb3_ppo(scenario: str, obs_width: int) -> None:
    """SB3's PPO learns 512 steps on the scenario's VecEnv (2 worlds x 4 robots, 2 actions)."""
    from stable_baselines3 import PPO

    venv = ee.vec_env(scenario, num_worlds=2, n_agents=4, seed=0, max_steps=50)
    assert venv.observation_space.shape == (obs_width,) and venv.action_space.shape == (2,)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(512)
    assert model.num_timesteps >= 512
    venv.close()
