"""``OnDevice``: what every scenario adapter of ``gpu.env.DeviceEnv`` holds (see gpu/README.md).

An adapter keeps a scenario's state on the GPU (copied once from the host scenario ``host``, a
``scenarios.base.Scenario`` built on the numba backend) and launches its kernels: ``reset(mask)``,
``respawn(mask, refresh)``, ``after_step()``, ``observe(mask)`` and ``short()``, and with scripted
robots ``world_actions(actions)``. This base holds the arrays the env reads (``obs``, ``reward``,
``terminated``, ``stats``, ``info``, ``params``, ``rng``) and those most scenarios share. They cover
the learners, ``host.n_learners`` per world; the world (``world``, a ``DeviceWorld``) holds them
and the scenario's scripted robots after them (``scenarios.scripted``).
"""
from __future__ import annotations

import numpy as np

from .target import to_device


class OnDevice:
    def __init__(self, host, world, launch) -> None:
        E, N = world.num_worlds, host.n_learners
        self.world, self.launch = world, launch
        self.rng = to_device(host.rng)                                       # [E] per-world random streams
        self.params = to_device(host._params)                                # the settings (curricula write them)
        self.prev_contact = to_device(host.prev_contact)                     # [E, N]
        self.obs = to_device(np.zeros(host.obs.shape, np.float32))          # [E, N, D]
        self.reward = to_device(np.zeros((E, N), np.float32))               # [E, N]
        self.terminated = to_device(np.zeros((E, N), np.bool_))             # [E, N] the scenario's termination
        self.stats = to_device(np.zeros(host.stats.shape, np.float32))      # [K, E, N]
        self.info: dict = {}                                                 # info key -> [E, N] device array
        self._all = to_device(np.ones(E, np.bool_))

    def world_actions(self, actions):
        """The wheel powers the physics step reads, [E, T, 2+] (T = the world's robots), from the
        env's validated actions [E, N, A] (device arrays). The default: the actions themselves (no
        scripted robots). A scenario with scripted robots runs here what its ``step`` does before the
        physics (its robots' policy) and returns its own array of every robot's wheel powers."""
        return actions

    def short(self):
        """A torch bool tensor [E] on the device: the worlds whose last reset could not place everything;
        or None (the default: the scenario's room was checked when the host scenario was built)."""
        return None
