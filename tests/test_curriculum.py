"""Curricula: promotion rules, per-world settings in the kernels, the level sampler, resume, bad configs."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from entropy_engine.config import ConfigError
from entropy_engine.envs.batch import BatchEnv
from entropy_engine.envs.curriculum import CurriculumSpec
from entropy_engine.scenarios import navigation_kernels as nk
from entropy_engine.training.config import resolve_config

SMALL = dict(num_worlds=4, n_agents=4, n_steps=16, seq_len=8, batch_size=64, n_epochs=1, lstm_hidden_size=16,
             encoder_size=16, net_arch=16, max_episode_steps=40, checkpoint_every=0, tensorboard=False,
             videos=False, threads=1, torch_threads=1)
STAGES = {"stages": [{"env": {"n_obstacles": 0, "min_goal_distance": 0.5}, "threshold": 0.2, "window": 8},
                     {"env": {"n_obstacles": 2}, "max_steps": 3000},
                     {"env": {}}]}
LEVELS = {"levels": {"grid": {"n_obstacles": [0, 2, 4]}, "ranges": {"min_goal_distance": [0.5, 2.0, 2]},
                     "uniform_share": 0.25, "stats_window": 50}}


def _stages_spec(thresholds, windows, min_steps, max_steps, at_least=True):
    n = len(thresholds)
    table = tuple((float(i),) for i in range(n))
    return CurriculumSpec("stages", ("n_obstacles",), table, "success", "success_rate", at_least,
                          tuple(thresholds), tuple(windows), tuple(min_steps), tuple(max_steps))


def _curriculum(spec, worlds=3, seed=0):
    env = BatchEnv("navigation", worlds, 2, seed=seed, n_obstacles=4, curriculum=spec)
    return env, env.curriculum


# ------------------------------------------------------------------ promotion rules
def test_promotion_happens_exactly_when_the_window_mean_reaches_the_threshold():
    """Window 4, threshold 0.5: a full window with mean 0.25 does not promote, the next episode that
    lifts it to 0.5 does (in that very call); the new stage starts with an empty window."""
    env, cur = _curriculum(_stages_spec([0.5, 0.75, math.nan], [4, 2, 1], [0, 0, 0], [0, 0, 0]))
    stream = [0, 0, 1, 0]           # mean 0.25 once the window is full
    for v in stream:
        cur.record(np.array([0]), np.array([v], np.float64))
        assert not cur.advance(1) and cur.stage == 0
    cur.record(np.array([1]), np.array([1.0]))      # window now [0, 1, 0, 1] -> 0.5
    assert cur.advance(1) and cur.stage == 1
    assert (cur.levels == 1).all() and (env.scenario._params[:, nk.P_N_OBST] == 1.0).all()
    assert math.isnan(cur.window_mean())             # stage 1 starts with an empty window
    cur.record(np.array([0]), np.array([1.0]))
    assert not cur.advance(1)                        # 1 of 2 episodes: not full yet
    cur.record(np.array([0, 2]), np.array([1.0, 0.0]))  # last two: [1, 0] -> 0.5 < 0.75
    assert not cur.advance(1)
    cur.record(np.array([0]), np.array([1.0]))       # [0, 1] is 0.5; then [1, 1]
    assert not cur.advance(1)
    cur.record(np.array([0]), np.array([1.0]))
    assert cur.advance(1) and cur.stage == 2
    for _ in range(5):                               # the last stage is never left
        cur.record(np.array([0]), np.array([1.0]))
        assert not cur.advance(10**9)
    assert cur.stage == 2


def test_min_steps_delays_and_max_steps_forces_promotion():
    env, cur = _curriculum(_stages_spec([0.5, math.nan, math.nan], [2, 1, 1], [100, 0, 0], [0, 250, 0]))
    cur.record(np.array([0, 0]), np.array([1.0, 1.0]))
    assert not cur.advance(60) and not cur.advance(39)      # 99 agent-steps: too early
    assert cur.advance(1) and cur.stage == 1                # the 100th
    assert not cur.advance(249) and cur.advance(1) and cur.stage == 2   # max_steps, whatever the metric


def test_at_most_rule_promotes_when_the_metric_falls_to_the_threshold():
    env, cur = _curriculum(_stages_spec([0.2, math.nan], [3, 1], [0, 0], [0, 0], at_least=False))
    cur.record(np.array([0, 0, 0]), np.array([1.0, 0.0, 0.0]))   # 0.33 > 0.2
    assert not cur.advance(1)
    cur.record(np.array([0]), np.array([0.0]))                    # [0, 0, 0]
    assert cur.advance(1) and cur.stage == 1


def test_staged_run_promotes_from_the_episodes_the_env_records():
    """Through BatchEnv: the heuristic reaches its goals, its success episodes fill the window and the
    env promotes the stage; every world then runs the new stage's settings."""
    spec = _stages_spec([0.5, math.nan], [20, 1], [0, 0], [0, 0])
    env = BatchEnv("navigation", 4, 4, seed=1, n_obstacles=2, max_steps=200, curriculum=spec)
    env.reset()
    seen = 0
    for _ in range(400):
        env.step(env.heuristic_actions())
        seen += 1
        if env.curriculum.stage == 1:
            break
    assert env.curriculum.stage == 1, env.curriculum.state()
    assert (env.scenario._params[:, nk.P_N_OBST] == 1.0).all()


