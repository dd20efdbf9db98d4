"""The formation scenario: the compiled optimal matching against brute force (and scipy when it is
installed), reward and statistics against a slow numpy reference, the moving reference, the
heuristic against random actions, every entry point (PettingZoo conformance, SB3, the CLI),
observation bounds, drawing, a crowded fuzz run and bad configs."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from entropy_engine import BatchEnv
from entropy_engine.config import ConfigError
from entropy_engine.scenarios import make_scenario
from entropy_engine.scenarios.formation import SHAPES, shape_offsets
from entropy_engine.scenarios.formation_kernels import assignment
from scenario_checks import check_pettingzoo, check_physical, check_sb3_ppo


# ----------------------------------------------------------------------------- optimal matching
def _brute_force(cost):
    """Minimum total cost over every injective row -> column map (n <= m), and one minimiser."""
    n, m = cost.shape
    perms = np.array(list(itertools.permutations(range(m), n)), np.int64).reshape(-1, n)
    totals = cost[np.arange(n), perms].sum(axis=1)
    k = int(np.argmin(totals))
    return float(totals[k]), perms[k]


@pytest.mark.parametrize("n, m", [(1, 1), (1, 4), (3, 3), (4, 6), (6, 6), (7, 7), (5, 8)])
def test_hungarian_is_the_optimal_matching(n, m):
    rng = np.random.default_rng(n * 10 + m)
    for trial in range(40):
        if trial % 4 == 0:   # distances of points to slots, the scenario's case, with duplicates
            a, b = rng.uniform(0, 5, (n, 2)), rng.uniform(0, 5, (m, 2))
            b[rng.integers(m)] = b[0]
            cost = np.linalg.norm(a[:, None] - b[None], axis=-1)
        elif trial % 4 == 1:  # integer costs: many ties
            cost = rng.integers(0, 3, (n, m)).astype(np.float64)
        else:
            cost = rng.uniform(0, 10, (n, m))
        col = assignment(cost)
        assert len(set(col.tolist())) == n and (col >= 0).all() and (col < m).all()
        best, _ = _brute_force(cost)
        assert cost[np.arange(n), col].sum() == pytest.approx(best, abs=1e-9)


def test_hungarian_agrees_with_scipy_for_ten_robots():
    linear_sum_assignment = pytest.importorskip("scipy.optimize").linear_sum_assignment
    rng = np.random.default_rng(3)
    for n in (8, 10, 16):
        for _ in range(50):
            cost = np.linalg.norm(rng.uniform(0, 9, (n, 1, 2)) - rng.uniform(0, 9, (1, n, 2)), axis=-1)
            r, c = linear_sum_assignment(cost)
            assert cost[np.arange(n), assignment(cost)].sum() == pytest.approx(cost[r, c].sum(), abs=1e-9)


# ----------------------------------------------------------------------------- shapes and reference
def test_shapes_are_centred_and_spaced():
    s = 0.6
    off = shape_offsets(10, s)
    assert off.shape == (3, 10, 2)
    np.testing.assert_allclose(off.mean(axis=1), 0.0, atol=1e-12)
    for k, name in enumerate(SHAPES):
        d = np.linalg.norm(off[k][:, None] - off[k][None], axis=-1) + np.eye(10) * 9
        assert d.min() == pytest.approx(s, abs=1e-9), name   # nearest slots exactly slot_spacing apart
    ring = np.linalg.norm(off[0], axis=1)
    np.testing.assert_allclose(ring, s / (2 * math.sin(math.pi / 10)))
    assert np.ptp(off[1][:, 1]) == pytest.approx(9 * s) and np.ptp(off[1][:, 0]) == 0
    assert np.allclose(shape_offsets(1, s), 0.0)


def test_reference_moves_smoothly_inside_its_box_and_carries_the_slots():
    env = BatchEnv("formation", 12, 10, seed=5, max_steps=600)   # no reset inside
    sc, cfg = env.scenario, env.scenario.config
    env.reset()
    onehot = sc.obs[:, :, 32 + 2 + 30 + 4:32 + 2 + 30 + 7]
    assert set(sc.shape.tolist()) == {0, 1, 2}
    assert (onehot.sum(-1) == 1).all() and (onehot.argmax(-1) == sc.shape[:, None]).all()
    heading, waypoints = sc.ref_heading.copy(), sc.waypoint.copy()
    redrawn = 0
    for _ in range(500):
        old = sc.ref.copy()
        env.step(env.heuristic_actions())
        step = np.linalg.norm(sc.ref - old, axis=1)
        assert (step <= cfg.ref_speed * cfg.dt + 1e-9).all()
        dh = np.angle(np.exp(1j * (sc.ref_heading - heading)))
        assert (np.abs(dh) <= cfg.ref_turn_rate * cfg.dt + 1e-9).all()
        heading = sc.ref_heading.copy()
        np.testing.assert_allclose(np.linalg.norm(sc.ref_vel, axis=1), cfg.ref_speed)
        lo, hi = sc.margin[:, None], sc.world.arena - sc.margin[:, None]
        assert ((sc.ref >= lo - 1e-9) & (sc.ref <= hi + 1e-9)).all()
        np.testing.assert_allclose(sc.slots.mean(axis=1), sc.ref, atol=1e-9)
        r = cfg.agent_radius + cfg.wall_clearance - 1e-9   # every slot leaves room for a robot
        assert ((sc.slots >= r) & (sc.slots <= sc.world.arena - r)).all()
        redrawn += int((sc.waypoint != waypoints).any(axis=1).sum())
        waypoints = sc.waypoint.copy()
    assert redrawn >= 12   # waypoints were reached and redrawn
    travelled = np.linalg.norm(sc.ref - old, axis=1)
    assert (travelled > 0).any()


# ----------------------------------------------------------------------------- reference step
def _reference_match(pos, slots):
    """Optimal matching by brute force over the 6! permutations: distances [N] of robot -> slot."""
    cost = np.linalg.norm(pos[:, None] - slots[None], axis=-1)
    _, perm = _brute_force(cost)
    return cost[np.arange(len(pos)), perm], perm


def test_reward_statistics_and_observation_match_the_numpy_reference():
    env = BatchEnv("formation", 3, 6, seed=4, max_steps=80, arena_size=8.0)   # no reset inside
    sc, cfg = env.scenario, env.scenario.config
    env.reset()
    rng = np.random.default_rng(0)
    prev_contact = np.zeros((3, 6), bool)
    B = cfg.n_rays + 2 + 5 * cfg.n_neighbours
    seen_formed = seen_bonus = 0
    for t in range(70):
        acts = env.heuristic_actions() if t % 4 else rng.uniform(-1, 1, (env.num_slots, 2))
        env.step(acts)
        w = sc.world
        contact = w.contact.copy()
        for e in range(3):
            pos = w.pos[e].astype(np.float64)
            slots = sc.ref[e] + sc.slot_off[e]
            d, perm = _reference_match(pos, slots)
            np.testing.assert_allclose(sc.match_d[e], d, rtol=1e-9, atol=1e-9)
            assert np.array_equal(sc.assign[e], perm)
            formed = bool((d <= cfg.slot_tolerance).all())
            assert sc.formed[e] == formed
            onset = contact[e] & ~prev_contact[e]
            rew = -cfg.error_penalty * d + cfg.slot_reward * (d <= cfg.slot_tolerance) \
                - cfg.collision_penalty * contact[e] - cfg.collision_onset_penalty * onset
            np.testing.assert_allclose(sc.reward[e], rew, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(sc.stats[0, e], d / cfg.max_steps, rtol=1e-5)
            np.testing.assert_allclose(sc.stats[1, e], formed / cfg.max_steps)
            np.testing.assert_allclose(sc.stats[2, e], onset.astype(float))
            # the observation's task part: reference, its velocity, one-hot, assigned slot (ego frame)
            th = w.theta[e].astype(np.float64)
            c, s = np.cos(th), np.sin(th)

            def ego(v):
                return np.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1]], -1)
            g = sc.ref[e] - pos
            exp_ref = ego(g) / np.maximum(cfg.ref_obs_scale, np.linalg.norm(g, axis=1))[:, None]
            exp_vel = ego(np.tile(sc.ref_vel[e], (6, 1))) / cfg.max_speed
            gs = slots[perm] - pos
            exp_slot = ego(gs) / np.maximum(cfg.slot_obs_scale, np.linalg.norm(gs, axis=1))[:, None]
            np.testing.assert_allclose(sc.obs[e, :, B:B + 2], exp_ref, atol=2e-5)
            np.testing.assert_allclose(sc.obs[e, :, B + 2:B + 4], exp_vel, atol=2e-5)
            assert (sc.obs[e, :, B + 4 + sc.shape[e]] == 1).all() and sc.obs[e, :, B + 4:B + 7].sum() == 6
            np.testing.assert_allclose(sc.obs[e, :, B + 7:B + 9], exp_slot, atol=2e-5)
            seen_formed += formed
            seen_bonus += int((d <= cfg.slot_tolerance).sum())
        prev_contact = contact
    assert seen_bonus > 0   # the in-slot branch was exercised


def test_shaping_scale_scales_only_the_collision_onset_penalty():
    sc = make_scenario("formation", 2, 4, 0, arena_size=10.0)
    sc.reset()
    sc.world.pos[0, 0] = [0.25, 5.0]                     # driven into the left wall: a contact onset
    sc.world.pos[0, 1:] = [[3.0, 3.0], [6.0, 6.0], [7.0, 3.0]]
    sc.world.theta[0, 0] = np.pi
    sc.world.vel[0, 0] = [-1.0, 0.0]
    sc.world.sync(np.array([True, False]))
    act = np.zeros((2, 4, 2), np.float32)
    act[0, 0] = 1.0
    rewards = []
    for scale in (1.0, 0.0, 0.5):
        snap = [a.copy() for a in (sc.world.pos, sc.world.vel, sc.world.theta, sc.world.omega, sc.ref, sc.ref_heading,
                                   sc.waypoint, sc.rng, sc.prev_contact)]
        sc.set_shaping_scale(scale)
        sc.step(act)
        assert sc.world.contact[0, 0] and sc.stats[2, 0, 0] == 1.0
        rewards.append(float(sc.reward[0, 0]))
        for a, b in zip((sc.world.pos, sc.world.vel, sc.world.theta, sc.world.omega, sc.ref, sc.ref_heading,
                         sc.waypoint, sc.rng, sc.prev_contact), snap):
            a[...] = b
        sc.world.sync(np.array([True, True]))
    cfg = sc.config
    assert rewards[0] - rewards[1] == pytest.approx(-cfg.collision_onset_penalty, abs=1e-5)
    assert rewards[2] - rewards[1] == pytest.approx(-0.5 * cfg.collision_onset_penalty, abs=1e-5)
    with pytest.raises(ValueError, match="shaping scale"):
        sc.set_shaping_scale(-1.0)


def test_metrics_are_time_means_of_the_optimal_matching():
    env = BatchEnv("formation", 2, 5, seed=1, max_steps=60, autoreset=False)
    sc, cfg = env.scenario, env.scenario.config
    env.reset()
    err, formed = [], []
    for _ in range(60):
        _, _, term, trunc, info = env.step(env.heuristic_actions())
        assert not term.any()
        for e in range(2):
            d, _ = _reference_match(sc.world.pos[e].astype(np.float64), sc.ref[e] + sc.slot_off[e])
            err.append(d)
            formed.append(float((d <= cfg.slot_tolerance).all()))
    assert trunc.all()
    err = np.array(err).reshape(60, 2, 5)
    formed = np.array(formed).reshape(60, 2)
    np.testing.assert_allclose(info["episode_formation_error"].reshape(2, 5), err.mean(0), rtol=1e-4)
    np.testing.assert_allclose(info["episode_formed"].reshape(2, 5), formed.mean(0)[:, None].repeat(5, 1),
                               atol=1e-6)


def test_same_seed_same_trajectory_and_respawn_is_clear():
    def run(seed):
        env = BatchEnv("formation", 3, 8, seed=seed, max_steps=40)
        env.reset()
        rng = np.random.default_rng(5)
        out = [env.step(rng.uniform(-1, 1, (24, 2)))[0].copy() for _ in range(90)]
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
    assert env.observation_space.contains(sc.obs[0, 0]) and (sc.world.vel[mask] == 0).all()
    assert sorted(sc.assign[0].tolist()) == list(range(8))   # the matching was redone


def test_one_and_all_threads_give_identical_trajectories():
    import numba

    def run(threads, schedule):
        numba.set_num_threads(threads)
        try:
            env = BatchEnv("formation", 6, 10, seed=9, max_steps=50)
            env.scenario.world.schedule_override = schedule
            env.scenario.world.serial_below = 0
            env.reset()
            rng = np.random.default_rng(1)
            out = []
            for t in range(120):
                acts = env.heuristic_actions() if t % 2 else rng.uniform(-1, 1, (60, 2))
                obs, rew, *_ = env.step(acts)
                out.append(np.concatenate([obs.ravel(), rew.ravel(), env.scenario.ref.ravel()]))
            return np.array(out)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    base = run(1, None)
    for threads, schedule in [(numba.config.NUMBA_NUM_THREADS, "agent"), (numba.config.NUMBA_NUM_THREADS, "world")]:
        assert np.array_equal(base, run(threads, schedule))


def test_removed_robots_are_not_matched():
    sc = make_scenario("formation", 2, 6, 0)
    sc.reset()
    mask = np.zeros((2, 6), bool)
    mask[0, [1, 4]] = True
    sc.remove(mask)
    sc.step(np.zeros((2, 6, 2), np.float32))
    assert (sc.assign[0, [1, 4]] == -1).all() and (sc.obs[0, [1, 4], 34:] == 0).all()
    live = sc.assign[0][sc.world.active[0]]
    assert len(set(live.tolist())) == 4
    cost = np.linalg.norm(sc.world.pos[0][sc.world.active[0]][:, None].astype(np.float64) - sc.slots[0][None],
                          axis=-1)
    assert sc.match_d[0].sum() == pytest.approx(_brute_force(cost)[0], abs=1e-9)


# ----------------------------------------------------------------------------- behaviour
def test_heuristic_beats_random_on_the_formation_metrics():
    from entropy_engine.policies import RandomPolicy
    from entropy_engine.training.config import TrainConfig
    from entropy_engine.training.evaluate import evaluate

    cfg = TrainConfig(scenario="formation", n_agents=10, max_episode_steps=300)
    heur = evaluate("heuristic", episodes=10, num_worlds=5, cfg=cfg, seed=3)
    rand = evaluate(RandomPolicy(BatchEnv("formation", 1, 10).action_space, 0), episodes=10, num_worlds=5,
                    cfg=cfg, seed=3)
    assert set(heur) >= {"formation_error", "formed_fraction", "collisions_per_agent"}
    assert heur["formation_error"] < 0.25 * rand["formation_error"], (heur, rand)
    assert heur["formed_fraction"] >= 0.5 and rand["formed_fraction"] == 0.0, (heur, rand)
    assert heur["collisions_per_agent"] < 0.25 * rand["collisions_per_agent"], (heur, rand)
    assert heur["mean_episode_length"] == 300


def test_draw_shows_slots_and_reference():
    pytest.importorskip("pygame")
    from entropy_engine.render.renderer import Renderer

    env = BatchEnv("formation", 2, 6, seed=0)
    env.reset()
    with Renderer(env.scenario, world_index=1, size=256) as r:
        frame = r.render()
        px = r.world_to_pixel(env.scenario.ref[1])
    orange = (frame[..., 0] > 200) & (frame[..., 1] > 120) & (frame[..., 1] < 180) & (frame[..., 2] < 60)
    assert orange[px[1], px[0]]                          # the reference point
    for k in range(6):                                   # a ring around every slot
        c, rr = r.world_to_pixel(env.scenario.slots[1, k]), int(0.3 * r.scale)
        assert orange[c[1] - rr - 2:c[1] + rr + 3, c[0] - rr - 2:c[0] + rr + 3].any()


# ----------------------------------------------------------------------------- bounds and fuzz
@pytest.mark.parametrize("mode", ["random", "full", "reverse", "spin"])
def test_observations_stay_in_their_box(mode):
    env = BatchEnv("formation", 4, 12, seed=7, max_steps=150, arena_size=10.0)
    space = env.observation_space
    assert space.shape == (73,)
    env.reset()
    rng = np.random.default_rng(1)
    fixed = {"full": [1.0, 1.0], "reverse": [-1.0, -1.0], "spin": [-1.0, 1.0]}
    for _ in range(400):
        acts = rng.uniform(-1, 1, (48, 2)) if mode == "random" else np.tile(fixed.get(mode), (48, 1))
        obs, rew, _, _, info = env.step(acts.astype(np.float32))
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert (obs >= space.low).all() and (obs <= space.high).all()
        assert (info["terminal_obs"] >= space.low).all() and (info["terminal_obs"] <= space.high).all()


def _adversarial(obs, t):
    """Every robot drives flat out at its nearest neighbour; every third 20-step phase at the
    reference point (the centre of the crowd) or, when it points at a wall, into the wall."""
    B = 34 + 30
    target = obs[:, 34:36] if (t // 20) % 3 != 2 else obs[:, B:B + 2]
    err = np.arctan2(target[:, 1], target[:, 0])
    turn = np.clip(3 * err, -1, 1)
    return np.stack([1 - turn, 1 + turn], -1).clip(-1, 1).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["random", "adversarial"])
def test_fuzz_crowded(mode):
    """32,000 agent-steps of 20 robots in a 13 m arena (about the smallest a 20-robot line at 0.45 m
    allows), under random actions or crowded on purpose: every robot rams its nearest neighbour, the
    reference point (all 20 pile up there) or the wall ahead. No NaN, no robot inside a wall or
    outside the arena, overlaps within 25 % of a radius (README: The physics), as in test_flocking."""
    env = BatchEnv("formation", 8, 20, seed=11, arena_size=13.0, max_steps=80, slot_spacing=0.45)
    world = env.scenario.world
    rng = np.random.default_rng(2)
    obs = env.reset()
    worst = [0.0, 0.0]
    for t in range(200):
        acts = rng.uniform(-1.5, 1.5, (160, 2)) if mode == "random" else _adversarial(obs, t)
        obs, rew, *_ = env.step(acts)
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert env.observation_space.contains(obs[rng.integers(160)])
        check_physical(world, worst)
    assert worst[1] <= 1e-4, f"a robot is inside a wall by {worst[1]:.5f} m"
    assert worst[0] <= 0.25 * world.radius, f"overlap {worst[0]:.4f} m"


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("kw, match", [
    (dict(slot_spacnig=0.6), "slot_spacnig"),
    (dict(n_neighbours=0), "n_neighbours must be an integer >= 1"),
    (dict(sense_range=0.0), "sense_range must be a positive number"),
    (dict(slot_spacing=0.3), "slot_spacing must be >= 2 \\* agent_radius"),
    (dict(spawn_spacing=0.3), "spawn_spacing must be >= 2 \\* agent_radius"),
    (dict(ref_speed=2.0), "ref_speed must be below max_speed"),
    (dict(error_penalty=-1.0), "error_penalty must be a number >= 0"),
    (dict(slot_tolerance=float("nan")), "slot_tolerance must be a positive number"),
    (dict(arena_size=6.0), "too small for 10 agents in formation"),
])
def test_bad_configs_are_refused_clearly(kw, match):
    with pytest.raises(ConfigError, match=match):
        make_scenario("formation", 2, 10, 0, **kw)


def test_impossible_counts_are_refused():
    with pytest.raises(ConfigError, match="n_agents must be a positive integer"):
        make_scenario("formation", 2, 0, 0)
    with pytest.raises(ConfigError, match="too small for 40 agents in formation"):
        make_scenario("formation", 1, 40, 0, arena_size=12.0)
    with pytest.raises(ConfigError, match="too small for 10 agents: they need a block"):
        make_scenario("formation", 1, 10, 0, arena_size=10.0, spawn_spacing=2.0)
    with pytest.raises(ConfigError, match="formation"):
        from entropy_engine.training.config import TrainConfig

        TrainConfig(scenario="formation", env={"n_obstacles": 4})


# ----------------------------------------------------------------------------- entry points
def test_pettingzoo_conformance():
    check_pettingzoo("formation", {"collided", "slot"})


def test_sb3_vec_env_learns_with_ppo():
    check_sb3_ppo("formation", 73)


@pytest.mark.slow
def test_shared_memory_workers_match_the_in_process_env():
    from entropy_engine.envs.shm import ShmBatchEnv

    kw = dict(num_worlds=4, n_agents=5, seed=2, max_steps=30)
    ref = BatchEnv("formation", **kw)
    with ShmBatchEnv("formation", workers=2, **kw) as env:
        a, b = ref.reset(), env.reset()
        np.testing.assert_array_equal(a, b)
        for _ in range(40):
            act = env.heuristic_actions()
            np.testing.assert_array_equal(act, ref.heuristic_actions())
            a, b = ref.step(act)[0], env.step(act)[0]
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_preset_trains_evaluates_and_plays(tmp_path, capsys):
    pytest.importorskip("pygame")
    import json
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.cli import main
    from entropy_engine.render.gif import read_gif

    run = tmp_path / "run"
    assert main(["train", "--preset", "formation", "--out", str(run), "--total-steps", "2560", "--num-worlds", "2",
                 "--n-agents", "5", "--n-steps", "32", "--batch-size", "160", "--max-episode-steps", "40",
                 "--video-steps", "20", "--video-size", "64", "--tensorboard", "false", "--console", "plain"]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"env/formation_error", "env/formed_fraction", "env/collisions_per_agent"} <= set(header)
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--episodes", "4", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["scenario"] == "formation" and res["formation_error"] > 0 and res["agent_episodes"] == 20
    gif = tmp_path / "play.gif"
    assert main(["play", str(run), "--gif", str(gif), "--size", "64"]) == 0
    assert read_gif(gif).shape[1:] == (64, 64, 3)
    assert "formation_error" in capsys.readouterr().out
