"""``DeviceEpisodeMetrics``: ``envs.metrics.EpisodeMetrics`` for an env whose info arrays are GPU tensors.

Sums and counts of the finished agent-episodes stay on the GPU (no copy or sync per step); ``pop``
reads them once per log line and reports what ``EpisodeMetrics.pop`` reports: ``rollout/ep_rew_mean``,
``rollout/ep_len_mean``, ``env/<metric>`` and ``env/episodes``.
"""
from __future__ import annotations

from typing import Mapping

from ..envs.metrics import training_metrics


class DeviceEpisodeMetrics:
    def __init__(self, metrics: Mapping[str, tuple[str, str]], device) -> None:
        import torch

        self.metrics = dict(metrics)
        self._keys = ["episode_return", "episode_length"] + ["episode_" + stat for stat, _ in self.metrics.values()]
        self._sums = torch.zeros(len(self._keys) + 1, dtype=torch.float64, device=device)   # [..., count]

    def add(self, info, done) -> None:
        """Add the agent-episodes of the slots where the bool tensor ``done`` [S] is True."""
        import torch

        d = done.to(torch.float64)
        vals = torch.stack([(info[k].to(torch.float64) * d).sum() for k in self._keys] + [d.sum()])
        self._sums += vals

    @property
    def count(self) -> int:
        return int(self._sums[-1].item())

    def means(self) -> dict[str, float]:
        s = self._sums.tolist()
        n = s[-1]
        if n == 0:
            return {}
        out = {m: s[2 + j] / n for j, m in enumerate(self.metrics)}
        out["mean_return"] = s[0] / n
        out["mean_episode_length"] = s[1] / n
        return out

    def pop(self) -> dict[str, float]:
        """``EpisodeMetrics.pop``: the training metrics of the episodes since the last call, then forget them."""
        out = training_metrics(self.means(), self.count)
        self._sums.zero_()
        return out