# ------------------------------------------------------------------ per-world settings
def test_per_world_settings_reach_the_right_worlds():
    """Each world's level sets its wall count, goal distance, active robots and reward weights."""
    spec = CurriculumSpec("levels", ("n_obstacles", "min_goal_distance", "active_fraction", "time_penalty"),
                          ((0.0, 0.5, 1.0, 0.0), (3.0, 4.0, 0.5, 1.0)), "success", "success_rate")
    env = BatchEnv("navigation", 6, 6, seed=3, n_obstacles=4, arena_size=12.0, progress_reward=0.0,
                   curriculum=spec)
    env.reset()
    levels = np.array([0, 1, 1, 0, 1, 0])
    env.curriculum.levels[:] = levels
    env.curriculum._restored = None
    env.curriculum.apply()
    env.scenario.reset()                      # a reset reads the per-world layout settings
    sc, w = env.scenario, env.scenario.world
    np.testing.assert_array_equal(w.n_walls, 4 + np.where(levels == 1, 3, 0))
    np.testing.assert_array_equal(w.active.sum(axis=1), np.where(levels == 1, 3, 6))
    far = np.linalg.norm(sc.goals - w.pos, axis=-1)          # [E, N]
    assert (far[levels == 1][w.active[levels == 1]] >= 4.0).all()
    _, reward, *_ = env.step(np.zeros((36, 2), np.float32))  # standing still: reward = -time_penalty (- contact)
    r = reward.reshape(6, 6)
    touching = w.contact
    expected = -np.where(levels == 1, 1.0, 0.0)[:, None] - 0.5 * touching
    np.testing.assert_allclose(r[w.active], np.broadcast_to(expected, r.shape)[w.active], atol=1e-6)
    assert (r[~w.active] == 0).all()


def test_kernel_reads_each_worlds_row_like_a_one_world_reference():
    """reward_observe over 3 worlds with different reward weights equals three one-world calls."""
    rng = np.random.default_rng(0)
    E, N, R = 3, 2, 8
    p = np.zeros((E, nk.N_PARAMS))
    p[:, nk.P_RADIUS], p[:, nk.P_GOAL_R], p[:, nk.P_VMAX], p[:, nk.P_RANGE], p[:, nk.P_GOAL_SCALE] = 0.2, 0.3, 1.5, 3, 5
    p[:, nk.P_PROGRESS] = [1.0, 2.0, 0.5]
    p[:, nk.P_TIME] = [0.01, 0.5, 0.0]
    p[:, nk.P_COLLISION] = [0.5, 0.0, 3.0]
    p[:, nk.P_PROX], p[:, nk.P_PROX_D] = [0.0, 1.0, 2.0], 0.5
    args = dict(pos=rng.uniform(0, 5, (E, N, 2)).astype(np.float32), vel=rng.normal(size=(E, N, 2)).astype(np.float32),
                theta=rng.uniform(-3, 3, (E, N)).astype(np.float32), goals=rng.uniform(0, 5, (E, N, 2)).astype(np.float32),
                active=np.ones((E, N), bool), contact=rng.uniform(size=(E, N)) < 0.5,
                lidar=rng.uniform(0, 1, (E, N, R)).astype(np.float32))

    def call(sl, params):
        a = {k: v[sl].copy() for k, v in args.items()}
        n = a["pos"].shape[0]
        out = dict(prev=np.zeros((n, N), bool), dist=np.full((n, N), 3.0, np.float32), rew=np.zeros((n, N), np.float32),
                   reached=np.zeros((n, N), bool), stats=np.zeros((2, n, N), np.float32),
                   obs=np.zeros((n, N, R + 4), np.float32))
        nk.reward_observe(a["pos"], a["vel"], a["theta"], a["goals"], a["active"], a["contact"], out["prev"],
                          a["lidar"], params, out["dist"], out["rew"], out["reached"], out["stats"], out["obs"])
        return out["rew"]

    together = call(slice(None), p)
    for w in range(E):
        np.testing.assert_array_equal(together[w], call(slice(w, w + 1), p[w:w + 1])[0])
    assert not np.allclose(together[0], together[1])


