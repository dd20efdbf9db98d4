"""Pursuit on the device env (entropy_engine/gpu/pursuit.py) against BatchEnv, in numba's CUDA simulator.

Pursuit is the first scenario with scripted robots on the GPU: the device world holds the pursuers
(the env's slots) and the evaders after them, whose policy runs on the device before each physics
step. The checks step both envs with the same actions through captures (the captured evaders
reappear at the start of the next step, from the world's random stream), world resets and, in a
separate check, pursuer respawns; tolerances as in tests/test_gpu.py.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch

from entropy_engine.config import ConfigError
from gpu_checks import assert_runs_agree, train_on_both_backends

TOL = 1e-4
# a small arena and a wide capture range: captures in most episodes of a few steps
SMALL = dict(arena_size=6.0, capture_range=2.0, n_evaders=2, max_steps=7)

pytestmark = pytest.mark.filterwarnings("ignore")


def _host(arr, like):
    from entropy_engine.gpu.target import download

    out = np.zeros_like(like)
    download(arr, out)
    return out


def _compare(steps: int, num_worlds: int = 3, n_agents: int = 4, seed: int = 5, **config):
    """Step BatchEnv and DeviceEnv (pursuit) with the same actions (the scripted pursuers' heuristic plus
    noise); returns the worst differences and the counts of what was compared, including every robot's
    position (the evaders' too) and which evaders reappeared."""
    from entropy_engine.envs.batch import BatchEnv
    from entropy_engine.gpu.env import DeviceEnv

    a = BatchEnv("pursuit", num_worlds, n_agents, seed=seed, **config)
    b = DeviceEnv("pursuit", num_worlds, n_agents, seed=seed, **config)
    h = lambda t: t.cpu().numpy()   # noqa: E731
    out = {"obs": float(np.abs(a.reset() - h(b.reset())).max()), "reward": 0.0, "pos": 0.0, "terminal_obs": 0.0,
           "episode": 0.0, "mismatch": 0, "captures": 0, "moved": 0, "truncated": 0, "active_mismatch": 0}
    sc = a.scenario
    rs = np.random.default_rng(seed)
    S = a.num_slots
    for _ in range(steps):
        act = np.clip(a.heuristic_actions() + rs.normal(0.0, 0.3, (S, 2)), -1, 1).astype(np.float32)
        o1, r1, te1, tr1, i1 = a.step(act)
        o2, r2, te2, tr2, i2 = b.step(torch.from_numpy(act).to(b.device))
        out["obs"] = max(out["obs"], float(np.abs(o1 - h(o2)).max()))
        out["reward"] = max(out["reward"], float(np.abs(r1 - h(r2)).max()))
        out["pos"] = max(out["pos"], float(np.abs(sc.world.pos - _host(b.world.pos, sc.world.pos)).max()))
        out["mismatch"] += int((te1 != h(te2)).sum() + (tr1 != h(tr2)).sum())
        for key in ("collided", "captures"):
            out["mismatch"] += int((i1[key] != h(i2[key])).sum())
        out["mismatch"] += int((sc.moved != _host(b.sc.moved, sc.moved)).sum())
        out["mismatch"] += int((sc.captured != _host(b.sc.captured, sc.captured)).sum())
        active = b.active_slots
        assert tuple(active.shape) == (S,)
        out["active_mismatch"] += int((h(active) != a.active_slots).sum())
        d = te1 | tr1
        if d.any():
            out["terminal_obs"] = max(out["terminal_obs"], float(np.abs(i1["terminal_obs"][d] - h(i2["terminal_obs"])[d]).max()))
            for key in ["episode_return", "episode_length"] + ["episode_" + s for s in a.stat_names]:
                out["episode"] = max(out["episode"], float(np.abs(i1[key][d] - h(i2[key])[d]).max()))
        out["captures"] += int(sc.captured.sum())   # evaders captured in this step (they reappear in the next)
        out["moved"] += int(sc.moved.sum())         # evaders that reappeared at the start of this step
        out["truncated"] += int(tr1.sum())
    return out


def test_pursuit_device_env_matches_batch_env_through_captures_and_resets():
    r = _compare(14, n_agents=6, **SMALL)
    for key in ("obs", "reward", "pos", "terminal_obs", "episode"):
        assert r[key] <= TOL, (key, r)
    assert r["mismatch"] == 0 and r["active_mismatch"] == 0, r
    # the compared steps include captures, evaders reappearing in a following step, and world resets
    assert r["captures"] >= 4 and r["moved"] >= 3 and r["truncated"] > 0, r


@pytest.mark.parametrize("schedule", ["world", "agent"])
def test_pursuit_before_the_physics_matches_the_scenario(schedule):
    """``PursuitOnDevice.world_actions`` is ``Pursuit.step`` up to the physics: captured evaders reappear,
    the sensor sees them where they are now (in a large arena with a short sensing range the robots near
    a new spot find the evader only in a rebuilt grid), the evaders' policy and the scaled pursuer
    actions give the same wheel powers."""
    from entropy_engine.gpu.env import DeviceEnv
    from entropy_engine.gpu.target import to_device, upload
    from entropy_engine.scenarios import make_scenario
    from entropy_engine.scenarios import pursuit_kernels as pk

    kw = dict(arena_size=16.0, sense_range=4.0, n_evaders=3, respawn_clearance=1.0, pursuer_power=0.7)
    host = make_scenario("pursuit", 4, 10, 2, **kw)
    host.reset()
    env = DeviceEnv("pursuit", 4, 10, seed=2, **kw)
    env.world.schedule_override = schedule   # the world's grid rebuilt by the schedule's own build
    env.reset()
    host.captured[:] = True             # every evader reappears elsewhere
    upload(env.sc.captured, host.captured)
    act = np.random.default_rng(0).uniform(-1, 1, (4, 10, 2)).astype(np.float32)
    w = host.world
    pk.respawn_captured(host.rng, host._params, w.pos, w.vel, w.theta, w.omega, w.active, host.captured, host.moved)
    host.sensor.sense(attributes=host.scripted.kind)
    pk.evader_actions(10, host.rng, host._params, w.pos, w.theta, w.active, host.sensor.indices, host.scripted.actions)
    wheels = host.scripted.world_actions(act, 0.7)
    got = env.sc.world_actions(to_device(act))
    np.testing.assert_array_equal(_host(env.world.pos, w.pos), w.pos)
    np.testing.assert_array_equal(_host(env.sc.nb.indices, host.sensor.indices), host.sensor.indices)
    np.testing.assert_allclose(_host(env.sc.nb.out, host.sensor.out), host.sensor.out, atol=TOL)
    np.testing.assert_allclose(_host(got, wheels), wheels, atol=TOL)
    # the check is meaningful: robots sense evaders at their new places
    idx = host.sensor.indices[:, :10]
    assert (idx >= 10).sum() >= 3, idx


def test_pursuit_respawn_on_the_gpu_matches_the_scenario():
    """Pursuers respawned inside a running world (never by pursuit's own rules, so the env comparison does
    not reach it) land where the CPU scenario puts them; only the pursuers' columns are read."""
    from entropy_engine.gpu.env import DeviceEnv
    from entropy_engine.gpu.target import download, to_device
    from entropy_engine.scenarios import make_scenario

    host = make_scenario("pursuit", 2, 4, 3)
    host.reset()
    env = DeviceEnv("pursuit", 2, 4, seed=3)
    env.reset()
    mask = np.zeros((2, 4), np.bool_)
    mask[0, [1, 3]] = True
    mask[1, 0] = True
    host.respawn(mask)
    refresh = to_device(np.zeros(2, np.bool_))
    env.sc.respawn(to_device(mask), refresh)
    flags = np.zeros(2, np.bool_)
    download(refresh, flags)
    np.testing.assert_array_equal(_host(env.world.pos, host.world.pos), host.world.pos)
    np.testing.assert_array_equal(_host(env.world.theta, host.world.theta), host.world.theta)
    assert flags.all()


def test_pursuit_device_env_spaces_and_slots():
    from entropy_engine.envs.batch import BatchEnv
    from entropy_engine.gpu.env import DeviceEnv

    env = DeviceEnv("pursuit", 2, 3, seed=0)
    cpu = BatchEnv("pursuit", 2, 3, seed=0)
    assert env.num_slots == 6 and env.world.n_agents == 3 + env.config.n_evaders
    assert env.observation_space == cpu.observation_space and env.action_space == cpu.action_space
    obs = env.reset()
    assert tuple(obs.shape) == (6, env.obs_dim) and tuple(env.active_slots.shape) == (6,)
    assert bool(env.active_slots.all())
    with pytest.raises(ValueError, match=r"shape \(6, 2\)"):
        env.step(torch.zeros(5, 2))
    with pytest.raises(ConfigError, match="n_agents must be an integer >= 2"):
        DeviceEnv("pursuit", 2, 1)


@pytest.mark.slow
def test_pursuit_device_env_with_a_channel_matches_batch_env():
    """With a channel only the pursuers talk (the evaders have no radio, as in ``BatchEnv``): noise, loss
    and a step of delay, through captures and world resets."""
    from entropy_engine.gpu.agreement import compare_envs

    r = compare_envs("pursuit", steps=10, comm_dim=2, comm_noise=0.1, comm_dropout=0.3, comm_delay=1, comm_range=4.0,
                     **dict(SMALL, max_steps=6))
    for key in ("reset_obs", "obs", "reward", "terminal_obs", "episode_return", "episode_stats"):
        assert r[key] <= TOL, (key, r)
    for key in ("done_mismatch", "info_mismatch", "length_mismatch"):
        assert r[key] == 0, (key, r)
    assert r["heard"] > 0 and r["captures"] > 0 and r["truncated"] > 0, r


@pytest.mark.slow
def test_training_pursuit_on_the_device_env_follows_the_cpu_run():
    """Two PPO iterations of the pursuit preset's network on the device env log the CPU run's metrics."""
    from entropy_engine.training.config import PRESETS

    logs, obs = train_on_both_backends(dict(PRESETS["pursuit"], env=dict(arena_size=6.0, capture_range=1.5)))
    assert_runs_agree(logs, obs, TOL, required="env/captures_per_episode")
    assert any(m["env/captures_per_episode"] > 0 for m in logs["numba"]), logs["numba"]


@pytest.mark.slow
def test_pursuit_device_env_runs_levels_of_evader_power_per_world():
    """Levels of the evaders' power and the capture reward: each world's row of settings reaches the
    evaders' policy and the reward on the device as on the CPU, through world resets that draw new levels."""
    from entropy_engine.envs.curriculum import CurriculumSpec
    from entropy_engine.gpu.agreement import compare_envs

    spec = CurriculumSpec("levels", ("evader_power", "capture_reward"), ((1.0, 5.0), (0.3, 1.0), (0.6, 3.0)),
                          "captures", "captures", uniform_share=0.5, stats_window=20)
    r = compare_envs("pursuit", steps=14, curriculum=spec, **dict(SMALL, max_steps=5))
    for key in ("reset_obs", "obs", "reward", "terminal_obs", "episode_return", "episode_stats"):
        assert r[key] <= TOL, (key, r)
    for key in ("done_mismatch", "info_mismatch", "length_mismatch", "curriculum_mismatch"):
        assert r[key] == 0, (key, r)
    assert r["captures"] > 0 and r["truncated"] > 0, r
    assert len(set(r["curriculum"]["levels"])) > 1, r["curriculum"]
