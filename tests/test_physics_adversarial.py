"""The physics holds when pushed: adversarial policies on every layout the config accepts.

Every robot drives at full power into the nearest wall, the nearest arena corner, the centre, the
nearest wall end, its nearest neighbour (or at random), and after every step we check the
guarantees the README states: finite state, no robot inside a wall, none outside the arena and
robot-robot overlap within 25 % of a radius.
"""
import numpy as np
import pytest

from entropy_engine import BatchEnv

POLICIES = ("walls", "corners", "centre", "wall_ends", "nearest", "random")
WALL_TOL = 1e-4          # metres a robot may be inside a wall (float32 positions)
OVERLAP_FRACTION = 0.25  # of a radius


def _closest_on_walls(p, walls):
    """Closest points [N, W, 2] on every wall [W, 4] to every point p [N, 2]."""
    a = walls[None, :, :2]
    e = walls[None, :, 2:] - walls[None, :, :2]
    den = np.maximum((e * e).sum(-1), 1e-12)
    u = np.clip(((p[:, None] - a) * e).sum(-1) / den, 0.0, 1.0)
    return a + u[..., None] * e


def _target(policy, e, world):
    """Target points [N, 2] of world e's robots under ``policy``."""
    pos = world.pos[e].astype(np.float64)
    L = world.arena
    if policy == "walls":
        walls = world.walls[e, : world.n_walls[e]].astype(np.float64)
        q = _closest_on_walls(pos, walls)
        k = np.argmin(((q - pos[:, None]) ** 2).sum(-1), axis=1)
        return q[np.arange(len(pos)), k]
    if policy == "corners":
        return np.where(pos < L / 2, 0.0, L)
    if policy == "centre":
        return np.full_like(pos, L / 2)
    if policy == "wall_ends":
        walls = world.walls[e, 4: world.n_walls[e]].astype(np.float64)
        if len(walls) == 0:
            return np.where(pos < L / 2, 0.0, L)
        ends = np.concatenate([walls[:, :2], walls[:, 2:]])
        k = np.argmin(((pos[:, None] - ends[None]) ** 2).sum(-1), axis=1)
        return ends[k]
    if policy == "nearest":
        act = world.active[e]
        d = ((pos[:, None] - pos[None]) ** 2).sum(-1)
        d[:, ~act] = np.inf
        np.fill_diagonal(d, np.inf)
        return pos[np.argmin(d, axis=1)]
    raise ValueError(policy)


def adversarial_actions(policy, world, rng):
    """Wheel powers [E, N, 2]: turn towards the policy's target and drive at full power."""
    E, N = world.num_worlds, world.n_agents
    if policy == "random":
        return rng.uniform(-1.0, 1.0, (E, N, 2)).astype(np.float32)
    act = np.empty((E, N, 2), np.float32)
    for e in range(E):
        d = _target(policy, e, world) - world.pos[e]
        err = (np.arctan2(d[:, 1], d[:, 0]) - world.theta[e] + np.pi) % (2 * np.pi) - np.pi
        turn = np.clip(2.0 * err, -1.0, 1.0)
        act[e, :, 0] = np.clip(1.0 - turn, -1.0, 1.0)
        act[e, :, 1] = np.clip(1.0 + turn, -1.0, 1.0)
    return act


def physics_violations(world):
    """Worst (wall penetration, robot-robot overlap, distance outside [r, L - r]) in metres, and
    whether every state array is finite."""
    r = world.radius
    finite = all(np.isfinite(a).all() for a in (world.pos, world.vel, world.theta, world.omega))
    wall = overlap = 0.0
    pos_all = world.pos.astype(np.float64)
    outside = max(float((r - pos_all).max()), float((pos_all - (world.arena - r)).max()), 0.0)
    for e in range(world.num_worlds):
        p = pos_all[e][world.active[e]]
        if len(p) == 0:
            continue
        walls = world.walls[e, : world.n_walls[e]].astype(np.float64)
        q = _closest_on_walls(p, walls)
        wall = max(wall, r - float(np.sqrt(((q - p[:, None]) ** 2).sum(-1)).min()))
        if len(p) > 1:
            d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1)) + np.eye(len(p)) * 1e9
            overlap = max(overlap, 2 * r - float(d.min()))
    return max(wall, 0.0), max(overlap, 0.0), outside, finite


def run_policy(policy, steps, seed=0, num_worlds=4, n_agents=20, **config):
    """Worst violations over ``steps`` steps of ``policy`` (worlds reset at max_steps)."""
    env = BatchEnv(num_worlds=num_worlds, n_agents=n_agents, seed=seed, **config)
    world = env.scenario.world
    rng = np.random.default_rng(seed)
    env.reset()
    worst = np.zeros(3)
    for _ in range(steps):
        obs, rew, *_ = env.step(adversarial_actions(policy, world, rng).reshape(-1, 2))
        wall, overlap, outside, finite = physics_violations(world)
        assert finite and np.isfinite(obs).all() and np.isfinite(rew).all(), f"{policy}: non-finite state"
        worst = np.maximum(worst, (wall, overlap, outside))
    return worst


