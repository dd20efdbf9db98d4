"""The transport scenario: its kernels against a numpy reference, the heuristic against random
actions, every entry point (PettingZoo conformance, SB3, the CLI), observation bounds, a crowded
fuzz run with objects and bad configs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from entropy_engine import BatchEnv
from entropy_engine.config import ConfigError
from entropy_engine.core.geometry import segment_distance
from entropy_engine.scenarios import make_scenario
from scenario_checks import check_pettingzoo, check_physical, check_sb3_ppo


# ----------------------------------------------------------------------------- reference
def _state(sc):
    w = sc.world
    return {"pos": w.pos.astype(np.float64), "opos": w.objects.pos.astype(np.float64),
            "goal": sc.goal.astype(np.float64), "active": w.active.copy(), "theta": w.theta.astype(np.float64),
            "vel": w.vel.astype(np.float64), "ovel": w.objects.vel.astype(np.float64)}


def _reference(sc, before, after):
    """Reward, stats, terminated and the non-lidar observation columns of one step, from the
    documented definitions."""
    cfg = sc.config
    E, N = sc.world.num_worlds, sc.world.n_agents
    rew = np.zeros((E, N))
    stats = np.zeros((3, E, N))
    term = np.zeros((E, N), bool)
    obs = np.zeros((E, N, 8))
    for e in range(E):
        g = before["goal"][e]
        o0, o1 = before["opos"][e, 0], after["opos"][e, 0]
        d0, d1 = np.hypot(*(o0 - g)), np.hypot(*(o1 - g))
        done = d1 <= cfg.goal_radius
        u0 = (g - o0) / max(np.hypot(*(g - o0)), 1e-9)
        u1 = (g - o1) / max(np.hypot(*(g - o1)), 1e-9)
        back = cfg.object_radius + cfg.agent_radius
        for i in range(N):
            if not after["active"][e, i]:
                continue
            gap0 = np.hypot(*(before["pos"][e, i] - (o0 - u0 * back)))
            gap1 = np.hypot(*(after["pos"][e, i] - (o1 - u1 * back)))
            rew[e, i] = cfg.progress_reward * (d0 - d1) + cfg.approach_reward * (gap0 - gap1) + \
                cfg.success_reward * done
            stats[:, e, i] = [done, cfg.dt, d0 - d1]
            term[e, i] = done
            th = after["theta"][e, i]
            rot = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]])
            rel = o1 - after["pos"][e, i]
            gv = g - o1
            obs[e, i, 0:2] = np.clip(rot @ after["vel"][e, i] / cfg.max_speed, -1, 1)
            obs[e, i, 2:4] = np.clip(rot @ rel / max(cfg.obs_scale, np.hypot(*rel)), -1, 1)
            obs[e, i, 4:6] = np.clip(rot @ gv / max(cfg.obs_scale, np.hypot(*gv)), -1, 1)
            obs[e, i, 6:8] = np.clip(rot @ after["ovel"][e, 0] / cfg.max_speed, -1, 1)
    return rew, stats, term, obs


def test_reward_statistics_and_observation_match_the_numpy_reference():
    sc = make_scenario("transport", 4, 8, seed=3, max_steps=300, goal_min_distance=2.0)
    sc.reset()
    rng = np.random.default_rng(0)
    done_seen = 0
    for t in range(300):
        before = _state(sc)
        acts = sc.heuristic(sc.obs) if t % 10 else rng.uniform(-1, 1, (4, 8, 2)).astype(np.float32)
        sc.step(acts)
        after = _state(sc)
        rew, stats, term, obs = _reference(sc, before, after)
        np.testing.assert_allclose(sc.reward, rew, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(sc.stats, stats, rtol=1e-4, atol=1e-5)
        assert np.array_equal(sc.terminated, term)
        np.testing.assert_allclose(sc.obs[..., 32:], obs, atol=1e-5)
        if sc.done.any():   # start those worlds' tasks over, as the episode engine does
            done_seen += int(sc.done.sum())
            sc.respawn(np.repeat(sc.done[:, None], 8, 1))
            assert not sc.done.any()
    assert done_seen > 0   # the success branch was exercised


def test_a_new_task_after_a_delivery_is_placed_clear():
    sc = make_scenario("transport", 3, 8, seed=5)
    sc.reset()
    sc.done[:] = [True, False, True]
    before = sc.goal.copy()
    mask = np.zeros((3, 8), bool)
    mask[[0, 2]] = True
    sc.respawn(mask)
    assert not np.array_equal(sc.goal[0], before[0]) and np.array_equal(sc.goal[1], before[1])
    cfg, w = sc.config, sc.world
    for e in range(3):
        o = w.objects.pos[e, 0]
        assert np.linalg.norm(o - sc.goal[e]) >= cfg.goal_min_distance - 1e-4 or e == 1
        d = np.linalg.norm(w.pos[e] - o, axis=1)
        assert (d >= cfg.object_radius + cfg.agent_radius + 0.2 - 1e-4).all() or e == 1
        p = w.pos[e].astype(np.float64)
        dd = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(8) * 9
        assert dd.min() >= cfg.spawn_spacing - 1e-4


def test_metrics_of_one_episode():
    """success_rate / time_to_goal / object_progress of finished episodes equal what the episode
    did: delivered or not, its duration in seconds, the object's distance gained."""
    env = BatchEnv("transport", 4, 10, seed=2, max_steps=300, autoreset=False, on_goal="deactivate")
    sc = env.scenario
    env.reset()
    start = sc.gdist.copy()
    ended = {}
    while not env.over:
        _, _, term, trunc, info = env.step(env.heuristic_actions())
        for e in range(4):
            k = e * 10
            if (term | trunc)[k] and e not in ended:
                ended[e] = (info["episode_success"][k], info["episode_time"][k], info["episode_progress"][k],
                            bool(term[k]), int(info["episode_length"][k]), sc.gdist[e])
    assert len(ended) == 4 and any(v[3] for v in ended.values())
    for e, (succ, time_s, prog, term, length, gd) in ended.items():
        assert succ == float(term)
        assert time_s == pytest.approx(length * sc.config.dt, rel=1e-5)
        assert prog == pytest.approx(start[e] - gd, abs=1e-3)


