"""The coverage scenario: its kernels against a slow numpy reference, the heuristic against random
actions, every entry point (PettingZoo conformance, SB3, the CLI), a crowded fuzz run and bad configs."""
from __future__ import annotations

import numpy as np
import pytest

from entropy_engine import BatchEnv
from entropy_engine.config import ConfigError
from entropy_engine.scenarios import make_scenario
from scenario_checks import check_pettingzoo, check_physical, check_sb3_ppo


# ----------------------------------------------------------------------------- reference
def _world_values(sc, pos, active):
    """Per world, by brute force: distance matrix landmark x robot, mean distance, occupied flags."""
    lm = sc.landmarks
    out = []
    for e in range(sc.world.num_worlds):
        p = pos[e].astype(np.float64)
        q = lm.pos[e].astype(np.float64)
        d = np.linalg.norm(q[:, None] - p[None], axis=-1)                       # [L, N]
        d[:, ~active[e]] = np.inf
        occ = d.min(1) <= lm.radius[e].astype(np.float64)
        out.append((d, d.min(1).mean(), occ))
    return out


def _reference_obs(sc, e, i, d):
    """Observation of robot i of world e from the documented table (d: [L, N] distances)."""
    cfg, w = sc.config, sc.world
    KL = cfg.n_landmark_obs
    p = w.pos[e, i].astype(np.float64)
    th = float(w.theta[e, i])
    rot = np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]])
    order = np.argsort(d[:, i], kind="stable")[:KL]
    slots = []
    for l in order:
        g = sc.landmarks.pos[e, l].astype(np.float64) - p
        v = rot @ g / max(cfg.landmark_obs_scale, np.linalg.norm(g))
        others = np.delete(d[l], i)
        other = min(others.min() / cfg.landmark_obs_scale, 1.0) if np.isfinite(others.min()) else 1.0
        slots += [*np.clip(v, -1, 1), other, 1.0]
    return np.array(slots)


def _state(sc):
    w = sc.world
    return {"pos": w.pos.copy(), "active": w.active.copy(), "contact": w.contact.copy()}


def test_reward_statistics_and_observation_match_the_numpy_reference():
    env = BatchEnv("coverage", 3, 7, seed=4, max_steps=200, contribution_reward=0.07)   # no reset inside
    sc, cfg = env.scenario, env.scenario.config
    env.reset()
    rng = np.random.default_rng(0)
    R, KL = cfg.n_rays, cfg.n_landmark_obs
    occupied_seen = 0
    prev = _world_values(sc, sc.world.pos, sc.world.active)
    for t in range(120):
        before = _state(sc)
        acts = env.heuristic_actions() if t % 4 else rng.uniform(-1, 1, (env.num_slots, 2))
        env.step(acts)
        now = _world_values(sc, sc.world.pos, sc.world.active)
        for e in range(3):
            d, mean_d, occ = now[e]
            _, mean_prev, occ_prev = prev[e]
            assert np.array_equal(sc.occupied[e], occ)
            # the grid-based occupancy of core.landmarks agrees
            assert np.array_equal(sc.landmarks.occupancy()[e] > 0, occ)
            np.testing.assert_allclose(sc.mean_d[e], mean_d, rtol=1e-9)
            holder = np.zeros(7)
            for l in np.flatnonzero(occ):
                holder[np.argmin(d[l])] += 1
            assert holder.max() <= 1
            contrib = np.zeros(7)
            for l in range(7):
                two = np.sort(d[l])[:2]
                contrib[np.argmin(d[l])] += min(two[1] - two[0], cfg.landmark_obs_scale)
            np.testing.assert_allclose(sc.contrib[e], contrib, rtol=1e-9, atol=1e-12)
            for i in range(7):
                contact, was = sc.world.contact[e, i], before["contact"][e, i]
                r = (cfg.occupy_reward * holder[i] + cfg.contribution_reward * contrib[i]
                     - cfg.distance_penalty * mean_d
                     + cfg.progress_reward * (mean_prev - mean_d)
                     - cfg.collision_penalty * contact - cfg.collision_onset_penalty * (contact and not was))
                assert sc.reward[e, i] == pytest.approx(r, rel=1e-5, abs=1e-6)
                f, fp = occ.mean(), occ_prev.mean()
                want = [f, mean_d, float(f == 1)] if t == 0 else [f - fp, mean_d - mean_prev,
                                                                   float(f == 1) - float(fp == 1)]
                np.testing.assert_allclose(sc.stats[:3, e, i], want, rtol=1e-5, atol=1e-6)
                assert sc.stats[3, e, i] == float(contact and not was)
                np.testing.assert_allclose(sc.obs[e, i, R + 2:R + 2 + 4 * KL], _reference_obs(sc, e, i, d),
                                           rtol=1e-5, atol=1e-6)
            occupied_seen += int(occ.sum())
        prev = now
    assert occupied_seen > 0   # the occupancy branch was exercised


