"""How closely the GPU path follows the numba backend: the same scenario stepped on both.

``compare_worlds`` builds one scenario on the ``numba`` backend and one on ``cuda`` from the same seed,
steps both with the same actions and returns the largest differences seen (positions, velocities,
lidar, observations, rewards) and the number of contact flags, grid cells and reset states that
differ. The tests run it in numba's CUDA simulator; ``python -m entropy_engine.gpu.check`` runs it
on a real GPU.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def compare_worlds(scenario: str = "navigation", num_worlds: int = 2, n_agents: int = 8, steps: int = 10,
                   seed: int = 3, schedule: str | None = None, push: float = 0.5, worlds_per_block: int | None = None,
                   **config: Any) -> dict[str, float]:
    """Step ``scenario`` on both backends with the same random actions (biased forward by ``push``
    so that robots meet walls and each other); returns the worst differences over all steps."""
    from ..scenarios import make_scenario
    from .target import download

    cpu = make_scenario(scenario, num_worlds, n_agents, seed, **config)
    gpu = make_scenario(scenario, num_worlds, n_agents, seed, backend="cuda", **config)
    gpu.world.device.schedule_override = schedule
    gpu.world.device.worlds_per_block = worlds_per_block
    cpu.reset()
    gpu.reset()
    a, b = cpu.world, gpu.world
    out = {"reset_pos": float(np.abs(a.pos - b.pos).max()), "reset_walls": float(np.abs(a.walls - b.walls).max()),
           "pos": 0.0, "vel": 0.0, "theta": 0.0, "lidar": 0.0, "obs": 0.0, "reward": 0.0,
           "contact_mismatch": 0, "grid_mismatch": 0, "contacts": 0, "steps": steps}
    rs = np.random.default_rng(seed)
    shape = (a.num_worlds, cpu.n_learners, cpu.action_space().shape[0])
    for _ in range(steps):
        act = np.clip(rs.uniform(-1.0, 1.0, shape) + push, -1.0, 1.0).astype(np.float32)
        cpu.step(act)
        gpu.step(act)
        for key, x, y in (("pos", a.pos, b.pos), ("vel", a.vel, b.vel), ("lidar", a.lidar, b.lidar),
                          ("obs", cpu.obs, gpu.obs), ("reward", cpu.reward, gpu.reward)):
            out[key] = max(out[key], float(np.abs(x - y).max()))
        dth = np.abs(a.theta - b.theta)
        out["theta"] = max(out["theta"], float(np.minimum(dth, 2 * np.pi - dth).max()))
        out["contact_mismatch"] += int((a.contact != b.contact).sum())
        out["contacts"] += int(a.contact.sum())
        cs_a, ci_a = a.grid()
        dev = b.device
        cs_b, ci_b = np.zeros_like(cs_a), np.zeros_like(ci_a)
        download(dev.cell_start, cs_b)
        download(dev.cell_items, ci_b)
        out["grid_mismatch"] += int((cs_a != cs_b).sum() + (ci_a != ci_b).sum())
    return out
