"""Thread counts: the automatic choice (a pure function of cores and load), its bookkeeping, the
one-thread path of small batches, and the ``--threads`` options of ``entropy train`` / ``bench``.
No timing here: speed is measured by ``entropy bench --contention``."""
from __future__ import annotations

import json

import numba
import numpy as np
import pytest
import torch
import yaml

from entropy_engine.cli import main
from entropy_engine.core import threads
from entropy_engine.core.threads import CpuSample, choose_threads, others_busy, parse_proc_stat

TINY = ["--num-worlds", "2", "--n-agents", "4", "--n-steps", "16", "--seq-len", "8", "--batch-size", "64",
        "--n-epochs", "1", "--lstm-hidden-size", "8", "--net-arch", "8", "--max-episode-steps", "30",
        "--tensorboard", "false", "--videos", "false", "--console", "none"]


@pytest.fixture(autouse=True)
def _restore_threads():
    torch_before = torch.get_num_threads()
    yield
    threads.set_threads(0)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    torch.set_num_threads(torch_before)


@pytest.mark.parametrize("cores, others, expected", [
    (2, 0.0, 2),     # idle 2-core machine: every core
    (2, 0.2, 2),     # a neighbour at 0.2 of a core (an editor) leaves both
    (2, 0.8, 1),     # a busy neighbour (or a second run) takes one
    (2, 1.0, 1),
    (2, 2.0, 1),     # never fewer than one
    (2, 5.0, 1),
    (8, 0.0, 8),
    (8, 3.0, 5),
    (8, 2.7, 5),     # 8 - 2.7 + 0.25 = 5.55
    (8, 2.8, 5),
    (8, 2.74, 5),
    (8, 2.76, 5),    # 5.49
    (8, 3.76, 4),    # 4.49
    (1, 0.0, 1),
])
def test_choose_threads(cores, others, expected):
    assert choose_threads(cores, others) == expected


def test_choose_threads_limit_and_bad_input():
    assert choose_threads(8, 0.0, limit=4) == 4      # NUMBA_NUM_THREADS caps it
    assert choose_threads(8, 0.0, limit=0) == 1
    for cores, others in ((0, 0.0), (2, -0.1), (2, float("nan"))):
        with pytest.raises(ValueError):
            choose_threads(cores, others)


def test_others_busy_subtracts_this_process():
    a = CpuSample(wall=10.0, all_busy=100.0, own=5.0)
    b = CpuSample(wall=10.5, all_busy=101.0, own=5.4)     # 1.0 s of CPU in 0.5 s, 0.4 of it ours
    assert others_busy(a, b) == pytest.approx(1.2)
    assert others_busy(a, CpuSample(10.5, 100.3, 5.4)) == 0.0   # tick rounding: never negative
    assert others_busy(a, a) == 0.0


def test_parse_proc_stat():
    text = "cpu  100 20 30 1000 50 6 4 10 0 0\ncpu0 50 10 15 500 25 3 2 5 0 0\nintr 1 2 3\n"
    assert parse_proc_stat(text, 100.0) == pytest.approx((100 + 20 + 30 + 6 + 4 + 10) / 100.0)
    with pytest.raises(ValueError):
        parse_proc_stat("intr 1 2\n", 100.0)
    sample = threads.read_sample()
    if sample is not None:          # Linux
        assert sample.all_busy > 0 and sample.own > 0


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True, None])
def test_set_threads_refuses_bad_values(bad):
    before = numba.get_num_threads()
    with pytest.raises(ValueError, match="threads must be an integer >= 0"):
        threads.set_threads(bad)
    assert numba.get_num_threads() == before


def test_fixed_automatic_and_someone_elses_setting(monkeypatch):
    assert threads.set_threads(1) == 1 and numba.get_num_threads() == 1
    threads.tick()
    assert numba.get_num_threads() == 1                   # fixed: tick leaves it alone
    assert threads.set_threads(10**6) == numba.config.NUMBA_NUM_THREADS

    # automatic: the count follows choose_threads of the measured load
    load = {"busy": 0.0}
    clock = {"t": 100.0, "own": 0.0, "all": 0.0}

    def fake_sample():
        clock["t"] += 1.0
        clock["own"] += 0.5
        clock["all"] += 0.5 + load["busy"]
        return CpuSample(clock["t"], clock["all"], clock["own"])

    monkeypatch.setattr(threads, "read_sample", fake_sample)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "INTERVAL_S", 0.0)
    top = min(2, numba.config.NUMBA_NUM_THREADS)
    assert threads.set_threads(0) == top
    load["busy"] = 1.0                                    # a busy neighbour appears
    threads.tick()
    assert numba.get_num_threads() == 1
    load["busy"] = 0.0                                    # and leaves
    threads.tick()
    assert numba.get_num_threads() == top
    numba.set_num_threads(1)                              # the user's own call wins from now on
    load["busy"] = 0.0
    threads.tick()
    threads.tick()
    assert numba.get_num_threads() == 1


