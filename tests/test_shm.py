"""ShmBatchEnv: same results as BatchEnv, clear errors on worker crash/hang, nothing left behind."""
import gc
import os
import signal
import time

import numpy as np
import pytest

from entropy_engine import BatchEnv, ConfigError
from entropy_engine.envs.shm import ShmBatchEnv, make_batch_env

SHM_DIR = "/dev/shm"


def _segments() -> set[str]:
    """Segments made by this process (other processes, e.g. a training run, may have their own)."""
    prefix = f"entropy_{os.getpid()}_"
    return {n for n in os.listdir(SHM_DIR) if n.startswith(prefix)} if os.path.isdir(SHM_DIR) else set()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def no_leftovers():
    before = _segments()
    pids: list[int] = []
    yield pids
    gc.collect()
    assert _segments() - before == set(), "shared-memory segments left in /dev/shm"
    assert not [p for p in pids if _alive(p)], "worker processes left running"


def _pids(env):
    return [p.pid for p in env._procs]


def _compare(env, ref, steps, heuristic_every=3, seed=0):
    rng = np.random.default_rng(seed)
    assert np.array_equal(env.reset(), ref.reset())
    for k in range(steps):
        act = ref.heuristic_actions() if k % heuristic_every == 0 else rng.uniform(-1, 1, (ref.num_slots, 2))
        a = env.step(act)
        b = ref.step(act)
        for x, y in zip(a[:4], b[:4]):
            assert np.array_equal(x, y), f"step {k}"
        assert a[4].keys() == b[4].keys()
        for key in b[4]:
            assert np.array_equal(a[4][key], b[4][key]), f"step {k}, info[{key!r}]"


def test_matches_batchenv_exactly_and_cleans_up(no_leftovers):
    kw = dict(num_worlds=5, n_agents=4, seed=3, max_steps=25)
    warm = BatchEnv(**kw)
    warm.reset()
    warm.step(np.zeros((20, 2)))  # numba threads are running in this process before the workers start
    ref = BatchEnv(**kw)
    env = ShmBatchEnv(workers=2, **kw)  # uneven split: 3 + 2 worlds
    no_leftovers.extend(_pids(env))
    try:
        _check_against(env, ref)
    finally:
        env.close()
    assert env.closed
    with pytest.raises(RuntimeError, match="closed"):
        env.step(np.zeros((20, 2)))


def _check_against(env, ref):
    assert (env.num_worlds, env.n_agents, env.num_slots, env.obs_dim, env.act_dim, env.max_steps) == \
        (ref.num_worlds, ref.n_agents, ref.num_slots, ref.obs_dim, ref.act_dim, ref.max_steps)
    assert env.config == ref.config and not hasattr(env, "scenario")
    _compare(env, ref, 60)  # crosses world resets and respawns
    assert np.array_equal(env.heuristic_actions(), ref.heuristic_actions())
    assert np.array_equal(env.reset(seed=11), ref.reset(seed=11))
    env.seed(5)
    ref.seed(5)
    assert np.array_equal(env.reset(), ref.reset())
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full((20, 2), np.nan))
    env.step(np.zeros((5, 4, 2)))  # still usable, [E, N, 2] accepted
    env.close()
    env.close()  # twice is fine


def test_step_before_reset_is_an_error(no_leftovers):
    with ShmBatchEnv(num_worlds=2, n_agents=3, workers=2, seed=0) as env:
        no_leftovers.extend(_pids(env))
        with pytest.raises(RuntimeError, match="reset"):
            env.step(np.zeros((6, 2)))


def test_killed_worker_raises_clear_error(no_leftovers):
    env = ShmBatchEnv(num_worlds=4, n_agents=3, workers=2, seed=0, timeout=30)
    no_leftovers.extend(_pids(env))
    env.reset()
    os.kill(env._procs[1].pid, signal.SIGKILL)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"worker 1 .*exited with code -9"):
        env.step(np.zeros((12, 2)))
    assert time.monotonic() - t0 < 10
    assert env.closed


def test_hung_worker_times_out(no_leftovers):
    env = ShmBatchEnv(num_worlds=2, n_agents=3, workers=2, seed=0, timeout=1.5)
    no_leftovers.extend(_pids(env))
    env.reset()
    os.kill(env._procs[0].pid, signal.SIGSTOP)  # frozen: alive but never answers
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"worker\(s\) \[0\].*did not answer a step within 1.5 s"):
        env.step(np.zeros((6, 2)))
    assert time.monotonic() - t0 < 10  # timeout plus shutdown (the frozen worker is killed)


