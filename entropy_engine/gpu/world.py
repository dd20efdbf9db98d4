"""The ``cuda`` world backend: the physics step on an NVIDIA GPU behind the host arrays of ``WorldState``.

``CudaWorld`` is a ``core.state.WorldState`` like the numba and pymunk backends, so every scenario,
env, the PettingZoo and SB3 wrappers, GIFs and ``entropy play`` run on it unchanged
(``--backend cuda`` / ``WorldConfig(backend="cuda")``): each step uploads the state the scenario
may have written (a reset, a respawn, an agent that left), steps it on the GPU (``DeviceWorld``)
and downloads positions, velocities, headings, lidar and contacts for the scenario's kernels.
Those copies are what this backend costs; the device env (``gpu.env.DeviceEnv``, used by
``entropy train --backend cuda --device cuda`` and ``entropy bench --backend cuda``) keeps the whole
loop on the GPU instead. Worlds with movable objects (transport) step on the GPU too
(``gpu.object_kernels``): the objects' arrays are uploaded with the robots' and their positions and
velocities downloaded after the step.
"""
from __future__ import annotations

import numpy as np

from ..core.params import WorldConfig
from ..core.state import WorldState
from .target import require, to_device, upload


class CudaWorld(WorldState):
    """``num_worlds`` worlds of ``n_agents`` agents stepped on the GPU (see the module docstring)."""

    def __init__(self, config: WorldConfig, num_worlds: int, n_agents: int, max_walls: int, max_objects: int = 0):
        require()
        super().__init__(config, num_worlds, n_agents, max_walls, max_objects)
        from .device_world import DeviceWorld

        self.device = DeviceWorld(self)
        self._actions = to_device(np.zeros((self.num_worlds, self.n_agents, 2), np.float32))

    def step(self, actions: np.ndarray) -> None:
        dev = self.device
        dev.upload(("pos", "vel", "theta", "omega", "active", "walls", "n_walls"))
        upload(self._actions, np.asarray(actions, np.float32))
        if dev.n_objects:
            dev.upload_objects()
        dev.step(self._actions)
        dev.download()
        if dev.n_objects:
            dev.download_objects()
