"""One source for two targets: the numba CPU kernels compiled as CUDA device functions.

Every per-agent and per-world piece of the simulation (``core.kernels``, ``core.geometry``,
``core.rng``, the scenarios' kernels) is written once, as a ``numba.njit`` function. ``device(f)``
compiles that same Python source for the GPU with ``numba.cuda.jit(device=True)``: the function's
globals are copied and every njit function it calls is replaced by its own device version
(recursively, each compiled once), so a CUDA kernel calling ``device(kernels.phase_drive)`` runs the
drive model the CPU backend runs, line for line. Only the drivers (which thread does which agent,
where the barriers are) are written per target (``gpu.kernels``).

``numba.cuda`` is imported on first use: the CPU backend never loads it. With
``NUMBA_ENABLE_CUDASIM=1`` (set before numba is imported) numba's CUDA simulator runs the same
kernels on the CPU, which is how the tests check the GPU path on machines without a GPU.
"""
from __future__ import annotations

import types
from typing import Any

from ..config import ConfigError

_DEVICE: dict[Any, Any] = {}   # njit dispatcher -> its CUDA device function


def cuda():
    """``numba.cuda`` (imported lazily)."""
    from numba import cuda as numba_cuda

    return numba_cuda


def simulated() -> bool:
    """Whether numba's CUDA simulator stands in for a GPU (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


def available() -> bool:
    """A CUDA GPU (or the simulator) that numba can launch kernels on."""
    try:
        return bool(cuda().is_available())
    except Exception:   # no driver, no numba-cuda: the CPU backend is the one to use
        return False


def require() -> None:
    """Raise a ConfigError saying what is missing when no CUDA GPU can be used."""
    if available():
        return
    raise ConfigError("backend 'cuda' needs an NVIDIA GPU with its driver (numba.cuda found none; with a GPU, "
                      "install the gpu extra: pip install -e '.[gpu]'); use backend 'numba' (the default) on this "
                      "machine, or set NUMBA_ENABLE_CUDASIM=1 to run the GPU code in numba's (slow) CUDA simulator")


def _is_njit(obj: Any) -> bool:
    from numba.core.registry import CPUDispatcher

    return isinstance(obj, CPUDispatcher)


def device(fn: Any) -> Any:
    """The CUDA device function compiled from the same source as the njit function ``fn``."""
    if fn in _DEVICE:
        return _DEVICE[fn]
    py = fn.py_func
    glb = dict(py.__globals__)
    for name in _global_names(py.__code__):
        obj = glb.get(name)
        if obj is not fn and _is_njit(obj):
            glb[name] = device(obj)
    clone = types.FunctionType(py.__code__, glb, py.__name__, py.__defaults__, py.__closure__)
    clone.__qualname__ = py.__qualname__
    clone.__doc__ = py.__doc__
    dev = cuda().jit(device=True)(clone)
    _DEVICE[fn] = dev
    return dev


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


# ----------------------------------------------------------------------------- arrays
# On a GPU the arrays are numba device arrays (torch tensors view them through
# ``__cuda_array_interface__``, without copies); in the simulator they are numpy arrays (which its
# kernels take and write back) and torch views them with ``torch.from_numpy``.
def to_device(host):
    """A device copy of the numpy array ``host``."""
    return host.copy() if simulated() else cuda().to_device(host)


def upload(dst, src) -> None:
    """dst (device) <- src (host numpy array of the same shape)."""
    if simulated():
        dst[...] = src
    else:
        dst.copy_to_device(src)


def download(src, dst) -> None:
    """dst (host numpy array) <- src (device)."""
    if simulated():
        dst[...] = src
    else:
        src.copy_to_host(dst)


def torch_view(arr):
    """A torch tensor sharing ``arr``'s memory (on the GPU, or the CPU in the simulator)."""
    import torch

    if simulated():
        return torch.from_numpy(arr)
    return torch.as_tensor(arr, device="cuda")


def synchronize() -> None:
    if not simulated():
        cuda().synchronize()