def test_metrics_are_the_values_at_the_end_of_the_episode():
    env = BatchEnv("coverage", 4, 6, seed=1, max_steps=60, autoreset=False)
    sc = env.scenario
    env.reset()
    for _ in range(60):
        _, _, _, trunc, info = env.step(env.heuristic_actions())
    assert trunc.all()
    vals = _world_values(sc, sc.world.pos, sc.world.active)
    occ = np.array([v[2].mean() for v in vals])
    dist = np.array([v[1] for v in vals])
    np.testing.assert_allclose(info["episode_occupied"].reshape(4, 6), np.repeat(occ[:, None], 6, 1), atol=1e-5)
    np.testing.assert_allclose(info["episode_distance"].reshape(4, 6), np.repeat(dist[:, None], 6, 1), rtol=1e-4)
    np.testing.assert_allclose(info["episode_all_covered"].reshape(4, 6),
                               np.repeat((occ == 1)[:, None].astype(float), 6, 1), atol=1e-6)
    assert occ.max() > 0


def test_reset_places_landmarks_and_robots_apart_and_seeds_repeat():
    env = BatchEnv("coverage", 5, 10, seed=3)
    sc, cfg = env.scenario, env.scenario.config
    env.reset()
    lm, a = sc.landmarks, sc.world.arena
    assert lm.active.all() and (lm.radius == cfg.landmark_radius).all()
    assert ((lm.pos >= cfg.landmark_margin) & (lm.pos <= a - cfg.landmark_margin)).all()
    for e in range(5):
        q = lm.pos[e].astype(np.float64)
        dq = np.linalg.norm(q[:, None] - q[None], axis=-1) + np.eye(10) * 99
        assert dq.min() >= cfg.landmark_spacing - 1e-4
        p = sc.world.pos[e].astype(np.float64)
        dp = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(10) * 99
        assert dp.min() >= cfg.spawn_spacing - 1e-4
    env2 = BatchEnv("coverage", 5, 10, seed=3)
    env2.reset()
    assert np.array_equal(env2.scenario.landmarks.pos, lm.pos) and np.array_equal(env2.scenario.world.pos,
                                                                                    sc.world.pos)
    mask = np.zeros((5, 10), bool)
    mask[0, :3] = mask[4, 9] = True
    sc.respawn(mask)
    p = sc.world.pos[0].astype(np.float64)
    d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(10) * 9
    assert d[:3].min() >= cfg.spawn_spacing - 1e-4
    assert env.observation_space.contains(sc.obs[0, 0]) and (sc.world.vel[mask] == 0).all()


# ----------------------------------------------------------------------------- behaviour
def test_heuristic_beats_random_on_the_coverage_metrics():
    from entropy_engine.policies import RandomPolicy
    from entropy_engine.training.config import TrainConfig
    from entropy_engine.training.evaluate import evaluate

    cfg = TrainConfig(scenario="coverage", n_agents=10, max_episode_steps=200)
    heur = evaluate("heuristic", episodes=10, num_worlds=5, cfg=cfg, seed=3)
    rand = evaluate(RandomPolicy(BatchEnv("coverage", 1, 10).action_space, 0), episodes=10, num_worlds=5,
                    cfg=cfg, seed=3)
    assert set(heur) >= {"occupied_fraction", "landmark_distance", "all_covered", "collisions_per_agent"}
    assert heur["occupied_fraction"] >= 0.6 and rand["occupied_fraction"] <= 0.15, (heur, rand)
    assert heur["landmark_distance"] < 0.5 * rand["landmark_distance"], (heur, rand)
    assert heur["mean_episode_length"] == 200


# ----------------------------------------------------------------------------- fuzz


def _adversarial(obs, mode, env):
    """Full power: ``nearest`` at the nearest robot (neighbour slot 0), ``landmark`` at the nearest
    landmark (landmark slot 0), ``walls`` straight ahead (into the walls and corners)."""
    cfg = env.scenario.config
    R, KL = cfg.n_rays, cfg.n_landmark_obs
    if mode == "walls":
        return np.ones((obs.shape[0], 2), np.float32)
    col = R + 2 + 4 * KL if mode == "nearest" else R + 2
    slot = obs[:, col:col + 2]
    err = np.arctan2(slot[:, 1], slot[:, 0])
    turn = np.clip(3 * err, -1, 1)
    return np.stack([1 - turn, 1 + turn], -1).clip(-1, 1).astype(np.float32)


# worst robot overlap allowed, as a fraction of the radius: the README's 25 % for every mode. Measured
# with seeds 11 / 1 / 2 on the core that solves robots and walls together: random 0.0 / 0.0 / 0.0 %,
# nearest 0.1 / 0.0 / 0.0 %, landmark 0.0 %, walls (all 40 robots flat out straight ahead, pressed into
# walls and corners by the robots behind them) 2.2 / 1.0 / 1.0 % (68-75 % on the previous 4-pass core).
OVERLAP_LIMIT = {"random": 0.25, "nearest": 0.25, "landmark": 0.25, "walls": 0.25}


