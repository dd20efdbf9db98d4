"""The native recurrent PPO trainer on ``BatchEnv`` (one shared policy for all E*N agents).

Rollout: one batched forward per environment step over all slots under ``torch.inference_mode``,
written into a preallocated ``RolloutBuffer``. Truncated episodes are bootstrapped with
V(terminal obs) computed from the LSTM state after the last step. Update: ``ppo.ppo_update``.

The trainer's whole state (model, optimizer, step counters, RNG states of torch and of the
environment, config) is gathered by ``state_dict()`` and restored by ``load_state_dict()``.
With ``workers > 1`` the worlds run in worker processes (``envs.shm``), whose random streams
cannot be read back: a resumed run then reseeds them from (seed, update count) instead.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..envs.metrics import EpisodeMetrics
from ..envs.shm import make_batch_env
from .config import TrainConfig, config_dict
from .guards import check_update
from .memory import reuse_freed_memory
from .model_file import MODEL_FILE, save_model
from .network import ActorCritic, PolicySpec, action_log_prob, env_actions, gaussian_log_prob, sample_actions
from .ppo import compute_gae, ppo_update
from .rollout import RolloutBuffer
from .run_length import rollout_steps

LogFn = Callable[[int, dict[str, float]], None]


def configure_threads(cfg: TrainConfig) -> int:
    """The run's thread settings: numba's (``cfg.threads``, 0 = automatic) and torch's
    (``cfg.torch_threads``, else ``cfg.threads``, else automatic: ``auto_torch_threads``); returns
    torch's count.

    numba's OpenMP threads start first: numba and torch share one OpenMP runtime (torch loads its
    libgomp globally), and starting numba's pool sets the runtime's count to numba's, which would
    silently override a torch count set before it."""
    from ..core.threads import set_threads

    set_threads(cfg.threads)
    return configure_torch(cfg.torch_threads or cfg.threads)


def auto_torch_threads() -> int:
    """torch threads when nothing is set: the simulation's (automatic) thread count now, at most
    half the cores on machines with more than 2 cores; re-applied before every rollout and update,
    so torch also gives up a thread when another process wants the cores."""
    from ..core.threads import available_cores, current_threads

    cores = available_cores()
    n = current_threads()
    return max(1, min(n, cores // 2)) if cores > 2 else max(1, n)


def configure_torch(threads: int) -> int:
    """Set torch's intra-op threads (0 = automatic: ``auto_torch_threads``) and let malloc reuse
    the update's large freed blocks (``memory.reuse_freed_memory``)."""
    reuse_freed_memory()
    if threads <= 0:
        threads = auto_torch_threads()
    torch.set_num_threads(threads)
    return threads


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (read from /proc/cpuinfo; elsewhere False)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def resolve_update_dtype(name: str, device: torch.device) -> str:
    """``TrainConfig.update_dtype`` made concrete: 'auto' is 'bfloat16' where it is native, else 'float32'."""
    if name == "auto":
        return "bfloat16" if native_bf16(device) else "float32"
    return name


def resolve_device(name: str) -> torch.device:
    """``TrainConfig.device`` as a torch device; ``ConfigError`` if there is no such device here."""
    from ..config import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"device {name!r} is not a torch device (use 'cpu', 'cuda', 'cuda:N' or 'auto')") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} is not available: this torch build or machine has no CUDA GPU "
                              "(torch.cuda.is_available() is False); use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} is not available: this machine has "
                              f"{torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ConfigError(f"device {name!r} is not available on this machine; use --device cpu or auto")
    elif dev.type != "cpu":
        raise ConfigError(f"device {name!r} is not supported (use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto')")
    return dev


def make_train_env(cfg: TrainConfig, device: torch.device):
    """The training env: the env wholly on the GPU (``gpu.env.DeviceEnv``) for ``backend='cuda'`` with a
    CUDA device (or numba's CUDA simulator), where the run needs nothing it lacks (a scenario in ``DEVICE_SCENARIOS``,
    channels and curricula included, one process); else ``BatchEnv`` (in worker processes with ``workers > 1``),
    whose worlds run on ``cfg.backend``."""
    if cfg.backend == "cuda" and device_env_fits(cfg):
        from ..gpu.target import simulated

        if device.type == "cuda" or simulated():
            from ..gpu.env import DeviceEnv

            return DeviceEnv(cfg.scenario, cfg.num_worlds, cfg.n_agents, seed=cfg.seed,
                             curriculum=cfg.curriculum_spec, **cfg.env_kwargs)
    return make_batch_env(cfg.scenario, cfg.num_worlds, cfg.n_agents, seed=cfg.seed, on_goal="respawn",
                          workers=cfg.workers, curriculum=cfg.curriculum_spec, **cfg.env_kwargs)


