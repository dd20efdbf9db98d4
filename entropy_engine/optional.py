"""Optional dependencies, imported on first use with a message that says how to install them."""
from __future__ import annotations

import importlib
from types import ModuleType


def optional_import(module: str, needed_for: str, extra: str, pip_name: str | None = None) -> ModuleType:
    """Import ``module`` or raise ImportError naming the extra (``pip install entropy-engine[extra]``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = pip_name or module.split(".")[0]
        raise ImportError(
            f"{needed_for} needs {package}, which is not installed; install it with "
            f"`pip install entropy-engine[{extra}]` (or `pip install {package}`)"
        ) from exc
