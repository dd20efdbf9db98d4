"""Model and checkpoint files that hold tensors and plain data only, checked on load.

Files travel between people, so loading one must never run code from it. Every file the project
writes is read back without unpickling anything arbitrary:

- Native files (``models/model.pt``, ``checkpoints/checkpoint.zip``) are ``torch.save`` archives of
  ``{"format", "version", "payload", "sha256"}``: the payload holds tensors, ints, floats, strings
  and settings as JSON text; they are read with ``torch.load(weights_only=True)``, whose unpickler
  only builds tensors and plain containers. ``sha256`` is ``digest(payload)``, recomputed on load.
- SB3 ``.zip`` files (``--algo sb3``) are what ``RecurrentPPO.save`` writes plus an
  ``entropy_engine.json`` entry (settings, step counters, RNG states, and the sha256 of every other
  entry). Their ``data`` entry holds cloudpickled objects by SB3's design: ``read_sb3_zip`` parses it
  as JSON and never unpickles it; the weights (``policy.pth``, ``policy.optimizer.pth``) are read
  with ``weights_only=True``.

A file that would need more (a crafted pickle, a file from an earlier release that stored numpy
objects) raises ``ModelFileError`` naming the file; so does a failed checksum or a non-finite value.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, Iterator

import torch

SB3_META = "entropy_engine.json"
SB3_META_FORMAT = "entropy-engine-sb3"


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be loaded safely: corrupt, failed checksum, non-finite
    values, or contents that only an unsafe unpickler could read."""


