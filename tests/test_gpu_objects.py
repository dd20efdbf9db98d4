"""Movable objects on the GPU backend (``gpu.object_kernels``, ``gpu.transport``) against the numba backend.

Runs in numba's CUDA simulator (tests/conftest.py); tolerances as in tests/test_gpu.py: floats within
1e-4, contact flags, grids and resets identical. Every comparison asserts that objects were pushed in
the compared steps.
"""
from __future__ import annotations

import numpy as np
import pytest

from entropy_engine.gpu.agreement import _objects_ahead, compare_envs, compare_worlds
from gpu_checks import assert_runs_agree, train_on_both_backends

TOL = 1e-4

pytestmark = pytest.mark.filterwarnings("ignore")


def _check(r):
    assert r["reset_pos"] == 0.0 and r["reset_walls"] == 0.0 and r["reset_opos"] == 0.0, r
    for key in ("pos", "vel", "lidar", "obs", "reward", "theta", "opos", "ovel"):
        assert r[key] <= TOL, (key, r)
    assert r["contact_mismatch"] == 0 and r["grid_mismatch"] == 0, r
    assert r["contacts"] > 0, "the check must include collisions"
    assert r["objects_moved"] >= r["steps"] // 2, "objects must be pushed in most compared steps"


def test_world_schedule_with_objects_matches_numba():
    # a thread per body (3 robots + 2 objects), two worlds per block with a partial last block; each object
    # starts just ahead of a robot, which drives into it
    r = compare_worlds("transport", 3, 3, 8, seed=1, push=0.8, worlds_per_block=2, objects_ahead=True, n_objects=2,
                       object_friction=0.01)
    _check(r)


def test_agent_schedule_with_objects_matches_numba():
    # a launch per phase, the body grid built in parallel, islands built per world and solved in parallel
    r = compare_worlds("transport", 2, 3, 8, seed=2, schedule="agent", push=0.8, objects_ahead=True, n_objects=2,
                       object_friction=0.01)
    _check(r)


@pytest.mark.parametrize("schedule", ["world", "agent"])
def test_lidar_refresh_with_objects_matches_numba(schedule):
    """After a reset the device recasts the lidar over robots and objects (``DeviceWorld.refresh_lidar``),
    and rebuilds the robots' grid, as the host's ``refresh_lidar`` and ``grid()`` do, in the masked worlds only."""
    from entropy_engine.gpu.device_world import DeviceWorld
    from entropy_engine.gpu.target import download, to_device, upload
    from entropy_engine.scenarios import make_scenario

    sc = make_scenario("transport", 3, 4, 5, n_objects=2)
    sc.reset()
    w = sc.world
    ob = w.objects
    ob.pos[:, 1] = w.pos[:, 0] + 0.7    # an object near robot 0, so that its lidar sees it
    np.clip(ob.pos, 0.6, w.arena - 0.6, out=ob.pos)
    dev = DeviceWorld(w)
    dev.schedule_override = schedule
    dev.upload_objects()
    w.refresh_lidar()
    want = w.lidar.copy()
    cs_want, ci_want = (a.copy() for a in w.grid())
    upload(dev.lidar, np.ones_like(want))   # stale: nothing seen
    download_into = np.zeros_like(want)
    mask = np.array([True, False, True])
    dev.refresh_lidar(to_device(mask))
    download(dev.lidar, download_into)
    if schedule == "world":   # only the masked worlds
        assert (download_into[1] == 1.0).all()
    assert np.abs(download_into[mask] - want[mask]).max() <= TOL
    assert (want[mask] < 1.0).any(), "the lidar must see something"
    cs, ci = np.zeros_like(cs_want), np.zeros_like(ci_want)
    download(dev.cell_start, cs)
    download(dev.cell_items, ci)
    assert (cs[mask] == cs_want[mask]).all() and (ci[mask] == ci_want[mask]).all()


def test_cuda_world_with_objects_runs_the_scenario():
    """``CudaWorld`` (backend 'cuda') steps transport with its clutter, objects moved on the GPU and copied back."""
    from entropy_engine.scenarios import make_scenario

    sc = make_scenario("transport", 2, 3, 0, backend="cuda", n_objects=2, object_friction=0.0)
    sc.reset()
    w = sc.world
    _objects_ahead(w)
    before = w.objects.pos.copy()
    for _ in range(4):
        sc.step(np.full((2, 3, 2), 1.0, np.float32))
    moved = np.linalg.norm(w.objects.pos - before, axis=-1)
    assert (moved[:, 0] > 0.01).all(), moved    # pushed by robot 0 of each world
    assert np.isfinite(sc.obs).all()


def _check_envs(r):
    for key in ("reset_obs", "obs", "reward", "terminal_obs", "episode_return", "episode_stats", "opos", "ovel"):
        assert r[key] <= TOL, (key, r)
    for key in ("done_mismatch", "info_mismatch", "length_mismatch"):
        assert r[key] == 0, (key, r)


