"""Foraging on the GPU (entropy_engine/gpu/foraging.py, gpu/items.py) against the numba CPU code.

Runs in numba's CUDA simulator (tests/conftest.py), like tests/test_gpu.py: the device env against
``BatchEnv`` through pick-ups, deliveries, world resets and respawns (which release carried items),
the items' update and sensor on the GPU against ``core.items`` on the CPU, and curricula of a reward
weight per world. Discrete state (carriers, loads, free flags, sensed item ids, done flags, info)
must be identical; positions and observations agree within float rounding.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from entropy_engine.gpu.target import download, to_device
from gpu_checks import assert_runs_agree, train_on_both_backends

pytestmark = pytest.mark.filterwarnings("ignore")

TOL = 1e-4
# a small arena with a large nest, large items and fast robots: the heuristic picks items up and
# delivers them within the first ten steps (world resets at step 10)
KW = dict(max_steps=10, n_items=10, item_radius=0.3, item_margin=0.3, nest_radius=2.0, nest_margin=2.0,
          item_spacing=0.0, nest_clearance=0.0, arena_size=7.0, max_speed=1.9)


def _host(arr):
    out = np.zeros(arr.shape, arr.dtype)
    download(arr, out)
    return out


def _item_state_mismatch(cpu_items, dev_items) -> tuple[int, float]:
    """(discrete values that differ, largest item position difference) between ``core.items.Items`` and
    ``gpu.items.DeviceItems``."""
    bad = 0
    for name in ("present", "carrier", "free", "load", "delivered", "picked", "world_delivered", "sensed_index"):
        bad += int((getattr(cpu_items, name) != _host(getattr(dev_items, name))).sum())
    dpos = float(np.abs(cpu_items.pos - _host(dev_items.pos)).max())
    return bad, max(dpos, float(np.abs(cpu_items.sensed - _host(dev_items.sensed)).max()))


def _compare(num_worlds, n_agents, steps, seed=2, heuristic=True, curriculum=None, respawn_at=(), schedule=None,
             **config):
    """Step ``BatchEnv`` and ``DeviceEnv`` with the same actions (the scenario's heuristic on the CPU env's
    observations, or random forward-biased ones); at the steps in ``respawn_at`` robot 0 of every world (a
    carrier where one exists) is respawned on both; ``schedule`` forces the device world's schedule ('world' or
    'agent': how the step's grid, which the items read, is built). Returns the worst differences and what was
    compared."""
    from entropy_engine.envs.batch import BatchEnv
    from entropy_engine.gpu.env import DeviceEnv

    cfg = dict(KW, **config)
    a = BatchEnv("foraging", num_worlds, n_agents, seed=seed, curriculum=curriculum, **cfg)
    b = DeviceEnv("foraging", num_worlds, n_agents, seed=seed, curriculum=curriculum, **cfg)
    b.world.schedule_override = schedule
    o1 = a.reset()
    out = {"reset_obs": float(np.abs(o1 - b.reset().cpu().numpy()).max()), "obs": 0.0, "reward": 0.0,
           "terminal_obs": 0.0, "episode_stats": 0.0, "item_pos": 0.0, "done_mismatch": 0, "info_mismatch": 0,
           "item_mismatch": 0, "nest": 0.0, "picked": 0, "delivered": 0, "truncated": 0, "respawned_carriers": 0,
           "curriculum_mismatch": 0, "levels": set()}
    sc, dv = a.scenario, b.sc
    rs = np.random.default_rng(seed)
    E, N = num_worlds, n_agents
    for t in range(steps):
        if heuristic:
            act = sc.heuristic(o1)
        else:
            act = np.clip(rs.uniform(-1, 1, (a.num_slots, a.act_dim)) + 0.4, -1, 1).astype(np.float32)
        o1, r1, te1, tr1, i1 = a.step(act)
        o2, r2, te2, tr2, i2 = b.step(torch.from_numpy(act).to(b.device))
        h = lambda x: x.cpu().numpy()   # noqa: E731
        out["done_mismatch"] += int((te1 != h(te2)).sum() + (tr1 != h(tr2)).sum())
        out["obs"] = max(out["obs"], float(np.abs(o1 - h(o2)).max()))
        out["reward"] = max(out["reward"], float(np.abs(r1 - h(r2)).max()))
        for key in a.info_keys:
            out["info_mismatch"] += int((i1[key] != h(i2[key])).sum())
        d = te1 | tr1
        if d.any():
            diff = np.abs(i1["terminal_obs"][d] - h(i2["terminal_obs"])[d])
            out["terminal_obs"] = max(out["terminal_obs"], float(diff.max()))
            for name in a.stat_names + ("return",):
                key = "episode_" + name
                out["episode_stats"] = max(out["episode_stats"], float(np.abs(i1[key][d] - h(i2[key])[d]).max()))
        out["picked"] += int(sc.items.picked.sum())
        out["delivered"] += int(i1["delivered"].sum())
        out["truncated"] += int(tr1.sum())
        if t in respawn_at:   # Foraging.respawn (the env never ends a robot's episode early): carriers first
            mask = np.zeros((E, N), np.bool_)
            for w in range(E):
                loaded = np.flatnonzero(sc.items.load[w] > 0)
                mask[w, loaded[0] if len(loaded) else 0] = True
            out["respawned_carriers"] += int((sc.items.load[mask] > 0).sum())
            sc.respawn(mask)
            refresh = to_device(np.zeros(E, np.bool_))
            dv.respawn(to_device(mask), refresh)
            assert _host(refresh).all()
            b.world.refresh_lidar(refresh)
            dv.observe(refresh)
            o1 = sc.obs.reshape(E * N, -1)
            out["obs"] = max(out["obs"], float(np.abs(o1 - b.obs.cpu().numpy()).max()))
        bad, dpos = _item_state_mismatch(sc.items, dv.items)
        out["item_mismatch"] += bad
        out["item_pos"] = max(out["item_pos"], dpos)
        out["nest"] = max(out["nest"], float(np.abs(sc.nest.pos - _host(dv.nest.pos)).max()))
        out["curriculum_mismatch"] += int(a.curriculum.state() != b.curriculum.state())
        out["levels"] |= set(a.curriculum.state()["levels"])   # the levels the worlds ran at
    return out


def _check(r):
    for key in ("reset_obs", "obs", "reward", "terminal_obs", "episode_stats", "item_pos", "nest"):
        assert r[key] <= TOL, (key, r)
    for key in ("done_mismatch", "info_mismatch", "item_mismatch", "curriculum_mismatch"):
        assert r[key] == 0, (key, r)


def test_foraging_is_a_device_scenario():
    from entropy_engine.gpu.env import DEVICE_SCENARIOS, DeviceEnv

    assert "foraging" in DEVICE_SCENARIOS
    env = DeviceEnv("foraging", 1, 2, seed=0)
    assert env.obs_dim == 32 + 6 + 3 * 4 and env.act_dim == 2
    assert set(env.info_keys) == {"collided", "delivered", "carrying"}


def test_foraging_device_env_matches_batch_env_through_pickups_deliveries_and_resets():
    """The heuristic drives both envs: items are picked up and delivered (and re-placed clear, drawing
    from the worlds' streams) in the compared steps, then every world resets (nest, lattice, items)."""
    r = _compare(2, 6, 12)
    _check(r)
    assert r["picked"] > 0 and r["delivered"] > 0 and r["truncated"] > 0, r


@pytest.mark.slow
def test_foraging_respawns_on_the_gpu_release_carried_items_as_on_the_cpu():
    """``Foraging.respawn`` on both: what the respawned robots carry goes back to clear places first (the same
    draws from the world's stream), then they restart clear of the others; the envs go on agreeing."""
    for schedule in ("world", "agent"):
        r = _compare(2, 6, 9, respawn_at=(4, 6), schedule=schedule)
        _check(r)
        assert r["respawned_carriers"] > 0 and r["picked"] > 0, (schedule, r)


def test_item_update_and_sensor_on_the_gpu_match_the_cpu():
    """``gpu.items`` (a thread per world for the update, per agent for the sensor) against ``core.items`` on
    the same worlds, with robots moved onto items and into the nests so that every rule runs: carriers,
    loads, pick-ups, deliveries, re-placed items and the sensor's slots are the CPU's."""
    from entropy_engine.core.backends import make_world
    from entropy_engine.core.items import Items
    from entropy_engine.core.landmarks import Landmarks
    from entropy_engine.core.params import WorldConfig
    from entropy_engine.core.rng import seed_states
    from entropy_engine.gpu.env import Launch
    from entropy_engine.gpu.items import DeviceItems

    E, N, M, arena = 2, 6, 9, 6.0
    world = make_world(WorldConfig(arena_size=arena), E, N, 4)
    rng = np.random.default_rng(0)
    world.pos[:] = rng.uniform(0.5, arena - 0.5, (E, N, 2))
    world.theta[:] = rng.uniform(-np.pi, np.pi, (E, N))
    world.active[:] = True
    world.active[1, 5] = False
    nests = Landmarks(world, 2)
    nests.place(rng.uniform(1.5, arena - 1.5, (E, 2, 2)), 0.8, active=np.array([[True, False], [True, True]]))
    items = Items(world, M, item_radius=0.12, capacity=2, k=3, sense_range=2.5, margin=0.4, spacing=0.3,
                  nest_clearance=0.3)
    states = seed_states(5, E)
    items.scatter(np.ones(E, bool), M - 1, states, nests)
    dev = DeviceItems(items)
    rng_d = to_device(states)
    dn = SimpleNamespace(pos=to_device(nests.pos), radius=to_device(nests.radius), active=to_device(nests.active))
    launch = Launch(E, N)
    prev_load = to_device(np.zeros((E, N), np.int32))
    picks = delivers = sensed = 0
    for t in range(12):
        world.step(rng.uniform(-1, 1, (E, N, 2)).astype(np.float32))
        for e in range(E):   # loaded robots into a nest, others onto items
            loaded = np.flatnonzero(items.load[e] > 0)[:2]
            world.pos[e, loaded] = nests.pos[e, 0] + rng.uniform(-0.3, 0.3, (len(loaded), 2))
            room = np.setdiff1d(np.flatnonzero(items.load[e] < 2), loaded)[:2]
            free = np.flatnonzero(items.free[e])[:len(room)]
            world.pos[e, room[:len(free)]] = items.pos[e, free] + rng.uniform(-0.1, 0.1, (len(free), 2))
        cs, ci = world.grid()
        dw = SimpleNamespace(pos=to_device(world.pos), theta=to_device(world.theta), active=to_device(world.active),
                             grid_size=world.grid_size, cell_start=to_device(cs), cell_items=to_device(ci))
        load_before = items.load.copy()
        items.update(states, nests)
        items.sense()
        dev.update(rng_d, dn, dw, launch, prev_load)
        dev.sense(to_device(np.ones(E, np.bool_)), dw, launch)
        bad, dpos = _item_state_mismatch(items, dev)
        assert bad == 0 and dpos <= 1e-6, (t, bad, dpos)
        assert np.array_equal(_host(prev_load), load_before) and np.array_equal(_host(rng_d), states)
        picks += int(items.picked.sum())
        delivers += int(items.delivered.sum())
        sensed += int((items.sensed_index >= 0).sum())
    assert picks > 0 and delivers > 0 and sensed > 0, (picks, delivers, sensed)
    assert not items.sensed[1, 5].any()   # the robot that left senses nothing


@pytest.mark.slow
def test_foraging_device_env_runs_levels_of_a_reward_weight_per_world():
    """Levels of ``pickup_reward`` and ``search_progress_reward`` drawn at each world's reset: each world's row
    of settings reaches the GPU's reward as on the CPU (the same levels drawn, the same rewards), with random
    actions (short episodes, every level drawn) and with the heuristic (pick-ups)."""
    from entropy_engine.envs.curriculum import CurriculumSpec

    spec = CurriculumSpec("levels", ("pickup_reward", "search_progress_reward"), ((1.0, 0.2), (5.0, 1.0), (0.2, 3.0)),
                          "pickups", "pickups_per_agent", uniform_share=0.5, stats_window=20)
    r = _compare(3, 4, 14, seed=4, heuristic=False, curriculum=spec, max_steps=4)
    _check(r)
    assert r["truncated"] > 0 and len(r["levels"]) > 1, r
    r = _compare(2, 6, 12, curriculum=spec)   # the heuristic: pick-ups scored at each world's level
    _check(r)
    assert r["picked"] > 0 and len(r["levels"]) > 1, r


@pytest.mark.slow
def test_foraging_device_env_with_a_channel_matches_batch_env():
    """Foraging with a communication channel (the nearest senders, noise): the received block joins the
    item observations; compared with ``gpu.agreement.compare_envs`` (random actions)."""
    from entropy_engine.gpu.agreement import compare_envs

    r = compare_envs("foraging", 2, 4, steps=8, **dict(KW, max_steps=6), comm_dim=2, comm_combine="nearest",
                     comm_noise=0.1)
    for key in ("reset_obs", "obs", "reward", "terminal_obs", "episode_return", "episode_stats"):
        assert r[key] <= TOL, (key, r)
    for key in ("done_mismatch", "info_mismatch", "length_mismatch"):
        assert r[key] == 0, (key, r)
    assert r["truncated"] > 0 and r["heard"] > 0, r


@pytest.mark.slow
def test_training_foraging_on_the_device_env_follows_the_cpu_run():
    """Two PPO iterations of the ``foraging`` preset's network on the device env give the CPU run's logged
    metrics and final observations (as ``tests/test_gpu.py`` checks the other presets)."""
    from entropy_engine.training.config import PRESETS

    env = {k: v for k, v in KW.items() if k != "max_steps"}   # the episode length: max_episode_steps below
    base = dict(PRESETS["foraging"], env=dict(PRESETS["foraging"].get("env", {}), **env))
    logs, obs = train_on_both_backends(base)
    assert_runs_agree(logs, obs, TOL)
    assert logs["numba"][-1]["env/pickups_per_agent"] > 0, logs["numba"][-1]   # items were picked up
