"""Seeding, thread-count independence and a crowded random-action fuzz run."""
import numba
import numpy as np
import pytest

from entropy_engine import BatchEnv
from entropy_engine.core.geometry import segment_distance


def _rollout(seed, steps=120, threads=None, schedule=None, **kw):
    if threads is not None:
        numba.set_num_threads(threads)
    try:
        env = BatchEnv(num_worlds=6, n_agents=10, seed=seed, max_steps=50, **kw)
        env.scenario.world.schedule_override = schedule
        env.scenario.world.serial_below = 0     # 60 agents would otherwise run on one thread
        env.reset()
        act_rng = np.random.default_rng(123)
        trace = []
        for _ in range(steps):
            obs, rew, term, trunc, _ = env.step(act_rng.uniform(-1, 1, (env.num_slots, 2)))
            trace.append((obs.copy(), rew.copy(), term.copy(), trunc.copy(), env.scenario.world.pos.copy()))
        return trace
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def _same(a, b):
    return all(np.array_equal(x, y) for ta, tb in zip(a, b) for x, y in zip(ta, tb))


def test_same_seed_is_bit_identical():
    assert _same(_rollout(7), _rollout(7))


def test_different_seeds_differ():
    assert not _same(_rollout(7, steps=5), _rollout(8, steps=5))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs at least 2 numba threads")
@pytest.mark.parametrize("schedule", ["world", "agent"])
def test_bit_identical_whatever_the_thread_count(schedule):
    """Both parallel schedules on 1 and on all threads."""
    assert _same(_rollout(3, threads=1, schedule=schedule),
                 _rollout(3, threads=numba.config.NUMBA_NUM_THREADS, schedule=schedule))


def test_reset_seed_restarts_the_streams():
    env = BatchEnv(num_worlds=3, n_agents=5, seed=None)
    a = env.reset(seed=11).copy()
    env.step(np.zeros((15, 2)))
    b = env.reset(seed=11).copy()
    assert np.array_equal(a, b)


@pytest.mark.slow
def test_fuzz_crowded_random_actions():
    """>= 100,000 agent-steps of random actions in crowded worlds stay physical."""
    env = BatchEnv(num_worlds=16, n_agents=40, seed=5, arena_size=12.0, n_obstacles=6, max_steps=100)
    world = env.scenario.world
    r = world.radius
    rng = np.random.default_rng(0)
    env.reset()
    worst_overlap = 0.0
    worst_wall = 0.0
    steps = 200  # 16 * 40 * 200 = 128,000 agent-steps
    for _ in range(steps):
        obs, rew, term, trunc, info = env.step(rng.uniform(-1.5, 1.5, (env.num_slots, 2)))
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert np.isfinite(world.pos).all() and np.isfinite(world.vel).all()
        pos = world.pos.astype(np.float64)
        assert (pos >= r - 1e-5).all() and (pos <= world.arena - r + 1e-5).all()
        for e in range(world.num_worlds):
            act = world.active[e]
            p = pos[e][act]
            d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1)) + np.eye(len(p)) * 9
            worst_overlap = max(worst_overlap, 2 * r - d.min())
            for k in range(world.n_walls[e]):
                wall = world.walls[e, k].astype(np.float64)
                gaps = [segment_distance(x, y, *wall) for x, y in p]
                worst_wall = max(worst_wall, r - min(gaps))
    assert worst_wall <= 1e-4, f"an agent is inside a wall by {worst_wall:.5f} m"
    # stated tolerance: agent-agent overlap stays below 25% of a radius even when crowded
    assert worst_overlap <= 0.25 * r, f"overlap {worst_overlap:.4f} m"


def test_schedules_and_one_thread_path_are_bit_identical():
    """The ways of running the step agree, resets and respawns included: a world per task, phases
    over all agents (both on every thread), and every kernel on one thread (small batches)."""
    traces = []
    for schedule, serial_below in (("world", 0), ("agent", 0), (None, 10**9)):
        env = BatchEnv(num_worlds=5, n_agents=12, seed=4, max_steps=80, arena_size=6.0, n_obstacles=1)
        world = env.scenario.world
        world.schedule_override, world.serial_below = schedule, serial_below
        env.reset()
        rng = np.random.default_rng(1)
        trace, goals = [], 0
        for t in range(120):   # the heuristic reaches goals (respawns); a world reset at step 80
            act = env.heuristic_actions() if t % 2 else rng.uniform(-1, 1, (env.num_slots, 2))
            obs, rew, term, *_ = env.step(act)
            goals += int(term.sum())
            trace.append((obs.copy(), rew.copy(), world.pos.copy()))
        assert goals > 0
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS   # the one-thread path restores it
        traces.append(trace)
    assert _same(traces[0], traces[1]) and _same(traces[0], traces[2])
