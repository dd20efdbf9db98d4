"""``entropy train --ray-workers K``: one run trained by K processes under Ray (data parallel PPO).

Each worker is a Ray actor holding a ``NativeTrainer`` of its own: ``num_worlds / K`` worlds
(seeded from the run's seed and its rank; rank 0 uses the run's seed itself), a replica of the
policy (rank 0's initial weights broadcast to all) and ``batch_size / K`` samples per minibatch.
Every iteration each worker collects its rollout, then the workers update in lockstep: every
minibatch's gradients are averaged over them through ``torch.distributed`` (gloo: one all-reduce
of the flattened gradients) before the clip and the Adam step, so the replicas stay identical
and the update is the single-process one on a K-times-wider rollout split K ways (the only
difference: advantages are normalised per worker's share of a minibatch).

The driver (``RayTrainer``, the ``entropy train`` process) has the single-process trainer's
interface, so the run folder, metrics, GIFs, checkpoints and resume are ``entropy train``'s own:
it logs the workers' metrics (episode metrics weighted by the episodes each worker finished,
losses averaged, time the slowest worker's), and a checkpoint holds rank 0's state (weights,
optimizer, its RNG streams) plus every other rank's RNG streams, so a resumed run continues
every worker's streams exactly as a resumed single-process run does. Steps are counted over
all workers. Without ``ray_address`` a local Ray starts on this machine; on a cluster the
workers go wherever Ray places them (rank 0's host is the gloo rendezvous) and the run folder
stays with the driver.
"""
from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .config import TrainConfig, config_dict

LogFn = Callable[[int, dict[str, float]], None]
RANK_KEYS = ("torch_rng", "gen_rng", "numpy_rng", "env_rng")    # a worker's own part of the state


def rank_seed(seed: int, rank: int) -> int:
    """The environment and sampling seed of worker ``rank`` (rank 0: the run's seed)."""
    return seed if rank == 0 else int(np.random.SeedSequence([seed, rank]).generate_state(1)[0] & 0x7FFFFFFF)


def local_config(cfg: TrainConfig, rank: int) -> TrainConfig:
    """Worker ``rank``'s share of the run: its worlds, its minibatch part, its seed, its step total."""
    k = cfg.ray_workers
    return dataclasses.replace(
        cfg, num_worlds=cfg.num_worlds // k, batch_size=cfg.batch_size // k, total_steps=-(-cfg.total_steps // k),
        seed=rank_seed(cfg.seed, rank), threads=cfg.threads or 1, ray_workers=0, ray_address=None, checkpoint_every=0, videos=False,
        tensorboard=False, wandb=False, prev_model=None, time_limit_s=0.0)


class GradientSync:
    """Averages gradients (one all-reduce of the flattened gradients) and scalars over the group."""

    def __init__(self, world_size: int):
        self.world_size = world_size

    def gradients(self, params: Any) -> None:
        import torch.distributed as dist
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        params = [p for p in params if p.requires_grad]
        for p in params:
            if p.grad is None:                    # every process must reduce the same tensors
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in params]
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= self.world_size
        for g, avg in zip(grads, _unflatten_dense_tensors(flat, grads)):
            g.copy_(avg)

    def mean(self, value: float) -> float:
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t[0]) / self.world_size