def device_env_fits(cfg: TrainConfig) -> bool:
    """Whether ``gpu.env.DeviceEnv`` can run this config's env (a scenario it carries, with or without a
    channel or a curriculum, one process)."""
    from ..gpu.env import DEVICE_SCENARIOS

    return cfg.scenario in DEVICE_SCENARIOS and cfg.workers <= 1


class NativeTrainer:
    def __init__(self, cfg: TrainConfig, log: LogFn | None = None):
        self.cfg = cfg
        self.log = log or (lambda step, metrics: None)
        self.threads = configure_threads(cfg)
        self._auto_torch = not (cfg.torch_threads or cfg.threads)   # torch follows the free cores
        self.device = resolve_device(cfg.device)
        self.update_dtype = resolve_update_dtype(cfg.update_dtype, self.device)
        self.update_threads = cfg.update_threads
        # OpenMP's thread count is per thread: each pool thread sets torch's (and oneDNN's) to ours
        self._pool = (ThreadPoolExecutor(self.update_threads - 1, initializer=torch.set_num_threads,
                                         initargs=(self.threads,)) if self.update_threads > 1 else None)
        self.env = make_train_env(cfg, self.device)
        self.on_device = bool(getattr(self.env, "on_device", False))   # gpu.env: torch tensors in and out
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)   # network initialisation
        S, D = self.env.num_slots, self.env.obs_dim
        self.model = ActorCritic(PolicySpec.from_config(cfg, D, self.env.act_dim, getattr(self.env, "tokens", None))
                                 ).to(self.device)
        # fused: one kernel for all parameters (0.13 ms vs 0.5 ms per step for the default network on CPU)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate, eps=1e-5,
                                          fused=self.device.type in ("cpu", "cuda"))
        self.buffer = RolloutBuffer(cfg.n_steps, S, D, self.env.act_dim, self.model.n_lstm,
                                    cfg.lstm_hidden_size, cfg.seq_len, self.device, prev_obs=cfg.obs_delta > 0)
        self.num_timesteps = 0
        self.n_updates = 0
        self.stats = self.env.episode_metrics() if self.on_device else EpisodeMetrics(self.env.metrics)
        self.grad_sync: Any = None     # ray_workers: averages each minibatch's gradients over the processes
        self._reset_env()

    # ------------------------------------------------------------------ state
    def _reset_env(self) -> None:
        obs = self.env.reset()
        self.obs = obs.clone() if self.on_device else torch.as_tensor(obs.copy(), device=self.device)
        self.prev_obs = self.obs.clone()        # each slot's previous observation (obs_delta policies)
        self.lstm_state = self.model.initial_state(self.env.num_slots, self.device)
        self.starts = torch.ones(self.env.num_slots, device=self.device)

    @property
    def curriculum(self):
        """The env's ``envs.curriculum.Curriculum`` (None: worlds in worker processes)."""
        return getattr(self.env, "curriculum", None)

    def _env_rng(self) -> np.ndarray | None:
        """A copy of the env's per-world random streams (the scenario's, then the channel's when it is on);
        None for worlds in worker processes."""
        get = getattr(self.env, "rng_state", None)
        return None if get is None else get()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run (the environment restarts its episodes on load), as
        tensors and plain data only (``safe_files``): RNG states are uint8/int64 tensors and ints."""
        rng = self._env_rng()
        key, keys, pos, has_gauss, cached = np.random.get_state()
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "num_timesteps": self.num_timesteps, "n_updates": self.n_updates,
                "torch_rng": torch.get_rng_state(), "gen_rng": self.gen.get_state(),
                "numpy_rng": {"key": str(key), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                              "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
                "env_rng": None if rng is None else torch.from_numpy(rng.view(np.int64).copy()),
                "curriculum": None if self.curriculum is None else self.curriculum.state(),
                "config": config_dict(self.cfg)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.num_timesteps = int(state["num_timesteps"])
        self.n_updates = int(state["n_updates"])
        torch.set_rng_state(state["torch_rng"])
        self.gen.set_state(state["gen_rng"])
        n = state["numpy_rng"]
        np.random.set_state((n["key"], n["keys"].numpy().astype(np.uint32), int(n["pos"]), int(n["has_gauss"]),
                             float(n["cached_gaussian"])))
        if self.curriculum is not None and state.get("curriculum") is not None:
            self.curriculum.load_state(state["curriculum"])
        rng, saved = self._env_rng(), state.get("env_rng")
        if rng is not None and saved is not None and tuple(saved.shape) == rng.shape:
            self.env.set_rng_state(saved.numpy().view(rng.dtype))
        else:   # worker processes: a fresh stream per resume point, still a function of the seed
            self.env.seed(int(np.random.SeedSequence([self.cfg.seed, self.n_updates]).generate_state(1)[0]))
        self._reset_env()

    def load_base_model(self, path: str | Path, warn: Callable[[str], None] | None = None) -> Path:
        """Start from the weights of a trained native model (a run folder or ``.pt`` file)."""
        from ..config import ConfigError
        from .model_file import find_model, load_model

        file = find_model(path)
        if file.suffix != ".pt":
            raise ConfigError(f"prev_model {file}: the native trainer starts from a native model (.pt), "
                              "not an SB3 .zip")
        from .safe_files import ModelFileError

        try:
            base, _ = load_model(file, warn)
        except ModelFileError as exc:
            raise ConfigError(f"prev_model: {exc}") from None
        try:
            self.model.load_state_dict(base.state_dict())
        except RuntimeError as exc:
            raise ConfigError(f"prev_model {file} does not fit this run's network: {exc}") from None
        return file

    def close(self) -> None:
        """Stop the environment's worker processes and the update threads, if any."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        close = getattr(self.env, "close", None)
        if close is not None:
            close()

    # ------------------------------------------------------------------ rollout
    @torch.inference_mode()
    def collect(self, steps: int | None = None) -> torch.Tensor:
        """Fill the buffer with ``steps`` (default n_steps) steps of every slot; returns V(obs after
        the last step)."""
        cfg, buf, env, model = self.cfg, self.buffer, self.env, self.model
        dev = self.device
        std = torch.exp(model.log_std)
        spec = model.spec
        tokens = spec.comm_vocab > 0
        steps = cfg.n_steps if steps is None else steps
        has_active = hasattr(env, "active_slots")   # [S]: which robots take part (else all: worker processes)
        for t in range(steps):
            if t % cfg.seq_len == 0:
                buf.states[t // cfg.seq_len].copy_(self.lstm_state)
            buf.obs[t].copy_(self.obs)
            buf.starts[t].copy_(self.starts)
            if has_active:
                buf.active[t].copy_(torch.as_tensor(env.active_slots, device=dev))
            if buf.prev_obs is not None:
                buf.prev_obs[t].copy_(self.prev_obs)
            mean, value, new_state = model.step(self.obs, self.lstm_state, self.starts, self.prev_obs)
            if tokens:   # discrete messages: Gaussian wheels and categorical tokens (network.sample_actions)
                action = sample_actions(mean, model.log_std, spec, self.gen)
                logp = action_log_prob(action, mean, model.log_std, spec)
                sent = env_actions(action, spec)
            else:
                noise = torch.randn(mean.shape, generator=self.gen, device=dev)
                action = mean + std * noise
                logp = gaussian_log_prob(action, mean, model.log_std)
                sent = action.clamp(-1.0, 1.0)
            buf.actions[t].copy_(action)
            buf.logp[t].copy_(logp)
            buf.values[t].copy_(value)
            obs, rew, done_t, truncated = self._env_step(sent)
            if truncated is not None:   # bootstrap truncated episodes with V(terminal obs)
                idx_t, term_obs = truncated
                v_term = model.value(term_obs, new_state.index_select(2, idx_t), self.obs.index_select(0, idx_t))
                rew = rew.clone()
                rew[idx_t] += cfg.gamma * v_term
            buf.rewards[t].copy_(rew)
            buf.dones[t].copy_(done_t)
            self.prev_obs.copy_(self.obs)
            self.obs.copy_(torch.as_tensor(obs, device=dev))
            self.starts.copy_(done_t)
            self.lstm_state = new_state
        self.num_timesteps += steps * env.num_slots
        return model.step(self.obs, self.lstm_state, self.starts, self.prev_obs)[1]

    def _env_step(self, sent: torch.Tensor):
        """Step the env with the actions ``sent``; returns the observation (the env's), reward and done
        flags as tensors on the trainer's device and the truncated slots' (indices, terminal
        observations), or None; the episodes that ended are added to ``stats``. A device env
        (``gpu.env``) keeps everything on the GPU: one sync per step, to see whether any slot was
        truncated."""
        env, dev = self.env, self.device
        if self.on_device:
            obs, rew, terminated, truncated, info = env.step(sent)
            done_t = terminated | truncated
            self.stats.add(info, done_t)
            if not bool(truncated.any()):
                return obs, rew, done_t, None
            idx_t = truncated.nonzero().squeeze(1)
            return obs, rew, done_t, (idx_t, info["terminal_obs"].index_select(0, idx_t))
        obs, reward, terminated, truncated, info = env.step(sent.cpu().numpy())
        done = terminated | truncated
        if done.any():
            self.stats.add(info, done)
        rew, done_t = torch.as_tensor(reward, device=dev), torch.as_tensor(done, device=dev)
        if not truncated.any():
            return obs, rew, done_t, None
        idx = np.flatnonzero(truncated)
        return obs, rew, done_t, (torch.as_tensor(idx, device=dev), torch.as_tensor(info["terminal_obs"][idx], device=dev))

    # ------------------------------------------------------------------ training
    def _lr(self) -> float:
        if self.cfg.lr_schedule == "linear":
            frac = max(0.0, 1.0 - self.num_timesteps / self.cfg.total_steps)
            return self.cfg.learning_rate * max(frac, 0.05)
        return self.cfg.learning_rate

    def train_iteration(self, total: int | None = None) -> dict[str, float]:
        """One rollout and one PPO update; returns the metrics of this iteration."""
        cfg, buf = self.cfg, self.buffer
        # the last rollout is shortened so that the run ends at total_steps
        T = rollout_steps(cfg.n_steps, self.env.num_slots,
                          (cfg.total_steps if total is None else total) - self.num_timesteps)
        if self._auto_torch:
            n = auto_torch_threads()
            if n != torch.get_num_threads():
                torch.set_num_threads(n)
        shaping = cfg.shaping_scale(self.num_timesteps)
        self.env.set_shaping_scale(shaping)
        t0 = time.perf_counter()
        last_value = self.collect(T)
        t1 = time.perf_counter()
        adv, ret = compute_gae(buf.rewards[:T], buf.values[:T], buf.dones[:T], last_value, cfg.gamma,
                               cfg.gae_lambda)
        buf.advantages[:T].copy_(adv)
        buf.returns[:T].copy_(ret)
        lr = self._lr()
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        metrics = ppo_update(self.model, self.optimizer, buf.sequences(T), cfg, self.gen,
                             bf16=self.update_dtype == "bfloat16", pool=self._pool, parts=self.update_threads,
                             sync=self.grad_sync)
        t2 = time.perf_counter()
        check_update(self.num_timesteps, metrics, self.model.named_parameters(), lr)
        self.n_updates += 1
        metrics["train/learning_rate"] = lr
        metrics["train/shaping_scale"] = shaping
        metrics["time/rollout_s"] = t1 - t0
        metrics["time/update_s"] = t2 - t1
        return metrics

    def learn(self, total_steps: int | None = None, stop: Callable[[], bool] | None = None,
              on_iteration: Callable[["NativeTrainer"], None] | None = None) -> "NativeTrainer":
        """Train until ``total_steps`` agent-steps (default: the config's) have been taken."""
        total = self.cfg.total_steps if total_steps is None else total_steps
        start_steps, start = self.num_timesteps, time.perf_counter()
        while self.num_timesteps < total:
            metrics = self.train_iteration(total)
            if self.n_updates % self.cfg.log_every == 0 or self.num_timesteps >= total:
                elapsed = time.perf_counter() - start
                metrics["time/fps"] = (self.num_timesteps - start_steps) / max(elapsed, 1e-9)
                metrics["time/time_elapsed"] = elapsed
                metrics["time/total_timesteps"] = float(self.num_timesteps)
                metrics.update(self.stats.pop())
                if self.curriculum is not None:
                    metrics.update(self.curriculum.metrics())
                self.log(self.num_timesteps, metrics)
            if on_iteration is not None:
                on_iteration(self)
            if stop is not None and stop():
                break
        return self

    def save(self, run_dir: str | Path) -> Path:
        """Write the final model to ``run_dir/models/model.pt`` (its config records the curriculum)."""
        return save_model(self.model, Path(run_dir) / "models" / MODEL_FILE, config_dict(self.cfg))
