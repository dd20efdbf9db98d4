"""``entropy eval``: decentralised evaluation of a trained policy.

Every agent acts from its own observation and its own recurrent state (rows of one batched call
are independent). Episodes follow PettingZoo semantics (``BatchEnv(on_goal="deactivate")``): an
agent whose episode ends (navigation: it reached its goal) leaves the world, a world's episode
ends when all agents have left or at ``max_steps``. Reported over ``episodes`` world-episodes
(each with ``n_agents`` agent-episodes): the scenario's own metrics (navigation: ``success_rate``,
``collisions_per_agent``) and ``mean_episode_length`` (steps an agent spent in its episode).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.batch import BatchEnv
from ..envs.metrics import EpisodeMetrics
from .config import TrainConfig, stored_config


def evaluate(policy: Any, episodes: int = 100, num_worlds: int = 10, seed: int = 12345,
             deterministic: bool = True, cfg: TrainConfig | None = None) -> dict[str, Any]:
    """Run ``episodes`` world-episodes of ``policy`` (a ``RecurrentPolicy``-like object, or the string
    ``"heuristic"`` for the scenario's scripted policy) on the scenario of ``cfg`` (default: the
    policy's own stored config, at full difficulty: a staged curriculum's last stage)."""
    if cfg is None:
        cfg = full_difficulty(getattr(policy, "config", None))
    W = max(1, min(num_worlds, episodes))
    quota = np.full(W, episodes // W)
    quota[: episodes % W] += 1
    n_agents = cfg.n_agents
    env = BatchEnv(cfg.scenario, W, n_agents, seed=seed, on_goal="deactivate", **cfg.env_kwargs)
    if isinstance(policy, str) and policy == "heuristic":
        from ..policies import HeuristicPolicy

        policy = HeuristicPolicy(env)
    obs = env.reset()
    state = policy.initial_state(env.num_slots)
    starts = np.ones(env.num_slots, bool)
    done_count = np.zeros(W, np.int64)
    collected = EpisodeMetrics(env.metrics)
    world_of_slot = np.repeat(np.arange(W), n_agents)
    while (done_count < quota).any():
        actions, state = policy.act(obs, state, deterministic=deterministic, episode_start=starts)
        obs, _, terminated, truncated, info = env.step(actions)
        done = terminated | truncated
        counted = done & (done_count[world_of_slot] < quota[world_of_slot])
        if counted.any():
            collected.add(info, counted)
        world_done = info["world_done"]
        done_count += world_done
        starts = np.repeat(world_done, n_agents)
    res: dict[str, Any] = {m: v for m, v in collected.means().items() if m != "mean_return"}
    res.update(episodes=int(episodes), agent_episodes=collected.count, scenario=cfg.scenario, n_agents=n_agents,
               backend=cfg.backend,
               deterministic=bool(deterministic), seed=int(seed))
    return res


def full_difficulty(stored: Any, env: dict[str, Any] | None = None, **overrides: Any) -> TrainConfig:
    """A run's stored config for evaluation: a staged curriculum's last stage's settings on top of its
    ``env`` table (levels: the ``env`` table is the full task), then ``env`` (e.g. ``--env``) and the
    other ``overrides`` (``stored_config``)."""
    from .curriculum import hardest_env

    base = stored_config(stored)
    scenario = overrides.get("scenario")
    hardest = hardest_env(base.curriculum_config) if scenario in (None, base.scenario) else {}
    table = {**hardest, **(env or {})}
    # evaluation runs fixed settings: the curriculum is not checked against them (nor run)
    return stored_config(stored, env=table or None, curriculum={}, **overrides)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="Run folder (its final model) or model file (.pt, or SB3 .zip); "
                                     "'heuristic' evaluates the scenario's scripted policy.")
    parser.add_argument("--episodes", type=int, default=100, help="World-episodes to run (default 100).")
    parser.add_argument("--json", dest="json_path", default=None, help="Write the results to this JSON file.")
    parser.add_argument("--n-agents", type=int, default=None, help="Agents per world (default: the run's).")
    parser.add_argument("--scenario", default=None, help="Scenario (default: the run's; 'heuristic': navigation).")
    parser.add_argument("--preset", default=None, help="With 'heuristic': evaluate on this preset's settings "
                                                       "(scenario, robots, episode length, env table).")
    parser.add_argument("--env", dest="env", action="append", default=None, metavar="KEY=VALUE",
                        help="A scenario config key over the run's (repeatable), e.g. --env n_obstacles=6. A run "
                             "with staged curriculum is evaluated on its last stage unless these say otherwise.")
    parser.add_argument("--num-worlds", type=int, default=10, help="Worlds run side by side.")
    parser.add_argument("--backend", default=None, help="Physics backend to evaluate on (default: the run's; a run "
                                                        "trained on 'cuda' is replayed on 'numba' where there is no GPU).")
    parser.add_argument("--seed", type=int, default=12345, help="Evaluation seed.")
    parser.add_argument("--stochastic", action="store_true", help="Sample actions instead of the mean.")
    parser.add_argument("--trust-pickle", dest="trust_pickle", action="store_true",
                        help="SB3 .zip: load it with SB3's own loader, which unpickles the file and can run code "
                             "from it (default: its weights only). Only for files you trust.")


def run(args: argparse.Namespace) -> int:
    from .command import parse_env_options

    for name in ("episodes", "n_agents", "num_worlds"):    # 0 is refused, never "the default"
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"entropy eval: --{name.replace('_', '-')} must be >= 1, got {value}")
    if args.path != "heuristic" and not Path(args.path).exists():
        raise SystemExit(f"entropy eval: {args.path}: no such run folder or model file")

    if args.preset is not None and args.path != "heuristic":
        raise SystemExit("entropy eval: --preset is for 'heuristic'; a run or model file carries its own settings")
    if args.path == "heuristic":
        policy: Any = "heuristic"
        stored = None
        if args.preset is not None:
            from .config import PRESETS

            if args.preset not in PRESETS:
                raise SystemExit(f"entropy eval: unknown preset {args.preset!r}; available: {sorted(PRESETS)}")
            stored = dict(PRESETS[args.preset])
    else:
        import sys

        from .policy import load_policy
        from .safe_files import ModelFileError

        try:
            policy = load_policy(args.path, trust_pickle=args.trust_pickle,
                                 warn=lambda m: print(f"entropy eval: note: {m}", file=sys.stderr))
        except ModelFileError as exc:
            print(f"entropy eval: error: {exc}", file=sys.stderr)
            return 2
        stored = policy.config
    cfg = full_difficulty(stored, parse_env_options(args.env) if args.env else None, scenario=args.scenario,
                          n_agents=args.n_agents, backend=args.backend)
    res = evaluate(policy, args.episodes, args.num_worlds, args.seed, deterministic=not args.stochastic, cfg=cfg)
    res["model"] = str(args.path)
    shown = [k for k in res if isinstance(res[k], float)] + ["agent_episodes"]
    for k in shown:
        print(f"{k:>22}: {res[k]:.4g}" if isinstance(res[k], float) else f"{k:>22}: {res[k]}")
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(res, indent=2) + "\n")
    return 0
