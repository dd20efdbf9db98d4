"""How closely the GPU path follows the numba backend: the same scenario stepped on both.

``compare_worlds`` builds one scenario on the ``numba`` backend and one on ``cuda`` from the same seed,
steps both with the same actions and returns the largest differences seen (positions, velocities,
lidar, observations, rewards; with movable objects also the objects' positions and velocities) and the
number of contact flags, grid cells and reset states that differ; ``objects_moved`` counts the steps in
which some object moved (on the CPU), so a caller can check that objects were pushed. The tests run it in numba's CUDA simulator; ``python -m entropy_engine.gpu.check`` runs it
on a real GPU.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def compare_worlds(scenario: str = "navigation", num_worlds: int = 2, n_agents: int = 8, steps: int = 10,
                   seed: int = 3, schedule: str | None = None, push: float = 0.5, worlds_per_block: int | None = None,
                   heuristic: bool = False, objects_ahead: bool = False, **config: Any) -> dict[str, float]:
    """Step ``scenario`` on both backends with the same random actions (biased forward by ``push``
    so that robots meet walls and each other; with ``heuristic`` the scenario's scripted policy on
    the CPU's observations plus uniform noise of +-``push``; with ``objects_ahead`` each world's object m
is put just ahead of its robot m after the reset, so that driving forward pushes it); returns the
worst differences over all steps."""
    from ..scenarios import make_scenario
    from .target import download

    cpu = make_scenario(scenario, num_worlds, n_agents, seed, **config)
    gpu = make_scenario(scenario, num_worlds, n_agents, seed, backend="cuda", **config)
    gpu.world.device.schedule_override = schedule
    gpu.world.device.worlds_per_block = worlds_per_block
    cpu.reset()
    gpu.reset()
    if objects_ahead:
        for sc in (cpu, gpu):
            _objects_ahead(sc.world)
    a, b = cpu.world, gpu.world
    out = {"reset_pos": float(np.abs(a.pos - b.pos).max()), "reset_walls": float(np.abs(a.walls - b.walls).max()),
           "pos": 0.0, "vel": 0.0, "theta": 0.0, "lidar": 0.0, "obs": 0.0, "reward": 0.0,
           "contact_mismatch": 0, "grid_mismatch": 0, "contacts": 0, "steps": steps}
    oa, ob = a.objects, b.objects
    if oa.max_objects:
        out.update({"reset_opos": float(np.abs(oa.pos - ob.pos).max()), "opos": 0.0, "ovel": 0.0,
                    "objects_moved": 0})
    rs = np.random.default_rng(seed)
    shape = (a.num_worlds, cpu.n_learners, cpu.action_space().shape[0])
    for _ in range(steps):
        if heuristic:
            act = np.clip(cpu.heuristic(cpu.obs) + rs.uniform(-push, push, shape), -1.0, 1.0).astype(np.float32)
        else:
            act = np.clip(rs.uniform(-1.0, 1.0, shape) + push, -1.0, 1.0).astype(np.float32)
        before = oa.pos.copy()
        cpu.step(act)
        gpu.step(act)
        if oa.max_objects:
            out["opos"] = max(out["opos"], float(np.abs(oa.pos - ob.pos).max()))
            out["ovel"] = max(out["ovel"], float(np.abs(oa.vel - ob.vel).max()))
            out["objects_moved"] += int((oa.pos != before).any())
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


def _objects_ahead(world) -> None:
    """Object m of every world 5 cm ahead of robot m (m < min(M, N)), clear of the border."""
    ob, r = world.objects, world.radius
    for m in range(min(ob.max_objects, world.n_agents)):
        d = ob.radius[:, m] + r + 0.05
        x = world.pos[:, m, 0] + np.cos(world.theta[:, m]) * d
        y = world.pos[:, m, 1] + np.sin(world.theta[:, m]) * d
        lo, hi = ob.radius[:, m] + 0.01, world.arena - ob.radius[:, m] - 0.01
        ob.pos[:, m, 0] = np.clip(x, lo, hi)
        ob.pos[:, m, 1] = np.clip(y, lo, hi)


def compare_envs(scenario: str = "navigation", num_worlds: int = 3, n_agents: int = 6, steps: int = 14,
                 seed: int = 7, push: float = 0.4, shaping: float = 0.5, heuristic: bool = False,
                 **config: Any) -> dict[str, Any]:
    """Step ``BatchEnv`` (numba, on the host) and ``gpu.env.DeviceEnv`` of ``scenario`` from the same seed
    with the same actions; returns the worst differences of observations, rewards, terminal observations
    and finished episodes' statistics (the actions: uniform noise biased forward by ``push``; with
    ``heuristic`` the scenario's scripted policy on the CPU env's observations plus noise of
    +-``push``), the number of done flags, info flags and episode lengths that
    differ, how many steps ended with different curriculum states (stage, levels, statistics: with
    ``curriculum=`` a ``CurriculumSpec``), and how many terminations, truncations and info flags were
    compared. With a channel (``comm_dim`` in ``config``) the observations include the received
    block, the message columns of the actions are random values (random tokens with ``comm_vocab``)
    and ``heard`` counts the slots that heard a message. With movable objects (transport) also the worst
    differences of the objects' positions and velocities, and ``objects_moved``: the steps after which
    some object had a nonzero velocity (pushed in that step: resets and new tasks start objects at rest)."""
    import torch

    from ..envs.batch import BatchEnv
    from .env import DeviceEnv

    a = BatchEnv(scenario, num_worlds, n_agents, seed=seed, **config)
    b = DeviceEnv(scenario, num_worlds, n_agents, seed=seed, **config)
    out: dict[str, Any] = {"reset_obs": float(np.abs(a.reset() - b.reset().cpu().numpy()).max()),
                           "obs": 0.0, "reward": 0.0, "terminal_obs": 0.0, "episode_return": 0.0, "episode_stats": 0.0,
                           "done_mismatch": 0, "info_mismatch": 0, "length_mismatch": 0,
                           "terminated": 0, "truncated": 0, "steps": steps, "curriculum_mismatch": 0}
    out.update({key: 0 for key in a.info_keys})
    if a.channel is not None:
        out["heard"] = 0   # slots that heard at least one message (the received block's count), summed over steps
    objects = a.scenario.world.objects
    if objects.max_objects:
        from .target import download

        out.update({"opos": 0.0, "ovel": 0.0, "objects_moved": 0})
        opos_b, ovel_b = np.zeros_like(objects.pos), np.zeros_like(objects.vel)
    a.set_shaping_scale(shaping)
    b.set_shaping_scale(shaping)
    rs = np.random.default_rng(seed)
    S, A = a.num_slots, a.act_dim
    for _ in range(steps):
        if heuristic:
            act = np.clip(a.heuristic_actions() + rs.uniform(-push, push, (S, A)), -1, 1).astype(np.float32)
        else:
            act = np.clip(rs.uniform(-1, 1, (S, A)) + push, -1, 1).astype(np.float32)
        if a.tokens is not None:   # discrete messages: random tokens in their columns
            act[:, a.tokens[0]:] = rs.integers(0, a.tokens[1], (S, A - a.tokens[0]))
        o1, r1, te1, tr1, i1 = a.step(act)
        o2, r2, te2, tr2, i2 = b.step(torch.from_numpy(act).to(b.device))
        host = lambda t: t.cpu().numpy()   # noqa: E731
        out["done_mismatch"] += int((te1 != host(te2)).sum() + (tr1 != host(tr2)).sum())
        out["obs"] = max(out["obs"], float(np.abs(o1 - host(o2)).max()))
        out["reward"] = max(out["reward"], float(np.abs(r1 - host(r2)).max()))
        for key in a.info_keys:
            out["info_mismatch"] += int((i1[key] != host(i2[key])).sum())
            out[key] += int(i1[key].sum())
        d = te1 | tr1
        if d.any():
            out["terminal_obs"] = max(out["terminal_obs"], float(np.abs(i1["terminal_obs"][d] - host(i2["terminal_obs"])[d]).max()))
            out["episode_return"] = max(out["episode_return"],
                                        float(np.abs(i1["episode_return"][d] - host(i2["episode_return"])[d]).max()))
            out["length_mismatch"] += int((i1["episode_length"][d] != host(i2["episode_length"])[d]).sum())
            for name in a.stat_names:
                key = "episode_" + name
                out["episode_stats"] = max(out["episode_stats"], float(np.abs(i1[key][d] - host(i2[key])[d]).max()))
        if a.channel is not None:
            out["heard"] += int((o1[:, -1] > 0).sum())
        if objects.max_objects:
            download(b.world.opos, opos_b)
            download(b.world.ovel, ovel_b)
            out["opos"] = max(out["opos"], float(np.abs(objects.pos - opos_b).max()))
            out["ovel"] = max(out["ovel"], float(np.abs(objects.vel - ovel_b).max()))
            out["objects_moved"] += int((objects.vel != 0).any())
        out["terminated"] += int(te1.sum())
        out["truncated"] += int(tr1.sum())
        out["curriculum_mismatch"] += int(a.curriculum.state() != b.curriculum.state())
    out["curriculum"] = a.curriculum.state()
    return out
