"""Movable objects (core/objects.py, core/object_kernels.py): the compiled step against the numpy
reference, worlds without (active) objects unchanged, pushing needs enough robots, walls hold
objects, the lidar sees them, a pymunk comparison of a robot pushing a disc along a wall, and clear
errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

from entropy_engine.config import ConfigError
from entropy_engine.core.object_reference import object_step_reference
from entropy_engine.core.objects import GRAVITY
from entropy_engine.core.params import WorldConfig
from entropy_engine.core.reference import ray_hit_circle, ray_hit_segment
from entropy_engine.core.world import World


def _box(L):
    return [(0, 0, L, 0), (L, 0, L, L), (L, L, 0, L), (0, L, 0, 0)]


def _scene(seed, n_agents=10, n_obj=4, num_worlds=3, arena=7.0, walls=True, max_objects=None):
    """Random robots and objects (radius 0.25-0.6 m, mass 0.5-6 kg, friction 0-0.1) among walls."""
    w = World(WorldConfig(arena_size=arena), num_worlds, n_agents, max_walls=7,
              max_objects=n_obj if max_objects is None else max_objects)
    rng = np.random.default_rng(seed)
    L = arena
    M = w.objects.max_objects
    opos = np.zeros((num_worlds, M, 2))
    for e in range(num_worlds):
        segs = _box(L)
        if walls:
            for _ in range(3):
                c = rng.uniform(1, L - 1, 2)
                a = rng.uniform(0, np.pi)
                h = rng.uniform(0.3, 1.2) * np.array([np.cos(a), np.sin(a)])
                segs.append((*(c - h), *(c + h)))
        w.walls[e, :len(segs)] = segs
        w.n_walls[e] = len(segs)
        w.pos[e] = rng.uniform(0.3, L - 0.3, (n_agents, 2))
        w.theta[e] = rng.uniform(-np.pi, np.pi, n_agents)
        opos[e] = rng.uniform(0.7, L - 0.7, (M, 2))
    w.active[:] = rng.random((num_worlds, n_agents)) > 0.1
    if M:
        w.objects.place(opos, rng.uniform(0.25, 0.6, (num_worlds, M)), rng.uniform(0.5, 6.0, (num_worlds, M)),
                        rng.uniform(0.0, 0.1, (num_worlds, M)), active=rng.random((num_worlds, M)) > 0.15)
    return w, rng


@pytest.mark.parametrize("schedule", ["world", "agent"])
@pytest.mark.parametrize("seed", [0, 1])
def test_step_matches_the_numpy_reference(seed, schedule):
    """Random robots and objects among walls, random actions, 40 steps: every step of the compiled
    world equals ``object_step_reference`` from the same state (1e-3 m: float32 storage between
    the passes against float64), object velocities too; robots touch objects in these scenes."""
    w, rng = _scene(seed)
    w.schedule_override = schedule
    cfg = w.config
    w.refresh_lidar()
    touching = 0
    for t in range(40):
        act = rng.uniform(-1, 1, (w.num_worlds, w.n_agents, 2)).astype(np.float32)
        ob = w.objects
        opos0, ovel0 = ob.pos.astype(np.float64), ob.vel.astype(np.float64)
        w.step(act)
        for e in range(w.num_worlds):
            ref = object_step_reference(
                w._start[e], w._moved[e], _vel_after_drive(w, e), w.active[e], opos0[e], ovel0[e], ob.radius[e],
                ob.mass[e], ob.friction[e], ob.active[e], w.walls[e, :w.n_walls[e]], cfg.agent_radius, cfg.mass,
                w.arena, cfg.dt, cfg.max_speed, cfg.collision_iterations)
            pos, vel, opos, ovel, contact = ref
            a = w.active[e]
            np.testing.assert_allclose(w.pos[e][a], pos[a], atol=1e-3)
            np.testing.assert_allclose(ob.pos[e], opos, atol=1e-3)
            np.testing.assert_allclose(ob.vel[e], ovel, atol=1e-2)
            np.testing.assert_allclose(w.vel[e][a], vel[a], atol=1e-2)
            assert (w.contact[e][a] == contact[a]).mean() > 0.95
            d = np.linalg.norm(w.pos[e][:, None] - ob.pos[e][None], axis=-1) - ob.radius[e][None] - w.radius
            touching += int((d[a][:, ob.active[e]] < 0.02).sum())
    assert touching > 5   # robots did touch objects (the object branches of the solver were exercised)


def _vel_after_drive(w, e):
    """The robots' velocity after driving, before the contact corrections (vel - correction / dt)."""
    corr = (w.pos[e].astype(np.float64) - w._moved[e]) / w.config.dt
    v = w.vel[e].astype(np.float64) - corr
    return v   # exact unless the speed cap of the correction step applied (checked by tolerance)


