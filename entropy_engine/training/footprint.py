"""How much memory a run's worlds and rollouts take, estimated before anything large is allocated.

``entropy train --num-worlds 10000000`` would otherwise allocate until the machine swaps or the
process is killed. ``check_memory(cfg)`` refuses such a run at start with the estimate and the
memory available:

- the environment: the bytes of every array of a ``BatchEnv`` built for 1 and for 2 worlds of
  ``min(n_agents, 256)`` agents (milliseconds), scaled to ``num_worlds`` worlds and ``n_agents`` agents;
- the rollout buffer: its tensors' sizes for this config (native: ``RolloutBuffer`` on torch's
  ``meta`` device, which allocates nothing; SB3: the arrays of ``RecurrentRolloutBuffer``), twice,
  because the update builds a padded copy of the rollout (native ``RolloutBuffer.sequences``,
  SB3's sequence padding).

This is a lower bound (network, optimizer, Python and library overheads come on top); a run is
refused only when even that exceeds the available memory (``MemAvailable`` of ``/proc/meminfo``,
else ``os.sysconf``). The rollout buffer counts against it only when it lives in main memory
(``device`` cpu).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..config import ConfigError
from .config import TrainConfig

_PROBE_AGENTS = 256


def _array_bytes(obj: Any, seen: set[int], depth: int = 0) -> int:
    """Bytes of the numpy arrays reachable from ``obj``'s attributes (and dicts of arrays), each
    underlying buffer counted once."""
    if depth > 4 or not hasattr(obj, "__dict__"):
        return 0
    total = 0
    for value in vars(obj).values():
        items = value.values() if isinstance(value, dict) else (value,)
        for v in items:
            if isinstance(v, np.ndarray):
                base = v
                while isinstance(base.base, np.ndarray):
                    base = base.base
                if id(base) not in seen:
                    seen.add(id(base))
                    total += base.nbytes
            elif (hasattr(v, "__dict__") and not isinstance(v, type)
                  and type(v).__module__.startswith("entropy_engine")):
                total += _array_bytes(v, seen, depth + 1)
    return total


def env_bytes(cfg: TrainConfig) -> tuple[int, int, int]:
    """(bytes of the run's environment arrays, observation width, action width), measured on small envs."""
    from ..envs.batch import BatchEnv

    n = min(cfg.n_agents, _PROBE_AGENTS)
    sizes, obs_dim, act_dim = [], 0, 0
    for worlds in (1, 2):
        env = BatchEnv(cfg.scenario, worlds, n, seed=cfg.seed, on_goal="respawn", **cfg.env_kwargs)
        sizes.append(_array_bytes(env, set()))
        obs_dim, act_dim = env.obs_dim, env.act_dim
        env.close()
    per_world = max(sizes[1] - sizes[0], 0)
    fixed = max(sizes[0] - per_world, 0)
    return int(fixed + per_world * cfg.num_worlds * (cfg.n_agents / n)), obs_dim, act_dim


def rollout_bytes(cfg: TrainConfig, obs_dim: int, act_dim: int = 2) -> int:
    """Bytes of one rollout buffer of this config (without the update's copy)."""
    S, T = cfg.num_slots, cfg.n_steps
    if cfg.algo == "sb3":
        # observations, actions, rewards, returns, episode_starts, values, log_probs, advantages,
        # and the (h, c) states of the actor's and the critic's LSTM, all float32
        lstm = 1 if cfg.shared_lstm else 2
        return 4 * T * S * (obs_dim + act_dim + 6 + 2 * 2 * lstm * cfg.lstm_hidden_size)
    import torch

    from .rollout import RolloutBuffer

    buf = RolloutBuffer(T, S, obs_dim, act_dim, 1 if cfg.shared_lstm else 2, cfg.lstm_hidden_size, cfg.seq_len,
                        torch.device("meta"), prev_obs=cfg.obs_delta > 0)
    return sum(t.numel() * t.element_size() for t in vars(buf).values() if isinstance(t, torch.Tensor))


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (None where unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: float) -> str:
    return f"{n / 2 ** 30:.1f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.0f} MiB"


def check_memory(cfg: TrainConfig, available: int | None = None) -> int:
    """The estimated bytes of ``cfg``'s worlds and rollouts; raises ``ConfigError`` with the estimate
    if it exceeds ``available`` (default: ``available_memory()``)."""
    env, obs_dim, act_dim = env_bytes(cfg)
    rollout = 2 * rollout_bytes(cfg, obs_dim, act_dim)
    on_host = env + (rollout if cfg.device == "cpu" else 0)
    available = available_memory() if available is None else available
    if available is not None and on_host > available:
        raise ConfigError(
            f"num_worlds={cfg.num_worlds} x n_agents={cfg.n_agents} with n_steps={cfg.n_steps} needs at least "
            f"{gib(on_host)} of memory (environment {gib(env)}, rollout buffer and its update copy "
            f"{gib(rollout)}), but {gib(available)} is available: use fewer worlds, agents or steps")
    return on_host
