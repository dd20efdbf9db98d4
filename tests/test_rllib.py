"""RLlib's PPO trains on the PettingZoo env through ``ParallelPettingZooEnv`` (the README's example).

RLlib (``ray[rllib]==2.60.0``, the project's ``rllib`` extra) pins ``gymnasium==1.2.2`` and brings
pyarrow, pandas and scipy, so it is not installed into the project's environment: this test builds
its own virtual environment in ``.venv-rllib/`` at the repository root (git-ignored; torch first,
with the same pin and index as ``dev.py``, then ``pip install -e .[rllib]``), reuses it while
``pyproject.toml`` and the torch pin are unchanged, and runs RLlib there in a subprocess. Building
it takes about a minute; the run itself about 20 s.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from test_readme import _block_after

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-rllib"

pytestmark = pytest.mark.slow


def _dev():
    spec = importlib.util.spec_from_file_location("_entropy_dev", ROOT / "dev.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def rllib_python() -> Path:
    """The interpreter of ``.venv-rllib`` (built or rebuilt when needed, under a file lock)."""
    dev = _dev()
    py = VENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    h = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    h.update(dev.TORCH.encode())
    stamp = h.hexdigest()
    stamp_file = VENV / ".entropy-rllib-installed"
    with open(ROOT / ".venv-rllib.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if py.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
            return py
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.check_call(pip + [dev.TORCH] + (["--index-url", dev.TORCH_INDEX] if dev.TORCH_INDEX else []))
        subprocess.check_call(pip + ["-e", f"{ROOT}[rllib]"])
        stamp_file.write_text(stamp)
    return py


# Runs in .venv-rllib: the README's example, then the end of an episode in which a robot reaches its
# goal on the very last step, through RLlib's own wrapper (RLlib once missed that end and stopped).
SCRIPT = r'''
import json, sys
import numpy as np
ns = {}
exec(compile(sys.stdin.read(), "README:From RLlib", "exec"), ns)
result = ns["result"]
import ray
ray.shutdown()

import entropy_engine as ee
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

def episode(max_steps):
    env = ParallelPettingZooEnv(ee.parallel_env(n_agents=6, seed=0, max_steps=max_steps))
    par = env.par_env
    obs, _ = env.reset(seed=0)
    first_arrival = None
    while True:
        obs, rew, term, trunc, info = env.step({a: par.scenario.heuristic(obs[a]) for a in par.agents})
        arrived = [a for a in par.possible_agents if term.get(a)]
        if arrived and first_arrival is None:
            first_arrival = (par.t, arrived[0], bool(trunc[arrived[0]]))
        if term["__all__"] or trunc["__all__"]:
            return par.t, first_arrival, bool(trunc["__all__"]), env.step({})

free_t, (t1, robot, _), _, _ = episode(500)
end_t, (t2, robot2, truncated_too), all_truncated, after = episode(t1)
print("RESULT " + json.dumps({
    "iterations": result["training_iteration"],
    "env_steps": result["env_runners"]["num_env_steps_sampled_lifetime"],
    "episodes": result["env_runners"]["num_episodes_lifetime"],
    "return_mean": result["env_runners"]["episode_return_mean"],
    "first_arrival": t1, "limited_end": end_t, "same_arrival": [t2, robot2] == [t1, robot],
    "arrival_truncated_too": truncated_too, "all_truncated": all_truncated,
    "after_end": [list(d) for d in after],
}))
'''


def test_rllib_ppo_trains_on_the_pettingzoo_env():
    py = rllib_python()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([str(py), "-c", SCRIPT], input=_block_after("### From RLlib"), capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["iterations"] == 3
    assert out["env_steps"] >= 3 * 800             # train_batch_size_per_learner=800 env steps per iteration
    assert out["episodes"] >= 10                  # 100-step episodes ended (time limit) and were counted
    assert out["return_mean"] == out["return_mean"]  # a number, not NaN
    # a robot reaching its goal on the last step: terminated and truncated, and RLlib sees the end
    assert out["same_arrival"] and out["limited_end"] == out["first_arrival"]
    assert out["arrival_truncated_too"] and out["all_truncated"]
    # a step after the end (RLlib may send one) is harmless: five empty dicts (plus RLlib's "__all__")
    assert out["after_end"] == [[], [], ["__all__"], ["__all__"], []]
