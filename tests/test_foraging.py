"""The foraging scenario: its reward, statistics and observation against a slow numpy reference, the
heuristic against random actions, both episode modes, every entry point (PettingZoo conformance, SB3,
the CLI), a crowded fuzz run and bad configs. The item rules themselves are tests/test_items.py."""
from __future__ import annotations

import numpy as np
import pytest

from entropy_engine import BatchEnv
from entropy_engine.config import ConfigError
from entropy_engine.scenarios import make_scenario
from scenario_checks import check_pettingzoo, check_physical, check_sb3_ppo


# ----------------------------------------------------------------------------- reference
def _state(sc):
    w, it = sc.world, sc.items
    return {"pos": w.pos.astype(np.float64), "theta": w.theta.astype(np.float64), "vel": w.vel.copy(),
            "contact": w.contact.copy(), "load": it.load.copy(), "target": sc.target.copy(),
            "target_dist": sc.target_dist.copy(), "nest_dist": sc.nest_dist.copy(),
            "item_pos": it.pos.astype(np.float64), "free": it.free.copy(), "delivered": it.delivered.copy(),
            "picked": it.picked.copy(), "world_delivered": it.world_delivered.copy(), "nest": sc.nest.pos[:, 0].copy()}


def _reference_step(sc, before, after):
    """Reward and stat values of one step by the documented definitions."""
    cfg = sc.config
    E, N = sc.world.num_worlds, sc.world.n_agents
    rew = np.zeros((E, N))
    stats = np.zeros((4, E, N))
    for e in range(E):
        for i in range(N):
            p = after["pos"][e, i]
            dv, pk = after["delivered"][e, i], after["picked"][e, i]
            r = cfg.delivery_reward * dv + cfg.pickup_reward * pk
            d_nest = np.hypot(*(after["nest"][e] - p))
            if before["load"][e, i] > 0 and after["load"][e, i] > 0 and dv == 0:
                r += cfg.carry_progress_reward * (before["nest_dist"][e, i] - d_nest)
            j = before["target"][e, i]
            if j >= 0 and after["free"][e, j] and pk == 0:
                d_item = np.hypot(*(after["item_pos"][e, j] - p))
                r += cfg.search_progress_reward * (before["target_dist"][e, i] - d_item)
            onset = after["contact"][e, i] and not before["contact"][e, i]
            r -= cfg.collision_penalty * after["contact"][e, i] + cfg.collision_onset_penalty * onset
            rew[e, i] = r
            stats[:, e, i] = [dv, after["world_delivered"][e], pk, onset]
    return rew, stats


def _reference_obs(sc, s):
    """The documented observation from the state after a step."""
    cfg = sc.config
    R, K = cfg.n_rays, cfg.n_item_obs
    E, N = sc.world.num_worlds, sc.world.n_agents
    obs = np.zeros((E, N, R + 6 + 3 * K))
    for e in range(E):
        for i in range(N):
            c, si = np.cos(s["theta"][e, i]), np.sin(s["theta"][e, i])
            rot = np.array([[c, si], [-si, c]])
            obs[e, i, :R] = sc.world.lidar[e, i]
            obs[e, i, R:R + 2] = np.clip(rot @ s["vel"][e, i] / cfg.max_speed, -1, 1)
            obs[e, i, R + 2:R + 2 + 3 * K] = sc.items.sensed[e, i].reshape(-1)
            g = s["nest"][e] - s["pos"][e, i]
            d = np.hypot(*g)
            o = R + 2 + 3 * K
            obs[e, i, o] = s["load"][e, i] / cfg.capacity
            obs[e, i, o + 1:o + 3] = np.clip(rot @ g / max(cfg.nest_obs_scale, d), -1, 1)
            obs[e, i, o + 3] = float(d <= cfg.nest_radius)
    return obs