def test_small_batches_run_on_one_thread_and_restore_the_count():
    from entropy_engine import BatchEnv
    from entropy_engine.core.world import SERIAL_BELOW

    threads.set_threads(numba.config.NUMBA_NUM_THREADS)
    small = BatchEnv(num_worlds=1, n_agents=10, seed=0).scenario.world
    big = BatchEnv(num_worlds=SERIAL_BELOW, n_agents=1, seed=0).scenario.world
    seen = []
    with small.threads(step=True):
        seen.append(numba.get_num_threads())
        with small.threads():                             # nested blocks are harmless
            seen.append(numba.get_num_threads())
    seen.append(numba.get_num_threads())
    with big.threads():
        seen.append(numba.get_num_threads())
    n = numba.config.NUMBA_NUM_THREADS
    assert seen == [1, 1, n, n]


def test_bench_threads_option(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--cases", "worlds64_agents10", "--seconds", "0.05", "--threads", "1",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["threads"] == 1 and data["machine"]["numba_threads"] == 1
    assert data["worlds64_agents10"]["agent_steps_per_s"] > 0
    assert main(["bench", "--cases", "worlds64_agents10", "--seconds", "0.05", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["threads"] == 0                   # automatic by default


@pytest.mark.parametrize("bad", ["-1", "x", "1.5", ""])
def test_bench_threads_bad_values(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--threads", bad])
    assert exc.value.code == 2
    assert "--threads: expected an integer >= 0 (0 = automatic)" in capsys.readouterr().err


def test_train_threads_option(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--total-steps", "128", "--threads", "1", *TINY]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["threads"] == 1
    assert numba.get_num_threads() == 1 and torch.get_num_threads() == 1
    assert (out / "models" / "model.pt").exists()


@pytest.mark.parametrize("bad, message", [("-1", "threads and torch_threads must be >= 0"),
                                          ("two", "config key 'threads' expects an integer")])
def test_train_threads_bad_values(tmp_path, capsys, bad, message):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--total-steps", "128", "--threads", bad, *TINY]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (out / "models").exists()


@pytest.mark.slow
def test_bench_contention_runs_real_processes(tmp_path):
    """--contention: every run is a measured subprocess; the ratios are computed from them."""
    out = tmp_path / "c.json"
    assert main(["bench", "--contention", "--seconds", "0.3", "--json", str(out)]) == 0
    res = json.loads(out.read_text())["contention"]
    for key in ("alone", "alone_threads1", "beside_busy"):
        assert res[key] > 0
    assert len(res["two_at_once"]) == 2 and min(res["two_at_once"]) > 0
    assert res["ratio_two_at_once_sum_to_alone"] == pytest.approx(sum(res["two_at_once"]) / res["alone"])
    assert res["ratio_beside_busy_to_alone_threads1"] == pytest.approx(res["beside_busy"] / res["alone_threads1"])


@pytest.mark.parametrize("cores, numba_now, expected", [(2, 2, 2), (2, 1, 1), (8, 8, 4), (8, 3, 3), (8, 1, 1),
                                                        (1, 1, 1)])
def test_auto_torch_threads_follow_the_simulation(monkeypatch, cores, numba_now, expected):
    from entropy_engine.training import native

    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    monkeypatch.setattr(threads, "current_threads", lambda: numba_now)
    assert native.auto_torch_threads() == expected


def test_numba_start_does_not_override_the_torch_count():
    """numba and torch share one OpenMP runtime: the trainer starts numba's pool before it sets
    torch's count, so the count it reports is the one torch uses."""
    from entropy_engine.training.config import resolve_config
    from entropy_engine.training.native import NativeTrainer

    cfg = resolve_config("default", None, {"num_worlds": 2, "n_agents": 4, "n_steps": 16, "seq_len": 8,
                                           "batch_size": 64, "torch_threads": 1, "videos": False})
    tr = NativeTrainer(cfg)
    try:
        tr.train_iteration()
        assert tr.threads == 1 and torch.get_num_threads() == 1
    finally:
        tr.close()
