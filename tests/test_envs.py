"""The PettingZoo and SB3 adapters, the BatchEnv contract and bad-input handling."""
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

import entropy_engine as ee
from entropy_engine import BatchEnv, ConfigError


def test_pettingzoo_parallel_api():
    env = ee.parallel_env(n_agents=6, seed=1, max_steps=80)
    parallel_api_test(env, num_cycles=300)


def test_pettingzoo_seed_test():
    parallel_seed_test(lambda: ee.parallel_env(n_agents=5, max_steps=40))


def test_parallel_env_contract():
    env = ee.parallel_env(n_agents=4, seed=0)
    obs, infos = env.reset(seed=3)
    assert env.agents == ["robot_0", "robot_1", "robot_2", "robot_3"]
    assert obs["robot_0"].shape == (36,) and obs["robot_0"].dtype == np.float32
    assert env.observation_space("robot_0").contains(obs["robot_0"])
    obs, rew, term, trunc, info = env.step({a: np.array([0.5, 0.5], np.float32) for a in env.agents})
    assert set(info["robot_1"]) >= {"reached_goal", "collided"}
    assert isinstance(info["robot_1"]["collided"], bool)


def test_parallel_env_truncates_at_max_steps():
    env = ee.parallel_env(n_agents=3, seed=0, max_steps=7)
    env.reset()
    for t in range(7):
        _, _, term, trunc, _ = env.step({a: np.zeros(2) for a in env.agents})
    assert all(trunc.values()) and env.agents == []


def test_heuristic_reaches_more_goals_than_random():
    def success(policy, seed):
        env = BatchEnv(num_worlds=8, n_agents=10, seed=seed, on_goal="deactivate", max_steps=250)
        env.reset()
        reached = 0
        rng = np.random.default_rng(seed)
        for _ in range(250):
            act = env.heuristic_actions() if policy == "heuristic" else rng.uniform(-1, 1, (env.num_slots, 2))
            _, _, term, _, info = env.step(act)
            reached += int(term.sum())
            if info["world_done"].all():
                break
        return reached / env.num_slots

    h, r = success("heuristic", 1), success("random", 1)
    assert h >= 0.6, h
    assert h > r + 0.4, (h, r)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((9, 2)), r"shape \(10, 2\)"),
    (np.zeros((10, 3)), r"shape \(10, 2\)"),
    (np.array([["a", "b"]] * 10), "dtype"),
    (np.full((10, 2), np.nan), "NaN or inf"),
    (np.full((10, 2), np.inf), "NaN or inf"),
])
def test_bad_actions_are_rejected_and_state_is_kept(bad, match):
    env = BatchEnv(num_worlds=2, n_agents=5, seed=0)
    env.reset()
    before = env.scenario.world.pos.copy()
    with pytest.raises(ValueError, match=match):
        env.step(bad)
    assert np.array_equal(before, env.scenario.world.pos)
    env.step(np.zeros((10, 2)))  # still usable


def test_out_of_range_actions_are_clipped():
    a, b = BatchEnv(num_worlds=1, n_agents=3, seed=0), BatchEnv(num_worlds=1, n_agents=3, seed=0)
    a.reset(), b.reset()
    oa = a.step(np.full((3, 2), 7.0))[0].copy()
    ob = b.step(np.ones((3, 2)))[0].copy()
    assert np.array_equal(oa, ob)


def test_parallel_env_bad_actions():
    env = ee.parallel_env(n_agents=2, seed=0)
    env.reset()
    with pytest.raises(ValueError, match="missing actions"):
        env.step({"robot_0": np.zeros(2)})
    with pytest.raises(ValueError, match="unknown agents"):
        env.step({"robot_0": np.zeros(2), "robot_1": np.zeros(2), "robot_9": np.zeros(2)})
    with pytest.raises(ValueError, match="NaN"):
        env.step({"robot_0": np.array([np.nan, 0]), "robot_1": np.zeros(2)})


@pytest.mark.parametrize("kwargs, match", [
    ({"n_agents": 0}, "n_agents"),
    ({"num_worlds": -1}, "num_worlds"),
    ({"bogus_key": 1}, "unknown config key"),
    ({"n_agents": 500, "arena_size": 8.0}, "too small"),
    ({"max_speed": 5.0}, "pass through a wall"),
    ({"agent_radius": -1.0}, "agent_radius"),
])
def test_bad_construction(kwargs, match):
    args = {"num_worlds": 2, "n_agents": 4, **kwargs}
    with pytest.raises(ConfigError, match=match):
        BatchEnv(**args)


