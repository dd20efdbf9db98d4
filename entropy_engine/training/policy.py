"""Trained policies for inference (numpy in, numpy out) and ``load_policy``.

``RecurrentPolicy`` wraps a native ``ActorCritic`` (``training.network``) read from a model file
(``training.model_file``); ``SB3Policy`` gives an sb3-contrib RecurrentPPO ``.zip`` the same
interface::

    policy = entropy_engine.load_policy("runs/my-run")       # run folder or model file
    state = policy.initial_state(n_agents)
    actions, state = policy.act(obs, state, deterministic=True)   # obs [n, obs_dim] -> actions [n, act_dim]

The network and the file format are re-exported here (``from entropy_engine.training.policy
import ActorCritic, load_model`` keeps working).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .model_file import MODEL_FILE, MODEL_FORMAT, MODEL_VERSION, _warn, find_model, load_model, save_model
from .network import (ActorCritic, PolicySpec, env_actions, gaussian_entropy, gaussian_log_prob, lstm_sequence,
                      sample_actions)

__all__ = ["ActorCritic", "MODEL_FILE", "MODEL_FORMAT", "MODEL_VERSION", "PolicySpec", "RecurrentPolicy",
           "SB3Policy", "find_model", "gaussian_entropy", "gaussian_log_prob", "load_model", "load_policy",
           "lstm_sequence", "save_model"]


class RecurrentPolicy:
    """Decentralised inference: each row is one agent with its own observation and LSTM state."""

    def __init__(self, model: ActorCritic, config: dict | None = None):
        self.model = model.eval().cpu()
        self.config = config or {}
        self.obs_dim = model.spec.obs_dim
        self.hidden_size = model.spec.lstm_hidden_size

    def initial_state(self, n_agents: int) -> np.ndarray:
        """Zero state for ``n_agents`` agents: float32 [2, n_agents, H] (h, c), or [2, n_agents, H + D]
        for ``obs_delta`` models, whose last D columns hold the previous observation (row 0) and a
        1 once there is one (row 1). All zeros = the start of an episode."""
        return np.zeros((2, n_agents, self.state_size), np.float32)

    @property
    def state_size(self) -> int:
        return self.hidden_size + (self.obs_dim if self.model.spec.obs_delta > 0 else 0)

    def act(self, obs, state: np.ndarray, deterministic: bool = True, episode_start=None
            ) -> tuple[np.ndarray, np.ndarray]:
        """obs [n, obs_dim], state [2, n, S] -> actions [n, act_dim] in [-1, 1], next state.

        ``episode_start`` (optional bool [n]) zeroes the state of agents starting a new episode.
        With discrete messages the last ``comm_tokens`` columns are tokens (whole numbers: the most
        likely when ``deterministic``, else sampled from the categorical head).
        """
        obs_t = torch.as_tensor(np.asarray(obs, np.float32))
        if obs_t.ndim != 2 or obs_t.shape[1] != self.obs_dim:
            raise ValueError(f"obs must have shape [n_agents, {self.obs_dim}], got {tuple(obs_t.shape)}")
        st = torch.as_tensor(np.asarray(state, np.float32))
        if st.shape != (2, obs_t.shape[0], self.state_size):
            raise ValueError(f"state must have shape [2, {obs_t.shape[0]}, {self.state_size}] "
                             f"(policy.initial_state), got {tuple(st.shape)}")
        if episode_start is not None:
            st = st * (1.0 - torch.as_tensor(np.asarray(episode_start, np.float32)))[None, :, None]
        H = self.hidden_size
        prev = starts = None
        if self.state_size > H:
            prev, starts = st[0, :, H:], 1.0 - st[1, :, H]
        with torch.inference_mode():
            mean, new_state = self.model.act_only(obs_t, st[:, :, :H], prev, starts)
            spec = self.model.spec
            if spec.comm_vocab:
                actions = env_actions(sample_actions(mean, self.model.log_std, spec, deterministic=deterministic), spec)
            else:
                if not deterministic:
                    mean = mean + torch.exp(self.model.log_std) * torch.randn_like(mean)
                actions = mean.clamp(-1.0, 1.0)
            if self.state_size > H:
                new_state = torch.cat([new_state, torch.stack([obs_t, torch.ones_like(obs_t)])], -1)
        return actions.numpy().astype(np.float32), new_state.numpy()


class SB3Policy:
    """The same interface over an sb3-contrib RecurrentPPO ``.zip`` model.

    By default only the file's weights are loaded (``sb3_files.load_sb3_policy``: ``policy.pth``
    with torch's weights_only loader, settings from plain JSON), because SB3's own loader unpickles
    the file's cloudpickled ``data`` entry, which can run code. ``trust_pickle=True`` loads it with
    ``RecurrentPPO.load`` instead (only for files you trust)."""

    def __init__(self, path: str | Path, trust_pickle: bool = False):
        if trust_pickle:
            from sb3_contrib import RecurrentPPO

            self._attach(RecurrentPPO.load(str(path), device="cpu"))
        else:
            from .sb3_files import load_sb3_policy

            policy, config = load_sb3_policy(path)
            self._attach(policy)
            self.config = config

    @classmethod
    def from_model(cls, model: Any) -> "SB3Policy":
        """Wrap an in-memory RecurrentPPO model (shared, not copied)."""
        self = cls.__new__(cls)
        self._attach(model)
        return self

    def _attach(self, model: Any) -> None:
        self.model = model                  # a RecurrentPPO, or its RecurrentActorCriticPolicy (both ``predict``)
        net = getattr(model, "policy", model)
        self.obs_dim = int(net.observation_space.shape[0])
        self.hidden_size = int(net.lstm_actor.hidden_size)
        self.config: dict = {}

    def initial_state(self, n_agents: int) -> np.ndarray:
        return np.zeros((2, 1, n_agents, self.hidden_size), np.float32)

    def act(self, obs, state, deterministic: bool = True, episode_start=None):
        obs = np.asarray(obs, np.float32)
        starts = np.zeros(len(obs), bool) if episode_start is None else np.asarray(episode_start, bool)
        actions, (h, c) = self.model.predict(obs, state=(state[0], state[1]), episode_start=starts,
                                             deterministic=deterministic)
        return np.clip(actions, -1, 1).astype(np.float32), np.stack([h, c]).astype(np.float32)


SB3_WEIGHTS_ONLY_NOTE = ("{file}: SB3 model loaded as weights only (policy.pth, read with torch's weights_only "
                         "loader; settings from plain JSON). Its cloudpickled 'data' entry was not unpickled, "
                         "because unpickling can run code from the file. If you trust its source, "
                         "--trust-pickle (trust_pickle=True) loads it with SB3 itself.")


def load_policy(path: str | Path, trust_pickle: bool = False, warn: Callable[[str], None] | None = None
                ) -> RecurrentPolicy | SB3Policy:
    """Load a trained policy from a run folder (its final model) or a model file (.pt or SB3 .zip).

    Nothing in the file is unpickled beyond tensors and plain data, checksums and finiteness are
    checked (``ModelFileError`` otherwise). SB3 ``.zip`` files: their weights only, with a note
    through ``warn`` (default ``warnings.warn``), unless ``trust_pickle=True`` (SB3's own loader,
    which unpickles the file's ``data`` entry: only for files you trust)."""
    file = find_model(path)
    warn = warn or _warn
    if file.suffix == ".zip":
        policy: RecurrentPolicy | SB3Policy = SB3Policy(file, trust_pickle=trust_pickle)
        if not trust_pickle:
            warn(SB3_WEIGHTS_ONLY_NOTE.format(file=file))
    else:
        model, config = load_model(file, warn)
        policy = RecurrentPolicy(model, config)
    run_config = file.parent.parent / "config.yaml"      # <run>/models/<file>: the run's resolved config
    if not policy.config and run_config.is_file():
        import yaml

        policy.config = yaml.safe_load(run_config.read_text()) or {}
    return policy
