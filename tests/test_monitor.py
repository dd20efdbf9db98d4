"""Tests of the run folder helpers and the training Monitor (console, CSV, TensorBoard, W&B)."""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest

from entropy_engine.runs import (
    Monitor,
    atomic_save,
    atomic_write_bytes,
    default_run_dir,
    read_config,
    run_layout,
    write_config,
)
from entropy_engine.runs.console import Clock, format_duration
from entropy_engine.runs.metrics_csv import read_metrics

METRICS = {
    "time/fps": 483.0,
    "train/loss": 0.125,
    "train/value_loss": 0.5,
    "train/explained_variance": 0.75,
    "train/entropy_loss": -1.5,
    "train/approx_kl": 0.0125,
    "train/clip_fraction": 0.25,
    "train/std": 0.625,
    "rollout/ep_rew_mean": -3.5,
    "env/success_rate": 0.4,
    "env/collisions_per_agent": 0.125,
}


# ----------------------------------------------------------------------------- files
def test_atomic_write_replaces_content_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "blob.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["blob.bin"]


def test_atomic_save_keeps_old_file_when_writer_raises(tmp_path):
    target = tmp_path / "checkpoint.zip"
    atomic_write_bytes(target, b"good checkpoint")
    seen = []

    def broken_writer(tmp: Path) -> None:
        seen.append(tmp)
        with open(tmp, "wb") as fh:
            fh.write(b"half a checkp")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save(target, broken_writer)
    assert target.read_bytes() == b"good checkpoint"
    # the writer got a temp file in the same folder with the same suffix, now removed
    assert seen[0].parent == tmp_path and seen[0].suffix == ".zip" and seen[0] != target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.zip"]


def test_atomic_save_rejects_writer_that_writes_elsewhere(tmp_path):
    target = tmp_path / "model.zip"
    atomic_write_bytes(target, b"old")

    def wrong(tmp: Path) -> None:
        tmp.unlink()
        (tmp_path / "other.zip").write_bytes(b"new")

    with pytest.raises(FileNotFoundError):
        atomic_save(target, wrong)
    assert target.read_bytes() == b"old"


@dataclasses.dataclass(frozen=True)
class _Cfg:
    lr: float = 3e-4
    sizes: tuple = (64, 64)
    out: Path = Path("runs/x")


def test_config_round_trip(tmp_path):
    cfg = {"scenario": "navigation", "n_agents": 10, "ppo": _Cfg(), "seed": None}
    path = write_config(tmp_path, cfg)
    assert path == tmp_path / "config.yaml"
    assert path.read_text().startswith("# Resolved config")
    back = read_config(tmp_path)
    assert back == {
        "scenario": "navigation",
        "n_agents": 10,
        "ppo": {"lr": 3e-4, "sizes": [64, 64], "out": os.path.join("runs", "x")},
        "seed": None,
    }
    assert list(back) == ["scenario", "n_agents", "ppo", "seed"]  # order kept
    assert read_config(path) == back
    with pytest.raises(FileNotFoundError, match="no run config"):
        read_config(tmp_path / "missing")


def test_run_layout_and_default_dir(tmp_path):
    paths = run_layout(tmp_path / "r")
    for folder in (paths.root, paths.checkpoints, paths.models, paths.videos):
        assert folder.is_dir()
    assert paths.config_file == tmp_path / "r" / "config.yaml"
    assert paths.metrics_csv == tmp_path / "r" / "metrics.csv"
    assert paths.checkpoint_file == tmp_path / "r" / "checkpoints" / "checkpoint.zip"
    with pytest.raises(dataclasses.FrozenInstanceError):
        paths.root = tmp_path  # type: ignore[misc]
    assert run_layout(tmp_path / "r") == paths  # idempotent
    assert default_run_dir("nav-10") == Path("runs") / "nav-10"
    stamped = default_run_dir(None)
    assert stamped.parent == Path("runs") and len(stamped.name) == len("20250101-120000")
    with pytest.raises(ValueError):
        default_run_dir("../escape")