def test_batch_env_respawn_and_autoreset():
    env = BatchEnv(num_worlds=4, n_agents=6, seed=2, max_steps=30)
    env.reset()
    seen_term = seen_trunc = False
    for t in range(60):
        obs, rew, term, trunc, info = env.step(env.heuristic_actions())
        done = term | trunc
        if term.any():
            seen_term = True
            k = np.flatnonzero(term)[0]
            # the terminal observation is the last one; obs is already the next episode's
            assert not np.array_equal(info["terminal_obs"][k], obs[k])
            assert info["episode_success"][k]
        if trunc.any():
            seen_trunc = True
            assert (env.t == 0).all() and info["world_done"].all()
            assert (info["episode_length"][trunc] <= 30).all()
        assert env.scenario.world.active.all()  # respawn keeps every slot alive
    assert seen_term and seen_trunc


def test_sb3_vec_env_contract_and_ppo_learn():
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger

    env = ee.vec_env(num_worlds=2, n_agents=5, seed=0, max_steps=40)
    obs = env.reset()
    assert obs.shape == (10, 36)
    obs2, rew, dones, infos = env.step(np.zeros((10, 2), np.float32))
    assert obs2.shape == (10, 36) and rew.shape == (10,) and dones.shape == (10,)
    assert all({"reached_goal", "collided"} <= set(i) for i in infos)
    for _ in range(45):
        obs2, rew, dones, infos = env.step(np.zeros((10, 2), np.float32))
        if dones.any():
            k = int(np.flatnonzero(dones)[0])
            assert infos[k]["terminal_observation"].shape == (36,)
            assert infos[k]["TimeLimit.truncated"] is True and "episode" in infos[k]
            break
    else:
        pytest.fail("no episode ended")
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=1, seed=0)
    model.set_logger(Logger(folder=None, output_formats=[]))   # SB3's default logger makes a /tmp/SB3-* folder
    model.learn(640)
    assert model.num_timesteps >= 640
    env.close()


def test_respawned_agents_do_not_overlap():
    """Respawns (checked through the spatial grid) land clear of every robot and wall."""
    from entropy_engine.core.geometry import segment_distance

    env = BatchEnv(num_worlds=2, n_agents=60, seed=3, arena_size=12.0, max_steps=10_000)
    env.reset()
    sc, w = env.scenario, env.scenario.world
    rng = np.random.default_rng(0)
    for _ in range(10):
        mask = rng.random((2, 60)) < 0.5
        sc.respawn(mask)
        for e in range(2):
            p = w.pos[e].astype(np.float64)
            d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1)) + np.eye(60) * 9
            assert d.min() >= 2 * w.radius, d.min()
            for x, y in p[mask[e]]:
                assert min(segment_distance(x, y, *w.walls[e, k]) for k in range(w.n_walls[e])) >= w.radius


@pytest.mark.slow
def test_sb3_vec_env_with_workers_matches_in_process():
    a = ee.vec_env(num_worlds=4, n_agents=3, seed=5, max_steps=20)
    b = ee.vec_env(num_worlds=4, n_agents=3, seed=5, max_steps=20, workers=2)
    try:
        oa, ob = a.reset(), b.reset()
        assert np.array_equal(oa, ob)
        rng = np.random.default_rng(0)
        for _ in range(30):
            act = rng.uniform(-1, 1, (12, 2)).astype(np.float32)
            ra, rb = a.step(act), b.step(act)
            for x, y in zip(ra[:3], rb[:3]):
                assert np.array_equal(x, y)
            assert [sorted(i) for i in ra[3]] == [sorted(i) for i in rb[3]]
    finally:
        a.close()
        b.close()


def test_sb3_vec_check_nan_and_spaces():
    """SB3's own VecEnv checker (VecCheckNan) over random steps; observations stay in their Box."""
    from stable_baselines3.common.vec_env import VecCheckNan

    env = VecCheckNan(ee.vec_env(num_worlds=3, n_agents=4, seed=1, max_steps=25), raise_exception=True)
    obs = env.reset()
    space = env.observation_space
    rng = np.random.default_rng(0)
    for _ in range(60):
        obs, rew, dones, infos = env.step(rng.uniform(-1, 1, (12, 2)).astype(np.float32))
        assert all(space.contains(o) for o in obs)
        for k in np.flatnonzero(dones):
            assert space.contains(infos[k]["terminal_observation"])
    with pytest.raises(ValueError):
        env.step(np.full((12, 2), np.nan, np.float32))


