"""The original's path: sb3-contrib ``RecurrentPPO`` (``MlpLstmPolicy``) on the project's VecEnv.

Same config, same metric names and the same ``Monitor`` as the native trainer: SB3's own logger
output (``time/fps``, ``train/*``, ``rollout/ep_rew_mean``) is forwarded through a ``KVWriter``,
and a callback adds ``env/success_rate`` and ``env/collisions_per_agent`` from the agent-episodes
finished during each rollout. ``seq_len``, ``encoder_size`` and ``lr`` floors are native-only.

Crash recovery as in the native trainer (``training.checkpoint``): a ``RecurrentPPO.save`` archive is
written atomically to the rolling ``checkpoint.zip`` at rollout boundaries (after an update), with
the torch/numpy RNG states and the resolved config stored on the model; ``resume`` loads it and
training continues with ``reset_num_timesteps=False``, so the step total is the uninterrupted one.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import TrainConfig

LogFn = Callable[[int, dict[str, float]], None]


def _writer(log: LogFn):
    from stable_baselines3.common.logger import KVWriter

    class MonitorWriter(KVWriter):
        """Forwards every SB3 logger dump to ``log(step, metrics)`` (numbers only)."""

        def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
            metrics = {k: float(v) for k, v in key_values.items()
                       if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)}
            log(int(step), metrics)

        def close(self) -> None:
            pass

    return MonitorWriter()


def _env_callback():
    from stable_baselines3.common.callbacks import BaseCallback

    class EnvMetrics(BaseCallback):
        """Success rate and collisions of the agent-episodes finished in each rollout."""

        def _on_rollout_start(self) -> None:
            self.success: list[float] = []
            self.collisions: list[float] = []

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", ()):
                if "episode" in info:
                    self.success.append(float(info.get("is_success", False)))
                    self.collisions.append(float(info.get("collisions", 0)))
            return True

        def _on_rollout_end(self) -> None:
            if self.success:
                self.logger.record("env/success_rate", float(np.mean(self.success)))
                self.logger.record("env/collisions_per_agent", float(np.mean(self.collisions)))

    return EnvMetrics()


def make_model(cfg: TrainConfig, env=None):
    """A RecurrentPPO model for ``cfg`` on ``entropy_engine.vec_env`` (created if ``env`` is None)."""
    from sb3_contrib import RecurrentPPO

    from .native import configure_torch, resolve_device

    configure_torch(cfg.torch_threads)
    if env is None:
        env = make_env(cfg)
    if cfg.encoder_size > 0:
        warnings.warn("encoder_size is a native-trainer option; SB3's MlpLstmPolicy feeds observations "
                      "straight into the LSTM", stacklevel=2)
    lr: Any = cfg.learning_rate
    if cfg.lr_schedule == "linear":
        lr = lambda progress: cfg.learning_rate * max(progress, 0.05)  # noqa: E731
    policy_kwargs = dict(lstm_hidden_size=cfg.lstm_hidden_size, shared_lstm=cfg.shared_lstm,
                         enable_critic_lstm=not cfg.shared_lstm, log_std_init=cfg.log_std_init,
                         net_arch=dict(pi=[cfg.net_arch] * 2, vf=[cfg.net_arch] * 2))
    return RecurrentPPO(
        "MlpLstmPolicy", env, learning_rate=lr, n_steps=cfg.n_steps, batch_size=cfg.batch_size,
        n_epochs=cfg.n_epochs, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda, clip_range=cfg.clip_range,
        clip_range_vf=cfg.clip_range_vf or None, normalize_advantage=cfg.normalize_advantage,
        ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef, max_grad_norm=cfg.max_grad_norm,
        target_kl=cfg.target_kl or None, policy_kwargs=policy_kwargs, seed=cfg.seed,
        device=str(resolve_device(cfg.device)), verbose=0)


def make_env(cfg: TrainConfig):
    """The run's ``entropy_engine.vec_env`` (``workers`` processes for the pymunk backend)."""
    from .. import vec_env

    return vec_env(cfg.scenario, cfg.num_worlds, cfg.n_agents, seed=cfg.seed, workers=cfg.workers, **cfg.env_kwargs)


def attach_logging(model, log: LogFn | None) -> None:
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[_writer(log)] if log else []))


def save_sb3_checkpoint(model, path: str | Path, cfg: TrainConfig) -> Path:
    """Write ``model`` (with RNG states and config) as the rolling checkpoint at ``path``."""
    import torch

    from .checkpoint import save_checkpoint
    from .config import config_dict

    model.entropy_config = config_dict(cfg)
    model.entropy_rng = {"torch": torch.get_rng_state().numpy(), "numpy": np.random.get_state()}
    return save_checkpoint(path, lambda tmp: model.save(str(tmp)))


def load_sb3_checkpoint(path: str | Path, env, cfg: TrainConfig):
    """The RecurrentPPO model of a checkpoint on ``env``, RNG states restored (raises if unusable)."""
    import torch
    from sb3_contrib import RecurrentPPO

    from .checkpoint import check_compatible
    from .config import config_dict
    from .native import resolve_device

    model = RecurrentPPO.load(str(path), env=env, device=str(resolve_device(cfg.device)), force_reset=True)
    check_compatible(getattr(model, "entropy_config", None), config_dict(cfg))
    rng = getattr(model, "entropy_rng", None)
    if rng:
        torch.set_rng_state(torch.as_tensor(rng["torch"], dtype=torch.uint8))
        np.random.set_state(rng["numpy"])
    return model


def load_sb3_base(model, path: str | Path) -> Path:
    """Start ``model`` from the weights of a trained SB3 model (a run folder or ``.zip``)."""
    from ..config import ConfigError
    from .policy import find_model

    file = find_model(path)
    if file.suffix != ".zip":
        raise ConfigError(f"prev_model {file}: --algo sb3 starts from an SB3 model (.zip), not a native .pt")
    try:
        model.set_parameters(str(file), exact_match=True, device=model.device)
    except Exception as exc:
        raise ConfigError(f"prev_model {file} does not fit this run's network: {exc}") from None
    return file


def _checkpoint_callback(save: Callable[[Any], Any]):
    from stable_baselines3.common.callbacks import BaseCallback

    class RolloutCheckpoint(BaseCallback):
        """Calls ``save(model)`` at the start of each rollout, i.e. after the previous update."""

        def _on_rollout_start(self) -> None:
            save(self.model)

        def _on_step(self) -> bool:
            return True

    return RolloutCheckpoint()


def train_sb3(cfg: TrainConfig, paths: Any, log: LogFn | None = None, total_steps: int | None = None,
              model=None, on_rollout: Callable[[Any], Any] | None = None) -> Path:
    """Train ``model`` (default: a new one) with RecurrentPPO up to ``total_steps`` agent-steps in all
    (counting the steps it has already taken) and save ``models/model.zip`` in the run folder."""
    from stable_baselines3.common.callbacks import CallbackList

    model = model if model is not None else make_model(cfg)
    attach_logging(model, log)
    remaining = (total_steps or cfg.total_steps) - model.num_timesteps
    callbacks = [_env_callback()] + ([_checkpoint_callback(on_rollout)] if on_rollout else [])
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=CallbackList(callbacks), log_interval=cfg.log_every,
                    reset_num_timesteps=False)
    out = Path(paths.models) / "model.zip"
    from ..runs.files import atomic_save

    atomic_save(out, lambda tmp: model.save(str(tmp)))
    return out
