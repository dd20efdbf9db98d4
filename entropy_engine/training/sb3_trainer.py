"""The original's path: sb3-contrib ``RecurrentPPO`` (``MlpLstmPolicy``) on the project's VecEnv.

Same config, same metric names and the same ``Monitor`` as the native trainer: SB3's own logger
output (``time/fps``, ``train/*``, ``rollout/ep_rew_mean``) is forwarded through a ``KVWriter``,
and a callback adds the scenario's metrics (``env/<metric>``, e.g. ``env/success_rate``) from the
agent-episodes finished during each rollout. ``seq_len``, ``encoder_size``, ``obs_delta`` and ``lr`` floors are native-only.

Crash recovery as in the native trainer (``training.checkpoint``): a ``RecurrentPPO.save`` archive with
an ``entropy_engine.json`` entry (step counters, torch/numpy RNG states, the resolved config,
checksums: ``sb3_files``) is written atomically to the rolling ``checkpoint.zip`` at rollout
boundaries (after an update); resuming rebuilds the model from the config, loads the weights and
optimizer state with torch's weights_only loader and the rest from JSON (nothing is unpickled), and
training continues with ``reset_num_timesteps=False``, so the step total is the uninterrupted one.
After every update the losses and weights are checked (``guards``): NaN or inf stops the run
before anything is saved.

Run length as in the native trainer: ``_learn`` is SB3's ``OnPolicyAlgorithm.learn`` loop with two
changes. The last rollout is shortened (a smaller ``RecurrentRolloutBuffer`` for that one rollout),
so a run ends at exactly ``total_steps`` when it is a multiple of ``num_worlds * n_agents`` (else at
the next such multiple); and ``time_limit_s`` is checked after each update, so a time-limited run
stops at a rollout boundary, never in the middle of one.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .config import TrainConfig
from .run_length import rollout_steps, time_limit

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


def engine_of(venv: Any) -> Any:
    """The ``BatchEnv`` (or worker-process env) under an SB3 VecEnv and its wrappers."""
    while not hasattr(venv, "engine") and hasattr(venv, "venv"):
        venv = venv.venv
    return getattr(venv, "engine", None)


def curriculum_of(venv: Any) -> Any:
    """The curriculum (``envs.curriculum.Curriculum``) of an SB3 VecEnv's engine, or None."""
    return getattr(engine_of(venv), "curriculum", None)


def _env_callback(shaping_scale: Callable[[int], float] | None = None):
    from stable_baselines3.common.callbacks import BaseCallback

    from ..envs.metrics import EpisodeMetrics

    class EnvMetrics(BaseCallback):
        """The scenario's metrics over the agent-episodes finished in each rollout (``env/<metric>``);
        sets the scenario's shaping scale (``TrainConfig.shaping_warmup``) before each rollout."""

        def _on_rollout_start(self) -> None:
            if shaping_scale is not None:
                scale = shaping_scale(self.model.num_timesteps)
                self.training_env.env_method("set_shaping_scale", scale)
                self.logger.record("train/shaping_scale", scale)
            if not hasattr(self, "episodes"):
                self.episodes = EpisodeMetrics(self.training_env.get_attr("metrics")[0])
            self.episodes.clear()

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", ()):
                if "episode" in info:
                    self.episodes.add_one(info["episode"]["r"], info["episode"]["l"], info["episode_stats"])
            return True

        def _on_rollout_end(self) -> None:
            for key, value in self.episodes.means().items():
                if key in self.episodes.metrics:
                    self.logger.record(f"env/{key}", value)
            cur = curriculum_of(self.training_env)
            if cur is not None:
                for key, value in cur.metrics().items():
                    self.logger.record(key, value)

    return EnvMetrics()


