"""``entropy play MODEL``: watch a trained swarm in a window, or write a GIF of it (headless).

Examples::

    entropy play runs/my-run                  # window; Esc, q or closing the window stops
    entropy play runs/my-run --gif swarm.gif  # no window: frames rendered off-screen
    entropy play --heuristic --n-agents 20 --lidar --trails 30
    entropy play runs/talking-run --gif radio.gif --comm   # who hears whom, and the messages

MODEL is a run folder (its final model) or a model file, loaded with ``entropy_engine.load_policy``;
the scenario is the one the model was trained on (its stored config, or the run's ``config.yaml``,
through ``TrainConfig.env_kwargs`` as in training), with ``--scenario``, ``--n-agents``,
``--max-steps`` and ``--env KEY=VALUE`` overriding.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="Run folder or model file (.pt, or an SB3 .zip).")
    parser.add_argument("--heuristic", action="store_true",
                        help="Drive the swarm with the scenario's scripted policy instead (no MODEL needed).")
    parser.add_argument("--gif", metavar="PATH", help="Write a GIF to PATH instead of opening a window (headless).")
    parser.add_argument("--episodes", type=int, default=None,
                        help="Episodes to play (default: 1 with --gif, 5 in a window).")
    parser.add_argument("--n-agents", type=int, default=None, help="Agents (default: as trained, or 10).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the layouts (default 0).")
    parser.add_argument("--scenario", default=None, help="Scenario name (default: as trained, or navigation).")
    parser.add_argument("--env", dest="env", action="append", default=None, metavar="KEY=VALUE",
                        help="A scenario config key over the trained one (repeatable), e.g. --env n_obstacles=6.")
    parser.add_argument("--max-steps", type=int, default=None, help="Step limit per episode (default: as trained).")
    parser.add_argument("--lidar", action="store_true", help="Draw the lidar rays.")
    parser.add_argument("--comm", action="store_true",
                        help="Show the radio: lines between robots that can hear each other, and each robot's "
                             "last message as the colour of a dot at its centre (needs comm_dim > 0).")
    parser.add_argument("--trails", type=int, default=0, metavar="N", help="Draw each robot's last N positions.")
    parser.add_argument("--size", type=int, default=512, help="Image side in pixels (default 512).")
    parser.add_argument("--fps", type=float, default=10.0, help="Frames per second (default 10 = real time).")
    parser.add_argument("--frame-skip", type=int, default=1, metavar="K", help="GIF: keep every K-th step.")
    parser.add_argument("--stochastic", action="store_true", help="Sample actions instead of the mean action.")
    parser.add_argument("--trust-pickle", dest="trust_pickle", action="store_true",
                        help="SB3 .zip: load it with SB3's own loader, which unpickles the file and can run code "
                             "from it (default: its weights only). Only for files you trust.")


def _load(args: argparse.Namespace):
    if args.heuristic:
        return None, None
    if not args.model:
        raise SystemExit("entropy play: give a MODEL (run folder or model file), or --heuristic")
    try:
        from ..training.policy import load_policy
    except ImportError as exc:
        raise SystemExit(f"entropy play: cannot load models ({exc}); use --heuristic") from exc
    try:
        policy = load_policy(args.model, trust_pickle=getattr(args, "trust_pickle", False),
                             warn=lambda m: print(f"entropy play: note: {m}", file=sys.stderr))
    except FileNotFoundError as exc:
        raise SystemExit(f"entropy play: no model at {args.model} ({exc})") from exc
    except ValueError as exc:
        raise SystemExit(f"entropy play: cannot load {args.model}: {exc}") from exc
    return policy, policy.config


def run(args: argparse.Namespace) -> int:
    from ..policies import HeuristicPolicy
    from ..training.command import parse_env_options
    from ..training.config import stored_config
    from .episode import episode_env, run_episode

    if args.trails < 0 or args.size < 32 or args.fps <= 0 or args.frame_skip < 1:
        raise SystemExit("entropy play: need --trails >= 0, --size >= 32, --fps > 0 and --frame-skip >= 1")
    for name in ("n_agents", "episodes", "max_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"entropy play: --{name.replace('_', '-')} must be >= 1, got {value}")
    if args.gif:
        _check_gif_path(Path(args.gif))
    policy, trained = _load(args)
    cfg = stored_config(trained, scenario=args.scenario, n_agents=args.n_agents, max_episode_steps=args.max_steps,
                        env=parse_env_options(args.env) if args.env else None)
    env = episode_env(cfg.scenario, cfg.n_agents, args.seed, **cfg.env_kwargs)
    if getattr(args, "comm", False) and env.channel is None:
        raise SystemExit("entropy play: --comm shows the communication channel, and this run has none "
                         "(comm_dim = 0); add --env comm_dim=N to switch one on")
    if policy is None:
        policy, who = HeuristicPolicy(env), "heuristic"
    else:
        who = Path(args.model).name
        obs_dim = getattr(policy, "obs_dim", env.obs_dim)
        if obs_dim != env.obs_dim:
            raise SystemExit(f"entropy play: the model expects {obs_dim} observations, "
                             f"the {cfg.scenario} scenario gives {env.obs_dim}")
    episodes = args.episodes if args.episodes is not None else (1 if args.gif else 5)
    deterministic = not args.stochastic
    print(f"{cfg.scenario}: {cfg.n_agents} agents, arena {env.scenario.world.arena:.1f} m, policy: {who}")
    if args.gif:
        return _write_gif(args, env, policy, episodes, deterministic, who)
    return _window(args, env, policy, episodes, deterministic, who, run_episode)


def _write_gif(args, env, policy, episodes: int, deterministic: bool, who: str) -> int:
    from .gif import record_episode, write_gif

    frames = []
    for ep in range(episodes):
        ep_frames, result = record_episode(
            env, policy, size=args.size, show_lidar=args.lidar, trails=args.trails,
            show_comm=getattr(args, "comm", False),
            frame_skip=args.frame_skip, deterministic=deterministic, caption=f"{who} ep {ep + 1}",
            return_result=True)
        frames.extend(ep_frames)
        print(f"episode {ep + 1}: {result.summary()}")
    path = write_gif(args.gif, frames, fps=args.fps)
    if not Path(path).is_file():          # never claim a GIF that is not there
        raise SystemExit(f"entropy play: the GIF was not written to {path}")
    print(f"wrote {path} ({len(frames)} frames)")
    return 0


def _window(args, env, policy, episodes: int, deterministic: bool, who: str, run_episode) -> int:
    from .renderer import Renderer

    if os.environ.get("SDL_VIDEODRIVER") == "dummy":
        print("note: SDL_VIDEODRIVER=dummy, the window is invisible (use --gif PATH to see the swarm)")
    renderer = Renderer(env, render_mode="human", size=args.size, show_lidar=args.lidar,
                        trails=args.trails, fps=args.fps, show_comm=getattr(args, "comm", False))
    try:
        for ep in range(episodes):
            def on_step(t, res, ep=ep):
                if t == 0:
                    renderer.clear_trails()
                renderer.render(text=f"{who}  ep {ep + 1}  step {t}  done {res.ended}/{res.n_agents}")
                return renderer.is_open

            result = run_episode(env, policy, deterministic=deterministic, on_step=on_step)
            print(f"episode {ep + 1}: {result.summary()}")
            if not renderer.is_open:
                break
    except RuntimeError as exc:  # no display
        raise SystemExit(f"entropy play: {exc}") from exc
    finally:
        renderer.close()
    return 0


def _check_gif_path(path: Path) -> None:
    """Refuse a ``--gif`` path that cannot be written (a folder, or under a file) before any work;
    missing parent folders are created by ``write_gif``."""
    if path.is_dir():
        raise SystemExit(f"entropy play: --gif {path} is a folder; give a file name such as {path / 'swarm.gif'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SystemExit(f"entropy play: --gif {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise SystemExit(f"entropy play: --gif {path}: cannot write into {parent}")
            break
