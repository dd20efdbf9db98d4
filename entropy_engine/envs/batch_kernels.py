"""Per-step episode bookkeeping of ``BatchEnv`` in one compiled pass over the slots."""
from __future__ import annotations

from numba import njit


@njit(cache=True)
def bookkeep(active, reward, terminated, stats, t, max_steps, n_agents,
             ep_return, ep_length, ep_stats, out_terminated, out_truncated, world_trunc, world_done):
    """Update running episode stats and the done flags of every slot; returns the number of done slots.

    active [E, N] (the learners' flags; a view that may skip scripted robots), reward/terminated [S] and stats [K, S] (per-step values of the scenario's episode
    statistics) describe the step just taken; t [E] counts steps per world (already incremented).
    Only live agents count: their return, length and statistics accumulate, they terminate by the
    scenario's rule, and they are truncated when their world reaches ``max_steps`` unless they
    terminated in the same step.
    """
    n_worlds = t.shape[0]
    n_stats = stats.shape[0]
    for w in range(n_worlds):
        world_trunc[w] = t[w] >= max_steps
        world_done[w] = world_trunc[w]
    n_done = 0
    for k in range(reward.shape[0]):
        w = k // n_agents
        alive = active[w, k - w * n_agents]
        term = terminated[k] and alive
        if alive:
            ep_return[k] += reward[k]
            ep_length[k] += 1
            for j in range(n_stats):
                ep_stats[j, k] += stats[j, k]
        out_terminated[k] = term
        out_truncated[k] = world_trunc[w] and alive and not term
        if term or out_truncated[k]:
            n_done += 1
    return n_done
