"""``entropy eval``: decentralised evaluation of a trained policy.

Every agent acts from its own observation and its own LSTM state (rows of one batched call are
independent). Episodes follow PettingZoo semantics (``BatchEnv(on_goal="deactivate")``): an agent
that reaches its goal leaves the world, a world's episode ends when all agents have left or at
``max_steps``. Reported over ``episodes`` world-episodes (each with ``n_agents`` agent-episodes):

- ``success_rate``: fraction of agents that reached their goal;
- ``collisions_per_agent``: collisions (contact onsets) per agent per episode;
- ``mean_episode_length``: mean steps an agent spent in its episode (until goal or time limit).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.batch import BatchEnv


def evaluate(policy: Any, episodes: int = 100, n_agents: int | None = None, num_worlds: int = 10,
             seed: int = 12345, deterministic: bool = True, scenario: str | None = None,
             **env_config: Any) -> dict[str, float]:
    """Run ``episodes`` world-episodes of ``policy`` (a ``RecurrentPolicy``-like object)."""
    cfg = getattr(policy, "config", {}) or {}
    n_agents = int(n_agents or cfg.get("n_agents", 10))
    scenario = scenario or cfg.get("scenario", "navigation")
    env_kw = dict(cfg.get("env") or {})        # the run's extra scenario keys (TrainConfig.env)
    env_kw.update(n_obstacles=cfg.get("n_obstacles", 4), max_steps=cfg.get("max_episode_steps", 500))
    env_kw.update({k: cfg[k] for k in ("backend", "pymunk_lidar") if k in cfg})
    env_kw.update(env_config)
    W = max(1, min(num_worlds, episodes))
    quota = np.full(W, episodes // W)
    quota[: episodes % W] += 1
    env = BatchEnv(scenario, W, n_agents, seed=seed, on_goal="deactivate", **env_kw)
    obs = env.reset()
    state = policy.initial_state(env.num_slots)
    starts = np.ones(env.num_slots, bool)
    done_count = np.zeros(W, np.int64)
    success, collisions, lengths = [], [], []
    world_of_slot = np.repeat(np.arange(W), n_agents)
    while (done_count < quota).any():
        actions, state = policy.act(obs, state, deterministic=deterministic, episode_start=starts)
        obs, _, terminated, truncated, info = env.step(actions)
        done = terminated | truncated
        counted = done & (done_count[world_of_slot] < quota[world_of_slot])
        if counted.any():
            success.append(info["episode_success"][counted].astype(np.float64))
            collisions.append(info["episode_collisions"][counted].astype(np.float64))
            lengths.append(info["episode_length"][counted].astype(np.float64))
        world_done = info["world_done"]
        done_count += world_done
        starts = np.repeat(world_done, n_agents)
    s, c, l = (np.concatenate(x) for x in (success, collisions, lengths))
    return {"success_rate": float(s.mean()), "collisions_per_agent": float(c.mean()),
            "mean_episode_length": float(l.mean()), "episodes": int(episodes), "agent_episodes": int(len(s)),
            "n_agents": n_agents, "deterministic": bool(deterministic), "seed": int(seed)}


class HeuristicPolicy:
    """The scenario's scripted policy behind the RecurrentPolicy interface (a reference point)."""

    def __init__(self, n_rays: int = 32, lidar_range: float = 3.0):
        from ..scenarios.navigation import navigation_heuristic

        self._fn = lambda obs: navigation_heuristic(obs, n_rays, lidar_range)
        self.config: dict = {}

    def initial_state(self, n: int) -> np.ndarray:
        return np.zeros((0, n), np.float32)

    def act(self, obs, state, deterministic: bool = True, episode_start=None):
        return self._fn(obs), state


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="Run folder (its final model) or model file (.pt, or SB3 .zip); "
                                     "'heuristic' evaluates the scripted policy.")
    parser.add_argument("--episodes", type=int, default=100, help="World-episodes to run (default 100).")
    parser.add_argument("--json", dest="json_path", default=None, help="Write the results to this JSON file.")
    parser.add_argument("--n-agents", type=int, default=None, help="Agents per world (default: the run's).")
    parser.add_argument("--n-obstacles", type=int, default=None, help="Interior walls (default: the run's).")
    parser.add_argument("--num-worlds", type=int, default=10, help="Worlds run side by side.")
    parser.add_argument("--seed", type=int, default=12345, help="Evaluation seed.")
    parser.add_argument("--stochastic", action="store_true", help="Sample actions instead of the mean.")


def run(args: argparse.Namespace) -> int:
    for name in ("episodes", "n_agents", "num_worlds"):    # 0 is refused, never "the default"
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"entropy eval: --{name.replace('_', '-')} must be >= 1, got {value}")
    if args.path != "heuristic" and not Path(args.path).exists():
        raise SystemExit(f"entropy eval: {args.path}: no such run folder or model file")
    if args.path == "heuristic":
        policy: Any = HeuristicPolicy()
    else:
        from .policy import load_policy

        policy = load_policy(args.path)
    extra = {} if args.n_obstacles is None else {"n_obstacles": args.n_obstacles}
    res = evaluate(policy, args.episodes, args.n_agents, args.num_worlds, args.seed,
                   deterministic=not args.stochastic, **extra)
    res["model"] = str(args.path)
    for k in ("success_rate", "collisions_per_agent", "mean_episode_length", "agent_episodes"):
        print(f"{k:>22}: {res[k]:.4g}" if isinstance(res[k], float) else f"{k:>22}: {res[k]}")
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(res, indent=2) + "\n")
    return 0
