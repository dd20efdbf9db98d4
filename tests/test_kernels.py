"""The compiled kernels agree with the slow numpy references in core/reference.py."""
import numpy as np
import pytest

from entropy_engine.core.params import WorldConfig
from entropy_engine.core.reference import closest_point, drive_reference, lidar_reference, resolve_reference
from entropy_engine.core.world import World


def _world(n_agents=12, num_worlds=3, arena=6.0, seed=0, walls=True):
    cfg = WorldConfig(arena_size=arena)
    w = World(cfg, num_worlds, n_agents, max_walls=7)
    rng = np.random.default_rng(seed)
    L = arena
    for e in range(num_worlds):
        segs = [(0, 0, L, 0), (L, 0, L, L), (L, L, 0, L), (0, L, 0, 0)]
        if walls:
            for _ in range(3):
                c = rng.uniform(1, L - 1, 2)
                a = rng.uniform(0, np.pi)
                h = rng.uniform(0.3, 1.2) * np.array([np.cos(a), np.sin(a)])
                segs.append((*(c - h), *(c + h)))
        w.walls[e, : len(segs)] = segs
        w.n_walls[e] = len(segs)
        w.pos[e] = rng.uniform(0.3, L - 0.3, (n_agents, 2))
        w.theta[e] = rng.uniform(-np.pi, np.pi, n_agents)
    w.active[:] = rng.random((num_worlds, n_agents)) > 0.1
    return w


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lidar_matches_reference(seed):
    w = _world(seed=seed)
    w.refresh_lidar()
    for e in range(w.num_worlds):
        ref = lidar_reference(w.pos[e], w.theta[e], w.active[e], w.walls[e, : w.n_walls[e]],
                              w.radius, w.config.lidar_range, w.config.n_rays)
        np.testing.assert_allclose(w.lidar[e], ref, atol=2e-5)
    # the scene is not trivial: some rays hit robots, some walls, some nothing
    assert (w.lidar < 1).mean() > 0.3 and (w.lidar == 1).any()