# Layouts at the extremes the config accepts (see NavigationConfig and README "The physics").
LAYOUTS = {
    "default": {},
    "crowded": dict(arena_size=10.0, n_agents=50, n_obstacles=4),
    "packed": dict(arena_size=10.0, n_agents=90, n_obstacles=0),
    "gap_min": dict(obstacle_gap=0.0, n_obstacles=6, arena_size=12.0),
    "margin_min": dict(obstacle_margin=0.0, n_obstacles=6, arena_size=12.0),
    "both_min_long": dict(obstacle_gap=0.0, obstacle_margin=0.0, n_obstacles=8, obstacle_max_length=5.0,
                          arena_size=14.0),
    "short_walls": dict(obstacle_gap=0.0, obstacle_margin=0.0, n_obstacles=12, obstacle_min_length=0.01,
                        obstacle_max_length=0.3, arena_size=10.0),
    "big_robots": dict(agent_radius=0.5, n_agents=12, arena_size=16.0, n_obstacles=2, obstacle_gap=0.0,
                       obstacle_margin=0.0),
}


def _check(worst, r, label):
    wall, overlap, outside = worst
    assert wall <= WALL_TOL, f"{label}: a robot is inside a wall by {wall * 1000:.2f} mm"
    assert outside <= 1e-5, f"{label}: a robot is outside the arena by {outside * 1000:.2f} mm"
    assert overlap <= OVERLAP_FRACTION * r, f"{label}: robot-robot overlap {overlap / r:.0%} of a radius"


@pytest.mark.parametrize("policy", POLICIES)
def test_adversarial_policies_hold_fast(policy):
    """A few seconds: every policy on a crowded layout with walls at their closest."""
    layout = dict(obstacle_gap=0.0, obstacle_margin=0.0, n_obstacles=4, arena_size=10.0, max_steps=75)
    worst = run_policy(policy, steps=150, seed=1, num_worlds=4, n_agents=24, **layout)
    _check(worst, 0.2, policy)


@pytest.mark.slow
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_adversarial_policies_hold_on_every_layout(layout):
    cfg = dict(num_worlds=6, n_agents=20, max_steps=100)
    cfg.update(LAYOUTS[layout])
    for k, policy in enumerate(POLICIES):
        worst = run_policy(policy, steps=500, seed=10 + k, **cfg)
        _check(worst, cfg.get("agent_radius", 0.2), f"{layout}/{policy}")


def _pile(n_agents, steps_after=60):
    """Worst overlap (fraction of a radius) of one world of ``n_agents`` robots all driving into its
    centre, over ``steps_after`` steps once they have had time to get there."""
    env = BatchEnv(num_worlds=1, n_agents=n_agents, seed=0, n_obstacles=0, max_steps=10 ** 6)
    env.reset()
    world = env.scenario.world
    rng = np.random.default_rng(0)
    worst = 0.0
    for t in range(int(world.arena / 0.15 * 0.9) + steps_after):
        world.step(adversarial_actions("centre", world, rng))
        if t >= int(world.arena / 0.15 * 0.9):
            worst = max(worst, physics_violations(world)[1] / world.radius)
    return worst


if __name__ == "__main__":  # the numbers in README "The physics": python tests/test_physics_adversarial.py
    total, overall = 0, np.zeros(3)
    for name in sorted(LAYOUTS):
        cfg = dict(num_worlds=6, n_agents=20, max_steps=100)
        cfg.update(LAYOUTS[name])
        r = cfg.get("agent_radius", 0.2)
        for k, policy in enumerate(POLICIES):  # as in the slow test
            w = run_policy(policy, steps=500, seed=10 + k, **cfg)
            print(f"{name:14s} {policy:10s} wall {w[0] * 1000:.3f} mm  overlap {w[1] / r:6.1%} of r  "
                  f"outside {w[2] * 1000:.3f} mm", flush=True)
            overall = np.maximum(overall, (w[0], w[1] / r, w[2]))
            total += 500 * cfg["num_worlds"] * cfg["n_agents"]
    print(f"worst of {total:,} agent-steps: wall {overall[0] * 1000:.3f} mm, overlap {overall[1]:.1%} of r, "
          f"outside {overall[2] * 1000:.3f} mm")
    for n in (300, 1000, 3000):
        print(f"pile of {n} robots driving into the centre: overlap {_pile(n):.1%} of r", flush=True)
