"""The GPU backend (entropy_engine/gpu) against the numba backend and BatchEnv.

Runs in numba's CUDA simulator (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1) on small worlds, so
that CI, which has no GPU, checks the GPU code path; ``NUMBA_ENABLE_CUDASIM=0 pytest tests/test_gpu.py``
runs the same checks on a real GPU. Tolerances: the simulator computes float32 array values in
numpy's float32 arithmetic where the compiled kernels use float64, so positions, velocities and lidar
differ by float32 rounding (observed <= 1e-5 on a real H200 over 40 steps); contact flags, grids,
resets, done flags and episode lengths must be identical.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch

from entropy_engine.config import ConfigError
from entropy_engine.gpu import target
from entropy_engine.gpu.agreement import compare_envs, compare_worlds
from gpu_checks import assert_runs_agree, train_on_both_backends

TOL = 1e-4

pytestmark = pytest.mark.filterwarnings("ignore")


def _check(r):
    assert r["reset_pos"] == 0.0 and r["reset_walls"] == 0.0
    for key in ("pos", "vel", "lidar", "obs", "reward", "theta"):
        assert r[key] <= TOL, (key, r)
    assert r["contact_mismatch"] == 0, r
    assert r["grid_mismatch"] == 0, r


def test_gpu_path_runs_here():
    """CI has no GPU: the simulator must stand in, so that the tests below check the CUDA drivers."""
    assert target.available()


def test_world_schedule_matches_numba_with_contacts():
    # crowded: 10 robots in a small arena driven forward, several worlds per block with a partial last block
    r = compare_worlds("navigation", 5, 10, 10, seed=4, push=0.8, worlds_per_block=2, n_obstacles=3,
                       area_per_agent=1.5)
    _check(r)
    assert r["contacts"] > 0, "the check must include collisions"


def test_agent_schedule_and_parallel_grid_match_numba():
    r = compare_worlds("navigation", 2, 12, 6, seed=4, schedule="agent", push=0.9, n_obstacles=2,
                       area_per_agent=1.0)
    _check(r)
    assert r["contacts"] > 0


def _check_envs(r):
    for key in ("reset_obs", "obs", "reward", "terminal_obs", "episode_return", "episode_stats"):
        assert r[key] <= TOL, (key, r)
    for key in ("done_mismatch", "info_mismatch", "length_mismatch"):
        assert r[key] == 0, (key, r)


def test_device_env_matches_batch_env_through_respawns_and_resets():
    r = compare_envs("navigation", max_steps=12, goal_radius=1.2, n_obstacles=3, collision_onset_penalty=1.0,
                     proximity_penalty=0.5, approach_penalty=0.5)
    _check_envs(r)
    assert r["terminated"] > 0 and r["truncated"] > 0, r   # a respawn and a world reset were compared


def test_flocking_device_env_matches_batch_env_with_neighbours_and_waypoints():
    """Flocking on the GPU: the neighbour sensor, the per-world phase (centroid, polarisation, waypoint
    redraws) and the per-agent reward agree with the CPU env through world resets."""
    r = compare_envs("flocking", max_steps=12, waypoint_radius=4.0, waypoint_min_distance=1.0)
    _check_envs(r)
    assert r["truncated"] > 0 and r["waypoint_reached"] > 0, r


def test_aggregation_device_env_matches_batch_env_with_clusters():
    """Aggregation on the GPU: union-find clusters over the grid, the coarse cue, the neighbour sensor and
    the telescoping episode statistics agree with the CPU env through world resets."""
    r = compare_envs("aggregation", max_steps=12, link_distance=1.5)
    _check_envs(r)
    assert r["truncated"] > 0, r


def test_coverage_device_env_matches_batch_env_with_landmarks():
    """Coverage on the GPU: landmarks placed at reset, nearest and second-nearest robots, occupancy and the
    landmark slots of the observation agree with the CPU env through world resets."""
    r = compare_envs("coverage", max_steps=12, landmark_radius=0.7, landmark_spacing=1.4)
    _check_envs(r)
    assert r["truncated"] > 0 and r["on_landmark"] > 0, r


def test_formation_device_env_matches_batch_env_with_the_matching():
    """Formation on the GPU: the reference's path and its waypoint redraws, the optimal matching (the
    Hungarian algorithm on the scenario's preallocated scratch; the ``slot`` info must be identical),
    the neighbour sensor and the slot observations agree with the CPU env through world resets."""
    from entropy_engine.envs.batch import BatchEnv

    kw = dict(max_steps=12, arena_size=4.5, ref_waypoint_radius=2.5, ref_waypoint_min_distance=0.5, ref_speed=0.9)
    r = compare_envs("formation", **kw)
    _check_envs(r)
    assert r["truncated"] > 0 and r["collided"] > 0, r
    # the comparison's worlds redrew waypoints and handed slots over (the reference's path does not depend on
    # the actions; the slots are those of the comparison's first steps, with its seed and actions)
    env = BatchEnv("formation", 3, 6, seed=7, **kw)
    env.reset()
    sc = env.scenario
    rs = np.random.default_rng(7)
    redraws = handovers = 0
    for t in range(14):
        wp, slot = sc.waypoint.copy(), sc.assign.copy()
        act = np.clip(rs.uniform(-1, 1, (env.num_slots, env.act_dim)) + 0.4, -1, 1).astype(np.float32)
        env.step(act)
        if (t + 1) % 12:
            redraws += int((sc.waypoint != wp).any(axis=1).sum())
            handovers += int((sc.assign != slot).sum())
    assert redraws > 0 and handovers > 0, (redraws, handovers)


def test_rendezvous_device_env_matches_batch_env_with_its_channel():
    """Rendezvous on the GPU with its preset's channel (3 values, the nearest senders): the lattice spawns, the
    goal and the informed robot drawn at resets, the zone, the team's progress, the telescoping statistics
    (gathered or not: the worlds compared are gathered in some steps, not in others) and the received block
    agree with the CPU env through world resets."""
    from entropy_engine.envs.batch import BatchEnv

    kw = dict(max_steps=6, arena_size=4.0, goal_radius=1.5, comm_dim=3, comm_combine="nearest")
    r = compare_envs("rendezvous", 2, 4, steps=8, **kw)
    _check_envs(r)
    assert r["truncated"] > 0 and r["in_zone"] > 0 and r["heard"] > 0, r
    env = BatchEnv("rendezvous", 2, 4, seed=7, **kw)   # the comparison's worlds, seed and actions
    env.reset()
    rs = np.random.default_rng(7)
    gathered = 0
    for _ in range(8):
        env.step(np.clip(rs.uniform(-1, 1, (env.num_slots, env.act_dim)) + 0.4, -1, 1).astype(np.float32))
        gathered += int(env.scenario.info["in_zone"].all(axis=1).sum())
    assert 0 < gathered < 16, gathered


@pytest.mark.slow
def test_rendezvous_device_env_matches_batch_env_with_collisions():
    """Larger worlds driven forward: contacts (the collision terms of the reward and statistics) are compared too."""
    r = compare_envs("rendezvous", max_steps=12, area_per_agent=2.0, push=0.8, comm_dim=3, comm_combine="nearest")
    _check_envs(r)
    assert r["truncated"] > 0 and r["in_zone"] > 0 and r["collided"] > 0 and r["heard"] > 0, r


def test_device_env_runs_curricula_as_batch_env_does():
    """Levels (per-world walls, goal distance, active robots, reward weights drawn at each world's reset)
    and stages (promoted on a window of success) on the device env: the same settings reach the same
    worlds at the same steps, so observations, rewards and the curriculum's state match BatchEnv's."""
    from entropy_engine.envs.curriculum import CurriculumSpec

    levels = CurriculumSpec("levels", ("n_obstacles", "min_goal_distance", "active_fraction", "time_penalty"),
                            ((0.0, 0.5, 1.0, 0.0), (2.0, 1.0, 0.5, 1.0), (4.0, 2.0, 1.0, 0.5)), "success",
                            "success_rate", uniform_share=0.3, stats_window=20)
    r = compare_envs("navigation", steps=16, max_steps=5, goal_radius=1.2, n_obstacles=4, curriculum=levels)
    _check_envs(r)
    assert r["curriculum_mismatch"] == 0 and r["truncated"] > 0 and r["terminated"] > 0, r
    assert sum(r["curriculum"]["episodes"]) > 0 and len(set(r["curriculum"]["levels"])) > 1, r["curriculum"]
    stages = CurriculumSpec("stages", ("n_obstacles", "goal_reward"), ((0.0, 1.0), (2.0, 2.0), (4.0, 3.0)), "success",
                            "success_rate", True, (0.1, 0.1, float("nan")), (3, 3, 1), (0, 0, 0), (0, 0, 0))
    r = compare_envs("navigation", steps=16, max_steps=6, goal_radius=1.2, n_obstacles=4, curriculum=stages)
    _check_envs(r)
    assert r["curriculum_mismatch"] == 0 and r["curriculum"]["stage"] >= 1, r


@pytest.mark.slow
@pytest.mark.parametrize("scenario, setting, values, stat, kw", [
    ("flocking", "progress_reward", (1.0, 3.0, 0.2), "waypoints", dict(waypoint_radius=4.0, waypoint_min_distance=1.0)),
    ("aggregation", "cluster_reward", (0.5, 2.0, 1.0), "aggregated", dict(link_distance=1.5)),
    ("coverage", "distance_penalty", (0.05, 0.4, 0.1), "all_covered", dict(landmark_radius=0.7, landmark_spacing=1.4)),
    ("formation", "error_penalty", (0.5, 2.0, 1.0), "formed", dict(ref_waypoint_radius=2.5, ref_waypoint_min_distance=0.5)),
    ("rendezvous", "team_reward", (0.5, 4.0, 2.0), "gathered", dict(arena_size=4.0, goal_radius=1.5, comm_dim=3,
                                                                     comm_combine="nearest")),
])
def test_device_env_runs_levels_of_reward_weights_per_world(scenario, setting, values, stat, kw):
    """Levels of a reward weight on the device env of flocking, aggregation, coverage, formation and rendezvous: each world's
    row of settings reaches its kernels as on the CPU, through world resets that draw new levels."""
    from entropy_engine.envs.curriculum import CurriculumSpec

    spec = CurriculumSpec("levels", (setting,), tuple((v,) for v in values), stat, stat, uniform_share=0.5,
                          stats_window=20)
    r = compare_envs(scenario, steps=14, max_steps=5, curriculum=spec, **kw)
    _check_envs(r)
    assert r["curriculum_mismatch"] == 0 and r["truncated"] > 0, r
    assert len(set(r["curriculum"]["levels"])) > 1, r["curriculum"]


def test_device_env_refuses_bad_input_and_what_it_lacks():
    from entropy_engine.gpu.env import DeviceEnv

    env = DeviceEnv("navigation", 2, 3, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(6, 2))
    env.reset()
    with pytest.raises(ValueError, match=r"shape \(6, 2\)"):
        env.step(torch.zeros(5, 2))
    bad = torch.zeros(6, 2)
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)
    # an autoreset that could not place everything stops the run (checked every CROWDED_EVERY steps)
    from entropy_engine.gpu.env import CROWDED_EVERY

    env = DeviceEnv("navigation", 3, 3, seed=0, max_steps=2)
    env.reset()
    placed = target.torch_view(env.sc.placed)
    zero = torch.zeros(9, 2)
    for k in range(CROWDED_EVERY - 1):
        env.step(zero)                            # every second step resets every world
    env.sc.short = lambda: torch.tensor([False, True, False])   # world 1's next reset falls short
    with pytest.raises(RuntimeError, match="world 1: could not place every agent and goal .*too crowded"):
        env.step(zero)
    assert (placed == 3).all()
    with pytest.raises(ConfigError, match=r"the device env runs \[.*'navigation'.*\], got 'no_such_scenario'"):
        DeviceEnv("no_such_scenario", 2, 3)


def test_cuda_backend_carries_objects_and_explains_a_missing_gpu(monkeypatch):
    from entropy_engine.scenarios import make_scenario

    sc = make_scenario("transport", 1, 2, 0, backend="cuda", n_objects=2)   # objects on the GPU (tests/test_gpu_objects.py)
    assert sc.world.device.n_objects == 2 and sc.world.device.n_bodies == 4
    monkeypatch.setattr(target, "available", lambda: False)
    with pytest.raises(ConfigError, match="NVIDIA GPU"):
        make_scenario("navigation", 1, 2, 0, backend="cuda")


@pytest.mark.slow
def test_every_scenario_runs_on_the_cuda_backend():
    """The host-synced backend carries any scenario (transport: with its object): a few steps of each agree
    with numba."""
    from entropy_engine.scenarios import SCENARIOS

    for name in sorted(SCENARIOS):
        kw = {"comm_dim": 2} if name == "rendezvous" else {}
        r = compare_worlds(name, 2, 5, 3, seed=1, **kw)
        assert r["pos"] <= TOL and r["contact_mismatch"] == 0 and r["reward"] <= TOL, (name, r)


def test_a_cuda_run_replays_on_numba_without_a_gpu(monkeypatch):
    from entropy_engine.training.config import stored_config

    monkeypatch.setattr(target, "available", lambda: False)
    assert stored_config({"backend": "cuda"}).backend == "numba"
    assert stored_config({"backend": "cuda"}, backend="cuda").backend == "cuda"


def test_device_episode_metrics_match_the_host_collector():
    from entropy_engine.envs.metrics import EpisodeMetrics
    from entropy_engine.gpu.metrics import DeviceEpisodeMetrics

    metrics = {"success_rate": ("success", "")}
    host, dev = EpisodeMetrics(metrics), DeviceEpisodeMetrics(metrics, "cpu")
    rs = np.random.default_rng(0)
    for _ in range(5):
        info = {"episode_return": rs.normal(size=8).astype(np.float32), "episode_length": rs.integers(1, 9, 8),
                "episode_success": (rs.random(8) < 0.5).astype(np.float32)}
        done = rs.random(8) < 0.5
        host.add(info, done)
        dev.add({k: torch.from_numpy(v) for k, v in info.items()}, torch.from_numpy(done))
    a, b = host.pop(), dev.pop()
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-9 for k in a), (a, b)
    assert dev.pop() == {}


LEVELS = {"levels": {"grid": {"n_obstacles": [0, 4], "min_goal_distance": [0.5, 1.5]}, "uniform_share": 0.2,
                     "stats_window": 20, "top_k": 2, "target_share": 0.2}}


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["default", "flocking", "aggregation", "coverage", "formation", "rendezvous",
                                    "levels", "default+tokens"])
def test_training_on_the_device_env_follows_the_cpu_run(preset):
    """Two PPO iterations of a preset's network on the device env give the CPU run's metrics (``levels``:
    the default preset with a level curriculum: the same levels drawn, the same curriculum logs; "+tokens":
    with a channel of discrete messages, so the policy's token columns travel as tensors on the device)."""
    from entropy_engine.training.config import PRESETS

    base = PRESETS[preset.split("+")[0]] if preset != "levels" else dict(
        PRESETS["default"], env=dict(PRESETS["default"]["env"], n_obstacles=4), curriculum=LEVELS)
    if preset.endswith("+tokens"):
        base = dict(base, env=dict(base.get("env", {}), comm_dim=2, comm_vocab=3, comm_noise=0.1, comm_dropout=0.2))
    # resume: the env's random streams travel through checkpoints: a resumed run restarts its episodes
    # from them, on either env
    logs, obs = train_on_both_backends(base, resume=True)
    for a in logs["numba"]:
        assert preset != "levels" or "curriculum/level3_prob" in a
    assert_runs_agree(logs, obs, TOL, prefixes=("env/", "rollout/", "curriculum/"))


@pytest.mark.slow
def test_a_policy_scores_the_same_on_both_backends():
    """``entropy eval``'s evaluation of one policy (the scripted heuristic here; a trained policy on an
    H200 in README "On a GPU": 0.895 vs 0.899) on the numba and the cuda backend."""
    from entropy_engine.training.config import stored_config
    from entropy_engine.training.evaluate import evaluate

    res = {}
    for backend in ("numba", "cuda"):
        cfg = stored_config({"n_agents": 4, "max_episode_steps": 60, "backend": backend,
                             "env": {"goal_radius": 0.6, "n_obstacles": 2}})
        res[backend] = evaluate("heuristic", episodes=2, num_worlds=2, seed=3, cfg=cfg)
        assert res[backend]["backend"] == backend
    assert res["numba"]["success_rate"] > 0          # the comparison includes arrivals
    for key in ("success_rate", "collisions_per_agent", "mean_episode_length"):
        assert res["cuda"][key] == pytest.approx(res["numba"][key], abs=1e-6), key


def test_without_a_gpu_the_commands_refuse_clearly(tmp_path):
    """No GPU (CUDA disabled): ``entropy train/bench --backend cuda`` stop with one clear line, and the
    run folder is never made."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", NUMBA_DISABLE_CUDA="1")
    for args in (["train", "--backend", "cuda", "--total-steps", "100", "--out", str(tmp_path / "run")],
                 ["bench", "--backend", "cuda"]):
        r = subprocess.run([sys.executable, "-m", "entropy_engine.cli", *args], capture_output=True, text=True,
                           env=env, timeout=300)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "backend 'cuda' needs an NVIDIA GPU" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("scenario", ["flocking", "aggregation", "coverage", "formation", "rendezvous"])
def test_respawn_on_the_gpu_matches_the_scenario(scenario):
    """``gpu.spawn.respawn_clear`` puts the same robots at the same places as the scenario's CPU respawn
    (these scenarios never terminate an agent in training, so the env comparisons do not reach it)."""
    from entropy_engine.gpu.env import DeviceEnv
    from entropy_engine.gpu.target import download, to_device
    from entropy_engine.scenarios import make_scenario

    host = make_scenario(scenario, 2, 6, 3)
    host.reset()
    env = DeviceEnv(scenario, 2, 6, seed=3)
    env.reset()
    mask = np.zeros((2, 6), np.bool_)
    mask[0, [1, 4]] = True
    mask[1, 0] = True
    host.respawn(mask)
    refresh = to_device(np.zeros(2, np.bool_))
    env.sc.respawn(to_device(mask), refresh)
    pos, theta, flags = np.zeros((2, 6, 2), np.float32), np.zeros((2, 6), np.float32), np.zeros(2, np.bool_)
    download(env.world.pos, pos)
    download(env.world.theta, theta)
    download(refresh, flags)
    np.testing.assert_array_equal(pos, host.world.pos)
    np.testing.assert_array_equal(theta, host.world.theta)
    assert flags.all()


@pytest.mark.slow
def test_the_one_command_gpu_check_runs_its_agreement_part(tmp_path):
    """``entropy bench --backend cuda --quick``'s agreement part (in the simulator): every comparison it
    makes is written to the JSON and agrees."""
    import json

    from entropy_engine.gpu.check import run

    path = tmp_path / "gpu.json"
    assert run(str(path), 0.1, skip=("physics", "env", "train", "quality"), quick=True) == 0
    out = json.loads(path.read_text())
    envs = [k for k in out if k.startswith("agreement_env_")]
    scenarios = ("navigation", "flocking", "aggregation", "coverage", "formation", "rendezvous", "pursuit", "transport",
                 "foraging", "levels")
    assert {f"agreement_env_{name}" for name in scenarios} <= set(envs), envs
    for key in envs:
        _check_envs(out[key])
        assert out[key]["curriculum_mismatch"] == 0, key
    for sched in ("world", "agent"):
        _check(out[f"agreement_{sched}"])


@pytest.mark.slow
def test_the_one_command_gpu_check_measures_the_quality_target(tmp_path):
    """Its last part trains the default preset on the device env for a wall-clock budget and evaluates
    the policy on the CPU env (``--quick``: 1 s on 4 worlds, 4 episodes): the JSON holds what it measured."""
    import json

    from entropy_engine.gpu.check import run

    path = tmp_path / "gpu.json"
    assert run(str(path), 0.1, skip=("agreement", "physics", "env", "train"), quick=True) == 0
    q = json.loads(path.read_text())["quality"]
    assert q["agent_steps"] >= 4 * 10 * 32 and q["wall_s"] >= 1.0          # at least one iteration, then the budget
    assert 0.0 <= q["success_rate"] <= 1.0 and q["episodes"] == 4 and q["agent_episodes"] >= 40
    assert q["target_success_rate"] == 0.99 and q["num_worlds"] == 4


# ----------------------------------------------------------------------------- the channel on the GPU
def _check_channel(r):
    _check_envs(r)
    assert r["heard"] > 0, r   # messages were delivered and compared (the received block is in the observations)


@pytest.mark.slow
def test_device_env_channel_matches_batch_env_mean_noise_dropout_delay():
    """Continuous messages (mean of the heard ones) with noise, link loss and a step of delay: the received
    block agrees with BatchEnv's through a respawn and world resets (the same per-world channel streams)."""
    r = compare_envs("navigation", max_steps=12, goal_radius=1.2, n_obstacles=3, comm_dim=2, comm_noise=0.1,
                     comm_dropout=0.3, comm_delay=1, comm_range=4.0)
    _check_channel(r)
    assert r["terminated"] > 0 and r["truncated"] > 0, r


@pytest.mark.slow
def test_device_env_channel_matches_batch_env_tokens_nearest():
    """Discrete messages (comm_vocab=3, one-hots on the air), the nearest senders with their ego-frame
    positions, walls cutting links."""
    r = compare_envs("navigation", seed=4, max_steps=12, goal_radius=1.2, n_obstacles=3, comm_dim=2, comm_vocab=3,
                     comm_combine="nearest", comm_k=2, comm_range=4.0, comm_occlusion=True)
    _check_channel(r)
    assert r["terminated"] > 0 and r["truncated"] > 0, r


@pytest.mark.slow
def test_flocking_device_env_with_a_channel_matches_batch_env():
    """A goal-less scenario with a channel (max of the heard messages, noise, loss) beside its neighbour sensor."""
    r = compare_envs("flocking", max_steps=12, waypoint_radius=4.0, waypoint_min_distance=1.0, comm_dim=1,
                     comm_combine="max", comm_noise=0.05, comm_dropout=0.2)
    _check_channel(r)
    assert r["truncated"] > 0, r


def test_device_env_channel_spaces_tokens_and_streams():
    """The device env with a channel has BatchEnv's spaces and token columns, refuses tokens that are not whole
    numbers in 0 .. V-1 without changing anything, and its checkpointed streams include the channel's: an env
    restored from them continues exactly (noise and loss included)."""
    from entropy_engine.envs.batch import BatchEnv
    from entropy_engine.gpu.env import DeviceEnv

    kw = dict(comm_dim=2, comm_vocab=3, comm_noise=0.2, comm_dropout=0.3, comm_range=6.0, n_obstacles=0)
    env, cpu = DeviceEnv("navigation", 1, 3, seed=1, **kw), BatchEnv("navigation", 1, 3, seed=1, **kw)
    assert env.observation_space == cpu.observation_space and env.action_space == cpu.action_space
    assert env.agent_action_space == cpu.agent_action_space and env.tokens == cpu.tokens == (2, 3)
    assert env.obs_dim == cpu.obs_dim == 36 + 2 * 3 + 1 and env.act_dim == 4
    obs0 = env.reset().clone()
    before = env.rng_state()
    for token in (1.5, 3.0, -1.0):
        bad = torch.zeros(3, 4)
        bad[1, 3] = token
        with pytest.raises(ValueError, match=r"message tokens \(action columns 2..3\) must be whole numbers in \[0, 2\]"):
            env.step(bad)
    assert torch.equal(env.obs, obs0) and np.array_equal(env.rng_state(), before)
    heur = env.heuristic_actions()   # the scenario's heuristic on its part of the observation, token 0 sent
    assert heur.shape == (3, 4) and bool((heur[:, 2:] == 0).all())
    env.step(heur)
    rs = np.random.default_rng(0)
    acts = [torch.from_numpy(np.concatenate([rs.uniform(-1, 1, (3, 2)), rs.integers(0, 3, (3, 2))], 1)
                             .astype(np.float32)) for _ in range(2)]
    env.step(acts[0])
    state = env.rng_state()
    assert state.shape == (2,)   # the scenario's streams [E], then the channel's [E]

    def run(e):
        e.reset()
        return [e.step(a)[0].clone() for a in acts]

    first = run(env)
    other = DeviceEnv("navigation", 1, 3, seed=1, **kw)   # the same layouts, but its channel streams at the start
    other.set_rng_state(np.concatenate([state[:1], other.rng_state()[1:]]))
    restored = DeviceEnv("navigation", 1, 3, seed=1, **kw)
    restored.set_rng_state(state)
    assert all(torch.equal(a, b) for a, b in zip(first, run(restored)))
    assert any(not torch.equal(a, b) for a, b in zip(first, run(other))), "the channel's streams must matter"
    assert float(torch.stack(first)[..., -1].max()) > 0   # messages were heard
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.set_rng_state(state[:1])