@pytest.mark.slow
def test_transport_device_env_matches_batch_env_while_pushing():
    """The scripted pushers (plus noise) move the objects in the compared steps; world resets at max_steps."""
    r = compare_envs("transport", 3, 4, 40, seed=7, push=0.2, heuristic=True, max_steps=30, goal_radius=1.3,
                     goal_min_distance=1.0, n_objects=2, object_friction=0.0)
    _check_envs(r)
    assert r["objects_moved"] >= 5, r
    assert r["truncated"] > 0 and r["collided"] > 0, r


@pytest.mark.slow
def test_transport_device_env_matches_batch_env_through_deliveries_with_a_channel():
    """Objects that start inside a wide goal zone are delivered: every robot of the world terminates and
    respawns with a new task (``respawn_world``); a channel reads the robots' grid the object step leaves."""
    r = compare_envs("transport", 3, 4, 16, seed=7, push=0.6, max_steps=12, goal_radius=1.5, goal_min_distance=1.0,
                     n_objects=2, object_friction=0.0, comm_dim=2, comm_range=4.0)
    _check_envs(r)
    assert r["delivered"] > 0 and r["terminated"] > 0 and r["truncated"] > 0, r
    assert r["heard"] > 0, r


def test_device_env_runs_transport():
    """``DeviceEnv('transport')`` builds (registered in ``DEVICE_SCENARIOS``) and its first steps match BatchEnv."""
    from entropy_engine.gpu.env import DEVICE_SCENARIOS

    assert "transport" in DEVICE_SCENARIOS
    r = compare_envs("transport", 2, 3, 3, seed=5, push=0.5, max_steps=12)
    _check_envs(r)


@pytest.mark.slow
def test_training_transport_on_the_device_env_follows_the_cpu_run():
    """Two PPO iterations of the transport preset's network on the device env (chosen for ``backend='cuda'``)
    give the CPU run's metrics and final observations."""
    from entropy_engine.training.config import PRESETS

    logs, obs = train_on_both_backends(PRESETS["transport"])
    assert_runs_agree(logs, obs, TOL)


def _pushing_layout(world):
    """Two worlds of 4 robots (robot 1 of world 1 out of the world) and 3 objects of different masses and
    frictions (object 1 inactive): robot 0 drives into object 0, robot 3 pushes object 2 into the east
    wall, robot 2 drives into robot 0's path."""
    a, r = world.arena, world.radius
    world.pos[:] = [[1.0, 1.0], [1.0, 2.2], [1.3, 0.45], [a - 2.2, 3.0]]
    world.theta[:] = [0.0, 0.0, 1.2, 0.0]
    world.active[:] = True
    world.active[1, 1] = False
    world.walls[:, :4] = np.array([[0, 0, a, 0], [a, 0, a, a], [a, a, 0, a], [0, a, 0, 0]], np.float32)
    world.n_walls[:] = 4
    pos = np.array([[1.0 + 0.4 + r + 0.02, 1.0], [3.0, 3.0], [a - 0.62, 3.0]])
    pos = np.broadcast_to(pos, (2, 3, 2))
    active = np.array([[True, False, True]] * 2)
    world.objects.place(pos, np.array([[0.4, 0.5, 0.6]] * 2), np.array([[2.0, 1.0, 8.0]] * 2),
                        np.array([[0.05, 0.0, 0.02]] * 2), active=active, arena=a)


@pytest.mark.parametrize("schedule", ["world", "agent"])
def test_device_world_with_inactive_bodies_and_walls_matches_numba(schedule):
    """The GPU step of worlds with objects on a hand-made layout: inactive robot and object, objects of
    different radii, masses and frictions, an object pushed into a wall; both backends stepped from the
    same state with the same actions."""
    from entropy_engine.core.backends import make_world
    from entropy_engine.core.params import WorldConfig

    worlds = [make_world(WorldConfig(backend=b, arena_size=6.0), 2, 4, max_walls=4, max_objects=3)
              for b in ("numba", "cuda")]
    for w in worlds:
        _pushing_layout(w)
    cpu, gpu = worlds
    gpu.device.schedule_override = schedule
    act = np.ones((2, 4, 2), np.float32)
    act[:, 2] = [0.6, 1.0]
    start = cpu.objects.pos.copy()
    for _ in range(12):
        cpu.step(act)
        gpu.step(act)
        for x, y in ((cpu.pos, gpu.pos), (cpu.vel, gpu.vel), (cpu.lidar, gpu.lidar),
                     (cpu.objects.pos, gpu.objects.pos), (cpu.objects.vel, gpu.objects.vel)):
            assert np.abs(x - y).max() <= TOL
        assert (cpu.contact == gpu.contact).all()
    moved = np.linalg.norm(cpu.objects.pos - start, axis=-1)
    assert (moved[:, 0] > 0.05).all() and (moved[:, 1] == 0).all(), moved   # pushed; the inactive one stays
    a = cpu.arena
    assert (cpu.objects.pos[:, 2, 0] <= a - 0.6 + 1e-4).all(), "object 2 stays out of the east wall"
    assert cpu.contact[:, 3].all() and cpu.contact[:, 0].any()