# ------------------------------------------------------------------------------------ checksums
def _feed(h: "hashlib._Hash", obj: Any) -> None:
    """Feed ``obj`` to ``h`` in a canonical, unambiguous byte form (type tag, length, content)."""
    def put(tag: bytes, data: bytes) -> None:
        h.update(tag + struct.pack("<Q", len(data)) + data)

    if obj is None:
        put(b"n", b"")
    elif isinstance(obj, bool):
        put(b"b", b"1" if obj else b"0")
    elif isinstance(obj, int):
        put(b"i", str(obj).encode())
    elif isinstance(obj, float):
        put(b"f", obj.hex().encode())
    elif isinstance(obj, str):
        put(b"s", obj.encode("utf-8"))
    elif isinstance(obj, bytes):
        put(b"y", obj)
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        put(b"T", f"{t.dtype}{tuple(t.shape)}".encode())
        put(b"t", t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        keys = sorted(obj, key=lambda k: (type(k).__name__, repr(k)))
        put(b"d", str(len(keys)).encode())
        for k in keys:
            _feed(h, k)
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        put(b"l" if isinstance(obj, list) else b"u", str(len(obj)).encode())
        for v in obj:
            _feed(h, v)
    elif isinstance(obj, torch.dtype):
        put(b"D", str(obj).encode())
    else:
        raise TypeError(f"digest: {type(obj).__name__} is not plain data or a tensor")


def digest(payload: Any) -> str:
    """sha256 (hex) of a nested structure of dicts, lists, tuples, tensors and plain scalars."""
    h = hashlib.sha256()
    _feed(h, payload)
    return h.hexdigest()


# ------------------------------------------------------------------------------------ finiteness
def _walk(obj: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def nonfinite_entries(obj: Any, prefix: str = "") -> list[str]:
    """Names (dotted paths) of the floating tensors and floats in ``obj`` that hold NaN or inf."""
    bad = []
    for name, v in _walk(obj, prefix):
        if isinstance(v, torch.Tensor):
            if (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v.detach()).all()):
                bad.append(name)
        elif isinstance(v, float) and not math.isfinite(v):
            bad.append(name)
    return bad


def describe(names: list[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ------------------------------------------------------------------------------------ torch files
def save_torch_file(path: str | Path, fmt: str, version: int, payload: dict[str, Any]) -> None:
    """``torch.save`` ``payload`` (tensors and plain data) to ``path`` with its format and checksum."""
    with open(path, "wb") as fh:      # through a file object a full disk is an OSError(ENOSPC), naming no zip internals
        torch.save({"format": fmt, "version": version, "payload": payload, "sha256": digest(payload)}, fh)


def load_torch_file(path: str | Path) -> Any:
    """The object in a ``torch.save`` file, read with ``weights_only=True`` (nothing arbitrary is
    unpickled). Raises ``ModelFileError`` naming the file if it is unreadable or needs an unsafe load."""
    path = Path(path)
    with open(path, "rb") as f:              # a missing file stays a FileNotFoundError
        return _safe_torch_load(f, str(path))


def _safe_torch_load(f: Any, name: str) -> Any:
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        needs = f"it needs the Python object {found.group(1)}" if found else "not tensors and plain data"
        raise ModelFileError(
            f"{name}: refused to load: it holds Python objects that only an unsafe unpickler could build ({needs}), "
            "and unpickling can run code from the file. Files written by this version of Entropy Engine hold "
            "tensors and plain data only; a checkpoint of an earlier release cannot be resumed (start the run "
            "again), and a crafted file is never loaded") from None
    except Exception as exc:                  # the restricted unpickler fails in many ways on a corrupt file
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ModelFileError(f"{name}: unreadable, the file is corrupt or not a torch file "
                             f"({type(exc).__name__}{': ' + first if first else ''})") from None


def verified_payload(path: str | Path, obj: Any, fmt: str, what: str) -> dict[str, Any]:
    """The payload of a file written by ``save_torch_file`` with format ``fmt``, after checking its
    sha256 and that every value in it is finite."""
    if not isinstance(obj, dict) or obj.get("format") != fmt or not isinstance(obj.get("payload"), dict):
        raise ModelFileError(f"{path} is not an Entropy Engine {what} file")
    payload = obj["payload"]
    try:
        ok = digest(payload) == obj.get("sha256")
    except TypeError:
        ok = False
    if not ok:
        raise ModelFileError(f"{path}: checksum mismatch (sha256 of its contents differs from the one stored "
                             f"when it was written): the file is corrupt or was modified")
    check_finite(path, payload, what)
    return payload


def check_finite(path: str | Path, payload: Any, what: str) -> None:
    bad = nonfinite_entries(payload)
    if bad:
        raise ModelFileError(f"{path}: the {what} holds non-finite values (NaN or inf) in {describe(bad)}: "
                             "it comes from a diverged run or is corrupt")


# ------------------------------------------------------------------------------------ SB3 zips
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_sb3_meta(zip_path: str | Path, meta: dict[str, Any]) -> None:
    """Append ``entropy_engine.json`` (``meta`` plus the sha256 of every entry) to an SB3 zip."""
    with zipfile.ZipFile(zip_path, "a") as zf:
        names = [n for n in zf.namelist() if n != SB3_META]
        sums = {n: _sha256(zf.read(n)) for n in names}
        text = json.dumps({"format": SB3_META_FORMAT, "version": 1, **meta, "sha256": sums}, indent=1,
                          allow_nan=False)
        zf.writestr(SB3_META, text)


class SB3File:
    """What ``read_sb3_zip`` safely got out of an SB3 ``.zip``.

    ``meta``: the ``entropy_engine.json`` entry (None for files not written by Entropy Engine);
    ``data``: the ``data`` entry's plain JSON values (cloudpickled values are left out, their names
    in ``pickled``); ``params``: state dicts by name (``policy``, ``policy.optimizer``)."""

    def __init__(self, path: Path, meta: dict | None, data: dict, pickled: list[str], params: dict):
        self.path, self.meta, self.data, self.pickled, self.params = path, meta, data, pickled, params


def read_sb3_zip(path: str | Path) -> SB3File:
    """Read an SB3 ``.zip`` without unpickling anything (see the module docstring).

    Raises ``ModelFileError`` for a file that is not a readable zip, fails a CRC or the stored
    sha256, holds a weights file that needs an unsafe load, or non-finite weights."""
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ModelFileError(f"{path}: not a readable zip archive ({exc})") from None
    with zf:
        try:
            entries = {n: zf.read(n) for n in zf.namelist()}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:   # e.g. "Bad CRC-32"
            raise ModelFileError(f"{path}: corrupt zip archive ({exc})") from None
    meta = None
    if SB3_META in entries:
        try:
            meta = json.loads(entries[SB3_META])
        except ValueError as exc:
            raise ModelFileError(f"{path}: its {SB3_META} entry is not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != SB3_META_FORMAT:
            raise ModelFileError(f"{path}: its {SB3_META} entry is not an Entropy Engine record")
        sums = meta.get("sha256") or {}
        if set(sums) != set(entries) - {SB3_META} or any(_sha256(entries[n]) != s for n, s in sums.items()):
            raise ModelFileError(f"{path}: checksum mismatch (the sha256 of its entries differs from the one "
                                 "stored when it was written): the file is corrupt or was modified")
    if "policy.pth" not in entries:
        raise ModelFileError(f"{path}: no policy.pth entry: not a Stable-Baselines3 model file")
    try:
        raw = json.loads(entries.get("data", b"{}"))
    except ValueError as exc:
        raise ModelFileError(f"{path}: its data entry is not valid JSON ({exc})") from None
    data = {k: v for k, v in raw.items() if not (isinstance(v, dict) and ":serialized:" in v)}
    pickled = sorted(set(raw) - set(data))
    params = {}
    for name, blob in entries.items():
        if name.endswith(".pth") and name != "pytorch_variables.pth":
            params[name[:-4]] = load_torch_file_bytes(path, name, blob)
    check_finite(path, params, "model")
    return SB3File(path, meta, data, pickled, params)


def load_torch_file_bytes(path: Path, name: str, blob: bytes) -> Any:
    """The object in the zip entry ``name`` of ``path`` (a ``torch.save`` blob), read safely."""
    return _safe_torch_load(io.BytesIO(blob), f"{path} (its {name} entry)")
