"""The aggregation scenario: its cluster kernel against a plain-Python union-find, its reward,
statistics and cue against a numpy reference, the heuristic against random actions, every entry
point (PettingZoo conformance, SB3, the CLI), a crowded fuzz run and bad configs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from entropy_engine import BatchEnv
from entropy_engine.config import ConfigError
from entropy_engine.core.neighbours_reference import neighbours_reference
from entropy_engine.scenarios import make_scenario
from scenario_checks import check_pettingzoo, check_sb3_ppo


# ----------------------------------------------------------------------------- references
def _clusters_reference(pos, active, link):
    """Plain Python (no numpy, no scipy): connected components of the active robots whose centres
    are at most ``link`` apart, by breadth-first search over every pair. Returns the sorted list of
    component sizes and each robot's component as a frozenset (None for inactive robots)."""
    pts = [(float(x), float(y)) for x, y in pos.tolist()]
    act = [bool(a) for a in active.tolist()]
    n = len(pts)
    link2 = float(link) * float(link)
    comp = [None] * n
    sizes = []
    for s in range(n):
        if not act[s] or comp[s] is not None:
            continue
        members = {s}
        frontier = [s]
        while frontier:
            i = frontier.pop()
            for j in range(n):
                if act[j] and j not in members:
                    dx, dy = pts[j][0] - pts[i][0], pts[j][1] - pts[i][1]
                    if dx * dx + dy * dy <= link2:
                        members.add(j)
                        frontier.append(j)
        group = frozenset(members)
        for i in members:
            comp[i] = group
        sizes.append(len(members))
    return sorted(sizes), comp


def _check_clusters(sc):
    """The scenario's cluster arrays agree with the plain-Python reference in every world."""
    w, link = sc.world, sc.config.link_distance
    for e in range(w.num_worlds):
        sizes, comp = _clusters_reference(w.pos[e], w.active[e], link)
        assert int(sc.n_active[e]) == sum(sizes)
        assert int(sc.largest[e]) == (max(sizes) if sizes else 0)
        for i in range(w.n_agents):
            if comp[i] is None:
                assert sc.label[e, i] == -1
                continue
            assert sc.label[e, i] == min(comp[i])          # the root is the smallest index
            assert sc.size[e, sc.label[e, i]] == len(comp[i])
            assert {j for j in range(w.n_agents) if sc.label[e, j] == sc.label[e, i]} == set(comp[i])


def test_clusters_match_a_plain_python_union_find():
    """Random layouts from sparse to packed (link distances 0.4 .. 3 m, so clusters of every size
    and grid reaches beyond one cell), some robots inactive."""
    rng = np.random.default_rng(0)
    sizes_seen = set()
    for trial in range(12):
        link = [0.4, 0.8, 1.5, 3.0][trial % 4]
        sc = make_scenario("aggregation", 6, 25, trial, link_distance=link, arena_size=12.0)
        sc.reset()
        w = sc.world
        if trial % 3 == 0:   # packed: everyone in a corner blob
            w.pos[:] = rng.uniform(0.3, 3.5, w.pos.shape).astype(np.float32)
        w.active[:] = rng.random((6, 25)) > 0.15 * (trial % 2)
        sc._sense_and_score(False)
        _check_clusters(sc)
        sizes_seen.update(int(x) for x in sc.largest)
    assert min(sizes_seen) <= 3 and max(sizes_seen) >= 20, sizes_seen


