"""The pursuit scenario and the scripted robots it is built on: its kernels against a slow numpy
reference, captures and respawns, scripted robots that are robots but not agents, the heuristic
against random actions, every entry point (PettingZoo conformance, SB3, the CLI), a crowded fuzz
run and bad configs."""
from __future__ import annotations

import numpy as np
import pytest

import entropy_engine as ee
from entropy_engine import BatchEnv
from entropy_engine.config import ConfigError
from entropy_engine.core.neighbours_reference import neighbours_reference
from entropy_engine.scenarios import make_scenario
from scenario_checks import check_pettingzoo, check_physical, check_sb3_ppo


# ----------------------------------------------------------------------------- reference
def _state(sc):
    w = sc.world
    return {"pos": w.pos.astype(np.float64), "active": w.active.copy(), "contact": w.contact.copy(),
            "target": sc.target.copy(), "dist": sc.dist.copy(), "moved": sc.moved.copy(),
            "caps_total": sc.caps_total.copy()}


def _reference_step(sc, before, after):
    """Captures, reward and statistics of one step by brute force (the documented definitions),
    from the state after the physics (``after``; evaders not yet respawned) and before it."""
    cfg = sc.config
    E, N, T = sc.world.num_worlds, sc.n_learners, sc.world.n_agents
    rew = np.zeros((E, N))
    stats = np.zeros((4, E, N))
    captured = np.zeros((E, T - N), bool)
    for e in range(E):
        pos, act = after["pos"][e], after["active"][e]
        d = np.linalg.norm(pos[:N, None] - pos[None, N:], axis=-1)           # [N, M] pursuer-evader
        close = (d <= cfg.capture_range) & act[:N, None] & act[None, N:]
        captured[e] = close.sum(0) >= cfg.capture_count
        hits = close[:, captured[e]].sum(1)
        caps = captured[e].sum()
        for i in range(N):
            r = cfg.capture_reward * hits[i] + cfg.team_reward * caps
            j = before["target"][e, i]
            if j >= 0 and not after["moved"][e, j - N]:
                r += cfg.approach_reward * (before["dist"][e, i] - np.linalg.norm(pos[j] - pos[i]))
            onset = after["contact"][e, i] and not before["contact"][e, i]
            r -= cfg.collision_penalty * after["contact"][e, i] + cfg.collision_onset_penalty * onset
            rew[e, i] = r
            stats[:, e, i] = [caps, before["caps_total"][e] == 0, hits[i], onset]
    return rew, stats, captured


def test_captures_reward_and_statistics_match_the_numpy_reference():
    env = BatchEnv("pursuit", 3, 6, seed=4, max_steps=300, n_evaders=2)   # no reset inside
    sc = env.scenario
    env.reset()
    rng = np.random.default_rng(0)
    caps = 0
    for t in range(250):
        before = _state(sc)
        acts = env.heuristic_actions() if t % 4 else rng.uniform(-1, 1, (env.num_slots, 2))
        env.step(acts)
        after = _state(sc)
        rew, stats, captured = _reference_step(sc, before, after)
        assert np.array_equal(sc.captured, captured)
        np.testing.assert_allclose(sc.reward, rew, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sc.stats, stats, rtol=1e-4, atol=1e-5)
        caps += int(captured.sum())
    assert caps >= 3   # the capture branch (and the respawn after it) was exercised