def test_garbage_collection_stops_workers(no_leftovers):
    env = ShmBatchEnv(num_worlds=2, n_agents=3, workers=2, seed=0)
    no_leftovers.extend(_pids(env))
    env.reset()
    del env  # the fixture checks that processes and segments are gone


def test_config_errors_surface_in_the_main_process(no_leftovers):
    with pytest.raises(ConfigError, match="unknown config key"):
        ShmBatchEnv(num_worlds=2, workers=2, not_a_key=1)
    with pytest.raises(ValueError, match="workers"):
        ShmBatchEnv(num_worlds=2, workers=3)
    # refused by the scenario inside the workers (too many robots for the arena): same error type
    with pytest.raises(ConfigError, match="too small"):
        ShmBatchEnv(num_worlds=2, n_agents=400, workers=2, arena_size=10.0)


@pytest.mark.slow
def test_pymunk_workers_match_batchenv_with_deactivation(no_leftovers):
    pytest.importorskip("pymunk")
    kw = dict(num_worlds=6, n_agents=5, seed=8, max_steps=40, on_goal="deactivate", backend="pymunk")
    ref = BatchEnv(**kw)
    with ShmBatchEnv(workers=3, **kw) as env:
        no_leftovers.extend(_pids(env))
        _compare(env, ref, 90, heuristic_every=1)


@pytest.mark.slow
def test_forkserver_context(no_leftovers):
    kw = dict(num_worlds=4, n_agents=3, seed=1, max_steps=10)
    ref = BatchEnv(**kw)
    with ShmBatchEnv(workers=2, context="forkserver", **kw) as env:
        no_leftovers.extend(_pids(env))
        _compare(env, ref, 25)


def test_make_batch_env_picks_the_process_layout(no_leftovers):
    assert type(make_batch_env(num_worlds=2, n_agents=3, workers=1)) is BatchEnv
    with make_batch_env(num_worlds=2, n_agents=3, workers=2, seed=0) as env:
        no_leftovers.extend(_pids(env))
        assert isinstance(env, ShmBatchEnv) and env.num_workers == 2
        assert env.reset().shape == (6, 36)


@pytest.mark.parametrize("bad", [-1, 1.5, "7"])
def test_bad_seed_is_refused_like_batchenv_and_the_env_keeps_running(no_leftovers, bad):
    """reset(seed=-1) used to shut the env down (the worker raised); 1.5 and "7" were accepted."""
    kw = dict(num_worlds=2, n_agents=3, seed=0, max_steps=20)
    ref = BatchEnv(**kw)
    with ShmBatchEnv(workers=2, **kw) as env:
        no_leftovers.extend(_pids(env))
        with pytest.raises(ValueError) as exc:
            env.reset(seed=bad)
        with pytest.raises(ValueError) as ref_exc:
            ref.reset(seed=bad)
        assert str(exc.value) == str(ref_exc.value)
        with pytest.raises(ValueError):
            env.seed(bad)
        assert not env.closed
        _compare(env, ref, steps=5)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        ShmBatchEnv(workers=2, **{**kw, "seed": bad})


def test_sigterm_makes_a_worker_exit_quietly(no_leftovers, capfd):
    """A SIGTERM (the supervisor's terminate, or one to the whole process group) ends a worker at once
    with code 143 and without a word on stderr; the next call names the worker."""
    env = ShmBatchEnv(num_worlds=4, n_agents=3, workers=2, seed=0, timeout=30)
    no_leftovers.extend(_pids(env))
    env.reset()
    env.step(np.zeros((12, 2)))
    capfd.readouterr()
    os.kill(env._procs[0].pid, signal.SIGTERM)
    env._procs[0].join(10)
    assert env._procs[0].exitcode == 143
    with pytest.raises(RuntimeError, match=r"worker 0 \(pid \d+\) (exited with code 143|its pipe is closed)"):
        env.step(np.zeros((12, 2)))
    assert env.closed
    err = capfd.readouterr().err
    assert "Traceback" not in err and "SIGTERM" not in err, err