def _reference_step(sc, before, after):
    """Reward, stat values and cue of one step, by brute force over every pair."""
    cfg = sc.config
    E, N = sc.world.num_worlds, sc.world.n_agents
    rew = np.zeros((E, N))
    stats = np.zeros((5, E, N))
    cue = np.zeros((E, N, 3))
    for e in range(E):
        pos = after["pos"][e].astype(np.float64)
        th = after["theta"][e].astype(np.float64)
        act = after["active"][e]
        sizes, comp = _clusters_reference(after["pos"][e], act, cfg.link_distance)
        na = act.sum()
        _, idx = neighbours_reference(after["pos"][e], after["vel"][e], after["theta"][e], act, cfg.sense_range,
                                      cfg.max_speed, cfg.n_neighbours)
        c = pos[act].mean(0)
        frac = max(sizes) / na
        agg = float(max(sizes) == na)
        for i in range(N):
            nb = [j for j in idx[i] if j >= 0]
            d_nn = min(np.hypot(*(pos[nb[0]] - pos[i])), cfg.sense_range) if nb else cfg.sense_range
            r = cfg.cluster_reward * len(comp[i]) / na - cfg.spread_penalty * max(0.0, d_nn - cfg.link_distance)
            onset = after["contact"][e, i] and not before["contact"][e, i]
            r -= cfg.collision_penalty * after["contact"][e, i] + cfg.collision_onset_penalty * onset
            rew[e, i] = r
            d_c = np.hypot(*(c - pos[i]))
            new = np.array([frac, d_c, agg])
            old = np.zeros(3) if before["fresh"][e, i] else before["last"][:, e, i]
            stats[:, e, i] = [new[0] - old[0], frac / cfg.max_steps, new[1] - old[1], onset, new[2] - old[2]]
            off = pos - pos[i]
            near = act & (np.hypot(off[:, 0], off[:, 1]) <= cfg.cue_range)
            near[i] = False
            if near.any():
                m = off[near].mean(0) / cfg.cue_range
                cue[e, i, :2] = [m[0] * math.cos(th[i]) + m[1] * math.sin(th[i]),
                                 -m[0] * math.sin(th[i]) + m[1] * math.cos(th[i])]
            cue[e, i, 2] = near.sum() / (N - 1)
    return rew, stats, cue


def _state(sc):
    w = sc.world
    return {"pos": w.pos.copy(), "vel": w.vel.copy(), "theta": w.theta.copy(), "active": w.active.copy(),
            "contact": w.contact.copy(), "fresh": sc._fresh.copy(), "last": sc._last.copy()}


def test_reward_statistics_and_cue_match_the_numpy_reference():
    env = BatchEnv("aggregation", 3, 9, seed=4, max_steps=80, cue_range=4.0)   # no reset inside
    sc = env.scenario
    env.reset()
    rng = np.random.default_rng(0)
    merged = False
    start = [[len(c) / 9 for c in _clusters_reference(sc.world.pos[e], sc.world.active[e],
                                                      sc.config.link_distance)[1]] for e in range(3)]
    np.testing.assert_allclose(sc.info["cluster_fraction"], start, rtol=1e-6)   # also right after a reset
    for t in range(70):
        before = _state(sc)
        acts = env.heuristic_actions() if t % 3 else rng.uniform(-1, 1, (env.num_slots, 2))
        env.step(acts)
        rew, stats, cue = _reference_step(sc, before, _state(sc))
        np.testing.assert_allclose(sc.reward, rew, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sc.stats, stats, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sc.obs[..., -3:], cue, rtol=1e-4, atol=1e-5)
        frac = np.array([[len(c) / 9 for c in _clusters_reference(sc.world.pos[e], sc.world.active[e],
                                                                  sc.config.link_distance)[1]] for e in range(3)])
        np.testing.assert_allclose(sc.info["cluster_fraction"], frac, rtol=1e-6)
        merged |= bool((sc.largest >= 3).any())
    assert merged and (sc.obs[..., -1] < 1).any()   # clusters formed, and the cue range left some out


def test_metrics_are_the_final_values_and_the_time_mean():
    env = BatchEnv("aggregation", 2, 8, seed=1, max_steps=60, autoreset=False)
    sc = env.scenario
    env.reset()
    fracs = []
    for _ in range(60):
        _, _, _, trunc, info = env.step(env.heuristic_actions())
        sizes = [_clusters_reference(sc.world.pos[e], sc.world.active[e], sc.config.link_distance)[0]
                 for e in range(2)]
        fracs.append([max(s) / 8 for s in sizes])
    assert trunc.all()
    p = sc.world.pos.astype(np.float64)
    d_c = np.linalg.norm(p - p.mean(1, keepdims=True), axis=-1)       # [2, 8]
    fracs = np.array(fracs)
    np.testing.assert_allclose(info["episode_largest"].reshape(2, 8), np.repeat(fracs[-1][:, None], 8, 1),
                               atol=1e-5)
    np.testing.assert_allclose(info["episode_largest_mean"].reshape(2, 8),
                               np.repeat(fracs.mean(0)[:, None], 8, 1), rtol=1e-4)
    np.testing.assert_allclose(info["episode_centroid"].reshape(2, 8), d_c, atol=1e-4)
    np.testing.assert_allclose(info["episode_aggregated"].reshape(2, 8),
                               np.repeat((fracs[-1] == 1.0)[:, None], 8, 1), atol=1e-6)


