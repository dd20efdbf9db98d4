"""SB3 ``.zip`` files (``--algo sb3``) written so that they can be read back without unpickling.

``write_sb3_file`` writes ``RecurrentPPO.save``'s archive (so SB3 itself can still load it, with its
cloudpickled ``data`` entry) and adds ``entropy_engine.json``: the run's config, the policy's shape
and keyword arguments, for checkpoints the step counters and RNG states, and the sha256 of every
other entry (``safe_files.add_sb3_meta``).

Reading never unpickles ``data`` (``safe_files.read_sb3_zip``):

- ``load_sb3_policy``: an inference policy (``RecurrentActorCriticPolicy``) rebuilt from the plain
  settings and ``policy.pth``. Files from elsewhere (no ``entropy_engine.json``) work when their
  ``policy_kwargs`` are plain JSON; otherwise ``trust_pickle`` is needed.
- ``restore_sb3_checkpoint``: a checkpoint applied to a fresh ``RecurrentPPO`` built from the run's
  config: weights and optimizer state through ``set_parameters``, counters and RNG states from JSON.
"""
from __future__ import annotations

import base64
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import check_compatible
from .safe_files import SB3_META, ModelFileError, SB3File, add_sb3_meta, read_sb3_zip

# RecurrentActorCriticPolicy keyword arguments that are plain data (the rest are classes)
PLAIN_POLICY_KWARGS = {"net_arch", "ortho_init", "use_sde", "log_std_init", "full_std", "use_expln", "squash_output",
                       "share_features_extractor", "normalize_images", "lstm_hidden_size", "n_lstm_layers",
                       "shared_lstm", "enable_critic_lstm", "lstm_kwargs"}


def _rng_state() -> dict[str, Any]:
    """torch's and numpy's global RNG states as plain JSON data."""
    import torch

    key, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
            "numpy": {"key": str(key), "keys": [int(k) for k in keys], "pos": int(pos), "has_gauss": int(has_gauss),
                      "cached_gaussian": float(cached)}}


def _set_rng_state(rng: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(rng["torch"])), dtype=torch.uint8))
    n = rng["numpy"]
    np.random.set_state((n["key"], np.asarray(n["keys"], np.uint32), int(n["pos"]), int(n["has_gauss"]),
                         float(n["cached_gaussian"])))


def write_sb3_file(model: Any, path: str | Path, config: dict[str, Any], kind: str,
                   curriculum: dict[str, Any] | None = None) -> None:
    """``model.save(path)`` plus ``entropy_engine.json`` (``kind``: 'model' or 'checkpoint', which
    also records the counters and RNG states a resumed run needs, and the curriculum's state).
    Refuses non-finite weights."""
    from .guards import TrainingDiverged
    from .safe_files import describe, nonfinite_entries

    bad = nonfinite_entries({"policy": model.policy.state_dict(), "optimizer": model.policy.optimizer.state_dict()})
    if bad:
        raise TrainingDiverged(f"refusing to save {kind} {path}: it holds non-finite values (NaN or inf) in "
                               f"{describe(bad)}")
    meta: dict[str, Any] = {"kind": kind, "config": config,
                            "policy": {"obs_dim": int(model.observation_space.shape[0]),
                                       "act_dim": int(model.action_space.shape[0]),
                                       "policy_kwargs": dict(model.policy_kwargs)}}
    if kind == "checkpoint":
        meta["state"] = {"num_timesteps": int(model.num_timesteps), "n_updates": int(model._n_updates),
                         "episode_num": int(model._episode_num),
                         "ep_info_buffer": [{k: float(v) for k, v in ep.items()} for ep in model.ep_info_buffer or ()],
                         "ep_success_buffer": [float(x) for x in model.ep_success_buffer or ()],
                         "rng": _rng_state(), "curriculum": curriculum}
    model.save(str(path))
    add_sb3_meta(path, meta)


def _policy_kwargs(f: SB3File) -> dict[str, Any]:
    if f.meta is not None:
        kwargs = f.meta.get("policy", {}).get("policy_kwargs", {})
    elif "policy_kwargs" in f.data:
        kwargs = f.data["policy_kwargs"]
    elif "policy_kwargs" in f.pickled:
        raise ModelFileError(f"{f.path}: its policy settings (policy_kwargs) are cloudpickled, so they cannot be "
                             "read without unpickling, which can run code from the file. If you trust its source, "
                             "pass --trust-pickle (trust_pickle=True) to load it with SB3")
    else:
        kwargs = {}
    unknown = sorted(set(kwargs) - PLAIN_POLICY_KWARGS)
    if not isinstance(kwargs, dict) or unknown:
        raise ModelFileError(f"{f.path}: policy_kwargs {unknown} are not plain settings this loader knows; if you "
                             "trust the file's source, pass --trust-pickle (trust_pickle=True) to load it with SB3")
    return dict(kwargs)


def load_sb3_policy(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """(``RecurrentActorCriticPolicy`` on CPU with the file's weights, the run config stored with it
    or {}) from an SB3 ``.zip``, without unpickling (raises ``ModelFileError``)."""
    import torch
    from gymnasium import spaces
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    f = read_sb3_zip(path)
    state = f.params["policy"]
    try:
        obs_dim = int(state["lstm_actor.weight_ih_l0"].shape[1])
        act_dim = int(state["action_net.weight"].shape[0])
    except (KeyError, IndexError):
        raise ModelFileError(f"{f.path}: its policy.pth is not a recurrent (MlpLstmPolicy) policy") from None
    obs_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    act_space = spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
    try:
        policy = RecurrentActorCriticPolicy(obs_space, act_space, lambda _: 0.0, **_policy_kwargs(f))
        policy.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{f.path}: its weights do not fit an MlpLstmPolicy with its settings "
                             f"({str(exc).splitlines()[0]})") from None
    policy.to(torch.device("cpu")).set_training_mode(False)
    config = (f.meta or {}).get("config") or {}
    return policy, config


def restore_sb3_checkpoint(path: str | Path, model: Any, config: dict[str, Any]) -> dict[str, Any]:
    """Apply the checkpoint at ``path`` to ``model`` (a fresh ``RecurrentPPO`` built from the run's
    config ``config``) and restore the RNG states.

    Everything is checked before ``model`` is touched (file, checksums, finiteness, and that the
    checkpoint's config fits: ``checkpoint.check_compatible``). A checkpoint without ``entropy_engine.json``
    (an earlier release's) raises ``ModelFileError``: resuming it needs SB3's unpickling loader."""
    f = read_sb3_zip(path)
    if f.meta is None or f.meta.get("kind") != "checkpoint" or "state" not in f.meta:
        raise ModelFileError(f"{f.path}: not an Entropy Engine SB3 checkpoint (no {SB3_META} entry with its "
                             "state; written by an earlier release?). Resuming it would mean unpickling its "
                             "SB3 'data' entry, which can run code: pass --trust-pickle if you wrote it yourself")
    check_compatible(f.meta.get("config"), config)
    st = f.meta["state"]
    params = {k: v for k, v in f.params.items() if k in ("policy", "policy.optimizer")}
    model.set_parameters(params, exact_match=True, device=model.device)
    model.num_timesteps = int(st["num_timesteps"])
    model._n_updates = int(st["n_updates"])
    model._episode_num = int(st["episode_num"])
    model.ep_info_buffer = deque((dict(ep) for ep in st["ep_info_buffer"]), maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(st["ep_success_buffer"], maxlen=model._stats_window_size)
    _set_rng_state(st["rng"])
    return st
