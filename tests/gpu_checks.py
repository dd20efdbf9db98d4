"""What the GPU tests share: a short PPO run on both backends and the check that they agree."""
from __future__ import annotations

import warnings

import numpy as np


def train_on_both_backends(spec: dict, resume: bool = False) -> tuple[dict, dict]:
    """Two PPO iterations of ``spec`` (a preset dict) on the numba env and on the device env (2 worlds x 4
    agents, 32 steps); ``resume``: each run's state then goes through ``state_dict``/``load_state_dict``.
    Returns each backend's logged metrics and its last observations."""
    from entropy_engine.training.config import TrainConfig, build_config
    from entropy_engine.training.native import NativeTrainer

    logs, obs = {}, {}
    for backend in ("numba", "cuda"):
        cfg = build_config(TrainConfig, dict(spec, num_worlds=2, n_agents=4, n_steps=32, seq_len=16, batch_size=128,
                                             total_steps=512, backend=backend, max_episode_steps=20, threads=1,
                                             torch_threads=1))
        seen = []
        tr = NativeTrainer(cfg, log=lambda s, m: seen.append(m))
        assert type(tr.env).__name__ == ("DeviceEnv" if backend == "cuda" else "BatchEnv")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tr.learn()
        if resume:
            tr.load_state_dict(tr.state_dict())
        obs[backend] = tr.obs.cpu().numpy().copy()
        logs[backend] = seen
    return logs, obs


def assert_runs_agree(logs: dict, obs: dict, tol: float, required: str = "env/episodes",
                      prefixes: tuple[str, ...] = ("env/", "rollout/")) -> list[str]:
    """The device run's last observations within ``tol`` of the CPU run's, two logs each, and every
    logged metric under ``prefixes`` (and the value loss) equal within 1e-3 (relative above 1), with
    ``required`` among them. Returns the compared keys of the last log."""
    np.testing.assert_allclose(obs["cuda"], obs["numba"], atol=tol)
    assert len(logs["numba"]) == len(logs["cuda"]) == 2
    keys: list[str] = []
    for a, b in zip(logs["numba"], logs["cuda"]):
        keys = [k for k in a if k.startswith(prefixes) or k == "train/value_loss"]
        assert required in keys and keys == [k for k in b if k in keys]
        for key in keys:
            assert abs(a[key] - b[key]) <= 1e-3 * max(1.0, abs(a[key])), (key, a[key], b[key])
    return keys