# ----------------------------------------------------------------------------- behaviour
def test_heuristic_beats_random_on_the_transport_metrics():
    from entropy_engine.policies import RandomPolicy
    from entropy_engine.training.config import TrainConfig
    from entropy_engine.training.evaluate import evaluate

    cfg = TrainConfig(scenario="transport", n_agents=10, max_episode_steps=300)
    heur = evaluate("heuristic", episodes=10, num_worlds=5, cfg=cfg, seed=3)
    rand = evaluate(RandomPolicy(BatchEnv("transport", 1, 10).action_space, 0), episodes=10, num_worlds=5,
                    cfg=cfg, seed=3)
    assert set(heur) >= {"success_rate", "time_to_goal", "object_progress"}
    assert heur["success_rate"] >= 0.5 and rand["success_rate"] <= 0.1, (heur, rand)
    assert heur["time_to_goal"] < rand["time_to_goal"] - 5.0, (heur, rand)
    assert heur["object_progress"] > rand["object_progress"] + 2.0, (heur, rand)


def test_one_robot_alone_cannot_deliver_but_the_team_can():
    """The scenario's object is too heavy for one robot: a lone robot running the heuristic moves
    it by less than 5 cm in 300 steps in any of 8 worlds, ten robots deliver it in most."""
    sc = make_scenario("transport", 8, 10, seed=4)
    sc.reset()
    lone = np.ones((8, 10), bool)
    lone[:, 0] = False
    sc.remove(lone)
    o0 = sc.world.objects.pos.copy()
    moved = 0.0
    for _ in range(300):
        sc.step(sc.heuristic(sc.obs))
        moved = max(moved, float(np.linalg.norm(sc.world.objects.pos - o0, axis=-1).max()))
    assert moved < 0.05, moved
    env = BatchEnv("transport", 8, 10, seed=4, max_steps=300, autoreset=False, on_goal="deactivate")
    env.reset()
    delivered = np.zeros(8, bool)
    while not env.over:
        _, _, term, *_ = env.step(env.heuristic_actions())
        delivered |= term.reshape(8, 10).any(1)
    assert delivered.sum() >= 5, delivered


# ----------------------------------------------------------------------------- bounds and fuzz
@pytest.mark.parametrize("mode", ["random", "full", "spin"])
def test_observations_stay_in_their_box(mode):
    env = BatchEnv("transport", 4, 10, seed=7, max_steps=150)
    space = env.observation_space
    env.reset()
    rng = np.random.default_rng(1)
    fixed = {"full": [1.0, 1.0], "spin": [-1.0, 1.0]}
    for _ in range(300):
        acts = rng.uniform(-1, 1, (40, 2)) if mode == "random" else np.tile(fixed.get(mode), (40, 1))
        obs, rew, _, _, info = env.step(acts.astype(np.float32))
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert (obs >= space.low).all() and (obs <= space.high).all()


def _check_objects(world, worst):
    """No object through a wall or out of the arena; worst[2] = deepest object-in-wall, worst[3] =
    largest robot-object overlap, worst[4] = largest object-object overlap (metres)."""
    ob = world.objects
    for e in range(world.num_worlds):
        for m in np.flatnonzero(ob.active[e]):
            p = ob.pos[e, m].astype(np.float64)
            r = float(ob.radius[e, m])
            assert np.isfinite(p).all() and (p >= r - 1e-5).all() and (p <= world.arena - r + 1e-5).all()
            for k in range(world.n_walls[e]):
                worst[2] = max(worst[2], r - segment_distance(*p, *world.walls[e, k].astype(np.float64)))
            a = world.active[e]
            d = np.linalg.norm(world.pos[e][a].astype(np.float64) - p, axis=1)
            if len(d):
                worst[3] = max(worst[3], r + world.radius - d.min())
            for m2 in np.flatnonzero(ob.active[e]):
                if m2 > m:
                    dd = np.linalg.norm(ob.pos[e, m2].astype(np.float64) - p)
                    worst[4] = max(worst[4], r + float(ob.radius[e, m2]) - dd)