def test_neighbour_slots_tell_evaders_from_teammates_and_match_the_reference():
    env = BatchEnv("pursuit", 2, 8, seed=3, max_steps=100)
    sc, cfg = env.scenario, env.scenario.config
    env.reset()
    for _ in range(40):
        env.step(env.heuristic_actions())
    w, N, K = sc.world, sc.n_learners, cfg.n_neighbours
    for e in range(2):
        kind = (np.arange(w.n_agents) >= N).astype(np.float32)[:, None]
        out, idx = neighbours_reference(w.pos[e], w.vel[e], w.theta[e], w.active[e], cfg.sense_range, cfg.max_speed,
                                        K, attributes=kind)
        np.testing.assert_array_equal(sc.sensor.indices[e], idx)
        np.testing.assert_allclose(sc.sensor.out[e], out, atol=1e-5)
        slots = sc.obs[e, :, 34:34 + 6 * K].reshape(N, K, 6)
        assert np.array_equal(slots[..., 5], (idx[:N] >= N).astype(np.float32))      # the evader flag
        assert np.array_equal(slots[..., 4], (idx[:N] >= 0).astype(np.float32))
    assert (sc.obs[:, :, 34 + 5:34 + 6 * K:6] == 1).any() and (sc.obs[:, :, 34 + 4:34 + 6 * K:6] == 1).any()


def test_nearest_evader_vector_matches_the_reference():
    env = BatchEnv("pursuit", 2, 5, seed=9, max_steps=100)
    sc, cfg = env.scenario, env.scenario.config
    env.reset()
    for _ in range(20):
        env.step(env.heuristic_actions())
    w, N = sc.world, sc.n_learners
    for e in range(2):
        for i in range(N):
            d = w.pos[e, N:].astype(np.float64) - w.pos[e, i]
            g = d[np.argmin(np.linalg.norm(d, axis=1))]
            c, s = np.cos(w.theta[e, i]), np.sin(w.theta[e, i])
            ego = np.array([g[0] * c + g[1] * s, -g[0] * s + g[1] * c]) / max(cfg.evader_obs_scale, np.linalg.norm(g))
            np.testing.assert_allclose(sc.obs[e, i, -2:], np.clip(ego, -1, 1), atol=1e-5)


def test_two_pursuers_capture_one_does_not_and_the_evader_reappears_clear():
    env = BatchEnv("pursuit", 1, 3, seed=0, max_steps=100, n_evaders=1)
    sc, cfg = env.scenario, env.scenario.config
    env.reset()
    w = sc.world
    zero = np.zeros((3, 2), np.float32)
    # one pursuer touching the evader: no capture, whatever the time
    w.pos[0] = [[5.0, 5.0], [2.0, 2.0], [8.0, 8.0], [5.5, 5.0]]
    w.vel[:] = 0
    sc.sensor.sense(attributes=sc.scripted.kind)
    env.step(zero)
    assert not sc.captured.any() and sc.caps_total[0] == 0
    # two pursuers within capture_range at once: a capture, rewarded to both and to the team
    w.pos[0] = [[5.0, 5.0], [6.0, 5.0], [8.0, 8.0], [5.5, 5.0]]
    w.vel[:] = 0
    sc.sensor.sense(attributes=sc.scripted.kind)
    _, rew, _, _, info = env.step(zero)
    assert sc.captured[0, 0] and sc.caps_total[0] == 1
    np.testing.assert_array_equal(info["captures"], [1, 1, 0])
    assert rew[0] >= cfg.capture_reward + cfg.team_reward - 1.0 and abs(rew[2] - cfg.team_reward) < 0.5
    # next step: the evader is elsewhere, at least respawn_clearance from everyone (less one step's moves)
    env.step(zero)
    assert sc.moved[0, 0] and not sc.captured.any()
    d = np.linalg.norm(w.pos[0, :3] - w.pos[0, 3], axis=1)
    assert d.min() >= cfg.respawn_clearance - 2 * cfg.max_speed * cfg.dt


