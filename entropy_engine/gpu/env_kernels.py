"""CUDA kernels of the device env's episode bookkeeping (``envs.batch`` semantics, ``on_goal="respawn"``,
``autoreset=True``): per-world step counters and per-slot episode statistics, all on the GPU."""
from __future__ import annotations

from .target import cuda

cu = cuda()


@cu.jit
def advance_time(t, max_steps, world_done, refresh):
    """t[w] += 1; a world that reaches ``max_steps`` is done (truncated, reset in this step: t = 0)."""
    w = cu.grid(1)
    if w < t.shape[0]:
        t[w] += 1
        done = t[w] >= max_steps
        world_done[w] = done
        refresh[w] = done
        if done:
            t[w] = 0


@cu.jit
def bookkeep(world_done, active, reward, ended, stats, ep_return, ep_length, ep_stats, terminated, truncated, obs,
             terminal_obs, out_return, out_length, out_stats, respawn):
    """One slot (w, i) per thread, as ``envs.batch_kernels.bookkeep`` and ``BatchEnv.step``: running
    episode statistics of live agents, done flags, the terminal observation and the finished episode's
    statistics of done slots, cleared statistics for them and for every slot of a world that ends,
    and which agents respawn (terminated in a world that goes on). ``ended`` [E, N]: the scenario's
    termination rule this step. ``active`` is the world's [E, T] (T >= N: scripted robots after the
    learners); only its first N columns, the learners', are read."""
    k = cu.grid(1)
    n = reward.shape[1]
    if k >= reward.shape[0] * n:
        return
    w = k // n
    i = k % n
    alive = active[w, i]
    term = ended[w, i] and alive
    if alive:
        ep_return[w, i] += reward[w, i]
        ep_length[w, i] += 1
        for j in range(stats.shape[0]):
            ep_stats[j, w, i] += stats[j, w, i]
    trunc = world_done[w] and alive and not term
    terminated[w, i] = term
    truncated[w, i] = trunc
    if term or trunc:
        for d in range(obs.shape[2]):
            terminal_obs[w, i, d] = obs[w, i, d]
        out_return[w, i] = ep_return[w, i]
        out_length[w, i] = ep_length[w, i]
        for j in range(stats.shape[0]):
            out_stats[j, w, i] = ep_stats[j, w, i]
    if term or trunc or world_done[w]:
        ep_return[w, i] = 0.0
        ep_length[w, i] = 0
        for j in range(stats.shape[0]):
            ep_stats[j, w, i] = 0.0
    respawn[w, i] = term and not world_done[w]


@cu.jit
def copy_flags(src, dst):
    """dst[w, i] = src[w, i] (an info value kept before resets and respawns change the source)."""
    k = cu.grid(1)
    n = src.shape[1]
    if k < src.shape[0] * n:
        dst[k // n, k % n] = src[k // n, k % n]
