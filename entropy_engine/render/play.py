"""``entropy play MODEL``: watch a trained swarm in a window, or write a GIF of it (headless).

Examples::

    entropy play runs/my-run                  # window; Esc, q or closing the window stops
    entropy play runs/my-run --gif swarm.gif  # no window: frames rendered off-screen
    entropy play --heuristic --n-agents 20 --lidar --trails 30

MODEL is a run folder (its final model) or a model file, loaded with ``entropy_engine.load_policy``;
the scenario is the one the model was trained on (name, agents, walls, episode length, from the
model's stored config or the run's ``config.yaml``), with ``--n-agents`` and ``--seed`` overriding.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


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
    parser.add_argument("--max-steps", type=int, default=None, help="Step limit per episode (default: as trained).")
    parser.add_argument("--lidar", action="store_true", help="Draw the lidar rays.")
    parser.add_argument("--trails", type=int, default=0, metavar="N", help="Draw each robot's last N positions.")
    parser.add_argument("--size", type=int, default=512, help="Image side in pixels (default 512).")
    parser.add_argument("--fps", type=float, default=10.0, help="Frames per second (default 10 = real time).")
    parser.add_argument("--frame-skip", type=int, default=1, metavar="K", help="GIF: keep every K-th step.")
    parser.add_argument("--stochastic", action="store_true", help="Sample actions instead of the mean action.")


def _trained_config(policy: Any, model: str | None) -> dict[str, Any]:
    """The training config stored with the model, else the run folder's ``config.yaml`` (or {})."""
    cfg = getattr(policy, "config", None)
    if cfg is not None and not isinstance(cfg, dict):
        import dataclasses

        cfg = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(vars(cfg))
    if cfg:
        return dict(cfg)
    if model is not None:
        path = Path(model)
        for cand in (path / "config.yaml", path.parent / "config.yaml", path.parent.parent / "config.yaml"):
            if cand.is_file():
                import yaml

                return dict(yaml.safe_load(cand.read_text()) or {})
    return {}


def scenario_settings(trained: dict[str, Any], args: argparse.Namespace) -> tuple[str, int, dict[str, Any]]:
    """(scenario name, n_agents, scenario config) from the training config and the command line."""
    name = args.scenario or trained.get("scenario") or "navigation"
    n_agents = args.n_agents or int(trained.get("n_agents", 10))
    config: dict[str, Any] = dict(trained.get("scenario_config") or trained.get("env_config") or trained.get("env") or {})
    if "n_obstacles" in trained:
        config.setdefault("n_obstacles", trained["n_obstacles"])
    if "max_episode_steps" in trained:
        config.setdefault("max_steps", trained["max_episode_steps"])
    if args.max_steps is not None:
        config["max_steps"] = args.max_steps
    return name, n_agents, config


def _load(args: argparse.Namespace):
    if args.heuristic:
        return None, {}
    if not args.model:
        raise SystemExit("entropy play: give a MODEL (run folder or model file), or --heuristic")
    try:
        from .. import load_policy
    except ImportError:
        try:
            from ..training.policy import load_policy
        except ImportError as exc:
            raise SystemExit(f"entropy play: cannot load models ({exc}); use --heuristic") from exc
    try:
        policy = load_policy(args.model)
    except FileNotFoundError as exc:
        raise SystemExit(f"entropy play: no model at {args.model} ({exc})") from exc
    except ValueError as exc:
        raise SystemExit(f"entropy play: cannot load {args.model}: {exc}") from exc
    return policy, _trained_config(policy, args.model)


def run(args: argparse.Namespace) -> int:
    from ..scenarios import make_scenario
    from .episode import HeuristicPolicy, run_episode

    if args.trails < 0 or args.size < 32 or args.fps <= 0 or args.frame_skip < 1:
        raise SystemExit("entropy play: need --trails >= 0, --size >= 32, --fps > 0 and --frame-skip >= 1")
    for name in ("n_agents", "episodes", "max_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"entropy play: --{name.replace('_', '-')} must be >= 1, got {value}")
    if args.gif:
        _check_gif_path(Path(args.gif))
    policy, trained = _load(args)
    name, n_agents, config = scenario_settings(trained, args)
    scenario = make_scenario(name, 1, n_agents, args.seed, **config)
    if policy is None:
        policy, who = HeuristicPolicy(scenario), "heuristic"
    else:
        who = Path(args.model).name
        obs_dim = getattr(policy, "obs_dim", scenario.obs_dim)
        if obs_dim != scenario.obs_dim:
            raise SystemExit(f"entropy play: the model expects {obs_dim} observations, "
                             f"the {name} scenario gives {scenario.obs_dim}")
    episodes = args.episodes if args.episodes is not None else (1 if args.gif else 5)
    deterministic = not args.stochastic
    print(f"{name}: {n_agents} agents, arena {scenario.world.arena:.1f} m, policy: {who}")
    if args.gif:
        return _write_gif(args, scenario, policy, episodes, deterministic, who)
    return _window(args, scenario, policy, episodes, deterministic, who, run_episode)


def _write_gif(args, scenario, policy, episodes: int, deterministic: bool, who: str) -> int:
    from .gif import record_episode, write_gif

    frames = []
    for ep in range(episodes):
        ep_frames, result = record_episode(
            scenario, policy, steps=args.max_steps, size=args.size, show_lidar=args.lidar, trails=args.trails,
            frame_skip=args.frame_skip, deterministic=deterministic, caption=f"{who} ep {ep + 1}",
            return_result=True)
        frames.extend(ep_frames)
        print(f"episode {ep + 1}: {result.summary()}")
    path = write_gif(args.gif, frames, fps=args.fps)
    if not Path(path).is_file():          # never claim a GIF that is not there
        raise SystemExit(f"entropy play: the GIF was not written to {path}")
    print(f"wrote {path} ({len(frames)} frames)")
    return 0


def _window(args, scenario, policy, episodes: int, deterministic: bool, who: str, run_episode) -> int:
    from .renderer import Renderer

    if os.environ.get("SDL_VIDEODRIVER") == "dummy":
        print("note: SDL_VIDEODRIVER=dummy, the window is invisible (use --gif PATH to see the swarm)")
    renderer = Renderer(scenario, render_mode="human", size=args.size, show_lidar=args.lidar,
                        trails=args.trails, fps=args.fps)
    try:
        for ep in range(episodes):
            def on_step(t, res, ep=ep):
                if t == 0:
                    renderer.clear_trails()
                renderer.render(text=f"{who}  ep {ep + 1}  step {t}  goals {res.reached}/{res.n_agents}")
                return renderer.is_open

            result = run_episode(scenario, policy, max_steps=args.max_steps, deterministic=deterministic,
                                 on_step=on_step)
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