def test_a_lone_pursuer_cannot_run_an_evader_down():
    """One pursuer (the other has left) chases the evader flat out: the evader, faster, keeps away."""
    env = BatchEnv("pursuit", 4, 2, seed=5, max_steps=400, n_evaders=1, on_goal="deactivate", autoreset=False)
    sc = env.scenario
    env.reset()
    gone = np.zeros((4, 2), bool)
    gone[:, 1] = True
    sc.remove(gone)
    w = sc.world
    close = 0
    for _ in range(400):
        obs = env.obs.reshape(4, 2, -1)[:, 0]
        err = np.arctan2(obs[:, -1], obs[:, -2])
        turn = np.clip(2 * err, -1, 1)
        act = np.zeros((4, 2, 2), np.float32)
        act[:, 0] = np.stack([1 - turn, 1 + turn], -1).clip(-1, 1)
        env.step(act)
        close += int((np.linalg.norm(w.pos[:, 0] - w.pos[:, 2], axis=1) < 0.8).sum())
    assert sc.caps_total.sum() == 0
    assert close < 0.1 * 4 * 400, close


def test_scripted_robots_are_robots_but_not_agents():
    env = BatchEnv("pursuit", 3, 4, seed=1, n_evaders=2)
    sc = env.scenario
    assert sc.world.n_agents == 6 and sc.n_learners == 4 and sc.n_scripted == 2
    assert env.num_slots == 12 and env.obs.shape == (12, 72) and env.reset().shape == (12, 72)
    assert sc.learner_active.shape == (3, 4) and np.shares_memory(sc.learner_active, sc.world.active)
    with pytest.raises(ValueError, match=r"\(12, 2\)"):
        env.step(np.zeros((18, 2), np.float32))
    # removing the pursuers leaves the evaders in the world; the departed pursuers score nothing
    env = BatchEnv("pursuit", 2, 3, seed=1, on_goal="deactivate", autoreset=False)
    env.reset()
    env.scenario.remove(np.ones((2, 3), bool))
    before = env.scenario.world.pos[:, 3:].copy()
    for _ in range(5):
        obs, rew, term, trunc, _ = env.step(np.ones((6, 2), np.float32))
    assert not env.scenario.learner_active.any() and env.scenario.world.active[:, 3:].all()
    assert (rew == 0).all() and not (term | trunc).any() and (obs[:, 34:] == 0).all()
    assert not np.array_equal(before, env.scenario.world.pos[:, 3:])     # the evaders still move
    # scenarios without scripted robots read the world's flags themselves (unchanged, no copy)
    nav = BatchEnv("navigation", 2, 3, seed=0)
    assert nav.scenario.n_scripted == 0 and nav._active is nav.scenario.world.active
    pz = ee.parallel_env("pursuit", n_agents=4, seed=0)
    assert pz.possible_agents == [f"robot_{i}" for i in range(4)]
    assert pz.state_space.shape == (4 * 72,)


def test_pursuers_talk_and_evaders_have_no_radio():
    """With a channel the pursuers (learners) talk among themselves; the scripted evaders send
    nothing, so a pursuer that hears everyone in range hears exactly the other active pursuers."""
    env = BatchEnv("pursuit", 2, 4, seed=0, comm_dim=2, comm_range=50.0, comm_combine="nearest", comm_k=8)
    obs = env.reset()
    D0 = env.scenario.obs_dim
    assert env.observation_space.shape == (D0 + env.channel.channel.width,) and obs.shape[0] == 8
    acts = np.zeros((8, 4), np.float32)
    acts[:, 2:] = 0.5                                   # every pursuer sends (0.5, 0.5)
    for _ in range(3):
        obs, *_ = env.step(acts)
    ch = env.channel.channel
    assert ch.talkers == 4 and ch.senders.tolist() == [True] * 4 + [False] * env.scenario.n_scripted
    heard_slots = obs[:, D0:-1].reshape(8, 8, 2 + 3)    # [slot, k, (2 values, x, y, 1 = a sender)]
    n_heard = heard_slots[..., -1].sum(axis=1)
    assert env.scenario.learner_active.all()
    assert np.all(n_heard == 3)                         # the 3 other pursuers, never an evader
    np.testing.assert_allclose(heard_slots[heard_slots[..., -1] > 0][:, :2], 0.5)
    from pettingzoo.test import parallel_api_test
    parallel_api_test(ee.parallel_env("pursuit", n_agents=4, seed=0, comm_dim=2), num_cycles=30)