def test_goals_start_away_from_their_agents():
    """No agent starts on (or within min_goal_distance of) its own goal, at reset or respawn."""
    env = BatchEnv(num_worlds=40, n_agents=10, seed=0, max_steps=10_000)
    env.reset()
    sc = env.scenario
    d = np.linalg.norm(sc.goals - sc.world.pos, axis=-1)
    assert d.min() >= sc.config.min_goal_distance
    mask = np.ones((40, 10), bool)
    sc.respawn(mask)
    d = np.linalg.norm(sc.goals - sc.world.pos, axis=-1)
    assert d.min() >= sc.config.min_goal_distance
    _, _, term, _, _ = env.step(np.zeros((400, 2)))
    assert not term.any()


@pytest.mark.parametrize("bad", [1.5, "7", -1, True])
def test_every_env_refuses_the_same_bad_seeds(bad):
    """One seed check (core.rng.check_seed) for BatchEnv, the PettingZoo env and the SB3 VecEnv:
    a refused seed raises ValueError and changes nothing; later resets work."""
    env = BatchEnv(num_worlds=2, n_agents=3, seed=0, max_steps=20)
    first = env.reset(seed=4).copy()
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        env.reset(seed=bad)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        BatchEnv(num_worlds=2, n_agents=3, seed=bad)
    assert np.array_equal(env.reset(seed=4), first)
    pz = ee.parallel_env(n_agents=3, seed=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        pz.reset(seed=bad)
    pz.reset(seed=1)
    venv = ee.vec_env(num_worlds=2, n_agents=3, seed=0, max_steps=20)
    venv.seed(4)
    assert np.array_equal(venv.reset(), first)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        venv.seed(bad)
    obs = venv.reset()              # a refused seed() did not break reset()
    assert obs.shape == (6, 36) and np.isfinite(obs).all()
    venv.seed(4)
    assert np.array_equal(venv.reset(), first)
    venv.close()


def test_vec_env_never_replays_the_actions_of_a_refused_step():
    """A refused step_async leaves nothing pending; a step_wait that fails consumes its actions."""
    venv = ee.vec_env(num_worlds=2, n_agents=3, seed=0, max_steps=20)
    with pytest.raises(ValueError, match="NaN"):
        venv.step_async(np.full((6, 2), np.nan, np.float32))
    with pytest.raises(RuntimeError, match="without step_async"):
        venv.step_wait()
    with pytest.raises(ValueError, match="shape"):
        venv.step_async(np.zeros((5, 2), np.float32))
    with pytest.raises(RuntimeError, match="without step_async"):
        venv.step_wait()
    venv.step_async(np.ones((6, 2), np.float32))        # refused by the engine: no reset() yet
    with pytest.raises(RuntimeError, match="reset"):
        venv.step_wait()
    obs = venv.reset().copy()
    with pytest.raises(RuntimeError, match="without step_async"):
        venv.step_wait()                                # not the old actions, replayed
    ref = BatchEnv(num_worlds=2, n_agents=3, seed=0, max_steps=20)
    assert np.array_equal(ref.reset(), obs)              # nothing was stepped
    act = np.full((6, 2), 0.5, np.float32)
    assert np.array_equal(venv.step(act)[0], ref.step(act)[0])
    venv.close()


@pytest.mark.parametrize("copy_fn", ["pickle", "deepcopy"])
def test_a_copied_batch_env_is_a_fresh_env_with_the_same_settings(copy_fn):
    """Copying the live arrays would split the views that share memory (a copy once returned zero
    observations and rewards); a copy is rebuilt from the settings instead and then behaves exactly
    like the original after the same reset and actions."""
    import copy
    import pickle

    env = BatchEnv("navigation", num_worlds=3, n_agents=4, seed=5, on_goal="deactivate", n_obstacles=2)
    env.reset()
    for _ in range(5):
        env.step(env.heuristic_actions())
    twin = pickle.loads(pickle.dumps(env)) if copy_fn == "pickle" else copy.deepcopy(env)
    assert twin is not env and twin.scenario is not env.scenario
    assert (twin.on_goal, twin.num_worlds, twin.n_agents) == ("deactivate", 3, 4)
    a, b = env.reset(seed=9).copy(), twin.reset(seed=9).copy()
    assert np.array_equal(a, b) and np.abs(a).sum() > 0
    for _ in range(20):
        act = env.heuristic_actions()
        o1, r1, *_ = env.step(act)
        o2, r2, *_ = twin.step(act)
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
    assert np.abs(o2).sum() > 0 and twin.obs.base is not None   # still views of the scenario's arrays
