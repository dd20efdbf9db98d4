"""Settings of the inter-agent communication channel, shared by every scenario (``ScenarioConfig``).

The channel itself (what is sent, who hears it, what a receiver observes) is ``core.channel``; the
episode engine (``envs.batch.BatchEnv``) switches it on for any scenario when ``comm_dim > 0``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..config import field, require

COMBINES = ("mean", "max", "nearest")


@dataclass(frozen=True)
class ChannelConfig:
    """Communication channel settings (off by default: ``comm_dim = 0``)."""

    comm_dim: int = field(0, "Message values each agent sends per step (extra actions in [-1, 1]); 0 = no channel.")
    comm_range: float = field(3.0, "Radio range in metres, centre to centre: only senders this close are heard.")
    comm_combine: Literal["mean", "max", "nearest"] = field(
        "mean", "How a receiver combines the messages it hears: 'mean' or 'max' per value, or 'nearest': the "
                "comm_k nearest senders, each with its ego-frame relative position and a mask.")
    comm_k: int = field(4, "Senders kept by comm_combine='nearest'; also where the heard count saturates "
                           "(the count observation is min(heard, comm_k) / comm_k).")
    comm_noise: float = field(0.0, "Standard deviation of Gaussian noise added to every received value.")
    comm_dropout: float = field(0.0, "Probability that one link (sender to receiver) loses one message.")
    comm_delay: int = field(0, "Steps between sending and receiving (0: heard in the step it is sent).")
    comm_occlusion: bool = field(False, "Walls block messages (a link crossing a wall segment is cut).")
    comm_vocab: int = field(0, "Discrete messages: each of the comm_dim channels carries one token of a vocabulary of "
                               "this many (>= 2), received as its one-hot; 0 = continuous values in [-1, 1].")

    def __post_init__(self) -> None:
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
        for name in ("comm_dim", "comm_k", "comm_delay", "comm_vocab"):
            v = getattr(self, name)
            require(isinstance(v, int) and not isinstance(v, bool), f"{name} must be an integer, got {v!r}")
        require(self.comm_dim >= 0, f"comm_dim must be >= 0 (0 = no channel), got {self.comm_dim!r}")
        require(self.comm_vocab == 0 or self.comm_vocab >= 2,
                f"comm_vocab must be 0 (continuous messages) or a vocabulary of >= 2 tokens, got {self.comm_vocab!r}")
        require(self.comm_vocab == 0 or self.comm_dim > 0,
                f"comm_vocab={self.comm_vocab} needs a channel to carry its tokens: set comm_dim >= 1 (0 = no channel)")
        require(self.comm_k >= 1, f"comm_k must be >= 1, got {self.comm_k!r}")
        require(self.comm_delay >= 0, f"comm_delay must be >= 0 steps, got {self.comm_delay!r}")
        for name in ("comm_range", "comm_noise", "comm_dropout"):
            v = getattr(self, name)
            require(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
                    f"{name} must be a finite number, got {v!r}")
        require(self.comm_range > 0, f"comm_range must be a positive number of metres, got {self.comm_range!r}")
        require(self.comm_noise >= 0, f"comm_noise must be >= 0, got {self.comm_noise!r}")
        require(0.0 <= self.comm_dropout <= 1.0, f"comm_dropout must be in [0, 1], got {self.comm_dropout!r}")
        require(self.comm_combine in COMBINES,
                f"comm_combine must be one of {COMBINES}, got {self.comm_combine!r}")
        require(isinstance(self.comm_occlusion, bool), f"comm_occlusion must be a boolean, got {self.comm_occlusion!r}")

    @property
    def comm_values(self) -> int:
        """Values one message carries on the air: ``comm_dim``, or ``comm_dim * comm_vocab`` for
        discrete messages (each channel's token as its one-hot)."""
        return self.comm_dim * self.comm_vocab if self.comm_vocab else self.comm_dim

    @property
    def comm_obs_width(self) -> int:
        """Values the channel appends to an agent's observation (0 without a channel): the combined
        messages (``comm_values``, or ``comm_k * (comm_values + 3)`` for 'nearest') and the heard count."""
        if self.comm_dim == 0:
            return 0
        if self.comm_combine == "nearest":
            return self.comm_k * (self.comm_values + 3) + 1
        return self.comm_values + 1