# ----------------------------------------------------------------------------- clock
def test_clock_counts_only_this_process_after_resume():
    clock = Clock(total_steps=1_000, start_step=600, now=100.0)
    assert clock.fps is None and clock.eta(now=100.0) is None
    clock.update(700, now=110.0)  # 100 steps in 10 s, though 700 steps in total
    assert clock.fps == pytest.approx(10.0)
    assert clock.eta(now=110.0) == pytest.approx(30.0)  # 300 steps left at 10 steps/s
    assert clock.eta(now=115.0) == pytest.approx(25.0)  # counts down between updates
    assert clock.elapsed(now=115.0) == pytest.approx(15.0)
    assert format_duration(3725) == "1:02:05" and format_duration(None) == "--:--"


# ----------------------------------------------------------------------------- console
def test_plain_mode_prints_one_line_per_log(tmp_path, capsys):
    with Monitor(tmp_path, total_steps=10_000, console="plain", tensorboard=False) as mon:
        mon.message("Resuming from checkpoint at 0 steps")
        mon.log(2_048, METRICS)
        mon.log(4_096, {**METRICS, "env/success_rate": 0.5})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Resuming from checkpoint at 0 steps"
    assert len(lines) == 3
    assert lines[1].startswith("step 2,048/10,000 (20.5%)")
    for part in ("fps 483", "success 40.0%", "return -3.5", "loss 0.125", "kl 0.0125",
                 "clip 0.25", "std 0.625", "collisions 0.125", "eta "):
        assert part in lines[1], part
    assert "success 50.0%" in lines[2]


def test_auto_mode_is_plain_when_not_a_tty(tmp_path, capsys):
    with Monitor(tmp_path, total_steps=100, console="auto", tensorboard=False) as mon:
        mon.log(50, {"train/loss": 1.0})
    lines = capsys.readouterr().out.splitlines()  # capsys is not a TTY: one plain line
    assert len(lines) == 1 and lines[0].startswith("step 50/100 (50.0%)") and "loss 1" in lines[0]


def test_none_mode_is_silent_and_bad_mode_rejected(tmp_path, capsys):
    with Monitor(tmp_path, total_steps=10, console="none", tensorboard=False) as mon:
        mon.message("hidden")
        mon.log(5, {"train/loss": 1.0})
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="console"):
        Monitor(tmp_path, total_steps=10, console="fancy")


def test_rich_mode_renders_progress_and_table(tmp_path, capsys):
    with Monitor(tmp_path, total_steps=4_096, console="rich", tensorboard=False) as mon:
        mon.message("hello from the trainer")
        mon.log(4_096, METRICS)
    out = capsys.readouterr().out
    assert "hello from the trainer" in out
    assert "4,096/4,096 steps" in out
    for key in ("train/approx_kl", "train/explained_variance", "env/success_rate", "< 0.02"):
        assert key in out, key


# ----------------------------------------------------------------------------- metrics.csv
def test_metrics_csv_rows_and_header_union(tmp_path):
    with Monitor(tmp_path, total_steps=100, console="none", tensorboard=False) as mon:
        mon.log(10, {"train/loss": 1.5})
        mon.log(20, {"train/loss": 1.25, "env/success_rate": 0.5})
        mon.log(30, {"env/success_rate": 0.75, "note": "text", "count": 3})
    text = (tmp_path / "metrics.csv").read_text()
    assert text.splitlines() == [
        "step,train/loss,env/success_rate,note,count",
        "10,1.5,,,",
        "20,1.25,0.5,,",
        "30,,0.75,text,3",
    ]