def test_spawns_are_spread_apart_and_seeded():
    def spawn(seed):
        sc = make_scenario("aggregation", 20, 10, seed)
        sc.reset()
        return sc
    a, b, c = spawn(3), spawn(3), spawn(4)
    assert np.array_equal(a.world.pos, b.world.pos) and not np.array_equal(a.world.pos, c.world.pos)
    p = a.world.pos.astype(np.float64)
    d = np.linalg.norm(p[:, :, None] - p[:, None], axis=-1) + np.eye(10) * 99
    assert d.min() >= 2 * a.config.agent_radius + 0.02 - 1e-5
    extent = p.max(1) - p.min(1)                                      # [E, 2] bounding box of each world
    assert np.median(extent) > 0.5 * a.world.arena                    # spread over the arena, not a block
    assert (a.largest < 10).all() and np.median(a.largest) <= 3       # nobody starts aggregated
    mask = np.zeros((20, 10), bool)
    mask[0, :3] = mask[5, 9] = True
    a.respawn(mask)
    p = a.world.pos[0].astype(np.float64)
    d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(10) * 9
    assert d[:3].min() >= a.config.spawn_spacing - 1e-4 and (a.world.vel[mask] == 0).all()


# ----------------------------------------------------------------------------- behaviour
def test_heuristic_beats_random_on_the_aggregation_metrics():
    from entropy_engine.policies import RandomPolicy
    from entropy_engine.training.config import TrainConfig
    from entropy_engine.training.evaluate import evaluate

    cfg = TrainConfig(scenario="aggregation", n_agents=10, max_episode_steps=300)
    heur = evaluate("heuristic", episodes=10, num_worlds=5, cfg=cfg, seed=3)
    rand = evaluate(RandomPolicy(BatchEnv("aggregation", 1, 10).action_space, 0), episodes=10, num_worlds=5,
                    cfg=cfg, seed=3)
    assert set(heur) >= {"largest_cluster", "largest_cluster_mean", "centroid_distance", "collisions_per_agent",
                         "aggregated_rate"}
    assert heur["largest_cluster"] >= 0.9 and rand["largest_cluster"] <= 0.3, (heur, rand)
    assert heur["aggregated_rate"] >= 0.8 and rand["aggregated_rate"] == 0.0, (heur, rand)
    assert heur["centroid_distance"] < 0.5 * rand["centroid_distance"], (heur, rand)
    assert heur["collisions_per_agent"] < 0.5 * rand["collisions_per_agent"], (heur, rand)


def test_a_lone_robot_explores():
    """With nobody within the cue range the heuristic drives forward (a wide spiral), it does not stop."""
    sc = make_scenario("aggregation", 1, 2, 0)
    obs = np.ones(sc.obs_dim, np.float32)
    obs[32:] = 0.0
    act = sc.heuristic(obs)
    assert act.sum() > 1.0 and act[1] > act[0]


# ----------------------------------------------------------------------------- fuzz
def _check_physical(world, worst):
    r = world.radius
    pos = world.pos.astype(np.float64)
    assert np.isfinite(pos).all() and np.isfinite(world.vel).all()
    assert (pos >= r - 1e-5).all() and (pos <= world.arena - r + 1e-5).all()
    for e in range(world.num_worlds):
        p = pos[e][world.active[e]]
        d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1)) + np.eye(len(p)) * 9
        worst[0] = max(worst[0], 2 * r - d.min())
        a = world.arena
        worst[1] = max(worst[1], r - min(p.min(), (a - p).min()))   # the four border walls


def _adversarial(obs, t):
    """Every robot drives flat out at its nearest neighbour, at the cue centroid, or at the arena
    centre / a corner (by turns)."""
    K = 6
    nb = obs[:, 34:36]
    cue = obs[:, 34 + 5 * K:36 + 5 * K]
    target = nb if t % 40 < 20 else cue
    err = np.arctan2(target[:, 1], target[:, 0])
    turn = np.clip(3 * err, -1, 1)
    if t % 80 >= 60:
        turn[:] = 0.0                                               # straight into whatever is ahead
    return np.stack([1 - turn, 1 + turn], -1).clip(-1, 1).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["random", "adversarial"])