def make_model(cfg: TrainConfig, env=None):
    """A RecurrentPPO model for ``cfg`` on ``entropy_engine.vec_env`` (created if ``env`` is None)."""
    from sb3_contrib import RecurrentPPO

    from .native import configure_threads, resolve_device

    configure_threads(cfg)
    if env is None:
        env = make_env(cfg)
    if cfg.encoder_size > 0 or cfg.obs_delta > 0:
        warnings.warn("encoder_size and obs_delta are native-trainer options; SB3's MlpLstmPolicy feeds "
                      "observations straight into the LSTM", stacklevel=2)
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
    from ..config import ConfigError
    from ..envs.vec import SB3_TOKENS_ERROR, SwarmVecEnv as vec_env

    if cfg.env_kwargs.get("comm_dim", 0) and cfg.env_kwargs.get("comm_vocab", 0):
        raise ConfigError(SB3_TOKENS_ERROR.format(vocab=cfg.env_kwargs["comm_vocab"]))
    return vec_env(cfg.scenario, cfg.num_worlds, cfg.n_agents, seed=cfg.seed, workers=cfg.workers,
                   curriculum=cfg.curriculum_spec, **cfg.env_kwargs)


def attach_logging(model, log: LogFn | None) -> None:
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[_writer(log)] if log else []))


def save_sb3_checkpoint(model, path: str | Path, cfg: TrainConfig) -> Path:
    """Write ``model`` (with its step counters, RNG states and the config) as the rolling checkpoint
    at ``path``: SB3's archive plus an ``entropy_engine.json`` entry (``sb3_files``)."""
    from .checkpoint import save_checkpoint
    from .config import config_dict
    from .sb3_files import write_sb3_file

    cur = curriculum_of(model.get_env())
    return save_checkpoint(path, lambda tmp: write_sb3_file(model, tmp, config_dict(cfg), "checkpoint",
                                                            curriculum=None if cur is None else cur.state()))


def load_sb3_checkpoint(path: str | Path, env, cfg: TrainConfig, trust_pickle: bool = False, model=None):
    """The RecurrentPPO model of a checkpoint on ``env``, RNG states restored (raises if unusable).

    ``model`` (default: a new one from ``make_model(cfg, env)``) is a fresh model for ``cfg`` that the
    checkpoint is applied to: nothing is unpickled (``sb3_files.restore_sb3_checkpoint``). Only with
    ``trust_pickle`` is a checkpoint of an earlier release (no ``entropy_engine.json``) loaded with
    ``RecurrentPPO.load``, which unpickles it."""
    from .config import config_dict
    from .safe_files import read_sb3_zip
    from .sb3_files import restore_sb3_checkpoint

    if trust_pickle and read_sb3_zip(path).meta is None:
        return _load_legacy_sb3_checkpoint(path, env, cfg)
    model = model if model is not None else make_model(cfg, env)
    saved = restore_sb3_checkpoint(path, model, config_dict(cfg))
    cur = curriculum_of(env)
    if cur is not None and saved.get("curriculum") is not None:
        cur.load_state(saved["curriculum"])
    return model


def _load_legacy_sb3_checkpoint(path: str | Path, env, cfg: TrainConfig):
    """The previous release's loader (``--trust-pickle`` only): ``RecurrentPPO.load`` unpickles the file."""
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
    """Start ``model`` from the weights of a trained SB3 model (a run folder or ``.zip``): only its
    ``policy.pth``/``policy.optimizer.pth``, read with torch's weights_only loader (``read_sb3_zip``)."""
    from ..config import ConfigError
    from .model_file import find_model
    from .safe_files import ModelFileError, read_sb3_zip

    file = find_model(path)
    if file.suffix != ".zip":
        raise ConfigError(f"prev_model {file}: --algo sb3 starts from an SB3 model (.zip), not a native .pt")
    try:
        params = read_sb3_zip(file).params
    except ModelFileError as exc:
        raise ConfigError(f"prev_model: {exc}") from None
    try:
        model.set_parameters(params, exact_match=True, device=model.device)
    except Exception as exc:
        raise ConfigError(f"prev_model {file} does not fit this run's network: {exc}") from None
    return file


def _check_update(model) -> None:
    """``guards.check_update`` after an SB3 update: its logged losses and the policy's parameters."""
    from .guards import check_update

    values = getattr(model.logger, "name_to_value", {})
    check_update(model.num_timesteps, values, model.policy.named_parameters(), float(model.lr_schedule(
        model._current_progress_remaining)))


