"""Runs that cannot be silently corrupted: the run-folder lock, Ctrl-C / SIGTERM, a full disk, finished
runs and --overwrite, temporary files, one-line errors for bad starts, and the memory estimate."""
from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from entropy_engine.cli import main

TINY = ["--num-worlds", "2", "--n-agents", "4", "--n-steps", "16", "--seq-len", "8", "--batch-size", "64",
        "--n-epochs", "1", "--lstm-hidden-size", "8", "--net-arch", "8", "--max-episode-steps", "30",
        "--tensorboard", "false", "--videos", "false", "--console", "plain", "--encoder-size", "0"]
ROLLOUT = 16 * 2 * 4      # agent-steps per rollout of TINY


def _train(out: Path, *extra: str, algo: str = "native") -> int:
    return main(["train", "--algo", algo, "--out", str(out), *TINY, *extra])


def _temp_files(run: Path) -> list[Path]:
    return [p for d in (run, run / "checkpoints", run / "models") if d.is_dir() for p in d.iterdir()
            if ".tmp" in p.name]


def _signal_at(monkeypatch, sig: int, step: int, times: int = 1) -> None:
    """Send ``sig`` to this process (``times`` times) when the monitor logs a step >= ``step``."""
    from entropy_engine.runs.monitor import Monitor

    log = Monitor.log
    sent = []

    def log_then_signal(self, s, metrics):
        log(self, s, metrics)
        if s >= step and not sent:
            sent.append(s)
            if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
                pytest.fail(f"training installed no {signal.Signals(sig).name} handler")   # would kill pytest
            for _ in range(times):
                os.kill(os.getpid(), sig)
                time.sleep(0.01)       # let the handler run before the next signal

    monkeypatch.setattr(Monitor, "log", log_then_signal)


# ----------------------------------------------------------------------------- Ctrl-C / SIGTERM
@pytest.mark.parametrize("algo, sig", [("native", signal.SIGINT), ("native", signal.SIGTERM),
                                       ("sb3", signal.SIGINT), ("sb3", signal.SIGTERM)])
def test_signal_stops_with_a_checkpoint_and_the_same_command_resumes(tmp_path, capsys, monkeypatch, algo, sig):
    """The first signal stops the run after the current update: checkpoint at that step, one line
    naming the command that resumes, exit code 128 + signal, no final model, no traceback."""
    from entropy_engine.runs.monitor import Monitor

    out = tmp_path / "run"
    original_log = Monitor.log
    _signal_at(monkeypatch, sig, 2 * ROLLOUT)
    code = _train(out, "--total-steps", str(100 * ROLLOUT), "--checkpoint-every", "0", algo=algo)
    text = "".join(capsys.readouterr())
    assert code == 128 + sig == (130 if sig == signal.SIGINT else 143)
    name = signal.Signals(sig).name
    m = re.search(rf"Stopped by {name} at (\d+) steps; checkpoint saved to (\S+)\. Resume with: (.+)", text)
    assert m, text
    stopped_at = int(m.group(1))
    assert stopped_at == 2 * ROLLOUT                 # after the update during which the signal came
    assert Path(m.group(2)) == out / "checkpoints" / "checkpoint.zip" and Path(m.group(2)).is_file()
    assert m.group(3).split() == ["entropy", "train", "--algo", algo, "--out", str(out), *TINY,
                                  "--total-steps", str(100 * ROLLOUT), "--checkpoint-every", "0"]
    assert "Traceback" not in text and not list((out / "models").iterdir()) and not _temp_files(out)
    # the same command resumes from the saved step (run here with a nearer total)
    monkeypatch.setattr(Monitor, "log", original_log)
    assert _train(out, "--total-steps", str(stopped_at + ROLLOUT), "--checkpoint-every", "0", algo=algo) == 0
    text = "".join(capsys.readouterr())
    assert f"Resuming from checkpoint at {stopped_at} steps" in text
    assert f"after {stopped_at + ROLLOUT} steps" in text


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    _signal_at(monkeypatch, signal.SIGINT, 3 * ROLLOUT, times=2)
    code = _train(out, "--total-steps", str(100 * ROLLOUT), "--checkpoint-every", str(ROLLOUT))
    err = capsys.readouterr().err
    assert code == 130
    assert "stopped at once; the last good checkpoint" in err and "Resume with: entropy train" in err
    assert "Traceback" not in err and not _temp_files(out)
    from entropy_engine.training.checkpoint import load_torch_checkpoint

    # the signals came while step 384 was logged, before its checkpoint: the one of 256 is kept
    assert load_torch_checkpoint(out / "checkpoints" / "checkpoint.zip")["num_timesteps"] == 2 * ROLLOUT