class Worker:
    """One rank (a Ray actor): a ``NativeTrainer`` on its share of the worlds, in a gloo group."""

    def __init__(self, cfg: dict[str, Any], rank: int):
        from ..config import build_config

        self.cfg = build_config(TrainConfig, cfg)
        self.rank = rank
        self.trainer: Any = None

    def rendezvous(self) -> tuple[str, int]:
        """This host's address and a free port for the group (asked of rank 0)."""
        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def setup(self, host: str, port: int) -> tuple[int, int]:
        import torch.distributed as dist

        from .native import NativeTrainer

        dist.init_process_group("gloo", init_method=f"tcp://{host}:{port}", rank=self.rank,
                                world_size=self.cfg.ray_workers, timeout=__import__("datetime").timedelta(minutes=30))
        self.trainer = NativeTrainer(local_config(self.cfg, self.rank))
        for p in self.trainer.model.state_dict().values():     # every replica starts from rank 0's weights
            dist.broadcast(p, 0)
        self.trainer.grad_sync = GradientSync(self.cfg.ray_workers)
        return self.trainer.env.obs_dim, self.trainer.env.act_dim

    def describe(self) -> dict[str, Any]:
        import ray

        t = self.trainer
        return {"device": str(t.device), "update_dtype": t.update_dtype, "threads": t.threads,
                "update_threads": t.update_threads, "node": ray.get_runtime_context().get_node_id()}

    def iteration(self, local_total: int) -> dict[str, float]:
        metrics = self.trainer.train_iteration(local_total)
        metrics.update(self.trainer.stats.pop())
        metrics["local_steps"] = float(self.trainer.num_timesteps)
        return metrics

    def state_dict(self, full: bool) -> dict[str, Any]:
        state = self.trainer.state_dict()
        return state if full else {k: state[k] for k in RANK_KEYS}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainer.load_state_dict(state)

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        self.trainer.model.load_state_dict(weights)

    def checksum(self) -> float:
        """Sum of all weights (the replicas must agree)."""
        return float(sum(p.double().sum() for p in self.trainer.model.state_dict().values()))

    def close(self) -> None:
        import torch.distributed as dist

        if self.trainer is not None:
            self.trainer.close()
        if dist.is_initialized():
            dist.destroy_process_group()


def combine(results: list[dict[str, float]]) -> dict[str, float]:
    """The workers' metrics as one line: episode metrics weighted by each worker's finished episodes
    (``env/episodes`` summed), times the slowest worker's, everything else averaged."""
    out: dict[str, float] = {}
    episodes = [r.get("env/episodes", 0.0) for r in results]
    keys = {k for r in results for k in r if k != "local_steps"}
    for k in keys:
        vals = [(r[k], w) for r, w in zip(results, episodes) if k in r]
        if k == "env/episodes":
            out[k] = float(sum(v for v, _ in vals))
        elif k.startswith(("env/", "rollout/")):
            total = sum(w for _, w in vals)
            out[k] = float(sum(v * w for v, w in vals) / total) if total > 0 else float(np.mean([v for v, _ in vals]))
        elif k.startswith("time/"):
            out[k] = float(max(v for v, _ in vals))
        else:
            out[k] = float(np.mean([v for v, _ in vals]))
    return out