def test_metrics_csv_resume_drops_rows_after_checkpoint_and_partial_line(tmp_path):
    with Monitor(tmp_path, total_steps=1_000, console="none", tensorboard=False) as mon:
        for step in (100, 200, 300, 400, 500):
            mon.log(step, {"train/loss": step / 100})
    with open(tmp_path / "metrics.csv", "a") as fh:  # crash in the middle of a row
        fh.write("600,6.")
    before = (tmp_path / "metrics.csv").read_bytes()
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.csv")] == ["100", "200", "300", "400", "500"]
    assert (tmp_path / "metrics.csv").read_bytes() == before  # reading never modifies
    # resume from the checkpoint at step 300: rows 400, 500 and the torn row go away
    with Monitor(tmp_path, total_steps=1_000, start_step=300, console="none", tensorboard=False) as mon:
        mon.log(400, {"train/loss": 40.0, "train/std": 0.5})
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == ["100", "200", "300", "400"]
    assert [r["train/loss"] for r in rows] == ["1.0", "2.0", "3.0", "40.0"]
    assert [r["train/std"] for r in rows] == ["", "", "", "0.5"]


# ----------------------------------------------------------------------------- TensorBoard
def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_scalars_written_and_purged_on_resume(tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="TensorBoard is an optional dependency")
    with Monitor(tmp_path, total_steps=1_000, config={"lr": 3e-4}, console="none") as mon:
        mon.log(100, {"train/loss": 0.5, "env/success_rate": 0.25})
        mon.log(200, {"train/loss": 0.25, "env/success_rate": 0.5})
        mon.log(300, {"train/loss": 9.0})  # logged after the last checkpoint, then a crash
    assert list(tmp_path.glob("events.out.tfevents.*"))
    scalars = _scalars(tmp_path)
    assert scalars["train/loss"] == [(100, 0.5), (200, 0.25), (300, 9.0)]
    assert scalars["env/success_rate"] == [(100, 0.25), (200, 0.5)]
    with Monitor(tmp_path, total_steps=1_000, start_step=200, console="none") as mon:
        mon.log(300, {"train/loss": 0.125})
    assert _scalars(tmp_path)["train/loss"] == [(100, 0.5), (200, 0.25), (300, 0.125)]


def test_missing_tensorboard_warns_and_continues(tmp_path, monkeypatch, capsys):
    for name in list(sys.modules):
        if name == "tensorboard" or name.startswith("tensorboard."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import raises ImportError
    with Monitor(tmp_path, total_steps=10, console="plain") as mon:
        mon.log(5, {"train/loss": 1.0})
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if "TensorBoard is not installed" in line]
    assert len(warning) == 1 and "pip install entropy-engine[tensorboard]" in warning[0]
    assert not list(tmp_path.glob("events.out.tfevents.*"))
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1] == "5,1.0"


# ----------------------------------------------------------------------------- W&B
def test_missing_wandb_fails_with_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install entropy-engine\[wandb\]"):
        Monitor(tmp_path, total_steps=10, wandb=True, console="none", tensorboard=False)


@pytest.mark.slow
def test_wandb_offline_run_resumes_same_id(tmp_path, monkeypatch):
    try:
        import wandb  # noqa: F401
    except ImportError:
        pytest.skip("wandb is not installed (pip install entropy-engine[wandb])")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    cfg = {"lr": 3e-4, "sizes": (64, 64)}
    with Monitor(tmp_path, total_steps=100, config=cfg, wandb=True, console="none",
                 tensorboard=False) as mon:
        run_id = mon._wandb_run.id
        mon.log(10, {"train/loss": 0.5})
    assert (tmp_path / "wandb_id.txt").read_text().strip() == run_id
    with Monitor(tmp_path, total_steps=100, start_step=10, config=cfg, wandb=True, console="none",
                 tensorboard=False) as mon:
        assert mon._wandb_run.id == run_id
        mon.log(20, {"train/loss": 0.25})
    runs = sorted((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))
    assert runs, list((tmp_path / "wandb").iterdir())
    assert all(list(r.glob("*.wandb")) for r in runs)