def _checkpoint_callback(save: Callable[[Any], Any]):
    from stable_baselines3.common.callbacks import BaseCallback

    class RolloutCheckpoint(BaseCallback):
        """Calls ``save(model)`` at the start of each rollout, i.e. after the previous update."""

        def _on_rollout_start(self) -> None:
            save(self.model)

        def _on_step(self) -> bool:
            return True

    return RolloutCheckpoint()


def _buffer_like(buffer: Any, n_steps: int, model: Any) -> Any:
    """An empty rollout buffer of ``buffer``'s class and shapes, ``n_steps`` long."""
    _, layers, n_envs, hidden = buffer.hidden_state_shape
    return type(buffer)(n_steps, model.observation_space, model.action_space, (n_steps, layers, n_envs, hidden),
                        model.device, gae_lambda=model.gae_lambda, gamma=model.gamma, n_envs=model.n_envs)


@contextmanager
def _rollout_buffer(model: Any, n_steps: int) -> Iterator[Any]:
    """``model.rollout_buffer``, replaced by an ``n_steps``-long one while inside if its length differs.

    ``model.n_steps`` is left alone, so a checkpoint written during a short rollout is a normal one
    (the buffer itself is never saved)."""
    full = model.rollout_buffer
    if full.buffer_size == n_steps:
        yield full
        return
    model.rollout_buffer = _buffer_like(full, n_steps, model)
    try:
        yield model.rollout_buffer
    finally:
        model.rollout_buffer = full


def _learn(model: Any, total: int, callback: Any, log_every: int, stop: Callable[[], bool] | None) -> None:
    """``OnPolicyAlgorithm.learn(total - model.num_timesteps, reset_num_timesteps=False)``, with a short
    last rollout and ``stop()`` asked after each update. The learning-rate progress runs over the
    whole ``total``, as in a single ``learn`` call."""
    total, callback = model._setup_learn(total - model.num_timesteps, callback, reset_num_timesteps=False,
                                         tb_log_name="RecurrentPPO")
    callback.on_training_start(locals(), globals())
    iteration = 0
    while model.num_timesteps < total:
        steps = rollout_steps(model.n_steps, model.n_envs, total - model.num_timesteps)
        with _rollout_buffer(model, steps) as buffer:
            if not model.collect_rollouts(model.env, callback, buffer, n_rollout_steps=steps):
                break
            iteration += 1
            model._update_current_progress_remaining(model.num_timesteps, total)
            if iteration % log_every == 0 or model.num_timesteps >= total:
                model.dump_logs(iteration)
            try:
                model.train()
            except ValueError:   # NaN weights make torch.distributions refuse the next minibatch
                _check_update(model)
                raise
            _check_update(model)
        if stop is not None and stop():
            break
    callback.on_training_end()


def train_sb3(cfg: TrainConfig, paths: Any, log: LogFn | None = None, total_steps: int | None = None,
              model=None, on_rollout: Callable[[Any], Any] | None = None,
              interrupted: Callable[[], bool] | None = None) -> Path | None:
    """Train ``model`` (default: a new one) with RecurrentPPO up to ``total_steps`` agent-steps in all
    (counting the steps it has already taken; the last rollout is shortened to end there) or until
    ``cfg.time_limit_s`` has passed, then save ``models/model.zip`` in the run folder.

    ``interrupted()`` (``training.interrupt.StopSignals``) is asked after each update as the time
    limit is; if it stopped the run before ``total_steps``, no final model is written and None is
    returned (the caller writes a checkpoint)."""
    from stable_baselines3.common.callbacks import CallbackList

    from ..runs.files import atomic_save
    from .interrupt import any_of

    model = model if model is not None else make_model(cfg)
    attach_logging(model, log)
    total = total_steps or cfg.total_steps
    callbacks = [_env_callback(cfg.shaping_scale)] + ([_checkpoint_callback(on_rollout)] if on_rollout else [])
    if total > model.num_timesteps:
        _learn(model, total, CallbackList(callbacks), cfg.log_every, any_of(time_limit(cfg.time_limit_s), interrupted))
    if interrupted is not None and interrupted() and model.num_timesteps < total:
        return None
    from .config import config_dict
    from .sb3_files import write_sb3_file

    out = Path(paths.models) / "model.zip"
    atomic_save(out, lambda tmp: write_sb3_file(model, tmp, config_dict(cfg), "model"))
    return out