def test_reward_statistics_and_observation_match_the_numpy_reference():
    env = BatchEnv("foraging", 3, 8, seed=4, max_steps=300)      # no reset inside
    sc = env.scenario
    env.reset()
    rng = np.random.default_rng(0)
    delivered = 0
    for t in range(250):
        before = _state(sc)
        acts = env.heuristic_actions() if t % 4 else rng.uniform(-1, 1, (env.num_slots, 2))
        env.step(acts)
        after = _state(sc)
        rew, stats = _reference_step(sc, before, after)
        np.testing.assert_allclose(sc.reward, rew, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sc.stats, stats, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(sc.obs, _reference_obs(sc, after), rtol=1e-5, atol=1e-5)
        delivered += int(sc.items.delivered.sum())
        assert (sc.items.present.sum(1) == sc.config.n_items).all()
    assert delivered >= 10   # the delivery branch was exercised


def test_metrics_count_the_deliveries():
    env = BatchEnv("foraging", 2, 6, seed=1, max_steps=120, autoreset=False)
    env.reset()
    own = np.zeros(12)
    for _ in range(120):
        _, _, _, trunc, info = env.step(env.heuristic_actions())
        own += info["delivered"]
    assert trunc.all() and own.sum() > 0
    np.testing.assert_array_equal(info["episode_delivered"], own)
    world = own.reshape(2, 6).sum(1)
    np.testing.assert_array_equal(info["episode_world_delivered"], np.repeat(world, 6))


def test_same_seed_same_trajectory():
    def run(seed):
        env = BatchEnv("foraging", 3, 6, seed=seed, max_steps=40)
        env.reset()
        rng = np.random.default_rng(5)
        out = []
        for t in range(90):
            acts = env.heuristic_actions() if t % 2 else rng.uniform(-1, 1, (18, 2))
            out.append(env.step(acts)[0].copy())
        return np.array(out), env.scenario.items.pos.copy()
    a, ia = run(3)
    b, ib = run(3)
    c, _ = run(4)
    assert np.array_equal(a, b) and np.array_equal(ia, ib) and not np.array_equal(a, c)


@pytest.mark.parametrize("on_goal", ["respawn", "deactivate"])
def test_both_episode_modes_and_leaving_robots_keep_the_items(on_goal):
    """Both episode modes run whole episodes (worlds reset at max_steps); a robot that respawns or
    leaves puts what it carries back on the floor at a clear place."""
    env = BatchEnv("foraging", 2, 6, seed=2, max_steps=60, on_goal=on_goal)
    sc = env.scenario
    env.reset()
    resets = 0
    for _ in range(200):
        _, _, term, trunc, info = env.step(env.heuristic_actions())
        assert not term.any()
        resets += int(info["world_done"].sum())
        assert (sc.items.present.sum(1) == 10).all()
    assert resets == 2 * 3
    while not (sc.items.load > 0).any():
        env.step(env.heuristic_actions())
    e, i = np.argwhere(sc.items.load > 0)[0]
    m = int(np.flatnonzero(sc.items.carrier[e] == i)[0])
    mask = np.zeros((2, 6), bool)
    mask[e, i] = True
    (sc.respawn if on_goal == "respawn" else sc.remove)(mask)
    assert sc.items.load[e, i] == 0 and sc.items.free[e, m] and sc.items.carrier[e, m] == -1
    assert sc.world.active[e, i] == (on_goal == "respawn")
    assert (sc.items.present.sum(1) == 10).all()


# ----------------------------------------------------------------------------- behaviour
def test_heuristic_beats_random_on_items_delivered():
    from entropy_engine.policies import RandomPolicy
    from entropy_engine.training.config import TrainConfig
    from entropy_engine.training.evaluate import evaluate

    cfg = TrainConfig(scenario="foraging", n_agents=10, max_episode_steps=300)
    heur = evaluate("heuristic", episodes=10, num_worlds=5, cfg=cfg, seed=3)
    rand = evaluate(RandomPolicy(BatchEnv("foraging", 1, 10).action_space, 0), episodes=10, num_worlds=5,
                    cfg=cfg, seed=3)
    assert set(heur) >= {"items_delivered", "delivered_per_agent", "pickups_per_agent", "collisions_per_agent"}
    assert heur["items_delivered"] >= 15.0 and rand["items_delivered"] <= 1.0, (heur, rand)
    assert heur["items_delivered"] == pytest.approx(10 * heur["delivered_per_agent"], rel=1e-5)
    assert heur["pickups_per_agent"] > 4 * rand["pickups_per_agent"], (heur, rand)


# ----------------------------------------------------------------------------- fuzz
def _at_nearest_hit(obs):
    """Adversarial: every robot drives flat out at its nearest lidar hit (a wall or another robot)."""
    ray = np.argmin(obs[:, :32], axis=1)
    err = np.angle(np.exp(1j * 2 * np.pi * ray / 32))
    turn = np.clip(3 * err, -1, 1)
    return np.stack([1 - turn, 1 + turn], -1).clip(-1, 1).astype(np.float32)


def _into_the_nest(obs):
    """Adversarial: every robot drives flat out at the nest centre, so that they all pile up there."""
    o = 32 + 2 + 12
    err = np.arctan2(obs[:, o + 2], obs[:, o + 1])
    turn = np.clip(3 * err, -1, 1)
    return np.stack([1 - turn, 1 + turn], -1).clip(-1, 1).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["random", "nearest", "nest"])
