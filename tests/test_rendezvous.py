"""The rendezvous scenario: its kernels against a slow numpy reference, the telescoped metrics, who
sees the goal, the channel-using heuristic against random actions and against itself without the
channel, every entry point (PettingZoo conformance, SB3, the CLI), a crowded fuzz run and bad configs."""
from __future__ import annotations

import numpy as np
import pytest

import entropy_engine as ee
from entropy_engine import BatchEnv
from entropy_engine.config import ConfigError
from entropy_engine.scenarios import make_scenario
from scenario_checks import check_pettingzoo, check_physical


# ----------------------------------------------------------------------------- reference
def _state(sc):
    w = sc.world
    return {"pos": w.pos.astype(np.float64), "active": w.active.copy(), "contact": w.contact.copy(),
            "goal": sc.goal.astype(np.float64), "theta": w.theta.astype(np.float64)}


def _reference_step(sc, before, after, first, ever_before):
    """Reward and stat values of one step, from the state before and after it (documented definitions)."""
    cfg = sc.config
    E, N = sc.world.num_worlds, sc.world.n_agents
    rew = np.zeros((E, N))
    stats = np.zeros((5, E, N))
    d_old = np.linalg.norm(before["goal"][:, None] - before["pos"], axis=-1)
    d_new = np.linalg.norm(after["goal"][:, None] - after["pos"], axis=-1)
    zone = d_new < cfg.goal_radius
    for e in range(E):
        team = np.mean(d_old[e] - d_new[e])
        gathered = float(zone[e].all())
        for i in range(N):
            onset = after["contact"][e, i] and not before["contact"][e, i]
            rew[e, i] = (cfg.progress_reward * (d_old[e, i] - d_new[e, i]) + cfg.team_reward * team
                         + cfg.zone_reward * zone[e, i] - cfg.collision_penalty * after["contact"][e, i]
                         - cfg.collision_onset_penalty * onset)
            if first:
                stats[[0, 1, 3], e, i] = zone[e, i], gathered, d_new[e, i]
            else:
                old_zone = float(d_old[e, i] < cfg.goal_radius)
                old_gathered = float((d_old[e] < cfg.goal_radius).all())
                stats[[0, 1, 3], e, i] = zone[e, i] - old_zone, gathered - old_gathered, d_new[e, i] - d_old[e, i]
            stats[2, e, i] = 0.0 if ever_before[e] else 1.0
            stats[4, e, i] = onset
    return rew, stats


def _reference_obs(sc):
    """Observation [E, N, R + 9] from the state (lidar copied from the world)."""
    cfg, w = sc.config, sc.world
    R = cfg.n_rays
    th = w.theta.astype(np.float64)
    c, s = np.cos(th), np.sin(th)
    v = w.vel.astype(np.float64)
    obs = np.zeros(sc.obs.shape)
    obs[..., :R] = w.lidar
    obs[..., R] = np.clip((v[..., 0] * c + v[..., 1] * s) / cfg.max_speed, -1, 1)
    obs[..., R + 1] = np.clip((-v[..., 0] * s + v[..., 1] * c) / cfg.max_speed, -1, 1)
    obs[..., R + 2], obs[..., R + 3] = c, s
    for e in range(w.num_worlds):
        i = sc.informed[e]
        g = sc.goal[e].astype(np.float64) - w.pos[e, i]
        f = 1.0 / max(cfg.goal_obs_scale, np.hypot(*g))
        obs[e, i, R + 4] = 1.0
        obs[e, i, R + 5] = np.clip((g[0] * c[e, i] + g[1] * s[e, i]) * f, -1, 1)
        obs[e, i, R + 6] = np.clip((-g[0] * s[e, i] + g[1] * c[e, i]) * f, -1, 1)
        obs[e, i, R + 7:R + 9] = np.clip(g * f, -1, 1)
    return obs


