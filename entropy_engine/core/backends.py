"""Registry of world backends: ``make_world(config, num_worlds, n_agents, max_walls)``.

Every backend is a ``core.state.WorldState``: the shared arrays (``pos``, ``vel``, ``theta``,
``omega``, ``active``, ``walls``, ``n_walls``, ``lidar``, ``contact``; shapes in that module's
docstring) and the services scenarios run on them (``grid()``, ``refresh_lidar()``,
``threads(step=False)``, ``phys``). A backend subclasses it, adds only its own scratch, implements
``step(actions)`` and overrides ``sync(worlds)`` if it keeps a copy of the state of its own
(``core.world.World``: numba kernels; ``core.pymunk_world.PymunkWorld``: Chipmunk2D spaces).
Scenarios only talk to that interface, so a new backend (a GPU one, say) plugs in with
``register_backend(name, factory)`` and is chosen with ``WorldConfig.backend``. Factories are
imported when first used, so an optional backend costs nothing until someone picks it.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from ..config import ConfigError

# name -> "module:attribute" (imported lazily) or a factory(config, num_worlds, n_agents, max_walls)
BACKENDS: dict[str, str | Callable[..., Any]] = {
    "numba": "entropy_engine.core.world:World",
    "pymunk": "entropy_engine.core.pymunk_world:PymunkWorld",
    "cuda": "entropy_engine.gpu.world:CudaWorld",
}


def register_backend(name: str, factory: str | Callable[..., Any]) -> None:
    """Make a world backend available as ``WorldConfig.backend == name``."""
    BACKENDS[name] = factory


def backend_factory(name: str) -> Callable[..., Any]:
    """The factory of backend ``name`` (imported on first use)."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; available: {sorted(BACKENDS)}") from None
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        BACKENDS[name] = factory
    return factory


def make_world(config: Any, num_worlds: int, n_agents: int, max_walls: int, max_objects: int = 0) -> Any:
    """The world of ``config.backend`` with ``num_worlds`` x ``n_agents`` agents and room for
    ``max_walls`` wall segments and ``max_objects`` movable objects (``core.objects``) per world.
    A backend that cannot simulate objects refuses ``max_objects > 0`` with a ConfigError."""
    factory = backend_factory(config.backend)
    if max_objects:
        return factory(config, num_worlds, n_agents, max_walls, max_objects=max_objects)
    return factory(config, num_worlds, n_agents, max_walls)