@pytest.mark.slow
@pytest.mark.parametrize("algo, sig", [("native", signal.SIGINT), ("sb3", signal.SIGTERM)])
def test_real_signal_to_a_training_process_and_a_second_run_refused(tmp_path, algo, sig):
    """Two real processes: a second `entropy train` on a folder in use is refused with the first one's
    pid; the first one, signalled, checkpoints and exits 130/143; the printed command resumes it."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "entropy_engine.cli", "train", "--algo", algo, "--out", str(out),
           "--total-steps", "10000000", "--checkpoint-every", "0", *TINY]
    log = tmp_path / "first.log"
    with open(log, "w") as fh:
        first = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and first.poll() is None:   # training has logged a row
            if (out / "metrics.csv").is_file() and len((out / "metrics.csv").read_text().splitlines()) >= 2:
                break
            time.sleep(0.1)
        assert first.poll() is None, log.read_text()
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [second.stderr.strip()]       # one line
        assert f"is in use by another training run (pid {first.pid})" in second.stderr
        first.send_signal(sig)
        assert first.wait(timeout=120) == 128 + sig
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    text = log.read_text()
    assert "Traceback" not in text
    m = re.search(r"Stopped by \w+ at (\d+) steps; checkpoint saved to \S+\. Resume with: entropy (.+)", text)
    assert m, text
    steps = int(m.group(1))
    assert steps > 0 and steps % ROLLOUT == 0
    resume = m.group(2).split()
    assert resume == cmd[3:]
    resume[resume.index("--total-steps") + 1] = str(steps + ROLLOUT)
    r = subprocess.run([sys.executable, "-m", "entropy_engine.cli", *resume], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Resuming from checkpoint at {steps} steps" in r.stdout + r.stderr
    assert f"after {steps + ROLLOUT} steps" in r.stdout + r.stderr


# ----------------------------------------------------------------------------- the run-folder lock
def test_a_folder_locked_by_another_process_is_refused_naming_its_pid(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(out / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nos.write(fd, f'{os.getpid()}\\n'.encode())\n"
         "print('locked', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert _train(out, "--total-steps", str(ROLLOUT)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"(pid {holder.pid})" in err
        assert not (out / "config.yaml").exists() and not (out / "metrics.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    # the lock ends with its holder, however it ended (here: killed)
    assert _train(out, "--total-steps", str(ROLLOUT)) == 0


def test_lock_is_exclusive_and_released():
    import tempfile

    from entropy_engine.runs.lock import RunInUseError, lock_run_folder

    with tempfile.TemporaryDirectory() as d:
        with lock_run_folder(d) as lock:
            assert (Path(d) / ".lock").read_text().strip() == str(os.getpid())
            with pytest.raises(RunInUseError, match=f"pid {os.getpid()}"):
                lock_run_folder(d)
            assert lock.held
        lock_run_folder(d).release()


# ----------------------------------------------------------------------------- finished runs, temp files
def test_finished_run_is_refused_unless_overwrite_and_stale_temp_files_are_cleaned(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--total-steps", str(ROLLOUT)) == 0
    model = out / "models" / "model.pt"
    assert model.is_file() and not _temp_files(out)
    before = model.read_bytes()
    assert _train(out, "--total-steps", str(2 * ROLLOUT)) == 2
    err = capsys.readouterr().err
    assert f"run {out} is finished" in err and "--overwrite" in err and err.count("\n") == 1
    assert model.read_bytes() == before                      # nothing was touched
    # temp files a killed run left (a checkpoint write, the old final-model writer) go at the next start
    stale = [out / "checkpoints" / ".checkpoint.0123abcd.tmp.zip", out / "models" / "model.pt.tmp",
             out / ".config.89abcdef.tmp.yaml"]
    for f in stale:
        f.write_bytes(b"partial")
    assert _train(out, "--total-steps", str(2 * ROLLOUT), "--overwrite") == 0
    assert "after 256 steps" in "".join(capsys.readouterr())
    assert not any(f.exists() for f in stale) and not _temp_files(out)
    from entropy_engine.runs.metrics_csv import read_metrics

    assert [int(r["step"]) for r in read_metrics(out / "metrics.csv")] == [ROLLOUT, 2 * ROLLOUT]   # one run's rows


def test_failed_starts_leave_no_run_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad_toml, bad_yaml = tmp_path / "bad.toml", tmp_path / "bad.yaml"
    bad_toml.write_text("total_steps = [\n")
    bad_yaml.write_text("total_steps: [1, 2\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = {
        ("--config", str(bad_toml)): "cannot read config file",
        ("--config", str(bad_yaml)): "cannot read config file",
        ("--config", str(tmp_path / "missing.toml")): "does not exist",
        ("--device", "cuda:7"): "device 'cuda:7' is not available",
        ("--device", "tpu"): "is not a torch device",
        ("--prev-model", str(tmp_path / "missing_run")): "no such file or folder",
        ("--prev-model", str(tmp_path)): "no final model in run folder",
        ("--num-worlds", "0"): "num_worlds must be >= 1",
    }
    for args, message in cases.items():
        assert main(["train", "--out", "new_run", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert not (tmp_path / "new_run").exists(), args
    for args, message in {("--name", "../x"): "must be a plain folder name",
                          ("--out", str(a_file)): "is a file, not a folder",
                          ("--out", str(a_file / "sub")): "is a file, not a folder"}.items():
        assert main(["train", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "bad.toml", "bad.yaml"]   # no runs/, no x


def test_incompatible_base_model_removes_the_folder_it_created(tmp_path, capsys):
    base = tmp_path / "base"
    assert _train(base, "--total-steps", str(ROLLOUT)) == 0
    out = tmp_path / "new" / "run"
    assert _train(out, "--total-steps", str(ROLLOUT), "--prev-model", str(base), "--lstm-hidden-size", "16") == 2
    assert "does not fit this run's network" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


# ----------------------------------------------------------------------------- full disk
def _target_name(f) -> str:
    """The file name ``torch.save`` writes to (a path, or an open file object)."""
    return os.fspath(f) if isinstance(f, (str, os.PathLike)) else str(getattr(f, "name", ""))


def _raise_enospc_on(monkeypatch, kind: str, when) -> None:
    """Make ``torch.save`` fail like a full disk on the calls ``when(target)`` selects."""
    import torch

    from entropy_engine.runs import files

    save = torch.save

    def failing_save(obj, f, *a, **kw):
        if when(f):
            if kind == "oserror":
                raise OSError(errno.ENOSPC, "No space left on device")
            monkeypatch.setattr(files, "free_bytes", lambda folder: 0)
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
        return save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", failing_save)


@pytest.mark.parametrize("kind", ["oserror", "torch"])
def test_full_disk_during_a_checkpoint_keeps_the_last_good_one(tmp_path, capsys, monkeypatch, kind):
    out = tmp_path / "run"
    calls = []

    def third_checkpoint(f):
        if ".checkpoint." in _target_name(f):
            calls.append(f)
            return len(calls) == 3
        return False

    _raise_enospc_on(monkeypatch, kind, third_checkpoint)
    assert _train(out, "--total-steps", str(10 * ROLLOUT), "--checkpoint-every", str(ROLLOUT)) == 1
    err = capsys.readouterr().err
    ckpt = out / "checkpoints" / "checkpoint.zip"
    assert f"no space left on device while writing {ckpt}" in err, err
    prev = out / "checkpoints" / "checkpoint.prev.zip"
    assert f"the last good checkpoint {prev} is kept" in err and "resume with: entropy train" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not _temp_files(out) and not ckpt.exists()
    from entropy_engine.training.checkpoint import load_torch_checkpoint

    assert load_torch_checkpoint(prev)["num_timesteps"] == 2 * ROLLOUT
    monkeypatch.undo()
    assert _train(out, "--total-steps", str(3 * ROLLOUT), "--checkpoint-every", str(ROLLOUT)) == 0
    assert f"Resuming from checkpoint at {2 * ROLLOUT} steps" in "".join(capsys.readouterr())


def test_full_disk_during_the_final_save_leaves_no_temp_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    _raise_enospc_on(monkeypatch, "oserror", lambda f: ".model." in _target_name(f))   # the final model
    assert _train(out, "--total-steps", str(2 * ROLLOUT), "--checkpoint-every", str(ROLLOUT)) == 1
    err = capsys.readouterr().err
    assert f"no space left on device while writing {out / 'models' / 'model.pt'}" in err, err
    assert "checkpoint.zip is kept" in err
    assert not list((out / "models").iterdir()) and not _temp_files(out)
    monkeypatch.undo()
    assert _train(out, "--total-steps", str(2 * ROLLOUT), "--checkpoint-every", str(ROLLOUT)) == 0
    assert (out / "models" / "model.pt").is_file()


def test_atomic_save_reports_a_full_disk_with_the_file_name(tmp_path, monkeypatch):
    from entropy_engine.runs import files

    def full(tmp):
        Path(tmp).write_bytes(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(files.DiskFullError, match=f"no space left on device while writing {target}") as exc:
        files.atomic_save(target, full)
    assert exc.value.errno == errno.ENOSPC and exc.value.filename == str(target)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    # torch's zip writer reports a full disk as a RuntimeError: a disk error only when space is short
    def torch_full(tmp):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    with pytest.raises(RuntimeError, match="inline_container") as exc:
        files.atomic_save(target, torch_full)
    assert not isinstance(exc.value, files.DiskFullError)
    monkeypatch.setattr(files, "free_bytes", lambda folder: 1024)
    with pytest.raises(files.DiskFullError):
        files.atomic_save(target, torch_full)


def test_save_model_is_atomic(tmp_path, monkeypatch):
    import torch

    from entropy_engine.training.policy import ActorCritic, PolicySpec, load_model, save_model

    model = ActorCritic(PolicySpec(36, 2, lstm_hidden_size=8, net_arch=8))
    path = save_model(model, tmp_path / "models" / "model.pt")
    good = path.read_bytes()
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(OSError, match="no space left on device"):
        save_model(model, path)
    assert path.read_bytes() == good and [p.name for p in path.parent.iterdir()] == ["model.pt"]
    monkeypatch.undo()
    assert load_model(path)[0].spec == model.spec


# ----------------------------------------------------------------------------- memory estimate
def test_memory_estimate_is_measured_and_refuses_what_does_not_fit(tmp_path, capsys, monkeypatch):
    import torch

    from entropy_engine.envs.batch import BatchEnv
    from entropy_engine.training import footprint
    from entropy_engine.training.config import resolve_config
    from entropy_engine.training.rollout import RolloutBuffer

    cfg = resolve_config("default", None, {"num_worlds": 6, "n_agents": 5})
    env = BatchEnv(cfg.scenario, 6, 5, seed=0, **cfg.env_kwargs)
    measured, obs_dim, act_dim = footprint.env_bytes(cfg)
    assert measured == footprint._array_bytes(env, set()) and (obs_dim, act_dim) == (env.obs_dim, env.act_dim) == (36, 2)
    buf = RolloutBuffer(cfg.n_steps, 30, 36, 2, 1, cfg.lstm_hidden_size, cfg.seq_len, "cpu", prev_obs=True)
    assert footprint.rollout_bytes(cfg, 36) == sum(t.numel() * t.element_size() for t in vars(buf).values()
                                                   if isinstance(t, torch.Tensor))
    assert footprint.available_memory() > 0
    monkeypatch.setattr(footprint, "available_memory", lambda: 8 << 30)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--out", "big", "--num-worlds", "10000000"]) == 2
    err = capsys.readouterr().err
    m = re.search(r"needs at least ([\d.]+) GiB of memory \(environment ([\d.]+) GiB, rollout buffer and its "
                  r"update copy ([\d.]+) GiB\), but 8\.0 GiB is available", err)
    assert m, err
    assert float(m.group(2)) > 8 and float(m.group(1)) > 1000 and not (tmp_path / "big").exists()


# ----------------------------------------------------------------------------- eval / play
def test_eval_and_play_refuse_bad_input_in_one_line(tmp_path, capsys):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (["eval", str(tmp_path / "missing")], "no such run folder or model file"),
        (["eval", str(empty)], "no final model in run folder"),
        (["eval", "heuristic", "--episodes", "0"], "--episodes must be >= 1"),
        (["eval", "heuristic", "--n-agents", "0"], "--n-agents must be >= 1"),
        (["play", "--heuristic", "--n-agents", "-2", "--gif", str(tmp_path / "x.gif")], "--n-agents must be >= 1"),
        (["play", "--heuristic", "--gif", str(a_file / "x.gif")], "is a file, not a folder"),
        (["play", "--heuristic", "--gif", str(tmp_path)], "is a folder"),
    ]
    for argv, message in cases:
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        assert code == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    # a GIF into a missing folder: the folder is made and the GIF is really there
    gif = tmp_path / "new" / "deeper" / "swarm.gif"
    assert main(["play", "--heuristic", "--n-agents", "3", "--max-steps", "4", "--gif", str(gif)]) == 0
    assert f"wrote {gif}" in capsys.readouterr().out and gif.stat().st_size > 0
    from entropy_engine.render.gif import read_gif

    assert len(list(read_gif(gif))) >= 1 and np.asarray(next(iter(read_gif(gif)))).ndim == 3