def test_reward_statistics_and_observation_match_the_numpy_reference():
    env = BatchEnv("rendezvous", 4, 4, seed=4, max_steps=200)   # no reset inside
    sc = env.scenario
    env.reset()
    np.testing.assert_allclose(sc.obs, _reference_obs(sc), atol=1e-5)
    rng = np.random.default_rng(0)
    in_zone = 0
    for t in range(150):
        before = _state(sc)
        ever = sc.ever.copy()
        acts = env.heuristic_actions() if t % 10 else rng.uniform(-1, 1, (env.num_slots, env.act_dim))
        env.step(acts)
        after = _state(sc)
        assert np.array_equal(after["goal"], before["goal"])
        rew, stats = _reference_step(sc, before, after, t == 0, ever)
        np.testing.assert_allclose(sc.reward, rew, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sc.stats, stats, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sc.obs, _reference_obs(sc), atol=1e-5)
        in_zone += int(sc.info["in_zone"].sum())
    assert in_zone > 0 and sc.ever.any()   # the zone and the gathered branches were exercised


def test_metrics_are_the_final_values_and_the_gather_time():
    env = BatchEnv("rendezvous", 6, 8, seed=1, max_steps=120, autoreset=False)
    sc, cfg = env.scenario, env.scenario.config
    env.reset()
    first_all = np.full(6, 120)
    for t in range(120):
        _, _, _, trunc, info = env.step(env.heuristic_actions())
        d = np.linalg.norm(sc.goal[:, None].astype(np.float64) - sc.world.pos, axis=-1)
        all_in = (d < cfg.goal_radius).all(1)
        first_all = np.where(all_in & (first_all == 120), t + 1, first_all)
    assert trunc.all()
    zone = d < cfg.goal_radius
    np.testing.assert_array_equal(info["episode_in_zone"].reshape(6, 8), zone.astype(np.float32))
    np.testing.assert_array_equal(info["episode_gathered"].reshape(6, 8), np.repeat(zone.all(1)[:, None], 8, 1))
    np.testing.assert_allclose(info["episode_distance"].reshape(6, 8), d, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(info["episode_gather_time"].reshape(6, 8), np.repeat(first_all[:, None], 8, 1))
    assert zone.mean() > 0.5 and (first_all < 120).any()


def test_only_the_informed_robot_sees_the_goal_and_it_is_drawn_at_random():
    env = BatchEnv("rendezvous", 200, 5, seed=3, comm_dim=0)
    sc, R = env.scenario, env.scenario.config.n_rays
    env.reset()
    obs = sc.obs
    flags = obs[..., R + 4]
    assert np.array_equal(flags.sum(1), np.ones(200)) and np.array_equal(flags.argmax(1), sc.informed)
    uninformed = flags == 0
    goal = obs[..., R + 5:R + 9]
    assert (goal[uninformed] == 0).all() and (np.abs(goal[~uninformed]).sum(1) > 0).all()
    counts = np.bincount(sc.informed, minlength=5)
    assert counts.min() >= 25, counts                  # about 40 each: every index is drawn
    m, L = sc.config.goal_margin, sc.world.arena
    assert ((sc.goal >= m) & (sc.goal <= L - m)).all()
    old = sc.informed.copy()
    sc.reset()
    assert (sc.informed != old).any()                  # a new informed robot at a new episode


def test_same_seed_same_trajectory_and_respawn_is_clear():
    def run(seed):
        env = BatchEnv("rendezvous", 3, 8, seed=seed, max_steps=40)
        env.reset()
        rng = np.random.default_rng(5)
        out = [env.step(rng.uniform(-1, 1, (24, 5)))[0].copy() for _ in range(90)]
        return np.array(out), env
    a, env = run(3)
    b, _ = run(3)
    c, _ = run(4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    sc = env.scenario
    mask = np.zeros((3, 8), bool)
    mask[0, :3] = mask[2, 5] = True
    sc.respawn(mask)
    p = sc.world.pos[0].astype(np.float64)
    d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(8) * 9
    assert d[:3].min() >= sc.config.spawn_spacing - 1e-4
    assert sc.observation_space().contains(sc.obs[0, 0]) and (sc.world.vel[mask] == 0).all()


# ----------------------------------------------------------------------------- behaviour
def _evaluate(policy, **env):
    from entropy_engine.training.config import TrainConfig
    from entropy_engine.training.evaluate import evaluate

    cfg = TrainConfig(scenario="rendezvous", n_agents=10, max_episode_steps=200, env=env)
    return evaluate(policy, episodes=16, num_worlds=8, cfg=cfg, seed=3)


def test_the_heuristic_needs_the_channel_and_beats_random():
    """The same scripted policy with the channel (the scenario's default: 3 values, 4 m, nearest) and
    without it (comm_dim=0: only the informed robot knows the goal), and random actions."""
    from entropy_engine.policies import RandomPolicy

    talk = _evaluate("heuristic")
    mute = _evaluate("heuristic", comm_dim=0)
    rand = _evaluate(RandomPolicy(BatchEnv("rendezvous", 1, 10).action_space, 0))
    assert set(talk) >= {"in_zone_fraction", "gathered_rate", "gather_time", "goal_distance", "collisions_per_agent"}
    assert talk["in_zone_fraction"] >= 0.8 and talk["goal_distance"] < 1.5, talk
    assert mute["in_zone_fraction"] <= 0.3 and rand["in_zone_fraction"] <= 0.2, (mute, rand)
    assert talk["in_zone_fraction"] > mute["in_zone_fraction"] + 0.5, (talk, mute)
    assert talk["gathered_rate"] > 0.1 and mute["gathered_rate"] == 0.0, (talk, mute)
    assert talk["gather_time"] < mute["gather_time"] == 200


def test_the_heuristic_speaks_the_protocol():
    """The informed robot broadcasts its goal offset in the world frame with confidence 1; a robot that
    has heard nothing sends zeros; with the channel off the actions are the two wheels."""
    env = BatchEnv("rendezvous", 2, 10, seed=0)
    sc = env.scenario
    env.reset()
    act = env.heuristic_actions().reshape(2, 10, 5)
    assert act.shape[-1] == 2 + sc.config.comm_dim
    for e in range(2):
        i = sc.informed[e]
        off = (sc.goal[e] - sc.world.pos[e, i]) / 10.0
        d = np.hypot(*(sc.goal[e] - sc.world.pos[e, i]))
        expect = off * min(1.0, sc.config.goal_obs_scale / d)
        np.testing.assert_allclose(act[e, i, 2:4], expect, atol=1e-4)
        assert act[e, i, 4] == 1.0
        others = np.arange(10) != i
        assert (act[e, others, 2:] == 0).all()          # nothing heard yet: a new episode starts silent
    env.step(act.reshape(20, 5))
    act2 = env.heuristic_actions().reshape(2, 10, 5)
    relays = act2[..., 4] > 0
    assert relays.sum() > 2 and np.isclose(act2[relays & (act2[..., 4] < 1), 4], 0.9).all()
    from entropy_engine.policies import HeuristicPolicy

    via_policy, _ = HeuristicPolicy(env).act(env.obs)            # entropy eval / play take this path
    np.testing.assert_array_equal(via_policy, env.heuristic_actions())
    mute = BatchEnv("rendezvous", 2, 10, seed=0, comm_dim=0)
    mute.reset()
    assert mute.heuristic_actions().shape == (20, 2)


# ----------------------------------------------------------------------------- fuzz
def _swarm_at_nearest(obs, R=32):
    """Adversarial: every robot drives flat out at its nearest lidar hit (a robot or a wall)."""
    ray = obs[:, :R].argmin(1)
    err = np.angle(np.exp(2j * np.pi * ray / R))
    turn = np.clip(3 * err, -1, 1)
    act = np.zeros((len(obs), 5), np.float32)
    act[:, 0], act[:, 1], act[:, 2:] = 1 - turn, 1 + turn, 1.0
    return act.clip(-1, 1)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["random", "adversarial"])
def test_fuzz_crowded(mode):
    """64,000 agent-steps of 40 robots in a 9 m arena stay physical: no NaN, no robot inside a wall
    by more than 0.1 mm or outside the arena, robot overlap below 25 % of a radius (the README's
    tolerance) under random actions (out of range too) and when every robot rams its nearest hit."""
    env = BatchEnv("rendezvous", 8, 40, seed=11, arena_size=9.0, max_steps=80, spawn_spacing=0.8)
    world = env.scenario.world
    rng = np.random.default_rng(2)
    obs = env.reset()
    worst = [0.0, 0.0]
    for t in range(200):
        acts = rng.uniform(-1.5, 1.5, (320, 5)) if mode == "random" else _swarm_at_nearest(obs)
        obs, rew, *_ = env.step(acts)
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert env.observation_space.contains(obs[rng.integers(320)])
        check_physical(world, worst)
    assert worst[1] <= 1e-4, f"a robot is inside a wall by {worst[1]:.5f} m"
    assert worst[0] <= 0.25 * world.radius, f"overlap {worst[0] / world.radius:.1%} of a radius"


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("kw, match", [
    (dict(goal_radus=1.0), "goal_radus"),
    (dict(goal_radius=0.0), "goal_radius must be a positive number"),
    (dict(goal_margin=0.1), "goal_margin must be >= agent_radius"),
    (dict(spawn_spacing=0.3), "spawn_spacing must be >= 2 \\* agent_radius"),
    (dict(team_reward=-1.0), "team_reward must be a number >= 0"),
    (dict(comm_range=-1.0), "comm_range must be a positive number"),
    (dict(comm_dropout=1.5), "comm_dropout must be in \\[0, 1\\]"),
    (dict(comm_delay=-1), "comm_delay must be >= 0"),
    (dict(arena_size=3.0), "too small for 10 agents: the spawn lattice"),
    (dict(arena_size=4.0, goal_margin=2.0, spawn_spacing=0.45), "no room for the goal"),
])
def test_bad_configs_are_refused_clearly(kw, match):
    with pytest.raises(ConfigError, match=match):
        make_scenario("rendezvous", 2, 10, 0, **kw)


def test_impossible_counts_are_refused():
    with pytest.raises(ConfigError, match="n_agents must be a positive integer"):
        make_scenario("rendezvous", 2, 0, 0)
    with pytest.raises(ConfigError, match="rendezvous needs n_agents >= 2"):
        make_scenario("rendezvous", 2, 1, 0)
    with pytest.raises(ConfigError, match="too small for 400 agents"):
        make_scenario("rendezvous", 1, 400, 0, arena_size=12.0)


# ----------------------------------------------------------------------------- entry points
def test_pettingzoo_conformance_with_and_without_the_channel():
    from pettingzoo.test import parallel_api_test

    check_pettingzoo("rendezvous", {"collided", "in_zone"})           # the channel on (the default)
    env = ee.parallel_env("rendezvous", n_agents=5, seed=0, max_steps=60, comm_dim=0)
    assert env.action_space("robot_0").shape == (2,) and env.observation_space("robot_0").shape == (41,)
    parallel_api_test(env, num_cycles=100)
    on = ee.parallel_env("rendezvous", n_agents=5, seed=0)
    assert on.action_space("robot_0").shape == (5,) and on.observation_space("robot_0").shape == (41 + 25,)


def test_sb3_vec_env_learns_with_ppo():
    from stable_baselines3 import PPO

    venv = ee.vec_env("rendezvous", num_worlds=2, n_agents=4, seed=0, max_steps=50)
    assert venv.observation_space.shape == (66,) and venv.action_space.shape == (5,)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(512)
    assert model.num_timesteps >= 512
    venv.close()


@pytest.mark.slow
def test_preset_trains_evaluates_and_plays(tmp_path, capsys):
    pytest.importorskip("pygame")
    import json
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.cli import main
    from entropy_engine.render.gif import read_gif

    run = tmp_path / "run"
    assert main(["train", "--preset", "rendezvous", "--out", str(run), "--total-steps", "2560", "--num-worlds", "2",
                 "--n-agents", "5", "--n-steps", "32", "--batch-size", "160", "--max-episode-steps", "40",
                 "--video-steps", "20", "--video-size", "64", "--tensorboard", "false", "--console", "plain"]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"env/in_zone_fraction", "env/gathered_rate", "env/gather_time"} <= set(header)
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--episodes", "4", "--json", str(out), "--env", "comm_dropout=0.5"]) == 0
    res = json.loads(out.read_text())
    assert res["scenario"] == "rendezvous" and 0.0 <= res["in_zone_fraction"] <= 1.0 and res["agent_episodes"] == 20
    gif = tmp_path / "play.gif"
    assert main(["play", str(run), "--gif", str(gif), "--size", "64"]) == 0
    assert read_gif(gif).shape[1:] == (64, 64, 3)
    assert "in_zone_fraction" in capsys.readouterr().out


def test_the_talking_heuristic_refuses_tokens_clearly():
    env = BatchEnv("rendezvous", 1, 5, seed=0, comm_vocab=4)
    env.reset()
    with pytest.raises(ValueError, match="cannot send comm_vocab=4 tokens"):
        env.heuristic_actions()
