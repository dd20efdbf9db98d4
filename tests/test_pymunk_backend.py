"""The pymunk backend against the compiled one: drive model, lidar, contacts, env contract."""
import math
import sys

import numpy as np
import pytest

pymunk = pytest.importorskip("pymunk")

import entropy_engine as ee  # noqa: E402
from entropy_engine import BatchEnv  # noqa: E402
from entropy_engine.core.params import WorldConfig  # noqa: E402
from entropy_engine.core.pymunk_world import PymunkWorld  # noqa: E402
from entropy_engine.core.backends import make_world  # noqa: E402
from entropy_engine.core.world import World  # noqa: E402

DRIVE_POS_TOL = 1e-3  # metres after 100 steps, stated in PymunkWorld's docstring
DRIVE_ANGLE_TOL = 1e-3  # radians


def _lone_agent(backend, steps, actions, theta0=0.3, **cfg):
    world = make_world(WorldConfig(backend=backend, arena_size=60.0, **cfg), 1, 1, 4)
    world.pos[0, 0] = (30.0, 30.0)
    world.theta[0, 0] = theta0
    world.active[0, 0] = True
    world.sync(np.ones(1, np.bool_))
    act = np.array(actions, np.float32).reshape(1, 1, 2)
    trace = []
    for _ in range(steps):
        world.step(act)
        trace.append((*world.pos[0, 0], world.theta[0, 0], *world.vel[0, 0], world.omega[0, 0]))
    return np.array(trace)


def test_make_world_dispatches_to_pymunk():
    assert type(make_world(WorldConfig(backend="pymunk"), 2, 3, 4)) is PymunkWorld
    assert type(make_world(WorldConfig(), 2, 3, 4)) is World


@pytest.mark.parametrize("actions", [(1.0, 1.0), (0.3, 0.8), (-1.0, 1.0), (0.5, -0.2), (-0.7, -0.6)])
def test_constant_wheel_power_moves_like_the_compiled_drive_model(actions):
    a = _lone_agent("numba", 100, actions)
    b = _lone_agent("pymunk", 100, actions)
    assert np.abs(a[:, :2] - b[:, :2]).max() < DRIVE_POS_TOL
    dth = (a[:, 2] - b[:, 2] + np.pi) % (2 * np.pi) - np.pi
    assert np.abs(dth).max() < DRIVE_ANGLE_TOL
    assert np.abs(a[:, 3:] - b[:, 3:]).max() < 1e-3  # velocity and turn rate
    assert np.hypot(*(b[-1, :2] - b[0, :2])) > 0.0 or actions == (-1.0, 1.0)


def test_full_power_reaches_the_documented_top_speed_straight_ahead():
    b = _lone_agent("pymunk", 60, (1.0, 1.0), theta0=0.0)
    assert b[-1, 3] == pytest.approx(1.5, rel=1e-3)  # F / (m c_v) = 1.5 m/s = max_speed
    assert abs(b[-1, 4]) < 1e-6 and abs(b[-1, 1] - 30.0) < 1e-6  # no sideways drift


def _wall_world(lidar, pos, theta, n_agents=1):
    cfg = WorldConfig(backend="pymunk", pymunk_lidar=lidar, arena_size=10.0)
    w = make_world(cfg, 1, n_agents, 4)
    L = 10.0
    w.walls[0, :4] = [(0, 0, L, 0), (L, 0, L, L), (L, L, 0, L), (0, L, 0, 0)]
    w.n_walls[0] = 4
    w.pos[0] = pos
    w.theta[0] = theta
    w.active[0] = True
    w.sync(np.ones(1, np.bool_))
    w.refresh_lidar()
    return w