def test_same_seed_same_trajectory():
    def run(seed, threads_schedule):
        env = BatchEnv("pursuit", 4, 5, seed=seed, max_steps=60)
        env.scenario.world.schedule_override = threads_schedule
        env.reset()
        rng = np.random.default_rng(5)
        out = []
        for t in range(150):
            acts = env.heuristic_actions() if t % 2 else rng.uniform(-1, 1, (20, 2))
            out.append(env.step(acts)[0].copy())
            out.append(env.scenario.world.pos.copy())
        return out

    a, b, c = run(3, "world"), run(3, "agent"), run(4, "world")
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


# ----------------------------------------------------------------------------- behaviour
def test_heuristic_beats_random_on_the_pursuit_metrics():
    from entropy_engine.policies import RandomPolicy
    from entropy_engine.training.config import TrainConfig
    from entropy_engine.training.evaluate import evaluate

    cfg = TrainConfig(scenario="pursuit", n_agents=10, max_episode_steps=300)
    heur = evaluate("heuristic", episodes=10, num_worlds=5, cfg=cfg, seed=3)
    rand = evaluate(RandomPolicy(BatchEnv("pursuit", 1, 10).action_space, 0), episodes=10, num_worlds=5,
                    cfg=cfg, seed=3)
    assert set(heur) >= {"captures_per_episode", "first_capture_steps", "capture_assists", "collisions_per_agent"}
    assert heur["captures_per_episode"] >= 3.0 and rand["captures_per_episode"] <= 0.5, (heur, rand)
    assert heur["first_capture_steps"] < 0.5 * rand["first_capture_steps"], (heur, rand)
    # every capture has at least two assists
    assert heur["capture_assists"] * 10 >= 2 * heur["captures_per_episode"] - 1e-6


def test_metrics_count_captures_and_the_first_capture_step():
    env = BatchEnv("pursuit", 3, 6, seed=2, max_steps=200, autoreset=False)
    sc = env.scenario
    env.reset()
    caps = np.zeros(3)
    first = np.full(3, 200.0)
    for t in range(1, 201):
        _, _, _, trunc, info = env.step(env.heuristic_actions())
        now = sc.captured.sum(1)
        first[(caps == 0) & (now > 0)] = t
        caps += now
    assert trunc.all() and caps.sum() > 0
    np.testing.assert_allclose(info["episode_captures"].reshape(3, 6), np.repeat(caps[:, None], 6, 1))
    np.testing.assert_allclose(info["episode_first_capture"].reshape(3, 6), np.repeat(first[:, None], 6, 1))


# ----------------------------------------------------------------------------- fuzz
def _ram_nearest(obs):
    """Adversarial: every pursuer drives flat out at its nearest neighbour (evader or teammate)."""
    slot = obs[:, 34:36]
    err = np.arctan2(slot[:, 1], slot[:, 0])
    turn = np.clip(3 * err, -1, 1)
    return np.stack([1 - turn, 1 + turn], -1).clip(-1, 1).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["random", "adversarial"])
