"""Navigation reward terms: collision onset, proximity and approach penalties (zero where they should be)."""
import math

import numpy as np
import pytest

from entropy_engine.scenarios import navigation_kernels as nk
from entropy_engine.scenarios.navigation import Navigation, NavigationConfig

RANGE, RADIUS, VMAX, D0 = 3.0, 0.2, 1.5, 0.3


def _params(onset=0.0, prox=0.0, approach=0.0, d0=D0):
    p = np.zeros(nk.N_PARAMS, np.float64)
    p[nk.P_RADIUS], p[nk.P_GOAL_R], p[nk.P_VMAX], p[nk.P_RANGE] = RADIUS, 0.3, VMAX, RANGE
    p[nk.P_PROGRESS], p[nk.P_GOAL_BONUS], p[nk.P_COLLISION], p[nk.P_TIME] = 1.0, 10.0, 0.5, 0.01
    p[nk.P_ONSET], p[nk.P_PROX], p[nk.P_PROX_D], p[nk.P_APPROACH] = onset, prox, d0, approach
    return p[None]       # [E=1, P]: the kernels read world w's settings from row w


def _reward(p, lidar, vel=(0.0, 0.0), theta=0.0, contact=False, prev_contact=None):
    """One agent at the origin, goal 5 m away (no progress, no goal): returns (reward, prev_contact)."""
    pos = np.zeros((1, 1, 2), np.float32)
    goals = np.array([[[5.0, 0.0]]], np.float32)
    dist = np.array([[5.0]], np.float32)
    prev = np.zeros((1, 1), np.bool_) if prev_contact is None else prev_contact
    rew = np.zeros((1, 1), np.float32)
    reached = np.zeros((1, 1), np.bool_)
    stats = np.zeros((2, 1, 1), np.float32)
    onset = bool(contact) and not prev[0, 0]
    obs = np.zeros((1, 1, len(lidar) + 4), np.float32)
    nk.reward_observe(pos, np.array([[vel]], np.float32), np.array([[theta]], np.float32), goals,
                      np.ones((1, 1), np.bool_), np.array([[contact]]), prev, np.asarray(lidar, np.float32)[None, None],
                      p, dist, rew, reached, stats, obs)
    assert stats[1, 0, 0] == float(onset)     # the collisions statistic counts contact onsets
    return float(rew[0, 0]), prev


def _lidar(gap_ray0=None, n_rays=8):
    lid = np.ones(n_rays, np.float32)
    if gap_ray0 is not None:
        lid[0] = (RADIUS + gap_ray0) / RANGE
    return lid


def test_clearance_terms_zero_without_close_hits():
    base, _ = _reward(_params(), _lidar())
    assert base == pytest.approx(-0.01)
    r, _ = _reward(_params(prox=1.0, approach=1.0), _lidar(gap_ray0=0.5), vel=(VMAX, 0.0))  # hit beyond d0
    assert r == pytest.approx(base)


def test_proximity_penalty_scales_with_gap():
    base, _ = _reward(_params(), _lidar())
    r, _ = _reward(_params(prox=0.6), _lidar(gap_ray0=0.1))
    assert r == pytest.approx(base - 0.6 * (1 - 0.1 / D0), abs=1e-5)
    r0, _ = _reward(_params(prox=0.6), _lidar(gap_ray0=0.0))
    assert r0 == pytest.approx(base - 0.6, abs=1e-5)


def test_approach_penalty_only_when_moving_towards_the_hit():
    base, _ = _reward(_params(), _lidar())
    p = _params(approach=1.0)
    towards, _ = _reward(p, _lidar(gap_ray0=0.1), vel=(VMAX, 0.0))
    assert towards == pytest.approx(base - (1 - 0.1 / D0), abs=1e-5)
    away, _ = _reward(p, _lidar(gap_ray0=0.1), vel=(-VMAX, 0.0))
    assert away == pytest.approx(base)
    sideways, _ = _reward(p, _lidar(gap_ray0=0.1), vel=(0.0, VMAX))
    assert sideways == pytest.approx(base, abs=1e-6)
    # ray 0 follows the heading: facing +y, the hit of ray 0 is along +y
    turned, _ = _reward(p, _lidar(gap_ray0=0.1), vel=(0.0, VMAX), theta=math.pi / 2)
    assert turned == pytest.approx(towards, abs=1e-5)


def test_collision_onset_penalty_once_per_contact():
    p = _params(onset=3.0)
    first, prev = _reward(p, _lidar(), contact=True)
    assert first == pytest.approx(-0.01 - 0.5 - 3.0) and prev[0, 0]
    second, prev = _reward(p, _lidar(), contact=True, prev_contact=prev)
    assert second == pytest.approx(-0.01 - 0.5)
    off, prev = _reward(p, _lidar(), contact=False, prev_contact=prev)
    assert off == pytest.approx(-0.01) and not prev[0, 0]