def test_fuzz_crowded(mode):
    """64,000 agent-steps of 40 robots in a 9 m arena stay physical: no NaN, no robot inside a wall
    by more than 0.1 mm or outside the arena, robot overlap below 25 % of a radius (the README's
    tolerance) under random actions and when every robot rams its neighbours."""
    env = BatchEnv("aggregation", 8, 40, seed=11, arena_size=9.0, max_steps=80)
    world = env.scenario.world
    rng = np.random.default_rng(2)
    obs = env.reset()
    worst = [0.0, 0.0]
    for t in range(200):
        acts = rng.uniform(-1.5, 1.5, (320, 2)) if mode == "random" else _adversarial(obs, t)
        obs, rew, *_ = env.step(acts)
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert env.observation_space.contains(obs[rng.integers(320)])
        _check_physical(world, worst)
        if t % 50 == 0:
            _check_clusters(env.scenario)
    assert worst[1] <= 1e-4, f"a robot is inside a wall by {worst[1]:.5f} m"
    assert worst[0] <= 0.25 * world.radius, f"overlap {worst[0]:.4f} m"


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("kw, match", [
    (dict(link_distanse=1.0), "link_distanse"),
    (dict(n_neighbours=0), "n_neighbours must be an integer >= 1"),
    (dict(sense_range=-1.0), "sense_range must be a positive number"),
    (dict(cue_range=2.0), "cue_range \\(2.0\\) must be >= sense_range"),
    (dict(link_distance=0.3), "link_distance must be >= 2 \\* agent_radius"),
    (dict(spawn_spacing=0.3), "spawn_spacing must be >= 2 \\* agent_radius"),
    (dict(cluster_reward=-1.0), "cluster_reward must be a number >= 0"),
    (dict(arena_size=3.0), "too small for 10 agents: the spawn lattice"),
])
def test_bad_configs_are_refused_clearly(kw, match):
    with pytest.raises(ConfigError, match=match):
        make_scenario("aggregation", 2, 10, 0, **kw)


def test_impossible_counts_are_refused():
    with pytest.raises(ConfigError, match="n_agents must be a positive integer"):
        make_scenario("aggregation", 2, 0, 0)
    with pytest.raises(ConfigError, match="aggregation needs n_agents >= 2"):
        make_scenario("aggregation", 2, 1, 0)
    with pytest.raises(ConfigError, match="too small for 200 agents"):
        make_scenario("aggregation", 1, 200, 0, arena_size=12.0)


# ----------------------------------------------------------------------------- entry points
def test_pettingzoo_conformance():
    infos = check_pettingzoo("aggregation", {"collided", "cluster_fraction"})
    assert 0.2 <= infos["robot_0"]["cluster_fraction"] <= 1.0


def test_sb3_vec_env_learns_with_ppo():
    check_sb3_ppo("aggregation", 67)


@pytest.mark.slow
def test_preset_trains_evaluates_and_plays(tmp_path, capsys):
    pytest.importorskip("pygame")
    import json
    import os

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from entropy_engine.cli import main
    from entropy_engine.render.gif import read_gif

    run = tmp_path / "run"
    assert main(["train", "--preset", "aggregation", "--out", str(run), "--total-steps", "2560", "--num-worlds",
                 "2", "--n-agents", "5", "--n-steps", "32", "--batch-size", "160", "--max-episode-steps", "40",
                 "--video-steps", "20", "--video-size", "64", "--tensorboard", "false", "--console", "plain"]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"env/largest_cluster", "env/centroid_distance", "env/aggregated_rate"} <= set(header)
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--episodes", "4", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["scenario"] == "aggregation" and 0.2 <= res["largest_cluster"] <= 1.0 and res["agent_episodes"] == 20
    gif = tmp_path / "play.gif"
    assert main(["play", str(run), "--gif", str(gif), "--size", "64"]) == 0
    assert read_gif(gif).shape[1:] == (64, 64, 3)
    assert "largest_cluster" in capsys.readouterr().out
