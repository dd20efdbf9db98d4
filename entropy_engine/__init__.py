"""Entropy Engine: train swarms of differential-drive robots with recurrent PPO on a laptop."""
from __future__ import annotations

__version__ = "0.1.0"

from .core.threads import configure_openmp

configure_openmp()  # before any OpenMP runtime (numba's or torch's) loads: see core/threads.py

from typing import TYPE_CHECKING  # noqa: E402

from .config import ConfigError  # noqa: E402

if TYPE_CHECKING:
    from .envs.batch import BatchEnv


def __getattr__(name: str):
    # imported on first use, so that `import entropy_engine` stays cheap (no numba start-up)
    if name == "BatchEnv":
        from .envs.batch import BatchEnv

        return BatchEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parallel_env(scenario: str = "navigation", n_agents: int = 10, seed: int | None = None,
                 render_mode: str | None = None, **config):
    """The PettingZoo ``ParallelEnv`` of one world (agents ``robot_0`` ...)."""
    from .envs.parallel import SwarmParallelEnv

    return SwarmParallelEnv(scenario=scenario, n_agents=n_agents, seed=seed, render_mode=render_mode, **config)


def vec_env(scenario: str = "navigation", num_worlds: int = 8, n_agents: int = 10, seed: int | None = None,
            workers: int = 0, **config):
    """A Stable-Baselines3 ``VecEnv`` with ``num_worlds * n_agents`` slots (one per agent).

    ``workers > 1`` runs the worlds in that many processes over shared memory (for the pymunk
    backend; the compiled backend uses threads and needs none)."""
    from .envs.vec import SwarmVecEnv

    return SwarmVecEnv(scenario=scenario, num_worlds=num_worlds, n_agents=n_agents, seed=seed, workers=workers,
                       **config)


def load_policy(path, trust_pickle: bool = False, warn=None):
    """A trained policy (run folder or model file) with ``initial_state(n)`` and ``act(obs, state)``.

    Loading never runs code from the file: tensors and plain data only, checksum and finite weights
    checked (``ModelFileError`` otherwise). An SB3 ``.zip`` gives its weights only, with a warning
    saying why; ``trust_pickle=True`` loads it with SB3's own loader, which unpickles the file (and
    can run code from it): only for files you trust. ``warn(message)`` receives notes about the
    load (default: ``warnings.warn``)."""
    from .training.policy import load_policy as _load

    return _load(path, trust_pickle=trust_pickle, warn=warn)


__all__ = ["__version__", "ConfigError", "BatchEnv", "parallel_env", "vec_env", "load_policy"]