@pytest.mark.parametrize("terms", [{}, {"proximity_penalty": 1.0, "approach_penalty": 1.0}])
def test_scenario_two_robots_head_on(terms):
    """In a live world, two robots driving at each other 0.3 m apart pay the clearance terms only when enabled."""
    cfg = NavigationConfig(n_obstacles=0, arena_size=10.0, **terms)
    sc = Navigation(cfg, 1, 2, seed=0)
    sc.reset()
    w = sc.world
    w.pos[0] = [[4.0, 5.0], [4.7, 5.0]]
    w.theta[0] = [0.0, math.pi]
    w.vel[0] = 0.0
    sc.goals[0] = [[4.0, 8.0], [4.7, 8.0]]   # straight up: driving at each other is no progress
    sc._refresh()
    sc.step(np.full((1, 2, 2), 0.5, np.float32))
    assert not w.contact.any()
    no_terms = cfg.progress_reward * (3.0 - sc.dist) - cfg.time_penalty   # progress and time only
    if terms:
        assert (sc.reward < no_terms - 0.05).all(), (sc.reward, no_terms)
    else:
        np.testing.assert_allclose(sc.reward, no_terms, atol=1e-5)


def _head_on_reward(sc, scale=None):
    """Reward of two robots 0.7 m apart driving at each other, from the same start every call."""
    if scale is not None:
        sc.set_shaping_scale(scale)
    sc.reset()
    w = sc.world
    w.pos[0] = [[4.0, 5.0], [4.7, 5.0]]
    w.theta[0] = [0.0, math.pi]
    w.vel[0] = 0.0
    sc.goals[0] = [[4.0, 8.0], [4.7, 8.0]]
    sc._refresh()
    sc.dist[:] = 3.0
    sc.step(np.full((1, 2, 2), 0.5, np.float32))
    return sc.reward.copy()


@pytest.mark.parametrize("env_kind", ["batch", "workers"])
def test_shaping_scale_scales_only_the_shaping_terms(env_kind):
    """set_shaping_scale(s) multiplies the clearance/onset terms by s (linear in s), through
    BatchEnv and through worker processes; a bad scale is an error."""
    from entropy_engine.envs.shm import make_batch_env

    terms = dict(n_obstacles=0, arena_size=10.0, proximity_penalty=1.0, approach_penalty=1.0,
                 collision_onset_penalty=5.0)
    sc = Navigation(NavigationConfig(**terms), 1, 2, seed=0)
    full, none, half = (_head_on_reward(sc, s) for s in (1.0, 0.0, 0.5))
    assert (full < none - 0.05).all()
    np.testing.assert_allclose(half, (full + none) / 2, atol=1e-5)
    assert sc._params[0, nk.P_ONSET] == pytest.approx(2.5)
    with pytest.raises(ValueError, match="shaping scale"):
        sc.set_shaping_scale(float("nan"))
    # a 4 m arena: every robot is within 2.5 m of a wall, so the proximity term always acts
    env = make_batch_env("navigation", 2, 2, seed=0, workers=2 if env_kind == "workers" else 0, n_obstacles=0,
                         arena_size=4.0, proximity_penalty=1.0, proximity_distance=2.5)
    try:
        rewards = {}
        for s in (0.0, 1.0, 0.5):
            env.set_shaping_scale(s)
            env.reset(seed=0)
            rewards[s] = env.step(np.full((4, 2), 0.7, np.float32))[1].copy()
        assert (rewards[1.0] < rewards[0.0] - 0.01).all(), rewards
        np.testing.assert_allclose(rewards[0.5], (rewards[0.0] + rewards[1.0]) / 2, atol=1e-5)
        with pytest.raises(ValueError, match="shaping scale"):
            env.set_shaping_scale(-1.0)
    finally:
        getattr(env, "close", lambda: None)()


def test_shaping_warmup_schedule():
    from entropy_engine.config import ConfigError
    from entropy_engine.training.config import resolve_config

    cfg = resolve_config("default", overrides=dict(total_steps=1000, shaping_warmup=0.5))
    assert [cfg.shaping_scale(s) for s in (0, 250, 500, 900)] == [0.0, 0.5, 1.0, 1.0]
    assert resolve_config("seed").shaping_scale(0) == 1.0
    with pytest.raises(ConfigError, match="shaping_warmup"):
        resolve_config("default", overrides=dict(shaping_warmup=1.5))
