"""The native model file: an ``ActorCritic``'s weights and shape, and the run's config.

``save_model`` writes tensors and plain data only (``safe_files``: weights, the network's shape and
the run's config as JSON text, a sha256 of both), atomically; ``load_model`` reads it with torch's
``weights_only`` loader and checks checksum and finiteness; ``find_model`` finds the final model of
a run folder (native ``model.pt`` or SB3 ``model.zip``).

A policy with discrete messages records its vocabulary in the network's shape (``PolicySpec``:
``comm_vocab`` tokens per channel, ``comm_tokens`` channels), plain JSON like the rest.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .network import ActorCritic, PolicySpec

MODEL_FORMAT = "entropy-engine-policy"
MODEL_VERSION = 2
MODEL_FILE = "model.pt"


def save_model(model: ActorCritic, path: str | Path, config: dict | None = None) -> Path:
    """Write the network and its shape to ``path`` (atomically: temp file, fsync, rename).

    The file holds tensors and plain data only (``safe_files``): the weights, and the network's
    shape and the run's config as JSON text, with a sha256 of both; non-finite weights are refused."""
    from ..runs.files import atomic_save
    from .guards import TrainingDiverged
    from .safe_files import describe, nonfinite_entries, save_torch_file

    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    bad = nonfinite_entries(state)
    if bad:
        raise TrainingDiverged(f"refusing to save {path}: the network holds non-finite values (NaN or inf) in "
                               f"{describe(bad)}")
    spec = asdict(model.spec)
    if not spec["comm_vocab"]:   # without discrete messages, the spec an earlier release reads too
        del spec["comm_vocab"], spec["comm_tokens"]
    meta = json.dumps({"spec": spec, "config": config or {}})
    payload = {"meta": meta, "state_dict": state}
    return atomic_save(path, lambda tmp: save_torch_file(tmp, MODEL_FORMAT, MODEL_VERSION, payload))


def load_model(path: str | Path, warn: Callable[[str], None] | None = None) -> tuple[ActorCritic, dict]:
    """The network of a native model file and the config it was trained with.

    Read with ``torch.load(weights_only=True)``, checksum and finiteness checked (``safe_files``);
    raises ``ModelFileError`` naming the file otherwise. A file of the previous release (format 1: no
    checksum, plain data) is loaded the same safe way, with a note through ``warn``."""
    from .safe_files import ModelFileError, check_finite, load_torch_file, verified_payload

    path = Path(path)
    obj = load_torch_file(path)
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path} is not an Entropy Engine model file")
    try:
        if obj.get("version") == 1:                   # previous release: spec/config dicts, no checksum
            spec, config, state = obj["spec"], obj.get("config") or {}, obj["state_dict"]
            check_finite(path, state, "model")
            (warn or _warn)(f"{path} was written by an earlier release: it has no checksum to verify; "
                            "its weights were loaded with torch's safe (weights_only) loader")
        else:
            payload = verified_payload(path, obj, MODEL_FORMAT, "model")
            meta = json.loads(payload["meta"])
            spec, config, state = meta["spec"], meta.get("config") or {}, payload["state_dict"]
        model = ActorCritic(PolicySpec(**spec))
        model.load_state_dict(state)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: not a valid Entropy Engine model file ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return model, config


def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, stacklevel=3)


def find_model(path: str | Path) -> Path:
    """A model file from a run folder (``models/model.pt`` or ``models/model.zip``) or a file path."""
    path = Path(path)
    if path.is_dir():
        for cand in (path / "models" / MODEL_FILE, path / "models" / "model.zip", path / MODEL_FILE):
            if cand.exists():
                return cand
        raise FileNotFoundError(f"no final model in run folder {path} (expected models/{MODEL_FILE} or models/model.zip)")
    if not path.exists():
        raise FileNotFoundError(path)
    return path