def test_worlds_whose_objects_are_inactive_step_like_worlds_without_objects():
    """The body solver with every object inactive is the robot solver: bit-identical trajectories
    (positions, velocities, lidar, contacts) to a world built without objects."""
    a, rng = _scene(3, n_agents=14, n_obj=0)
    b = World(a.config, a.num_worlds, a.n_agents, max_walls=7, max_objects=2)
    for name in ("pos", "theta", "active", "walls", "n_walls"):
        getattr(b, name)[:] = getattr(a, name)
    a.refresh_lidar()
    b.refresh_lidar()
    assert np.array_equal(a.lidar, b.lidar)
    for t in range(60):
        act = rng.uniform(-1, 1, (a.num_worlds, a.n_agents, 2)).astype(np.float32)
        a.step(act)
        b.step(act)
        for name in ("pos", "vel", "theta", "lidar", "contact"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (t, name)
    assert a.contact.any()


def _pusher_world(n_push, mass=8.0, mu=0.045, steps=200, along_wall=False):
    """``n_push`` robots in a line behind a disc (radius 0.5 m) at (5, 10), full power along +x."""
    w = World(WorldConfig(arena_size=20.0), 1, 3, 4, max_objects=1)
    w.walls[0] = _box(20.0)
    w.n_walls[0] = 4
    y = 0.5 if along_wall else 10.0
    w.objects.place(np.array([[[5.0, y]]]), 0.5, mass, mu, arena=20.0)
    w.pos[0, :, 0] = [4.3, 3.9, 3.5]
    w.pos[0, :, 1] = y
    w.active[0] = np.arange(3) < n_push
    act = np.zeros((1, 3, 2), np.float32)
    act[0, :n_push] = 1.0
    xs = []
    for _ in range(steps):
        w.step(act)
        xs.append(w.objects.pos[0, 0].astype(np.float64).copy())
    return np.array(xs), w


def test_one_robot_cannot_move_a_heavy_disc_two_can():
    """A disc of 8 kg with friction 0.045 (3.5 N) against robots of 3 N each: one robot at full power
    for 20 s moves it less than 1 cm, two in a line move it several metres, three faster still."""
    assert 0.045 * 8.0 * GRAVITY > 2 * WorldConfig().max_wheel_force
    one, w1 = _pusher_world(1)
    two, _ = _pusher_world(2)
    three, _ = _pusher_world(3)
    assert np.abs(one[-1] - [5, 10]).max() < 0.01
    assert two[-1, 0] - 5 > 3.0 and three[-1, 0] > two[-1, 0] + 2.0
    # the lone robot stays in contact, pressed against the disc, not inside it
    gap = np.linalg.norm(w1.pos[0, 0] - w1.objects.pos[0, 0]) - 0.7
    assert -0.01 < gap < 0.02


def test_objects_stay_inside_walls_and_arena_under_pushing():
    """Three robots push a light disc into a corner for 40 s: the disc never crosses a wall or
    leaves the arena (centre within [r, L - r] up to 1e-4 m), robots neither."""
    xs, w = _pusher_world(3, mass=1.0, mu=0.05, steps=400)
    r = 0.5
    assert (xs >= r - 1e-4).all() and (xs <= 20.0 - r + 1e-4).all()
    assert xs[-1, 0] > 19.0   # it did reach the far wall
    assert (w.pos[0] >= w.radius - 1e-4).all() and (w.pos[0] <= 20 - w.radius + 1e-4).all()


def test_lidar_sees_objects_as_discs_of_their_radius():
    w, _ = _scene(5, n_agents=8, n_obj=5, num_worlds=2)
    w.refresh_lidar()
    cfg = w.config
    ob = w.objects
    for e in range(2):
        for i in np.flatnonzero(w.active[e]):
            for k in range(cfg.n_rays):
                ang = float(w.theta[e, i]) + 2 * math.pi * k / cfg.n_rays
                d = np.array([math.cos(ang), math.sin(ang)])
                o = w.pos[e, i].astype(np.float64)
                best = cfg.lidar_range
                for seg in w.walls[e, :w.n_walls[e]].astype(np.float64):
                    best = min(best, ray_hit_segment(o, d, seg[:2], seg[2:]))
                for j in np.flatnonzero(w.active[e]):
                    if j != i:
                        best = min(best, ray_hit_circle(o, d, w.pos[e, j].astype(np.float64), w.radius))
                for m in np.flatnonzero(ob.active[e]):
                    best = min(best, ray_hit_circle(o, d, ob.pos[e, m].astype(np.float64), float(ob.radius[e, m])))
                assert abs(w.lidar[e, i, k] - best / cfg.lidar_range) < 2e-5
    # some rays do hit objects: removing them changes the readings
    before = w.lidar.copy()
    ob.active[:] = False
    w.refresh_lidar()
    assert (w.lidar > before + 1e-3).any()


def test_pushing_a_disc_along_a_wall_agrees_with_pymunk():
    """A robot (1 kg, 3 N, damping 2/s) pushes a 1 kg disc (radius 0.5 m, friction 0.1: 0.98 N)
    along the bottom wall for 6 s. Chipmunk2D (impulses, the disc's ground friction as a pivot and
    gear joint to a static body with max_force mu m g, the usual top-down friction) and the compiled
    step agree on the disc's travel within 15 % and on its final speed within 20 %; both keep the
    disc against the wall (y = r within 1 cm). Force balance predicts (3 - 0.98) / 2 = 1.0 m/s."""
    pymunk = pytest.importorskip("pymunk")
    cfg = WorldConfig(arena_size=20.0)
    mu, m_o, r_o, steps = 0.1, 1.0, 0.5, 60
    xs, w = _pusher_world(1, mass=m_o, mu=mu, steps=steps, along_wall=True)
    ours_travel = xs[-1, 0] - 5.0
    ours_speed = (xs[-1, 0] - xs[-11, 0]) / 1.0

    space = pymunk.Space()
    wall = pymunk.Segment(space.static_body, (0, 0), (20, 0), 0.0)
    wall.friction = 0.0
    robot = pymunk.Body(cfg.mass, pymunk.moment_for_circle(cfg.mass, 0, cfg.agent_radius))
    robot.position = (4.3, 0.5)
    rs = pymunk.Circle(robot, cfg.agent_radius)
    disc = pymunk.Body(m_o, pymunk.moment_for_circle(m_o, 0, r_o))
    disc.position = (5.0, 0.5)
    ds = pymunk.Circle(disc, r_o)
    for s in (rs, ds):
        s.friction = 0.0
        s.elasticity = 0.0
    space.add(wall, robot, rs, disc, ds)
    pivot = pymunk.PivotJoint(space.static_body, disc, (0, 0), (0, 0))
    pivot.max_bias = 0
    pivot.max_force = mu * m_o * GRAVITY
    gear = pymunk.GearJoint(space.static_body, disc, 0.0, 1.0)
    gear.max_bias = 0
    gear.max_force = 1e3
    space.add(pivot, gear)
    sub = 20
    h = cfg.dt / sub
    px = []
    for _ in range(steps):
        for _ in range(sub):
            f = 2 * cfg.max_wheel_force - cfg.mass * cfg.linear_damping * robot.velocity.x
            robot.apply_force_at_local_point((f, 0.0), (0, 0))
            robot.angular_velocity = 0.0
            space.step(h)
        px.append(disc.position.x)
    pm_travel = px[-1] - 5.0
    pm_speed = px[-1] - px[-11]
    assert abs(ours_travel - pm_travel) < 0.15 * pm_travel, (ours_travel, pm_travel)
    assert abs(ours_speed - pm_speed) < 0.2 * pm_speed, (ours_speed, pm_speed)
    assert abs(disc.position.y - r_o) < 0.01 and abs(float(w.objects.pos[0, 0, 1]) - r_o) < 0.01


def test_bad_object_settings_are_refused_and_change_nothing():
    w = World(WorldConfig(arena_size=8.0), 2, 3, 4, max_objects=2)
    good = np.full((2, 2, 2), 4.0)
    w.objects.place(good, 0.5, 2.0, 0.1)
    before = {k: getattr(w.objects, k).copy() for k in ("pos", "radius", "mass", "friction", "active")}
    for kw, match in [(dict(radius=0.0), "radius must be finite and > 0"),
                      (dict(mass=-1.0), "mass must be finite and > 0"),
                      (dict(friction=-0.1), "friction must be finite and >= 0"),
                      (dict(pos=np.full((2, 2, 2), np.nan)), "pos must be finite"),
                      (dict(pos=np.zeros((2, 3, 2))), "pos must have shape"),
                      (dict(pos=np.full((2, 2, 2), 7.9), arena=8.0), "inside the arena")]:
        args = dict(pos=good, radius=0.5, mass=2.0, friction=0.1)
        args.update(kw)
        with pytest.raises(ValueError, match=match):
            w.objects.place(**args)
        for k, v in before.items():
            assert np.array_equal(getattr(w.objects, k), v)
    with pytest.raises(ValueError, match="max_objects must be an integer >= 0"):
        World(WorldConfig(), 1, 2, 4, max_objects=-1)


def test_pymunk_backend_refuses_objects_clearly():
    pytest.importorskip("pymunk")
    from entropy_engine.core.backends import make_world

    with pytest.raises(ConfigError, match="'pymunk' backend does not simulate movable objects"):
        make_world(WorldConfig(backend="pymunk"), 1, 2, 4, max_objects=1)
    with pytest.raises(ConfigError, match="use backend='numba'"):
        from entropy_engine.scenarios import make_scenario

        make_scenario("transport", 1, 4, 0, backend="pymunk")