@pytest.mark.parametrize("mode", sorted(OVERLAP_LIMIT))
def test_fuzz_crowded(mode):
    """64,000 agent-steps of 40 robots and 40 landmarks in a 9 m arena stay physical: no NaN, no
    robot inside a wall by more than 0.1 mm or outside the arena, robot overlap within
    ``OVERLAP_LIMIT`` under random and adversarial actions."""
    env = BatchEnv("coverage", 8, 40, seed=11, arena_size=9.0, max_steps=80, landmark_spacing=0.6,
                   landmark_margin=0.5, spawn_spacing=0.5)
    world = env.scenario.world
    rng = np.random.default_rng(2)
    obs = env.reset()
    worst = [0.0, 0.0]
    for t in range(200):
        acts = rng.uniform(-1.5, 1.5, (320, 2)) if mode == "random" else _adversarial(obs, mode, env)
        obs, rew, *_ = env.step(acts)
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert env.observation_space.contains(obs[rng.integers(320)])
        check_physical(world, worst)
    assert worst[1] <= 1e-4, f"a robot is inside a wall by {worst[1]:.5f} m"
    assert worst[0] <= OVERLAP_LIMIT[mode] * world.radius, f"overlap {worst[0]:.4f} m"


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("kw, match", [
    (dict(n_landmark=4), "n_landmark"),
    (dict(n_landmark_obs=0), "n_landmark_obs must be an integer >= 1"),
    (dict(n_neighbours=0), "n_neighbours must be an integer >= 1"),
    (dict(sense_range=-1.0), "sense_range must be a positive number"),
    (dict(landmark_radius=0.0), "landmark_radius must be a positive number"),
    (dict(landmark_spacing=0.5), "landmark_spacing must be >= 2 \\* landmark_radius"),
    (dict(spawn_spacing=0.3), "spawn_spacing must be >= 2 \\* agent_radius"),
    (dict(occupy_reward=-1.0), "occupy_reward must be a number >= 0"),
    (dict(landmark_margin=0.1), "landmark_margin must be >= agent_radius"),
    (dict(arena_size=3.0), "too small for 10 landmarks"),
])
def test_bad_configs_are_refused_clearly(kw, match):
    with pytest.raises(ConfigError, match=match):
        make_scenario("coverage", 2, 10, 0, **kw)


def test_impossible_counts_are_refused():
    with pytest.raises(ConfigError, match="n_agents must be a positive integer"):
        make_scenario("coverage", 2, 0, 0)
    with pytest.raises(ConfigError, match="too small for 400 landmarks"):
        make_scenario("coverage", 1, 400, 0, arena_size=12.0)
    with pytest.raises(ConfigError, match="too small for 200 agents"):
        make_scenario("coverage", 1, 200, 0, arena_size=12.0, landmark_spacing=0.6, landmark_margin=0.3)
    from entropy_engine.training.config import TrainConfig

    with pytest.raises(ConfigError, match="coverage"):
        TrainConfig(scenario="coverage", env={"n_obstacles": 4})


# ----------------------------------------------------------------------------- entry points
def test_pettingzoo_conformance():
    check_pettingzoo("coverage", {"collided", "on_landmark"})


def test_sb3_vec_env_learns_with_ppo():
    check_sb3_ppo("coverage", 70)


def test_renderer_draws_the_landmarks():
    pytest.importorskip("pygame")
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.render.renderer import Renderer

    env = BatchEnv("coverage", 1, 6, seed=0)
    env.reset()
    sc = env.scenario
    plain = Renderer(sc, size=128).render()
    sc.landmarks.active[0] = False
    bare = Renderer(sc, size=128).render()
    sc.landmarks.active[0] = True
    orange = np.all(plain == (230, 150, 20), axis=-1).sum()
    assert orange > 0 and np.all(bare == (230, 150, 20), axis=-1).sum() == 0


@pytest.mark.slow
def test_preset_trains_evaluates_and_plays(tmp_path, capsys):
    pytest.importorskip("pygame")
    import json
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.cli import main
    from entropy_engine.render.gif import read_gif

    run = tmp_path / "run"
    assert main(["train", "--preset", "coverage", "--out", str(run), "--total-steps", "2560", "--num-worlds", "2",
                 "--n-agents", "5", "--n-steps", "32", "--batch-size", "160", "--max-episode-steps", "40",
                 "--video-steps", "20", "--video-size", "64", "--tensorboard", "false", "--console", "plain"]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"env/occupied_fraction", "env/landmark_distance", "env/all_covered"} <= set(header)
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--episodes", "4", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["scenario"] == "coverage" and 0.0 <= res["occupied_fraction"] <= 1.0 and res["agent_episodes"] == 20
    gif = tmp_path / "play.gif"
    assert main(["play", str(run), "--gif", str(gif), "--size", "64"]) == 0
    assert read_gif(gif).shape[1:] == (64, 64, 3)
    assert "occupied_fraction" in capsys.readouterr().out
