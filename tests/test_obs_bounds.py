"""Every observation stays inside its declared Box, for every registered scenario, under any policy.

``observation_space.contains(obs)`` is part of PettingZoo's ``api_test`` and of what TorchRL and
RLlib check; a value one float32 ulp outside (the goal vector once reached 1.0000001) breaks them.
The rollouts are long and varied: the scenario's heuristic (agents arrive and respawn), uniform
random actions, and adversarial full-power actions (both wheels at +-1, held for several steps, so
that robots hit walls and each other at top speed).
"""
import numpy as np
import pytest

import entropy_engine as ee
from entropy_engine import BatchEnv
from entropy_engine.scenarios import SCENARIOS

POLICIES = ["heuristic", "random", "full_power"]


def _actions(policy: str, env: BatchEnv, rng: np.random.Generator, held: np.ndarray, t: int) -> np.ndarray:
    if policy == "heuristic":
        return env.heuristic_actions()
    if policy == "random":
        return rng.uniform(-1, 1, (env.num_slots, env.act_dim)).astype(np.float32)
    if t % 8 == 0:  # full power: every wheel at +-1, a new sign pattern every 8 steps
        held[:] = rng.choice(np.array([-1.0, 1.0], np.float32), size=held.shape)
    return held


def _assert_inside(obs: np.ndarray, space, where: str) -> None:
    assert obs.dtype == space.dtype, where
    assert np.isfinite(obs).all(), where
    low_bad, high_bad = obs < space.low, obs > space.high
    if low_bad.any() or high_bad.any():
        row, col = np.argwhere(low_bad | high_bad)[0]
        raise AssertionError(f"{where}: obs[{row}, {col}] = {obs[row, col]!r} outside "
                             f"[{space.low[col]}, {space.high[col]}]")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("policy", POLICIES)
def test_batch_env_observations_stay_in_their_space(scenario, policy):
    """64 worlds x 10 agents, two full episodes (1,000 steps, respawns and world resets), 3 seeds:
    1.9M observations per policy."""
    for seed in range(3):
        env = BatchEnv(scenario, num_worlds=64, n_agents=10, seed=seed)
        space = env.observation_space          # the scenario's, plus the channel's block when it is on
        rng = np.random.default_rng(seed)
        held = np.zeros((env.num_slots, env.act_dim), np.float32)
        _assert_inside(env.reset(), space, f"{scenario} seed {seed} reset")
        for t in range(2 * env.max_steps):
            obs, _, term, trunc, info = env.step(_actions(policy, env, rng, held, t))
            where = f"{scenario}/{policy} seed {seed} step {t}"
            _assert_inside(obs, space, where)
            done = term | trunc
            if done.any():
                _assert_inside(info["terminal_obs"][done], space, where + " terminal_obs")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_parallel_env_observations_and_state_stay_in_their_spaces(scenario):
    """Full episodes of the PettingZoo env (agents leave as they arrive) for 20 seeds and each policy,
    checked with the spaces' own ``contains``; seed 68 with the heuristic once produced 1.0000001."""
    env = ee.parallel_env(scenario, n_agents=10)
    width = env.action_space(env.possible_agents[0]).shape[0]  # scenarios registered by other tests may differ
    rng = np.random.default_rng(0)
    for seed in range(60, 80):
        for policy in POLICIES:
            obs, _ = env.reset(seed=seed)
            held = {}
            t = 0
            while env.agents:
                for a, o in obs.items():
                    assert env.observation_space(a).contains(o), (scenario, policy, seed, t, a, o)
                assert env.state_space.contains(env.state()), (scenario, policy, seed, t)
                if policy == "heuristic":
                    act = {a: env.scenario.heuristic(obs[a]) for a in env.agents}
                elif policy == "random":
                    act = {a: rng.uniform(-1, 1, width).astype(np.float32) for a in env.agents}
                else:
                    if t % 8 == 0:
                        held = {a: rng.choice([-1.0, 1.0], width).astype(np.float32) for a in env.possible_agents}
                    act = {a: held[a] for a in env.agents}
                obs, *_ = env.step(act)
                t += 1
            for a, o in obs.items():  # the last observations (agents that just left)
                assert env.observation_space(a).contains(o), (scenario, policy, seed, t, a, o)