def test_no_curriculum_writes_what_the_shaping_scale_wrote_before():
    """Without a curriculum every world runs the configured values; the shaping ramp scales exactly
    the shaping terms (configured value * scale, the old ``set_shaping_scale`` arithmetic)."""
    env = BatchEnv("navigation", 3, 2, seed=0, collision_onset_penalty=20.0, approach_penalty=2.0,
                   proximity_penalty=0.3, goal_reward=20.0)
    assert env.curriculum.spec.kind == "none" and not env.curriculum.active
    env.set_shaping_scale(0.37)
    p = env.scenario._params
    assert (p[:, nk.P_ONSET] == 20.0 * 0.37).all() and (p[:, nk.P_APPROACH] == 2.0 * 0.37).all()
    assert (p[:, nk.P_PROX] == 0.3 * 0.37).all() and (p[:, nk.P_GOAL_BONUS] == 20.0).all()


def test_shaping_ramp_scales_the_level_values_of_the_shaping_terms():
    spec = CurriculumSpec("levels", ("collision_onset_penalty", "goal_reward"), ((4.0, 1.0), (10.0, 2.0)),
                          "success", "success_rate")
    env = BatchEnv("navigation", 4, 2, seed=0, curriculum=spec)
    env.reset()
    env.set_shaping_scale(0.5)
    lv = env.curriculum.levels
    p = env.scenario._params
    np.testing.assert_array_equal(p[:, nk.P_ONSET], np.where(lv == 1, 10.0, 4.0) * 0.5)
    np.testing.assert_array_equal(p[:, nk.P_GOAL_BONUS], np.where(lv == 1, 2.0, 1.0))    # not a shaping term


# a reward weight per scenario whose effect shows under random actions within a few steps: (setting, level values)
PER_WORLD = {"flocking": ("progress_reward", (1.0, 3.0)), "aggregation": ("cluster_reward", (0.5, 2.0)),
             "coverage": ("distance_penalty", (0.05, 0.4)), "rendezvous": ("progress_reward", (0.5, 2.0)),
             "pursuit": ("approach_reward", (0.1, 1.0)), "transport": ("approach_reward", (0.2, 2.0)),
             "foraging": ("search_progress_reward", (0.1, 1.0)), "formation": ("error_penalty", (0.5, 2.0))}


@pytest.mark.parametrize("scenario", sorted(PER_WORLD))
def test_levels_reach_the_right_worlds_in_every_scenario(scenario):
    """The config accepts levels for the scenario; each world gets its level's ``_params`` row and earns
    exactly the rewards of an env configured with its level's value (same seed and actions: the reward
    weight does not change the motion), so worlds on different levels earn different rewards."""
    from entropy_engine.scenarios import scenario_class

    cls = scenario_class(scenario)
    name, values = PER_WORLD[scenario]
    cur = {"levels": {"grid": {name: list(values)}}}
    if cls.success_stat is None:
        cur["metric"] = next(iter(cls.metrics))
    spec = resolve_config(scenario, overrides=dict(curriculum=cur)).curriculum_spec
    assert spec.kind == "levels" and spec.table == ((values[0],), (values[1],))
    E, N, seed = 4, 4, 7
    env = BatchEnv(scenario, E, N, seed=seed, curriculum=spec)
    refs = [BatchEnv(scenario, E, N, seed=seed, **{name: v}) for v in values]
    for e in (env, *refs):
        e.reset()
    levels = np.array([0, 1, 1, 0])
    env.curriculum.levels[:] = levels
    env.curriculum.apply()
    col = cls.settings[name]
    np.testing.assert_array_equal(env.scenario._params[:, col], np.array(values)[levels])
    others = np.delete(env.scenario._params, col, axis=1)
    assert (others == others[:1]).all()                       # nothing else differs between the rows
    rng = np.random.default_rng(0)
    got, want, other = [], [], []
    for _ in range(20):
        a = rng.uniform(-1, 1, (env.num_slots, env.act_dim)).astype(np.float32)
        r = env.step(a)[1].reshape(E, N).copy()              # the envs return views they overwrite
        rr = [ref.step(a)[1].reshape(E, N).copy() for ref in refs]
        got.append(r)
        want.append(np.where(levels[:, None] == 1, rr[1], rr[0]))
        other.append(np.where(levels[:, None] == 1, rr[0], rr[1]))
    np.testing.assert_array_equal(np.array(got), np.array(want))
    for w in range(E):    # the other level's weight would have given other rewards in every world
        assert not np.array_equal(np.array(got)[:, w], np.array(other)[:, w]), (scenario, w)