def test_fuzz_crowded(mode):
    """64,000 agent-steps of 40 robots in a 9 m arena stay physical: no NaN, no robot inside a wall
    by more than 0.1 mm or outside the arena, robot overlap below 25 % of a radius (the README's
    tolerance, as the other scenarios' fuzz tests), and the items stay 10 per world, inside the
    arena, never carried by two robots, under random actions, when every robot rams its nearest
    lidar hit and when all of them pile into the nest."""
    env = BatchEnv("foraging", 8, 40, seed=11, arena_size=9.0, max_steps=80)
    sc = env.scenario
    world, items = sc.world, sc.items
    rng = np.random.default_rng(2)
    obs = env.reset()
    worst = [0.0, 0.0]
    delivered = 0
    for t in range(200):
        if mode == "random":
            acts = rng.uniform(-1.5, 1.5, (320, 2))
        else:
            acts = _at_nearest_hit(obs) if mode == "nearest" else _into_the_nest(obs)
        obs, rew, *_ = env.step(acts)
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert env.observation_space.contains(obs[rng.integers(320)])
        check_physical(world, worst)
        assert (items.present.sum(1) == 10).all() and (items.load <= 1).all()
        assert np.array_equal(items.load.sum(1), (items.carrier >= 0).sum(1))
        assert ((items.pos >= 0) & (items.pos <= world.arena)).all()
        delivered += int(items.delivered.sum())
    assert worst[1] <= 1e-4, f"a robot is inside a wall by {worst[1]:.5f} m"
    assert worst[0] <= 0.25 * world.radius, f"overlap {worst[0] / world.radius:.1%} of a radius"
    if mode == "nest":
        assert delivered > 0


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("kw, match", [
    (dict(n_item=4), "n_item"),
    (dict(n_items=0), "n_items must be an integer >= 1"),
    (dict(capacity=0), "capacity must be an integer >= 1"),
    (dict(n_item_obs=1.5), "n_item_obs. expects an integer"),
    (dict(item_radius=0.0), "item_radius must be a positive number"),
    (dict(delivery_reward=-1.0), "delivery_reward must be a number >= 0"),
    (dict(item_margin=0.05), "item_margin must be >= item_radius"),
    (dict(nest_margin=0.5), "nest_margin must be >= nest_radius"),
    (dict(spawn_spacing=0.3), "spawn_spacing must be >= 2 \\* agent_radius"),
    (dict(n_items=400), "400 items do not fit a 10.0 m arena"),
    (dict(arena_size=2.5), "too small for 10 agents"),
    (dict(arena_size=3.5, nest_margin=1.8, nest_radius=1.0, spawn_spacing=0.5), "too small for the nest"),
])
def test_bad_configs_are_refused_clearly(kw, match):
    with pytest.raises(ConfigError, match=match):
        make_scenario("foraging", 2, 10, 0, **kw)


def test_impossible_counts_are_refused():
    with pytest.raises(ConfigError, match="n_agents must be a positive integer"):
        make_scenario("foraging", 2, 0, 0)
    with pytest.raises(ConfigError, match="too small for 400 agents"):
        make_scenario("foraging", 1, 400, 0, arena_size=12.0)
    with pytest.raises(ConfigError, match="foraging"):
        from entropy_engine.training.config import TrainConfig

        TrainConfig(scenario="foraging", env={"n_obstacles": 4})


# ----------------------------------------------------------------------------- entry points
def test_pettingzoo_conformance():
    check_pettingzoo("foraging", {"collided", "delivered", "carrying"})


def test_sb3_vec_env_learns_with_ppo():
    check_sb3_ppo("foraging", 50)


def test_draw_shows_nest_and_items():
    pytest.importorskip("pygame")
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.render.renderer import Renderer

    env = BatchEnv("foraging", 1, 4, seed=0)
    env.reset()
    with Renderer(env.scenario, size=200) as r:
        frame = r.render()
    green = (np.abs(frame.astype(int) - (60, 200, 90)).sum(-1) < 30).sum()
    orange = (np.abs(frame.astype(int) - (230, 150, 20)).sum(-1) < 30).sum()
    assert green >= 10 * 4 and orange >= 50, (green, orange)   # 10 items of >= 2 px radius, the nest ring


@pytest.mark.slow
def test_preset_trains_evaluates_and_plays(tmp_path, capsys):
    pytest.importorskip("pygame")
    import json
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.cli import main
    from entropy_engine.render.gif import read_gif

    run = tmp_path / "run"
    assert main(["train", "--preset", "foraging", "--out", str(run), "--total-steps", "2560", "--num-worlds", "2",
                 "--n-agents", "5", "--n-steps", "32", "--batch-size", "160", "--max-episode-steps", "40",
                 "--video-steps", "20", "--video-size", "64", "--tensorboard", "false", "--console", "plain"]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"env/items_delivered", "env/delivered_per_agent", "env/pickups_per_agent"} <= set(header)
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--episodes", "4", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["scenario"] == "foraging" and res["items_delivered"] >= 0 and res["agent_episodes"] == 20
    gif = tmp_path / "play.gif"
    assert main(["play", str(run), "--gif", str(gif), "--size", "64"]) == 0
    assert read_gif(gif).shape[1:] == (64, 64, 3)
    assert "items_delivered" in capsys.readouterr().out