@pytest.mark.parametrize("lidar", ["pymunk", "compiled"])
def test_lidar_normalisation_heading_and_ccw_order(lidar):
    w = _wall_world(lidar, [(8.5, 5.0)], [0.0])
    R = w.lidar.shape[-1]
    assert w.lidar[0, 0, 0] == pytest.approx(1.5 / 3.0, abs=1e-5)   # ray 0 along the heading (+x)
    assert w.lidar[0, 0, R // 4] == 1.0                             # +y: wall 5 m away, out of range
    w = _wall_world(lidar, [(5.0, 8.0)], [math.pi / 2])
    assert w.lidar[0, 0, 0] == pytest.approx(2.0 / 3.0, abs=1e-5)   # heading +y now
    assert w.lidar[0, 0, R // 4] == 1.0                             # counter-clockwise: ray R/4 is -x (5 m)
    assert w.lidar[0, 0, 3 * R // 4] == 1.0


@pytest.mark.parametrize("lidar", ["pymunk", "compiled"])
def test_lidar_sees_other_robots_but_not_itself(lidar):
    w = _wall_world(lidar, [(4.0, 5.0), (5.0, 5.0)], [0.0, 0.0], n_agents=2)
    assert w.lidar[0, 0, 0] == pytest.approx((1.0 - 0.2) / 3.0, abs=1e-5)  # robot 1's surface
    R = w.lidar.shape[-1]
    assert w.lidar[0, 1, R // 2] == pytest.approx((1.0 - 0.2) / 3.0, abs=1e-5)  # robot 0 behind robot 1
    assert w.lidar[0, 1, 0] == 1.0  # nothing ahead within 3 m (its own disc is ignored)


def test_pymunk_lidar_matches_the_compiled_rays_on_random_layouts():
    env = BatchEnv(num_worlds=4, n_agents=10, seed=5, backend="pymunk", pymunk_lidar="pymunk", n_obstacles=6)
    env.reset()
    w = env.scenario.world
    for _ in range(3):
        env.step(np.random.default_rng(0).uniform(-1, 1, (env.num_slots, 2)))
        ref = w.lidar.copy()
        World.refresh_lidar(w)  # the compiled kernels on the same synced arrays
        assert np.abs(ref - w.lidar).max() < 1e-4
        assert (ref < 1).mean() > 0.1  # there is something to see


def test_walls_stop_robots_and_set_contact():
    w = _wall_world("compiled", [(9.0, 5.0)], [0.0])
    for _ in range(60):
        w.step(np.ones((1, 1, 2), np.float32))
    assert w.contact[0, 0]
    assert 9.75 <= w.pos[0, 0, 0] <= 9.8 + 1e-6  # against the wall at x = 10, not through it
    w.step(-np.ones((1, 1, 2), np.float32))
    for _ in range(5):
        w.step(-np.ones((1, 1, 2), np.float32))
    assert not w.contact[0, 0]


def test_interior_walls_hold_a_robot_driving_into_them():
    w = _wall_world("compiled", [(5.0, 5.0)], [0.0])
    w.walls[0, 3] = (6.0, 3.0, 6.0, 7.0)  # replace the left border by an interior wall at x = 6
    w.sync(np.ones(1, np.bool_))
    deepest = 0.0
    for _ in range(60):
        w.step(np.ones((1, 1, 2), np.float32))
        deepest = max(deepest, float(w.pos[0, 0, 0]) - 5.8)
    assert w.contact[0, 0]
    assert deepest < 0.01  # within 1 cm of touching, never through


def test_resting_against_a_wall_is_not_a_contact():
    w = _wall_world("compiled", [(9.79, 5.0)], [0.0])
    for _ in range(10):
        w.step(np.zeros((1, 1, 2), np.float32))
    assert not w.contact[0, 0]


def test_robots_collide_with_each_other():
    w = _wall_world("compiled", [(4.0, 5.0), (6.0, 5.0)], [0.0, math.pi], n_agents=2)
    touched = False
    for _ in range(40):
        w.step(np.ones((1, 2, 2), np.float32))
        touched |= bool(w.contact[0].all())
        assert np.hypot(*(w.pos[0, 0] - w.pos[0, 1])) > 0.4 - 0.01  # overlap stays within 1 cm
    assert touched


def test_inactive_agents_leave_the_space():
    w = _wall_world("pymunk", [(4.0, 5.0), (5.0, 5.0)], [0.0, 0.0], n_agents=2)
    assert w.lidar[0, 0, 0] < 0.5
    w.active[0, 1] = False  # as the env does when an agent reaches its goal (no sync call)
    w.step(np.zeros((1, 2, 2), np.float32))
    assert w.lidar[0, 0, 0] == 1.0 and (w.lidar[0, 1] == 1.0).all()
    assert len(w._spaces[0].bodies) == 1


@pytest.mark.parametrize("lidar", ["compiled", "pymunk"])
def test_same_seed_same_trajectory(lidar):
    def run():
        env = BatchEnv(num_worlds=3, n_agents=8, seed=9, max_steps=40, backend="pymunk", pymunk_lidar=lidar)
        env.reset()
        rng = np.random.default_rng(1)
        out = []
        for _ in range(90):  # crosses a world reset (new walls) and respawns
            o, r, te, tr, _ = env.step(rng.uniform(-1, 1, (env.num_slots, 2)))
            out.append((o.copy(), r.copy(), te.copy(), tr.copy()))
        return out

    a, b = run(), run()
    assert all(np.array_equal(x, y) for ta, tb in zip(a, b) for x, y in zip(ta, tb))


def test_reset_layout_and_first_observation_match_the_compiled_backend():
    a = BatchEnv(num_worlds=3, n_agents=10, seed=2, backend="pymunk").reset().copy()
    b = BatchEnv(num_worlds=3, n_agents=10, seed=2).reset().copy()
    assert np.array_equal(a, b)


def test_env_contract_and_resets_rebuild_walls():
    env = BatchEnv(num_worlds=2, n_agents=6, seed=0, max_steps=20, backend="pymunk")
    assert env.config.backend == "pymunk"
    obs = env.reset()
    assert obs.shape == (12, 36) and obs.dtype == np.float32
    w = env.scenario.world
    walls0 = [list(s) for s in w._wall_shapes]
    for _ in range(20):
        obs, rew, term, trunc, info = env.step(env.heuristic_actions())
    assert trunc.all() and info["world_done"].all()
    assert all(a is not b for a, b in zip(walls0[0], w._wall_shapes[0]))  # new layout, new segments
    assert np.isfinite(obs).all() and (obs[:, :32] >= 0).all() and (obs[:, :32] <= 1).all()
    assert (np.abs(obs[:, 32:34]) <= 1 + 1e-6).all()
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full((12, 2), np.nan))


def test_heuristic_success_rate_is_similar_on_both_backends():
    def success(backend):
        env = BatchEnv(num_worlds=6, n_agents=10, seed=4, max_steps=250, on_goal="deactivate", backend=backend)
        env.reset()
        done = reached = 0
        for _ in range(500):
            _, _, term, trunc, _ = env.step(env.heuristic_actions())
            done += int((term | trunc).sum())
            reached += int(term.sum())
        return reached / done

    s_numba, s_pymunk = success("numba"), success("pymunk")
    assert s_numba > 0.8 and s_pymunk > 0.8  # measured 0.97 on both
    assert abs(s_numba - s_pymunk) < 0.05


def test_pettingzoo_conformance_on_pymunk():
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    parallel_api_test(ee.parallel_env(n_agents=5, seed=1, max_steps=60, backend="pymunk"), num_cycles=200)
    parallel_seed_test(lambda: ee.parallel_env(n_agents=4, max_steps=30, backend="pymunk"))
    parallel_seed_test(lambda: ee.parallel_env(n_agents=4, max_steps=30, backend="pymunk", pymunk_lidar="pymunk"))


def test_missing_pymunk_gives_an_install_hint(monkeypatch):
    from entropy_engine.core import pymunk_world

    monkeypatch.setitem(sys.modules, "pymunk", None)
    with pytest.raises(ImportError, match=r"entropy-engine\[pymunk\]"):
        pymunk_world.import_pymunk()
