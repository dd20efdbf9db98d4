"""Seeing the swarm: a pygame renderer, GIF recording, learning-curve plots and ``entropy play``.

pygame, imageio/Pillow and matplotlib are optional (``pip install entropy-engine[render]``) and are
imported only when something is drawn, written or plotted.
"""
from __future__ import annotations

from .curves import plot_learning_curves, read_metrics
from .episode import EpisodeResult, FunctionPolicy, HeuristicPolicy, Policy, RandomPolicy, as_policy, run_episode
from .gif import read_gif, record_episode, side_by_side, write_gif, write_run_videos
from .renderer import Renderer, agent_color

__all__ = [
    "Renderer", "agent_color", "record_episode", "side_by_side", "write_gif", "read_gif", "write_run_videos",
    "plot_learning_curves", "read_metrics", "Policy", "FunctionPolicy", "HeuristicPolicy", "RandomPolicy",
    "as_policy", "run_episode", "EpisodeResult",
]