def _ram(obs, target_cols):
    """Adversarial: every robot drives flat out at a target given in its observation (ego frame)."""
    t = obs[:, target_cols]
    err = np.arctan2(t[:, 1], t[:, 0])
    turn = np.clip(3 * err, -1, 1)
    return np.stack([1 - turn, 1 + turn], -1).clip(-1, 1).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["random", "object", "walls"])
def test_fuzz_crowded(mode):
    """40 robots and a light disc in a 6 m arena (8 worlds, 200 steps): random actions, everybody
    ramming the object, or everybody driving flat out (into the walls and corners). No NaN, no
    robot or object inside a wall by more than 0.1 mm or outside the arena; robot-robot and
    robot-object overlaps below 25 % of a robot radius (the README's tolerance)."""
    env = BatchEnv("transport", 8, 40, seed=11, arena_size=6.0, max_steps=80, object_mass=2.0,
                   object_margin=1.0, goal_margin=1.0, goal_min_distance=1.5, spawn_spacing=0.45)
    world = env.scenario.world
    rng = np.random.default_rng(2)
    obs = env.reset()
    worst = [0.0] * 5
    for t in range(200):
        if mode == "random":
            acts = rng.uniform(-1.5, 1.5, (320, 2))
        elif mode == "object":
            acts = _ram(obs, [34, 35])
        else:
            acts = np.ones((320, 2), np.float32) if t % 40 < 30 else np.tile([-1.0, 1.0], (320, 1))
        obs, rew, *_ = env.step(acts)
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        check_physical(world, worst)
        _check_objects(world, worst)
    assert worst[1] <= 1e-4 and worst[2] <= 1e-4, worst
    assert worst[0] <= 0.25 * world.radius and worst[3] <= 0.25 * world.radius, worst


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("kw, match", [
    (dict(object_radiuss=0.5), "object_radiuss"),
    (dict(object_radius=0.0), "object_radius must be a positive number"),
    (dict(object_mass=-1.0), "object_mass must be a positive number"),
    (dict(object_friction=-0.1), "object_friction must be a number >= 0"),
    (dict(object_margin=0.2), "object_margin must be >= object_radius"),
    (dict(spawn_spacing=0.3), "spawn_spacing must be >= 2 \\* agent_radius"),
    (dict(arena_size=2.5), "arena of 2.5 m is too small"),
    (dict(object_friction=5.0), "more than all 10 robots can push"),
    (dict(arena_size=4.0, object_margin=1.0, goal_margin=1.0, spawn_spacing=1.0), "too small for 10 agents"),
])
def test_bad_configs_are_refused_clearly(kw, match):
    with pytest.raises(ConfigError, match=match):
        make_scenario("transport", 2, 10, 0, **kw)


def test_impossible_counts_are_refused():
    with pytest.raises(ConfigError, match="n_agents must be a positive integer"):
        make_scenario("transport", 2, 0, 0)
    with pytest.raises(ConfigError, match="too small for 200 agents"):
        make_scenario("transport", 1, 200, 0, arena_size=8.0)


# ----------------------------------------------------------------------------- entry points
def test_pettingzoo_conformance():
    check_pettingzoo("transport", {"collided", "delivered"})


def test_sb3_vec_env_learns_with_ppo():
    check_sb3_ppo("transport", 40)


@pytest.mark.slow
def test_preset_trains_evaluates_and_plays(tmp_path, capsys):
    pytest.importorskip("pygame")
    import json
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.cli import main
    from entropy_engine.render.gif import read_gif

    run = tmp_path / "run"
    assert main(["train", "--preset", "transport", "--out", str(run), "--total-steps", "2560", "--num-worlds", "2",
                 "--n-agents", "5", "--n-steps", "32", "--batch-size", "160", "--max-episode-steps", "40",
                 "--video-steps", "20", "--video-size", "64", "--tensorboard", "false", "--console", "plain"]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"env/success_rate", "env/time_to_goal", "env/object_progress"} <= set(header)
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--episodes", "4", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["scenario"] == "transport" and 0.0 <= res["success_rate"] <= 1.0
    gif = tmp_path / "play.gif"
    assert main(["play", str(run), "--gif", str(gif), "--size", "64"]) == 0
    assert read_gif(gif).shape[1:] == (64, 64, 3)
    assert "success_rate" in capsys.readouterr().out
