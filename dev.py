#!/usr/bin/env python3
"""One-step set-up and entry point for a fresh clone (needs only Python >= 3.10 and pip).

    python3 dev.py train [entropy train options]   # install if needed, then train the default swarm
    python3 dev.py test  [pytest options]          # install if needed, then run the test suite
    python3 dev.py entropy ARGS...                 # install if needed, then run any `entropy` command

The first run creates ``.venv/`` next to this file and installs PyTorch 2.13.0 before the package
and its extras; later runs reuse it and reinstall only when ``pyproject.toml`` changes. On Linux,
PyPI's torch is the CUDA build (several GB): set ``ENTROPY_TORCH_INDEX_URL`` to a CPU-only index
(https://download.pytorch.org/whl/cpu) to get the small one; ``ENTROPY_TORCH`` overrides the pin.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TORCH = os.environ.get("ENTROPY_TORCH", "torch==2.13.0")
# e.g. https://download.pytorch.org/whl/cpu for the small CPU-only build on a Linux machine
TORCH_INDEX = os.environ.get("ENTROPY_TORCH_INDEX_URL")


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _stamp() -> str:
    h = hashlib.sha256()
    for name in ("pyproject.toml", "dev.py"):
        h.update((ROOT / name).read_bytes())
    h.update(TORCH.encode())
    return h.hexdigest()


def ensure_installed() -> Path:
    py = venv_python()
    stamp_file = VENV / ".entropy-installed"
    if py.exists() and stamp_file.exists() and stamp_file.read_text() == _stamp():
        return py
    if not py.exists():
        print(f"[dev] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    print(f"[dev] installing {TORCH} (first, so that nothing pulls a larger build)", flush=True)
    subprocess.check_call(pip + [TORCH] + (["--index-url", TORCH_INDEX] if TORCH_INDEX else []))
    print("[dev] installing entropy-engine with all extras and test tools", flush=True)
    subprocess.check_call(pip + ["-e", f"{ROOT}[all,test]"])
    stamp_file.write_text(_stamp())
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    py = ensure_installed()
    env = dict(os.environ)
    if cmd == "test":
        env.setdefault("SDL_VIDEODRIVER", "dummy")  # renderer tests run headless
        args = [str(py), "-m", "pytest", *rest]
    elif cmd == "train":
        args = [str(py), "-m", "entropy_engine.cli", "train", *rest]
    elif cmd == "entropy":
        args = [str(py), "-m", "entropy_engine.cli", *rest]
    else:
        print(f"unknown command {cmd!r}; use train, test or entropy", file=sys.stderr)
        return 2
    return subprocess.call(args, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