class RayTrainer:
    """The driver of a ``ray_workers`` run, with ``NativeTrainer``'s interface (module docstring)."""

    def __init__(self, cfg: TrainConfig, log: LogFn | None = None):
        from ..optional import optional_import
        from .native import resolve_device, resolve_update_dtype
        from .network import ActorCritic, PolicySpec

        ray = optional_import("ray", "ray_workers", "sweep", "ray[tune]")
        self.cfg = cfg
        self.log = log or (lambda step, metrics: None)
        self.k = cfg.ray_workers
        self._started_ray = not ray.is_initialized()
        if self._started_ray:
            ray.init(address=cfg.ray_address, include_dashboard=False, configure_logging=False, log_to_driver=True)
        cpus = max(1, cfg.threads or 1)
        actor = ray.remote(num_cpus=cpus)(Worker)
        self.workers = [actor.remote(config_dict(cfg), r) for r in range(self.k)]
        host, port = ray.get(self.workers[0].rendezvous.remote())
        dims = ray.get([w.setup.remote(host, port) for w in self.workers])
        obs_dim, act_dim = dims[0]
        infos = ray.get([w.describe.remote() for w in self.workers])
        info = infos[0]
        self.nodes = [i["node"] for i in infos]         # the Ray node id of each rank
        self.device = resolve_device(cfg.device)
        self.update_dtype = resolve_update_dtype(cfg.update_dtype, self.device)
        self.threads, self.update_threads = info["threads"], info["update_threads"]
        self.model = ActorCritic(PolicySpec.from_config(cfg, obs_dim, act_dim))   # the driver's copy of rank 0's
        self._pull_weights()
        self.num_timesteps = 0
        self.n_updates = 0

    def _pull_weights(self) -> None:
        import ray

        state = ray.get(self.workers[0].state_dict.remote(True))
        self.model.load_state_dict(state["model"])

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        import ray

        states = ray.get([w.state_dict.remote(r == 0) for r, w in enumerate(self.workers)])
        state = dict(states[0])
        self.model.load_state_dict(state["model"])
        state.update(num_timesteps=self.num_timesteps, n_updates=self.n_updates, config=config_dict(self.cfg),
                     ray_workers=[dict(s) for s in states[1:]])
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import ray

        from .checkpoint import CheckpointError

        ranks = state.get("ray_workers")
        if not isinstance(ranks, list) or len(ranks) != self.k - 1:
            have = "a single-process run" if ranks is None else f"{len(ranks) + 1} ray workers"
            raise CheckpointError(f"it was written by {have}, this run has ray_workers={self.k}")
        self.num_timesteps, self.n_updates = int(state["num_timesteps"]), int(state["n_updates"])
        local = -(-self.num_timesteps // self.k)
        shared = {k: v for k, v in state.items() if k not in (*RANK_KEYS, "ray_workers")}
        shared["num_timesteps"] = local
        parts = [{**shared, **{k: state[k] for k in RANK_KEYS}}] + [{**shared, **r} for r in ranks]
        ray.get([w.load_state_dict.remote(p) for w, p in zip(self.workers, parts)])
        self.model.load_state_dict(state["model"])

    def load_base_model(self, path: str | Path, warn: Callable[[str], None] | None = None) -> Path:
        import ray

        from .native import NativeTrainer

        file = NativeTrainer.load_base_model(self, path, warn)      # checks the file, loads self.model
        weights = self.model.state_dict()
        ray.get([w.load_weights.remote(weights) for w in self.workers])
        return file

    def checksums(self) -> list[float]:
        import ray

        return ray.get([w.checksum.remote() for w in self.workers])

    def close(self) -> None:
        import ray

        if getattr(self, "workers", None):
            try:
                ray.get([w.close.remote() for w in self.workers], timeout=60)
            except Exception:
                pass
            for w in self.workers:
                ray.kill(w)
            self.workers = []
        if self._started_ray and ray.is_initialized():
            ray.shutdown()

    # ------------------------------------------------------------------ training
    def learn(self, total_steps: int | None = None, stop: Callable[[], bool] | None = None,
              on_iteration: Callable[["RayTrainer"], None] | None = None) -> "RayTrainer":
        import ray

        total = self.cfg.total_steps if total_steps is None else total_steps
        local_total = -(-total // self.k)
        start_steps, start = self.num_timesteps, time.perf_counter()
        while self.num_timesteps < total:
            results = ray.get([w.iteration.remote(local_total) for w in self.workers])
            self.num_timesteps = int(sum(r["local_steps"] for r in results))
            self.n_updates += 1
            metrics = combine(results)
            if self.n_updates % self.cfg.log_every == 0 or self.num_timesteps >= total:
                elapsed = time.perf_counter() - start
                metrics["time/fps"] = (self.num_timesteps - start_steps) / max(elapsed, 1e-9)
                metrics["time/time_elapsed"] = elapsed
                metrics["time/total_timesteps"] = float(self.num_timesteps)
                self.log(self.num_timesteps, metrics)
            if on_iteration is not None:
                on_iteration(self)
            if stop is not None and stop():
                break
        return self

    def save(self, run_dir: str | Path) -> Path:
        from .model_file import MODEL_FILE, save_model

        self._pull_weights()
        return save_model(self.model, Path(run_dir) / "models" / MODEL_FILE, config_dict(self.cfg))