def test_fuzz_crowded(mode):
    """32 pursuers and 8 evaders in a 9 m arena: no NaN, no robot (pursuer or evader) inside a wall
    or outside the arena, overlap below 25 % of a radius (the README's tolerance)."""
    env = BatchEnv("pursuit", 8, 32, seed=11, arena_size=9.0, n_evaders=8, spawn_spacing=0.6, max_steps=80)
    world = env.scenario.world
    rng = np.random.default_rng(2)
    obs = env.reset()
    worst = [0.0, 0.0]
    for t in range(200):
        acts = rng.uniform(-1.5, 1.5, (256, 2)) if mode == "random" else _ram_nearest(obs)
        obs, rew, *_ = env.step(acts)
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert env.observation_space.contains(obs[rng.integers(256)])
        check_physical(world, worst)
    assert worst[1] <= 1e-4, f"a robot is inside a wall by {worst[1]:.5f} m"
    assert worst[0] <= 0.25 * world.radius, f"overlap {worst[0] / world.radius:.1%} of a radius"


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("kw, match", [
    (dict(n_evader=2), "n_evader"),
    (dict(n_evaders=0), "n_evaders must be an integer >= 1"),
    (dict(capture_count=1), "capture_count must be an integer >= 2"),
    (dict(capture_range=0.3), "capture_range must exceed 2 \\* agent_radius"),
    (dict(pursuer_power=1.5), "pursuer_power must be in \\(0, 1\\]"),
    (dict(sense_range=-1.0), "sense_range must be a positive number"),
    (dict(capture_reward=-1.0), "capture_reward must be a number >= 0"),
    (dict(arena_size=3.0), "too small for 13 robots"),
    (dict(arena_size=10.0, wall_margin=5.0), "no room between their wall margins"),
])
def test_bad_configs_are_refused_clearly(kw, match):
    with pytest.raises(ConfigError, match=match):
        make_scenario("pursuit", 2, 10, 0, **kw)


def test_impossible_counts_are_refused():
    with pytest.raises(ConfigError, match="n_agents must be an integer >= 2"):
        make_scenario("pursuit", 2, 1, 0)
    with pytest.raises(ConfigError, match="n_agents must be an integer >= 3"):
        make_scenario("pursuit", 2, 2, 0, capture_count=3)
    with pytest.raises(ConfigError, match="too small for 410 robots"):
        make_scenario("pursuit", 1, 400, 0, n_evaders=10, arena_size=12.0)


# ----------------------------------------------------------------------------- entry points and drawing
def test_pettingzoo_conformance():
    check_pettingzoo("pursuit", {"collided", "captures"})


def test_sb3_vec_env_learns_with_ppo():
    check_sb3_ppo("pursuit", 72)


def test_renderer_draws_evaders_black_with_their_capture_range():
    pytest.importorskip("pygame")
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.render.renderer import SCRIPTED_COLOR, Renderer, agent_color

    env = BatchEnv("pursuit", 1, 4, seed=0, n_evaders=2)
    env.reset()
    r = Renderer(env, size=256)
    frame = r.render()
    w = env.scenario.world

    def pixel(xy):
        col, row = r.world_to_pixel(xy)
        return tuple(int(v) for v in frame[row, col])
    assert all(pixel(w.pos[0, j]) == SCRIPTED_COLOR for j in (4, 5))
    assert pixel(w.pos[0, 0]) == agent_color(0)
    ring = w.pos[0, 4] + [env.config.capture_range - 0.5 / r.scale, 0]
    assert pixel(ring) == (220, 60, 60)


@pytest.mark.slow
def test_preset_trains_evaluates_and_plays(tmp_path, capsys):
    pytest.importorskip("pygame")
    import json
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.cli import main
    from entropy_engine.render.gif import read_gif

    run = tmp_path / "run"
    assert main(["train", "--preset", "pursuit", "--out", str(run), "--total-steps", "2560", "--num-worlds", "2",
                 "--n-agents", "5", "--n-steps", "32", "--batch-size", "160", "--max-episode-steps", "40",
                 "--video-steps", "20", "--video-size", "64", "--tensorboard", "false", "--console", "plain"]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"env/captures_per_episode", "env/first_capture_steps"} <= set(header)
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--episodes", "4", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["scenario"] == "pursuit" and res["agent_episodes"] == 20 and res["first_capture_steps"] <= 40
    gif = tmp_path / "play.gif"
    assert main(["play", str(run), "--gif", str(gif), "--size", "64"]) == 0
    assert read_gif(gif).shape[1:] == (64, 64, 3)
    assert "captures_per_episode" in capsys.readouterr().out