@pytest.mark.parametrize("scenario, cur, match", [
    ("transport", {"levels": {"grid": {"goal_min_distance": [1.0, 5.0]}}}, r"goal_min_distance must be in \(0, 3.0\]"),
    ("pursuit", {"levels": {"grid": {"evader_power": [0.5, 1.5]}}}, r"evader_power must be in \(0, 1\]"),
    ("rendezvous", {"levels": {"grid": {"team_reward": [-1.0, 1.0]}}}, "team_reward must be >= 0"),
    ("foraging", {"metric": "items_delivered", "levels": {"grid": {"pickup_reward": [-1.0]}}}, "must be >= 0"),
    ("coverage", {"levels": {"grid": {"n_landmark_obs": [2, 3]}}}, "'n_landmark_obs' cannot change during a run"),
])
def test_settings_other_scenarios_cannot_take_are_clear_errors(scenario, cur, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(scenario, overrides=dict(curriculum=cur))


@pytest.mark.parametrize("scenario", ["pursuit", "foraging"])
def test_shaping_ramp_scales_the_shaping_terms_of_every_world(scenario):
    """Pursuit and foraging ramp their shaping terms through the common ``write_settings`` path:
    configured value * scale in every world's row, the other settings untouched."""
    env = BatchEnv(scenario, 3, 4, seed=0)
    sc = env.scenario
    before = sc._params.copy()
    env.set_shaping_scale(0.25)
    cols = sc.setting_columns(sc.shaping_terms)
    want = np.array([getattr(sc.config, n) for n in sc.shaping_terms]) * 0.25
    assert len(cols) and (want > 0).all()
    np.testing.assert_array_equal(sc._params[:, cols], np.broadcast_to(want, (3, len(cols))))
    np.testing.assert_array_equal(np.delete(sc._params, cols, axis=1), np.delete(before, cols, axis=1))


def test_scenarios_reading_one_row_for_all_worlds_refuse_rows_that_differ():
    """Every built-in scenario reads its settings per world; a scenario added without per-world settings
    (``_params`` [P], one row for all worlds: here formation's row made so) refuses rows that differ."""
    env = BatchEnv("formation", 2, 3, seed=0)
    env.scenario._params = env.scenario._params[0].copy()
    cols = env.scenario.setting_columns(["collision_penalty"])
    env.scenario.write_settings(cols, np.array([[1.5], [1.5]]))
    with pytest.raises(ValueError, match="cannot differ per world"):
        env.scenario.write_settings(cols, np.array([[1.0], [2.0]]))


# ------------------------------------------------------------------ the level sampler
def test_sampler_probabilities_follow_learnability():
    spec = CurriculumSpec("levels", ("n_obstacles",), ((0.0,), (1.0,), (2.0,), (3.0,)), "success", "success_rate",
                          uniform_share=0.2, stats_window=1000)
    env, cur = _curriculum(spec, worlds=8)
    # never seen: p = 0.5 everywhere, uniform
    np.testing.assert_allclose(cur.probabilities(), 0.25)
    # level 0 always succeeds, 1 half, 2 never, 3 unseen
    worlds = np.arange(8)
    cur.levels[:] = [0, 0, 1, 1, 2, 2, 0, 1]
    for _ in range(50):
        cur.record(worlds[:6], np.array([1, 1, 1, 0, 0, 0], np.float64))
    keep = (1 - 1 / 1000) ** 2
    n = sum(keep ** k for k in range(50)) * 2          # decayed counts: 2 episodes per level per call
    np.testing.assert_allclose(cur.count[:3], n)
    np.testing.assert_allclose(cur.total[:3], [n, n / 2, 0.0])
    p = (cur.total + 0.5) / (cur.count + 1)
    learn = p * (1 - p)
    expected = 0.8 * learn / learn.sum() + 0.2 / 4
    np.testing.assert_allclose(cur.probabilities(), expected)
    assert expected[1] > expected[0] and expected[3] > expected[2]          # learnable levels first
    # draws follow the probabilities (many resets of 8 worlds from the curriculum's stream)
    counts = np.zeros(4)
    mask = np.ones(8, bool)
    from entropy_engine.envs.curriculum import draw_levels

    for _ in range(5000):
        draw_levels(cur.rng, np.cumsum(cur.probabilities()), mask, cur.levels)
        counts += np.bincount(cur.levels, minlength=4)
    freq = counts / counts.sum()
    np.testing.assert_allclose(freq, expected, atol=0.01)


def test_top_k_keeps_learnability_only_for_the_most_learnable_levels():
    table = ((0.0,), (1.0,), (2.0,), (3.0,), (4.0,))
    spec = CurriculumSpec("levels", ("n_obstacles",), table, "success", "success_rate", uniform_share=0.1,
                          stats_window=1000, top_k=2)
    env, cur = _curriculum(spec, worlds=5)
    np.testing.assert_allclose(cur.probabilities(), 0.2)       # all unseen: a tie at the top, every level kept
    cur.levels[:] = [0, 1, 2, 3, 4]
    for _ in range(40):                                        # success 0.5, 0.3, 0.1, 0.9, 0.0 per level
        for lv, rate in enumerate((0.5, 0.3, 0.1, 0.9, 0.0)):
            cur.record(np.array([lv]), np.array([rate]))
    p = (cur.total + 0.5) / (cur.count + 1)
    learn = p * (1 - p)
    top = np.argsort(-learn)[:2]
    assert set(top) == {0, 1}                                  # p 0.5 and 0.3 are the most learnable
    kept = np.zeros(5)
    kept[top] = learn[top]
    expected = 0.9 * kept / kept.sum() + 0.1 / 5
    np.testing.assert_allclose(cur.probabilities(), expected)
    assert np.all(cur.probabilities()[[2, 3, 4]] == pytest.approx(0.02))   # the rest: the uniform share only
    # without top_k every level keeps its learnability
    cur.spec = dataclasses.replace(spec, top_k=0)
    np.testing.assert_allclose(cur.probabilities(), 0.9 * learn / learn.sum() + 0.1 / 5)
    # the config: top_k travels into the spec; a negative one is refused
    cfg = resolve_config("default", overrides=dict(SMALL, curriculum={"levels": {**LEVELS["levels"], "top_k": 3}}))
    assert cfg.curriculum_spec.top_k == 3
    with pytest.raises(ConfigError, match="top_k >= 0"):
        resolve_config("default", overrides=dict(SMALL, curriculum={"levels": {**LEVELS["levels"], "top_k": -1}}))


def test_target_share_draws_the_full_task_and_adds_it_when_the_grid_lacks_it():
    # the full task (the env's n_obstacles 4, min_goal_distance 2.0) is not in the grid: added as the last level
    levels = {"grid": {"n_obstacles": [0, 2]}, "ranges": {"min_goal_distance": [0.5, 1.0, 2]}, "uniform_share": 0.2,
              "target_share": 0.3, "stats_window": 1000}
    cfg = resolve_config("default", overrides=dict(SMALL, env={"n_obstacles": 4, "min_goal_distance": 2.0},
                                                   curriculum={"levels": levels}))
    spec = cfg.curriculum_spec
    assert spec.n_levels == 5 and spec.target_level == 4 and spec.table[4] == (4.0, 2.0), spec
    # in the grid already: no new level, the target is that row
    cfg2 = resolve_config("default", overrides=dict(SMALL, env={"n_obstacles": 2, "min_goal_distance": 1.0},
                                                    curriculum={"levels": levels}))
    assert cfg2.curriculum_spec.n_levels == 4 and cfg2.curriculum_spec.table[cfg2.curriculum_spec.target_level] == (2.0, 1.0)
    env = BatchEnv("navigation", 8, 2, seed=0, curriculum=spec, **cfg.env_kwargs)
    cur = env.curriculum
    np.testing.assert_allclose(cur.probabilities(), [0.14, 0.14, 0.14, 0.14, 0.44])   # unseen: 0.7 / 5 + 0.3
    cur.levels[:] = [0, 1, 2, 3, 4, 0, 1, 2]
    for _ in range(30):                                  # success 1, 0.5, 0, 0.5 and 0 on the full task
        cur.record(np.arange(5), np.array([1.0, 0.5, 0.0, 0.5, 0.0]))
    p = cur.success_estimates()
    learn = p * (1 - p)
    expected = 0.5 * learn / learn.sum() + 0.2 / 5
    expected[4] += 0.3
    np.testing.assert_allclose(cur.probabilities(), expected)
    assert cur.probabilities().sum() == pytest.approx(1.0)


def test_levels_are_drawn_per_world_at_reset_and_recorded_per_level():
    cfg = resolve_config("default", overrides=dict(SMALL, curriculum=LEVELS))
    env = BatchEnv("navigation", 16, 4, seed=5, curriculum=cfg.curriculum_spec, **cfg.env_kwargs)
    env.reset()
    first = env.curriculum.levels.copy()
    assert len(set(first.tolist())) > 1                      # worlds on different levels in one batch
    table = env.curriculum.table
    np.testing.assert_array_equal(env.scenario._params[:, nk.P_N_OBST], table[first, 0])
    np.testing.assert_array_equal(env.scenario._params[:, nk.P_MIN_GOAL_D], table[first, 1])
    for _ in range(200):
        env.step(env.heuristic_actions())
    assert env.curriculum.episodes.sum() > 0 and env.curriculum.count.sum() > 0
    assert not np.array_equal(env.curriculum.levels, first)   # worlds that reset drew again


# ------------------------------------------------------------------ checkpoints and resume
def _trainer(cur, **over):
    from entropy_engine.training.native import NativeTrainer

    return NativeTrainer(resolve_config("default", overrides=dict(SMALL, total_steps=100_000, curriculum=cur,
                                                                  **over)))


@pytest.mark.parametrize("cur", [STAGES, LEVELS], ids=["stages", "levels"])
def test_resume_from_a_checkpoint_file_continues_exactly(tmp_path, cur):
    """A trainer restored from a checkpoint file and the trainer that wrote it (restored from the same
    file) continue identically: curriculum state, levels drawn and weights."""
    from entropy_engine.training.checkpoint import load_torch_checkpoint, save_torch_checkpoint

    a = _trainer(cur)
    for _ in range(6):
        a.train_iteration()
    saved = a.curriculum.state()
    assert saved["episodes"] and sum(saved["episodes"]) > 0
    path = save_torch_checkpoint(tmp_path / "checkpoint.zip", a.state_dict())
    state = load_torch_checkpoint(path)
    assert state["curriculum"] == saved
    b = _trainer(cur)
    b.load_state_dict(state)
    assert b.curriculum.state() == saved
    a.load_state_dict(load_torch_checkpoint(path))
    for _ in range(4):
        a.train_iteration()
        b.train_iteration()
        assert a.curriculum.state() == b.curriculum.state()
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    a.close()
    b.close()


def test_a_checkpoint_of_another_curriculum_is_refused():
    from entropy_engine.training.checkpoint import CheckpointError, check_compatible
    from entropy_engine.training.config import config_dict

    a = resolve_config("default", overrides=dict(SMALL, curriculum=STAGES))
    b = resolve_config("default", overrides=dict(SMALL, curriculum=LEVELS))
    with pytest.raises(CheckpointError, match="curriculum"):
        check_compatible(config_dict(a), config_dict(b))
    tr = _trainer(STAGES)
    with pytest.raises(ValueError, match="curriculum"):
        tr.curriculum.load_state(_trainer(LEVELS).curriculum.state())
    tr.close()


def test_sb3_checkpoint_carries_the_curriculum_state(tmp_path):
    from entropy_engine.runs.files import run_layout
    from entropy_engine.training.sb3_trainer import (curriculum_of, load_sb3_checkpoint, make_env, make_model,
                                                     save_sb3_checkpoint, train_sb3)

    cfg = resolve_config("default", overrides=dict(SMALL, algo="sb3", encoder_size=0, total_steps=1024,
                                                   curriculum=LEVELS))
    paths = run_layout(tmp_path / "run")
    env = make_env(cfg)
    try:
        model = make_model(cfg, env)
        logged = {}
        train_sb3(cfg, paths, log=lambda step, m: logged.update(m), model=model)
        assert "curriculum/mean_n_obstacles" in logged
        saved = curriculum_of(env).state()
        save_sb3_checkpoint(model, paths.checkpoint_file, cfg)
        env2 = make_env(cfg)
        try:
            load_sb3_checkpoint(paths.checkpoint_file, env2, cfg)
            env2.reset()                                    # the seeded first reset keeps the restored state
            assert curriculum_of(env2).state() == saved
        finally:
            env2.close()
    finally:
        env.close()


@pytest.mark.slow
def test_sigkill_then_resume_a_staged_run_and_the_model_records_the_curriculum(tmp_path):
    """A real staged training process killed after a checkpoint resumes with that checkpoint's
    curriculum state and ends exactly; metrics.csv has the stage; the final model names the curriculum."""
    import signal

    from entropy_engine.training.checkpoint import load_torch_checkpoint

    out = tmp_path / "run"
    ckpt = out / "checkpoints" / "checkpoint.zip"
    conf = tmp_path / "c.yaml"
    import yaml

    conf.write_text(yaml.safe_dump({"curriculum": STAGES}))
    total = 40_000
    cmd = [sys.executable, "-m", "entropy_engine.cli", "train", "--config", str(conf), "--out", str(out),
           "--total-steps", str(total), "--checkpoint-every", "2048", "--console", "plain", "--num-worlds", "4",
           "--n-agents", "4", "--n-steps", "16", "--seq-len", "8", "--batch-size", "64", "--n-epochs", "1",
           "--lstm-hidden-size", "16", "--net-arch", "16", "--max-episode-steps", "40", "--tensorboard", "false",
           "--videos", "false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not ckpt.exists():
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = load_torch_checkpoint(ckpt)
    assert saved["curriculum"]["kind"] == "stages"
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Resuming from checkpoint at {saved['num_timesteps']} steps" in r.stdout
    assert f"after {total} steps" in r.stdout
    assert "stage " in r.stdout                             # the console line shows the stage
    import csv

    rows = list(csv.DictReader(open(out / "metrics.csv")))
    stages = [float(row["curriculum/stage"]) for row in rows if row.get("curriculum/stage")]
    assert stages and stages == sorted(stages)              # the stage never goes back, across the resume
    from entropy_engine.training.model_file import load_model

    _, config = load_model(out / "models" / "model.pt")
    assert config["curriculum"]["stages"][0]["env"] == {"n_obstacles": 0, "min_goal_distance": 0.5}


# ------------------------------------------------------------------ eval at full difficulty
def test_eval_uses_the_last_stage_unless_env_says_otherwise():
    from entropy_engine.training.config import config_dict
    from entropy_engine.training.evaluate import full_difficulty

    stored = config_dict(resolve_config("default", overrides=dict(SMALL, env={"n_obstacles": 6}, curriculum={
        "stages": [{"env": {"n_obstacles": 0}, "threshold": 0.5}, {"env": {"n_obstacles": 5}}]})))
    assert full_difficulty(stored).env["n_obstacles"] == 5
    assert full_difficulty(stored, {"n_obstacles": 2}).env["n_obstacles"] == 2
    levels = config_dict(resolve_config("default", overrides=dict(SMALL, env={"n_obstacles": 6}, curriculum=LEVELS)))
    assert full_difficulty(levels).env["n_obstacles"] == 6          # levels: the env table is the full task
    staged = resolve_config("default", overrides=dict(SMALL, env={"n_obstacles": 6}, curriculum={
        "stages": [{"env": {"n_obstacles": 0}, "threshold": 0.5}, {"env": {"n_obstacles": 5}}]}))
    assert staged.eval_env_kwargs["n_obstacles"] == 5             # the GIFs' env: the last stage


def test_console_line_shows_the_stage_and_the_level_means():
    from entropy_engine.runs.console import Clock, PlainView

    view = PlainView(Clock(1000))
    assert "stage 2" in view.line(10, {"curriculum/stage": 2.0})
    line = view.line(10, {"curriculum/mean_n_obstacles": 7.5, "curriculum/level0_p": 0.25})
    assert "mean_n_obstacles 7.5" in line and "level0" not in line


# ------------------------------------------------------------------ bad configs
@pytest.mark.parametrize("cur, match", [
    ({"stages": [{"env": {"n_obstacles": 1}, "threshold": 0.5, "windw": 3}, {"env": {}}]}, "windw"),
    ({"stagez": []}, "stagez"),
    ({"stages": [{"env": {"n_obstacles": 1}, "threshold": 1.5}, {"env": {}}]}, r"threshold must be in \[0, 1\]"),
    ({"stages": [{"env": {"n_obstacles": 1}, "threshold": -0.1}, {"env": {}}]}, "threshold"),
    ({"stages": [{"env": {"n_rays": 16}, "threshold": 0.5}, {"env": {}}]}, "'n_rays' cannot change during a run"),
    ({"stages": [{"env": {"n_agents": 5}, "threshold": 0.5}, {"env": {}}]}, "no setting 'n_agents'"),
    ({"stages": [{"env": {"wall_count": 5}, "threshold": 0.5}, {"env": {}}]}, "no setting 'wall_count'"),
    ({"stages": [{"env": {"n_obstacles": 9}, "threshold": 0.5}, {"env": {}}]}, r"n_obstacles must be an integer in \[0, 4\]"),
    ({"stages": [{"env": {"n_obstacles": 1.5}, "threshold": 0.5}, {"env": {}}]}, "n_obstacles must be an integer"),
    ({"stages": [{"env": {"obstacle_max_length": 5.0}, "threshold": 0.5}, {"env": {}}]}, "obstacle_max_length"),
    ({"stages": [{"env": {"active_fraction": 0.0}, "threshold": 0.5}, {"env": {}}]}, "active_fraction"),
    ({"stages": [{"env": {"n_obstacles": 1}}, {"env": {}}]}, "never leaves this stage"),
    ({"stages": [{"env": {"n_obstacles": 1}, "min_steps": 10, "max_steps": 5}, {"env": {}}]}, "below min_steps"),
    ({"stages": [{"env": {"n_obstacles": 1}, "threshold": 0.5, "window": 0}, {"env": {}}]}, "window >= 1"),
    ({"stages": [{"env": {"goal_reward": float("nan")}, "threshold": 0.5}, {"env": {}}]}, "finite"),
    ({"metric": "nope", "stages": [{"env": {}, "threshold": 0.5}, {"env": {}}]}, "not a metric"),
    ({"compare": ">", "stages": [{"env": {}, "threshold": 0.5}]}, "compare"),
    ({"stages": [{"env": {}, "threshold": 0.5}], "levels": {"grid": {"n_obstacles": [0]}}}, "exactly one"),
    ({"levels": {"grid": {"n_obstacles": []}}}, "non-empty list"),
    ({"levels": {"grid": {"n_obstacles": [0, 8]}}}, r"n_obstacles must be an integer in \[0, 4\]"),
    ({"levels": {"ranges": {"min_goal_distance": [3.0, 1.0, 3]}}}, "low < high"),
    ({"levels": {"grid": {"n_obstacles": [0]}, "uniform_share": 1.5}}, "uniform_share"),
    ({"levels": {"grid": {"n_obstacles": [0]}, "mix": 0.5}}, "mix"),
    ({"levels": {"grid": {"n_obstacles": [0]}, "target_share": 0.9}}, "with a sum <= 1"),
    ({"levels": {"grid": {"n_obstacles": [0]}, "target_share": -0.1}}, "target_share"),
    ("{not json", "JSON"),
])
def test_bad_curriculum_configs_are_clear_errors_before_training(cur, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config("default", overrides=dict(curriculum=cur))


def test_levels_need_per_world_settings_and_curricula_need_one_process(monkeypatch):
    from entropy_engine.scenarios.formation import Formation

    monkeypatch.setattr(Formation, "per_world_settings", False)   # a scenario with one row of settings for all worlds
    with pytest.raises(ConfigError, match="per-world settings"):
        resolve_config("formation", overrides=dict(curriculum={"metric": "formation_error",
                                                               "levels": {"grid": {"collision_penalty": [1, 2]}}}))
    with pytest.raises(ConfigError, match="workers 0 or 1"):
        resolve_config("default", overrides=dict(workers=2, curriculum=LEVELS))
    # a stage curriculum for a scenario with one row of settings for all worlds is fine
    cfg = resolve_config("formation", overrides=dict(curriculum={"metric": "formation_error", "compare": "<=",
                                                                 "stages": [{"env": {"collision_penalty": 0.1},
                                                                             "threshold": 0.5}, {"env": {}}]}))
    assert cfg.curriculum_spec.kind == "stages"


def test_curriculum_from_files_and_the_command_line(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("""
[train]
total_steps = 1000
[train.curriculum]
metric = "success_rate"
[[train.curriculum.stages]]
env = { n_obstacles = 0 }
threshold = 0.8
window = 50
[[train.curriculum.stages]]
env = {}
[train.env]
n_obstacles = 4
""")
    cfg = resolve_config("default", toml)
    assert cfg.curriculum_spec.table == ((0.0,), (4.0,)) and cfg.curriculum_spec.windows == (50, 100)
    cli = resolve_config("default", overrides=dict(curriculum=json.dumps(LEVELS)))
    assert cli.curriculum_spec.n_levels == 6
    assert resolve_config("default", overrides=dict(curriculum="{}")).curriculum == {}
    assert resolve_config("default").curriculum_spec is None
    # switching scenario drops the previous scenario's curriculum, as it drops its env table
    from entropy_engine.training.config import _layer

    assert _layer(cli, {"scenario": "flocking"}).curriculum == {}


def test_hard_navigation_presets_build_their_curricula():
    from entropy_engine.training.config import preset

    full = preset("hard_navigation")
    staged = preset("hard_navigation_staged").curriculum_spec
    assert staged.kind == "stages" and staged.n_levels == 3
    last = dict(zip(staged.names, staged.table[-1]))       # the last stage is the full task (the env table)
    assert all(last[n] == float(getattr(full.scenario_config, n)) for n in staged.names)
    assert dict(zip(staged.names, staged.table[0]))["n_obstacles"] == 0
    levels = preset("hard_navigation_levels").curriculum_spec
    assert (levels.kind, levels.n_levels, levels.top_k) == ("levels", 12, 3)
    assert (12.0, 6.0, 20.0) in levels.table                 # the full task is one of the levels


def test_compare_statistics_by_hand():
    from entropy_engine.training.curriculum_compare import pair_wins, permutation_p

    # 4 values into two groups of 2: 6 splits; only the observed one has a difference of means >= 2
    assert permutation_p([3.0, 4.0], [1.0, 2.0]) == pytest.approx(1 / 6)
    assert permutation_p([1.0, 2.0], [3.0, 4.0]) == pytest.approx(1.0)       # every split is at least as far
    assert permutation_p([1.0, 4.0], [2.0, 3.0]) == pytest.approx(4 / 6)     # difference 0: 4 splits reach it
    assert pair_wins([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert pair_wins([1.0, 2.0], [2.0, 3.0]) == pytest.approx(0.125)          # one tie of four pairs


def test_goal_radius_levels_make_the_goal_larger_per_world():
    """``goal_radius`` as a navigation setting: the worlds drawn on the large-goal level end their
    robots' episodes at once (every goal is within 50 m), the others do not; 0 is a clear error."""
    from entropy_engine.scenarios import navigation_kernels as nk

    spec = resolve_config("default", overrides=dict(curriculum={"levels": {"grid": {"goal_radius": [0.3, 50.0]}}})
                          ).curriculum_spec
    env = BatchEnv("navigation", 4, 3, seed=3, curriculum=spec)
    env.reset()
    levels = np.array([1, 0, 0, 1])
    env.curriculum.levels[:] = levels
    env.curriculum.apply()
    np.testing.assert_array_equal(env.scenario._params[:, nk.P_GOAL_R], np.where(levels == 1, 50.0, 0.3))
    term = env.step(np.zeros((env.num_slots, env.act_dim), np.float32))[2].reshape(4, 3)
    np.testing.assert_array_equal(term, np.repeat(levels[:, None] == 1, 3, axis=1))
    with pytest.raises(ConfigError, match="goal_radius must be > 0"):
        resolve_config("default", overrides=dict(curriculum={"levels": {"grid": {"goal_radius": [0.0, 1.0]}}}))
