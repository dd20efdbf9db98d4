"""``entropy sweep`` (Ray Tune) and ``entropy train --ray-workers K``.

The fast tests check the sweep file, the trial command lines, the report and the gradient
averaging's bookkeeping without Ray. The slow ones run a local Ray on this machine: a 2x2 grid
with 2 seeds whose driver is killed mid-sweep (after one trial's worker was killed too) and rerun;
a trial that always fails, retried a bounded number of times; a 2-worker run killed and resumed
through the CLI; and a 2-worker checkpoint that resumes exactly (two resumes agree bit for bit).
Two more run on a 2-node cluster simulated on this machine (``ray.cluster_utils.Cluster``): a
sweep with ``--address`` whose trials run on both nodes, and ``--ray-workers 2 --ray-address``
with one rank on each node.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from entropy_engine.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]

TINY_TRAIN = """
[train]
total_steps = {total}
num_worlds = 2
n_agents = 4
n_steps = 32
seq_len = 16
batch_size = 256
n_epochs = 1
lstm_hidden_size = 16
encoder_size = 16
net_arch = 16
max_episode_steps = 40
videos = false
tensorboard = false
checkpoint_every = 256
"""


SWEEP_DEFAULTS = {"preset": '"default"', "metric": '"rollout/ep_rew_mean"', "mode": '"max"', "seeds": "[0, 1]",
                  "max_concurrent": "2", "cpus_per_trial": "1", "scheduler": '"none"'}


def _sweep_file(tmp_path: Path, total: int = 4096, sweep: str = "", search: str = "") -> Path:
    """A tiny sweep file; ``sweep``: ``key = value`` lines replacing or adding [sweep] keys
    (``key = DROP`` removes one)."""
    keys = dict(SWEEP_DEFAULTS)
    for line in filter(None, sweep.splitlines()):
        k, v = (x.strip() for x in line.split("=", 1))
        keys[k] = v
    table = "\n".join(f"{k} = {v}" for k, v in keys.items() if v != "DROP")
    path = tmp_path / "tiny.toml"
    search = search or 'learning_rate = [0.0003, 0.001]\n"env.goal_reward" = [10.0, 20.0]'
    path.write_text(f"[sweep]\n{table}\n{TINY_TRAIN.format(total=total)}\n[search]\n{search}\n")
    return path


# ----------------------------------------------------------------------------- the sweep file
def test_sweep_file_grid_points_and_trial_commands(tmp_path):
    import argparse

    from entropy_engine.sweep.spec import grid_points, load_spec, trial_config
    from entropy_engine.sweep.trial import train_argv
    from entropy_engine.training import command

    spec, data = load_spec(_sweep_file(tmp_path))
    pts = grid_points(spec)
    assert pts == [{"learning_rate": 3e-4, "env.goal_reward": 10.0}, {"learning_rate": 3e-4, "env.goal_reward": 20.0},
                   {"learning_rate": 1e-3, "env.goal_reward": 10.0}, {"learning_rate": 1e-3, "env.goal_reward": 20.0}]
    # the trial's command line resolves to the trial's config (what `entropy train` will run)
    argv = train_argv(spec, pts[3], 1, tmp_path / "run", threads=1)
    parser = argparse.ArgumentParser()
    command.configure(parser)
    cfg = command._read_config(parser.parse_args(argv[1:]))
    expected = trial_config(spec, pts[3], 1)
    assert cfg == type(expected)(**{**expected.__dict__, "threads": 1})
    assert (cfg.learning_rate, cfg.env["goal_reward"], cfg.seed, cfg.total_steps) == (1e-3, 20.0, 1, 4096)
    assert cfg.env["collision_penalty"] == 2.0          # the preset's other scenario keys stay


@pytest.mark.parametrize("sweep, search, message", [
    ("", "lr = [0.1]", "search key 'lr' is neither a TrainConfig field"),
    ("", "gamma = { uniform = [0.9, 0.99] }", "a distribution needs searcher 'random' or 'optuna'"),
    ("", '"env.no_such_key" = [1]', "no_such_key"),
    ("", "learning_rate = [2.0]", "learning_rate"),
    ("", "learning_rate = []", "an empty list"),
    ('searcher = "random"', "gamma = { uniform = [0.99, 0.9] }", "lo < hi"),
    ('metric = "env/no_such_metric"', "learning_rate = [0.001]", "is not logged by scenario 'navigation'"),
    ("seeds = []", "learning_rate = [0.001]", "seeds must be a non-empty list"),
    ("seeds = DROP\nsearcher = \"optuna\"\nnum_samples = 0", "learning_rate = [0.001]", "num_samples must be >= 1"),
    ("", "seed = [1, 2]", "set the training seeds with `seeds"),
    ("", "n_steps = [32, 48]\nseq_len = [16, 32]", "grid point"),   # each fits alone; 32 does not divide 48
])
def test_bad_sweep_files_are_one_line_errors(tmp_path, sweep, search, message):
    from entropy_engine.sweep.spec import load_spec

    path = _sweep_file(tmp_path, sweep=sweep, search=search)
    with pytest.raises(ConfigError) as exc:
        load_spec(path)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_random_points_are_drawn_once_from_the_searcher_seed(tmp_path):
    from entropy_engine.sweep.spec import load_spec, random_points

    path = _sweep_file(tmp_path, sweep='searcher = "random"\nnum_samples = 6', search=(
        "learning_rate = { loguniform = [0.0001, 0.01] }\ngamma = { uniform = [0.95, 0.999] }\n"
        "n_epochs = { randint = [1, 3] }\nshared_lstm = [true, false]"))
    spec, _ = load_spec(path)
    a, b = random_points(spec), random_points(spec)
    assert a == b and len(a) == 6 and len({p["learning_rate"] for p in a}) == 6
    assert all(1e-4 <= p["learning_rate"] <= 1e-2 and 0.95 <= p["gamma"] <= 0.999 and p["n_epochs"] in (1, 2, 3)
               and isinstance(p["shared_lstm"], bool) for p in a)


# ----------------------------------------------------------------------------- report and reporting
def _fake_trial(out: Path, name: str, point: dict, seed: int, values: list[float], finished: bool = True) -> None:
    from entropy_engine.sweep.spec import point_label

    run = out / "runs" / name
    (run / "models").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    if finished:
        (run / "models" / "model.pt").write_bytes(b"x")
    else:
        (run / "checkpoints" / "checkpoint.zip").write_bytes(b"x")
    (run / "trial.json").write_text(json.dumps({"trial": name, "point": point, "label": point_label(point),
                                                "seed": seed}))
    rows = ["step,env/success_rate,env/episodes"] + [f"{100 * (i + 1)},{v},4" for i, v in enumerate(values)]
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")


def test_report_ranks_points_by_mean_over_seeds(tmp_path):
    from entropy_engine.sweep.report import LAST_LOGS, write_report

    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.yaml").write_text("sweep:\n  metric: env/success_rate\n  mode: max\n")
    # point A: seeds end at 0.5 and 0.7 (mean 0.6); point B: 0.9 and 0.8 (mean 0.85), the last 5 logs count
    _fake_trial(out, "p000_s0", {"learning_rate": 0.001}, 0, [0.0] * 3 + [0.5] * LAST_LOGS)
    _fake_trial(out, "p000_s1", {"learning_rate": 0.001}, 1, [1.0] * 3 + [0.7] * LAST_LOGS)
    _fake_trial(out, "p001_s0", {"learning_rate": 0.003}, 0, [0.9] * LAST_LOGS)
    _fake_trial(out, "p001_s1", {"learning_rate": 0.003}, 1, [0.8] * LAST_LOGS, finished=False)
    (out / "status.json").write_text(json.dumps({"p001_s1": {"error": None, "steps": 500}}))
    table = write_report(out).splitlines()
    assert table[2].startswith("| 1 | 0.003 | 0.850 ± 0.071 | 2/2 | 500 | finished,stopped |"), table
    assert table[3].startswith("| 2 | 0.001 | 0.600 ± 0.141 | 2/2 | 800 | finished |"), table
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("trial,learning_rate,seed,status,steps,score")
    for png in ("learning_curves.png", "metric_vs_learning_rate.png"):
        assert (out / png).stat().st_size > 1000
    from entropy_engine.cli import main

    assert main(["sweep", "--report", str(out)]) == 0
    assert main(["sweep", "--report", str(tmp_path)]) == 2     # not a sweep folder: one line, status 2


def test_reporter_carries_the_metric_forward_for_asha():
    from entropy_engine.sweep.trial import _Reporter

    sent = []
    rep = _Reporter("env/success_rate", sent.append)
    rep(100, {"train/loss": 1.0})                          # no metric yet: nothing sent
    rep(200, {"train/loss": 2.0, "env/success_rate": 0.5})
    rep(300, {"train/loss": 3.0})                          # no episode ended: the last value again
    assert sent == [{"train/loss": 2.0, "env/success_rate": 0.5, "steps": 200},
                    {"train/loss": 3.0, "env/success_rate": 0.5, "steps": 300}]


def test_worker_metrics_are_combined_by_episodes():
    from entropy_engine.training.ray_workers import combine, local_config, rank_seed
    from entropy_engine.training.config import resolve_config

    out = combine([{"env/success_rate": 1.0, "env/episodes": 3.0, "train/loss": 1.0, "time/update_s": 2.0,
                    "local_steps": 10.0},
                   {"env/success_rate": 0.0, "env/episodes": 1.0, "train/loss": 3.0, "time/update_s": 5.0,
                    "local_steps": 10.0}])
    assert out == {"env/success_rate": 0.75, "env/episodes": 4.0, "train/loss": 2.0, "time/update_s": 5.0}
    cfg = resolve_config("default", overrides=dict(ray_workers=2, total_steps=1001, seed=3))
    local = local_config(cfg, 1)
    assert (local.num_worlds, local.batch_size, local.total_steps, local.ray_workers) == (8, 1280, 501, 0)
    assert rank_seed(3, 0) == 3 and rank_seed(3, 1) == local.seed != 3
    with pytest.raises(ConfigError, match="must divide num_worlds"):
        resolve_config("default", overrides=dict(ray_workers=3))


def test_synced_update_has_the_same_minibatch_count_in_every_process():
    """With ``sync`` the epoch has exactly round(samples / batch_size) minibatches whatever the number
    of sequences (cut at episode starts) is, and the sync sees every one of them."""
    import torch

    from entropy_engine.training.native import NativeTrainer
    from entropy_engine.training.config import resolve_config
    from entropy_engine.training.ppo import ppo_update

    class Count:
        def __init__(self):
            self.grads, self.means = 0, 0

        def gradients(self, params):
            self.grads += 1
            assert all(p.grad is not None for p in params)

        def mean(self, v):
            self.means += 1
            return v

    cfg = resolve_config("default", overrides=dict(num_worlds=2, n_agents=4, n_steps=32, seq_len=8, batch_size=64,
                                                  n_epochs=3, lstm_hidden_size=8, net_arch=8, encoder_size=8,
                                                  max_episode_steps=20, total_steps=256))
    tr = NativeTrainer(cfg)
    try:
        last = tr.collect()
        from entropy_engine.training.ppo import compute_gae

        buf = tr.buffer
        adv, ret = compute_gae(buf.rewards, buf.values, buf.dones, last, cfg.gamma, cfg.gae_lambda)
        buf.advantages.copy_(adv)
        buf.returns.copy_(ret)
        data = buf.sequences(cfg.n_steps)
        assert data["obs"].shape[1] > 32 // 8 * 8            # episode starts cut extra sequences
        sync = Count()
        m = ppo_update(tr.model, tr.optimizer, data, cfg, torch.Generator().manual_seed(0), sync=sync)
        assert sync.grads == sync.means == m["train/n_updates"] == 3 * round(256 / 64)
    finally:
        tr.close()


# ----------------------------------------------------------------------------- on a local Ray (slow)
def _entropy(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "entropy_engine.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, **kw)


def _session_pids(sid: int) -> list[int]:
    """Processes of session ``sid`` (the killed driver's Ray processes live on in it)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            pids.append(int(stat.parent.name))
    return pids


def _kill_session(sid: int) -> None:
    for _ in range(50):
        pids = _session_pids(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def _finished(run: Path) -> bool:
    return (run / "models" / "model.pt").is_file() and not (run / "checkpoints" / "checkpoint.zip").exists()


@pytest.mark.slow
def test_sweep_survives_a_killed_trial_and_a_killed_driver(tmp_path):
    """A 2x2 grid with 2 seeds: one trial's worker is killed mid-run (Tune retries it; it resumes from
    its checkpoint), then the driver with its local Ray; the same command resumes the sweep without
    training the finished trials again, and the report holds every point with both seeds."""
    sweep = _sweep_file(tmp_path, total=8192, sweep="max_failures = 2")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "entropy_engine.cli", "sweep", str(sweep), "--out", str(out)]
    log = open(tmp_path / "driver1.log", "w")
    driver = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
    killed_trial = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and driver.poll() is None:
            runs = sorted((out / "runs").glob("p*")) if (out / "runs").is_dir() else []
            if killed_trial is None:
                for run in runs:                  # a running trial with a checkpoint: kill its process
                    lock = run / ".lock"
                    if (run / "checkpoints" / "checkpoint.zip").is_file() and lock.is_file():
                        text = lock.read_text().strip()
                        if text.isdigit():
                            try:
                                os.kill(int(text), signal.SIGKILL)
                                killed_trial = run.name
                            except ProcessLookupError:
                                pass
                            break
            elif sum(_finished(r) for r in runs) >= 3:
                break
            time.sleep(0.05)
        assert driver.poll() is None, "the sweep ended before its driver could be killed"
        assert killed_trial is not None
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        _kill_session(driver.pid)
        log.close()
    done_before = {r.name: (r / "models" / "model.pt").stat().st_mtime_ns
                   for r in (out / "runs").glob("p*") if _finished(r)}
    assert len(done_before) >= 3
    r = _entropy("sweep", str(sweep), "--out", str(out), timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Resuming sweep" in r.stdout + r.stderr
    runs = sorted((out / "runs").glob("p*"))
    assert [r.name for r in runs] == [f"p{p:03d}_s{s}" for p in range(4) for s in (0, 1)]
    assert all(_finished(run) for run in runs)
    for name, mtime in done_before.items():     # finished trials were not trained again
        assert (out / "runs" / name / "models" / "model.pt").stat().st_mtime_ns == mtime, name
    attempts = (out / "attempts.log").read_text().split("\n")
    assert sum(line.endswith(f"{killed_trial} start") for line in attempts) >= 2     # retried
    table = (out / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| rank")]
    assert len(rows) == 4 and all("| 2/2 | 8,192 | finished |" in row for row in rows), table
    for png in ("learning_curves.png", "metric_vs_learning_rate.png", "metric_vs_env.goal_reward.png"):
        assert (out / png).is_file()
    rep = _entropy("sweep", "--report", str(out), timeout=120)
    assert rep.returncode == 0 and rows[0] in rep.stdout
    assert not _session_pids(driver.pid)


@pytest.mark.slow
def test_a_failing_trial_is_retried_a_bounded_number_of_times_and_reported(tmp_path):
    """A trial whose base model does not exist fails every time: 1 + max_failures starts, then the
    sweep reports it (status 1, its error in status.json) while the other trial finishes."""
    sweep = _sweep_file(tmp_path, total=1024, sweep="max_failures = 1\nseeds = [0]",
                        search='prev_model = ["none", "/no/such/model.pt"]')
    out = tmp_path / "out"
    r = _entropy("sweep", str(sweep), "--out", str(out), timeout=600)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert "1 trial(s) failed after 1 retries: p001_s0" in r.stdout
    status = json.loads((out / "status.json").read_text())
    assert status["p000_s0"]["error"] is None and "exited with status 2" in status["p001_s0"]["error"]
    starts = [line for line in (out / "attempts.log").read_text().splitlines() if line.endswith("p001_s0 start")]
    assert len(starts) == 2
    assert "failed" in (out / "results.md").read_text()


def _tiny_train(out: Path, total: int, *extra: str) -> list[str]:
    return ["train", "--out", str(out), "--total-steps", str(total), "--num-worlds", "4", "--n-agents", "4",
            "--n-steps", "32", "--seq-len", "16", "--batch-size", "256", "--n-epochs", "2", "--lstm-hidden-size", "16",
            "--encoder-size", "16", "--net-arch", "16", "--max-episode-steps", "40", "--videos", "false",
            "--console", "plain", *extra]


@pytest.mark.slow
def test_ray_workers_train_stop_and_resume_through_the_cli(tmp_path):
    """``--ray-workers 2``: SIGINT stops after an update with a checkpoint, the same command resumes
    from it and ends exactly at the step total; the model evaluates."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = _tiny_train(out, 40960, "--ray-workers", "2", "--checkpoint-every", "1024")
    proc = subprocess.Popen([sys.executable, "-m", "entropy_engine.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoints" / "checkpoint.zip").is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGINT)
        text = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        _kill_session(proc.pid)
    assert proc.returncode == 130, text[-3000:]
    stopped = int(__import__("re").search(r"Stopped by SIGINT at (\d+) steps", text).group(1))
    assert 0 < stopped < 40960 and stopped % 512 == 0
    r = _entropy(*argv, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"Resuming from checkpoint at {stopped} steps" in r.stdout + r.stderr
    assert "Final model saved" in r.stdout and "after 40960 steps" in r.stdout
    e = _entropy("eval", str(out), "--episodes", "2", "--num-worlds", "2", "--json", str(tmp_path / "e.json"),
                 timeout=300)
    assert e.returncode == 0, e.stderr[-2000:]
    assert json.loads((tmp_path / "e.json").read_text())["agent_episodes"] == 8


@pytest.mark.slow
def test_ray_workers_checkpoint_resumes_exactly(tmp_path):
    """Two 2-worker trainers resumed from one checkpoint (weights, optimizer, every worker's random
    streams) train to bit-identical weights, and the replicas of each stay identical."""
    import ray
    import torch

    from entropy_engine.training.config import resolve_config
    from entropy_engine.training.ray_workers import RayTrainer

    cfg = resolve_config("default", overrides=dict(num_worlds=4, n_agents=4, n_steps=32, seq_len=16, batch_size=256,
                                                  n_epochs=2, lstm_hidden_size=16, encoder_size=16, net_arch=16,
                                                  max_episode_steps=40, total_steps=4096, ray_workers=2, threads=1))
    ray.init(num_cpus=4, include_dashboard=False, configure_logging=False)
    try:
        a = RayTrainer(cfg)
        a.learn(2048)
        state = a.state_dict()
        assert state["num_timesteps"] == 2048 and len(state["ray_workers"]) == 1
        a.load_state_dict(state)          # what a resumed run does: restore, restart the episodes
        a.learn()
        a._pull_weights()
        first = {k: v.clone() for k, v in a.model.state_dict().items()}
        sums = a.checksums()
        assert len(sums) == 2 and sums[0] == sums[1]          # the replicas agree
        a.close()
        b = RayTrainer(cfg)
        b.load_state_dict(state)
        b.learn()
        b._pull_weights()
        assert b.num_timesteps == 4096
        for k, v in b.model.state_dict().items():
            assert torch.equal(first[k], v), k
        assert not all(torch.equal(first[k], v) for k, v in state["model"].items())    # it did train
        b.close()
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_optuna_sweep_with_asha_runs_every_point_once_per_seed(tmp_path):
    """Optuna's TPE proposes 2 points, each trained with both seeds (the Repeater), ASHA watching."""
    sweep = _sweep_file(tmp_path, total=2048, sweep='searcher = "optuna"\nnum_samples = 2\nscheduler = "asha"\n'
                                                   'grace_steps = 512',
                        search="learning_rate = { loguniform = [0.0001, 0.01] }")
    out = tmp_path / "out"
    r = _entropy("sweep", str(sweep), "--out", str(out), timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    infos = [json.loads(p.read_text()) for p in (out / "runs").glob("*/trial.json")]
    assert len(infos) == 4 and sorted(i["seed"] for i in infos) == [0, 0, 1, 1]
    rates = {i["point"]["learning_rate"] for i in infos}
    assert len(rates) == 2 and all(1e-4 <= x <= 1e-2 for x in rates)
    rows = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("| ") and "rank" not in line]
    assert len(rows) == 2 and all("| 2/2 |" in row for row in rows)


# ----------------------------------------------------------------------------- on a 2-node Ray cluster (slow)
def _cluster_pids(session_dir: str) -> set[int]:
    """Live processes of a Ray session: those naming its folder on their command line (GCS, raylets,
    monitors) and all their descendants (the raylets' workers rename themselves ``ray::...``)."""
    parent, pids = {}, set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if stat[0] == "Z":
            continue
        parent[int(proc.name)] = int(stat[1])
        if session_dir.encode() in cmd:
            pids.add(int(proc.name))
    grown = True
    while grown:
        more = {pid for pid, ppid in parent.items() if ppid in pids} - pids
        pids |= more
        grown = bool(more)
    return pids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def two_node_cluster():
    """A Ray cluster of two nodes with 1 CPU each on this machine (``ray.cluster_utils.Cluster``):
    the head and one worker node, each with its own raylet; yields it and its two node ids. Shut
    down at the end, with every process it started."""
    from ray.cluster_utils import Cluster

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + old if old else "")   # the raylets' workers import us
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        nodes = {cluster.head_node.node_id, worker.node_id}
        assert len(nodes) == 2
        yield cluster, nodes
    finally:
        session = cluster.head_node.get_session_dir_path()
        started = _cluster_pids(session)
        cluster.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    for _ in range(100):                  # nothing of the cluster is left running
        left = {pid for pid in started if _alive(pid)} | _cluster_pids(session)
        if not left:
            break
        time.sleep(0.1)
    assert len(started) >= 4 and not left, (started, left)


@pytest.mark.slow
def test_sweep_with_address_runs_trials_on_both_nodes_of_a_cluster(tmp_path, two_node_cluster):
    """``entropy sweep --address`` on a 2-node cluster (1 CPU each): 2 trials at once of 1 CPU each
    can only run one per node, so the 4 trials' ``trial.json`` name both nodes; all finish and the
    report holds both points with both seeds."""
    cluster, nodes = two_node_cluster
    sweep = _sweep_file(tmp_path, total=2048, search="learning_rate = [0.0003, 0.001]")
    out = tmp_path / "out"
    r = _entropy("sweep", str(sweep), "--out", str(out), "--address", cluster.address, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    runs = sorted((out / "runs").glob("p*"))
    assert [run.name for run in runs] == [f"p{p:03d}_s{s}" for p in range(2) for s in (0, 1)]
    assert all(_finished(run) for run in runs)
    used = {json.loads((run / "trial.json").read_text())["node"] for run in runs}
    assert used == nodes, (used, nodes)
    rows = [line for line in (out / "results.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| rank")]
    assert len(rows) == 2 and all("| 2/2 | 2,048 | finished |" in row for row in rows), rows


@pytest.mark.slow
def test_ray_workers_with_ray_address_put_one_worker_on_each_node(tmp_path, two_node_cluster):
    """``entropy train --ray-workers 2 --ray-address`` on the 2-node cluster: each 1-CPU worker takes
    a whole node, so rank 0 and rank 1 run on different nodes (gloo across the two raylets); the run
    trains to its step total and saves its model."""
    cluster, nodes = two_node_cluster
    out = tmp_path / "run"
    r = _entropy(*_tiny_train(out, 4096, "--ray-workers", "2", "--threads", "1", "--ray-address", cluster.address),
                 timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = " ".join((r.stdout + r.stderr).split())
    placed = __import__("re").search(r"Ray node of each rank: (\w+), (\w+)", text)
    assert placed is not None, text[-3000:]
    assert set(placed.groups()) == nodes, (placed.groups(), nodes)
    assert "Final model saved" in r.stdout and "after 4096 steps" in r.stdout
    assert (out / "models" / "model.pt").is_file()