def test_lidar_ray_order_and_scale():
    """Ray 0 points along the heading, rays go counter-clockwise, distance from the centre."""
    cfg = WorldConfig(arena_size=10.0)
    w = World(cfg, 1, 2, max_walls=4)
    w.walls[0, :4] = [(0, 0, 10, 0), (10, 0, 10, 10), (10, 10, 0, 10), (0, 10, 0, 0)]
    w.n_walls[0] = 4
    w.pos[0] = [(5.0, 5.0), (6.5, 5.0)]   # the other robot 1.5 m ahead (east)
    w.theta[0] = [np.pi / 2, 0.0]          # first robot faces north
    w.active[:] = True
    w.refresh_lidar()
    R = cfg.n_rays
    east = 3 * R // 4                      # 270 deg counter-clockwise from north = east
    assert w.lidar[0, 0, east] == pytest.approx((1.5 - cfg.agent_radius) / cfg.lidar_range, abs=1e-5)
    assert w.lidar[0, 0, 0] == 1.0         # north: wall 5 m away, beyond the 3 m range
    assert w.lidar[0, 0, R // 4] == 1.0    # west: nothing within range


@pytest.mark.parametrize("seed", [0, 1])
def test_collisions_match_reference(seed):
    w = _world(n_agents=30, arena=5.0, seed=seed)   # crowded: many overlaps
    start = w.pos.copy()
    w.vel[:] = 0
    w.omega[:] = 0
    w.step(np.zeros((w.num_worlds, w.n_agents, 2), np.float32))   # zero power: pure resolution
    for e in range(w.num_worlds):
        ref, contact = resolve_reference(start[e], start[e], w.active[e], w.walls[e, : w.n_walls[e]], w.radius,
                                         w.arena, w.config.collision_iterations)
        act = w.active[e]
        np.testing.assert_allclose(w.pos[e][act], ref[act], atol=1e-4)
        assert (w.contact[e][act] == contact[act]).mean() > 0.95
        assert contact[act].sum() > 3
        np.testing.assert_array_equal(w.pos[e][~act], start[e][~act])  # inactive robots untouched


def test_drive_matches_reference():
    cfg = WorldConfig(arena_size=50.0)
    w = World(cfg, 1, 4, max_walls=4)
    w.n_walls[:] = 0
    w.pos[0] = [(10, 10), (20, 20), (30, 30), (40, 40)]
    w.theta[0] = [0.0, 1.0, -2.0, 3.0]
    w.active[:] = True
    acts = np.array([[1, 1], [1, -1], [-0.5, 0.3], [0.2, 0.9]], np.float32)
    state = [(float(w.theta[0, i]), 0.0, 0.0) for i in range(4)]
    pos = w.pos[0].astype(np.float64).copy()
    for _ in range(30):
        w.step(acts[None])
        for i in range(4):
            dp, th, v, om = drive_reference(*state[i], *acts[i], cfg)
            state[i] = (th, v, om)
            pos[i] += dp
    np.testing.assert_allclose(w.pos[0], pos, atol=2e-3)
    np.testing.assert_allclose(w.theta[0], [s[0] for s in state], atol=1e-4)
    # full power both wheels reaches the speed limit; opposite wheels spin in place
    assert np.hypot(*w.vel[0, 0]) == pytest.approx(cfg.max_speed, rel=0.02)
    assert np.hypot(*w.vel[0, 1]) < 1e-3


def test_no_tunnelling_at_full_speed():
    """A robot driven at full speed into a thin wall, from many angles, never crosses it."""
    cfg = WorldConfig(arena_size=10.0)
    n = 16
    w = World(cfg, 1, n, max_walls=5)
    w.walls[0, :5] = [(0, 0, 10, 0), (10, 0, 10, 10), (10, 10, 0, 10), (0, 10, 0, 0), (5, 1, 5, 9)]
    w.n_walls[0] = 5
    ys = np.linspace(1.5, 8.5, n)
    w.pos[0, :, 0] = 3.0
    w.pos[0, :, 1] = ys
    w.theta[0] = np.linspace(-0.6, 0.6, n)
    w.active[:] = True
    w.vel[0, :, 0] = cfg.max_speed
    act = np.ones((1, n, 2), np.float32)
    for _ in range(60):
        before = w.pos[0].copy()
        w.step(act)
        x, y = w.pos[0, :, 0], w.pos[0, :, 1]
        # nobody crossed the wall segment x = 5, 1 <= y <= 9 in this step
        t = (5.0 - before[:, 0]) / np.where(x != before[:, 0], x - before[:, 0], np.inf)
        y_at = before[:, 1] + t * (y - before[:, 1])
        assert not ((t > 0) & (t < 1) & (y_at >= 1) & (y_at <= 9)).any()
        gap = np.hypot(np.maximum(5.0 - x, 0), np.maximum(np.maximum(1 - y, y - 9), 0))
        assert (gap >= cfg.agent_radius - 1e-4).all()   # nor overlaps the wall segment
    assert (w.pos[0, 2:-2, 0] > 4.7).all()              # they did reach it


@pytest.mark.parametrize("policy", ["corners", "wall_ends", "nearest"])
def test_collisions_match_reference_when_pushed(policy):
    """Every step of an adversarial run (robots driven into corners, wall ends, each other) on
    walls that touch and cross: the kernel's resolution of that step equals the reference's."""
    from entropy_engine import BatchEnv
    from test_physics_adversarial import adversarial_actions

    env = BatchEnv(num_worlds=2, n_agents=24, seed=2, arena_size=10.0, n_obstacles=4, obstacle_gap=0.0,
                   obstacle_margin=0.0)
    env.reset()
    w = env.scenario.world
    rng = np.random.default_rng(0)
    touched = 0
    for _ in range(40):
        w.step(adversarial_actions(policy, w, rng))   # the world alone: no respawns between the checks
        for e in range(w.num_worlds):
            ref, contact = resolve_reference(w._moved[e], w._start[e], w.active[e], w.walls[e, : w.n_walls[e]],
                                             w.radius, w.arena, w.config.collision_iterations)
            np.testing.assert_allclose(w.pos[e], ref, atol=5e-5)
            touched += contact.sum()
    assert touched > 100   # the runs were not contact-free


def test_wedged_robot_goes_back_to_its_start():
    """A robot pushed by a column of others into the 10-degree apex of two walls ends the step
    at a place clear of both walls (deep in the wedge there is none, so it is sent back)."""
    cfg = WorldConfig(arena_size=10.0)
    n = 6
    w = World(cfg, 1, n, max_walls=6)
    half = np.radians(5.0)
    apex = np.array([8.0, 5.0])
    ends = [apex - 4.0 * np.array([np.cos(s * half), np.sin(s * half)]) for s in (1, -1)]
    w.walls[0, :6] = [(0, 0, 10, 0), (10, 0, 10, 10), (10, 10, 0, 10), (0, 10, 0, 0),
                      (*ends[0], *apex), (*ends[1], *apex)]
    w.n_walls[0] = 6
    w.pos[0, :, 0] = 2.0 + 0.42 * np.arange(n)   # the front robot starts in the wedge, clear of it
    w.pos[0, :, 1] = 5.0
    w.active[:] = True
    w.vel[0, :, 0] = cfg.max_speed
    act = np.ones((1, n, 2), np.float32)
    for _ in range(30):
        w.step(act)
        for i in range(n):
            gaps = [np.hypot(*(w.pos[0, i] - closest_point(w.pos[0, i].astype(np.float64), seg[:2], seg[2:])))
                    for seg in w.walls[0, :6].astype(np.float64)]
            assert min(gaps) >= cfg.agent_radius - 1e-4
        ref, _ = resolve_reference(w._moved[0], w._start[0], w.active[0], w.walls[0, :6], w.radius, w.arena,
                                   cfg.collision_iterations)
        np.testing.assert_allclose(w.pos[0], ref, atol=5e-5)
    # the front robot is stuck within one step's move (0.15 m) of where the wedge is as wide as the
    # robot (apex distance r / sin 5 deg): the step that would take it deeper sends it back
    fit = cfg.agent_radius / np.sin(half)
    assert fit - 1e-4 <= np.hypot(*(w.pos[0, -1] - apex)) <= fit + cfg.max_speed * cfg.dt


def test_islands_partition_the_robots_in_contact():
    """Every robot with contact candidates is in exactly one island, together with its candidates."""
    w = _world(n_agents=40, num_worlds=2, arena=6.0, seed=3)
    w.step(np.zeros((w.num_worlds, w.n_agents, 2), np.float32))
    n = w.n_agents
    for e in range(w.num_worlds):
        count = w._islands[e, 0]
        offsets = w._islands[e, 1: count + 2]
        members = w._islands[e, n + 2: n + 2 + offsets[-1]]
        movers = np.flatnonzero(w._n_nbr[e] > 0)
        assert count > 1 and np.array_equal(np.sort(members), movers)
        island_of = {int(i): s for s in range(count) for i in members[offsets[s]: offsets[s + 1]]}
        for i in movers:
            for j in w._nbr[e, i, : w._n_nbr[e, i]]:
                assert island_of[int(j)] == island_of[int(i)]
        # islands are numbered by their smallest member, members ascending within one
        firsts = [members[offsets[s]] for s in range(count)]
        assert firsts == sorted(firsts)
        assert all(np.all(np.diff(members[offsets[s]: offsets[s + 1]]) > 0) for s in range(count))


def test_respawn_clear_moves_only_the_masked_learners_and_keeps_clear_of_scripted_robots():
    """``core.spawn.respawn_clear`` with a mask over the learners [E, N] of a world that also holds
    scripted robots after them: the masked learners restart clear of every robot, the scripted robots
    are untouched (the mask has no column for them)."""
    from entropy_engine.core.rng import seed_states
    from entropy_engine.core.spawn import respawn_clear

    E, N, M = 1, 3, 2
    pos = np.array([[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0], [5.0, 5.0]]], np.float32)
    vel = np.ones((E, N + M, 2), np.float32)
    theta = np.zeros((E, N + M), np.float32)
    omega = np.ones((E, N + M), np.float32)
    active = np.ones((E, N + M), np.bool_)
    mask = np.array([[True, False, True]])
    before = pos.copy()
    respawn_clear(0, mask, seed_states(3, E), 6.0, 0.5, 1.0, pos, vel, theta, omega, active)
    assert not np.array_equal(pos[0, 0], before[0, 0]) and not np.array_equal(pos[0, 2], before[0, 2])
    np.testing.assert_array_equal(pos[0, [1, 3, 4]], before[0, [1, 3, 4]])
    np.testing.assert_array_equal(vel[0, [1, 3, 4]], 1.0)
    assert (vel[0, [0, 2]] == 0).all()
