"""Means over finished agent-episodes: return, length and the scenario's own metrics.

A scenario declares ``metrics = {metric: (stat, meaning)}`` (``scenarios.base``); the episode engine
reports each finished agent-episode's statistics as ``info["episode_<stat>"]``. This collector
averages them, for the trainers (logged as ``env/<metric>``) and for ``entropy eval``.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np


class EpisodeMetrics:
    """Collects finished agent-episodes until ``pop()``."""

    def __init__(self, metrics: Mapping[str, tuple[str, str]]):
        self.metrics = dict(metrics)
        self.clear()

    def clear(self) -> None:
        self.returns: list[np.ndarray] = []
        self.lengths: list[np.ndarray] = []
        self.values: dict[str, list[np.ndarray]] = {m: [] for m in self.metrics}

    @property
    def count(self) -> int:
        return int(sum(len(r) for r in self.returns))

    def add(self, info: Mapping[str, np.ndarray], done: np.ndarray) -> None:
        """The agent-episodes of the slots where ``done`` (a mask or index) ends, from a BatchEnv info."""
        self.returns.append(np.asarray(info["episode_return"][done], np.float64))
        self.lengths.append(np.asarray(info["episode_length"][done], np.float64))
        for metric, (stat, _) in self.metrics.items():
            self.values[metric].append(np.asarray(info["episode_" + stat][done], np.float64))

    def add_one(self, episode_return: float, length: int, stats: Mapping[str, float]) -> None:
        """One agent-episode (e.g. from an SB3 ``info`` dict's ``episode`` and ``episode_stats``)."""
        self.returns.append(np.array([episode_return], np.float64))
        self.lengths.append(np.array([length], np.float64))
        for metric, (stat, _) in self.metrics.items():
            self.values[metric].append(np.array([stats[stat]], np.float64))

    def means(self) -> dict[str, float]:
        """``{metric: mean}`` plus ``mean_return`` and ``mean_episode_length`` (empty if nothing ended)."""
        if self.count == 0:
            return {}
        out = {m: float(np.concatenate(v).mean()) for m, v in self.values.items()}
        out["mean_return"] = float(np.concatenate(self.returns).mean())
        out["mean_episode_length"] = float(np.concatenate(self.lengths).mean())
        return out

    def pop(self) -> dict[str, float]:
        """Training metrics (``rollout/ep_rew_mean``, ``rollout/ep_len_mean``, ``env/<metric>``,
        ``env/episodes``) of the episodes since the last call, then forget them."""
        out = training_metrics(self.means(), self.count)
        self.clear()
        return out


def training_metrics(means: dict[str, float], count: int) -> dict[str, float]:
    """``means()``'s values as the trainers log them: ``rollout/ep_rew_mean``, ``rollout/ep_len_mean``,
    ``env/<metric>`` and ``env/episodes`` (``count`` finished agent-episodes); {} when none finished."""
    if not means:
        return {}
    means = dict(means)
    out = {"rollout/ep_rew_mean": means.pop("mean_return"), "rollout/ep_len_mean": means.pop("mean_episode_length")}
    out.update({f"env/{m}": v for m, v in means.items()})
    out["env/episodes"] = float(count)
    return out
