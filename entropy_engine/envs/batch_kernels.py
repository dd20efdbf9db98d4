"""Per-step episode bookkeeping of ``BatchEnv`` in one compiled pass over the slots."""
from __future__ import annotations

from numba import njit


@njit(cache=True)
def bookkeep(active, reward, reached, contact, t, max_steps, n_agents, deactivate,
             ep_return, ep_length, ep_collisions, prev_contact,
             out_reached, out_collided, terminated, truncated, world_trunc, world_done):
    """Update running episode stats and the done flags of every slot; returns the number of done slots.

    active/reward/reached/contact [S] describe the step just taken; t [E] counts steps per world
    (already incremented). A collision counts once per contact onset. With ``deactivate``, agents
    that reached their goal leave (active[k] = False) and a world is done once nobody is left.
    """
    n_worlds = t.shape[0]
    for w in range(n_worlds):
        world_trunc[w] = t[w] >= max_steps
        world_done[w] = world_trunc[w]
    n_done = 0
    for k in range(active.shape[0]):
        w = k // n_agents
        alive = active[k]
        hit = contact[k] and alive
        out_reached[k] = reached[k]
        out_collided[k] = hit
        if alive:
            ep_return[k] += reward[k]
            ep_length[k] += 1
            if hit and not prev_contact[k]:
                ep_collisions[k] += 1
        prev_contact[k] = hit
        terminated[k] = reached[k]
        truncated[k] = world_trunc[w] and alive and not reached[k]
        if terminated[k] or truncated[k]:
            n_done += 1
        if deactivate and reached[k]:
            active[k] = False
    if deactivate:
        for w in range(n_worlds):
            if not world_done[w]:
                anyone = False
                for i in range(n_agents):
                    if active[w * n_agents + i]:
                        anyone = True
                        break
                world_done[w] = not anyone
    return n_done
