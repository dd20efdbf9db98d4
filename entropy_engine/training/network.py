"""The recurrent actor-critic shared by all agents (torch) and its Gaussian action distribution.

``ActorCritic``: observation -> [optional MLP encoder] -> LSTM -> actor head (two tanh layers,
mean of a diagonal Gaussian with a learned state-independent log-std) and critic head (two tanh
layers -> value). With ``shared_lstm=False`` the critic has its own LSTM, as sb3-contrib's
``MlpLstmPolicy`` does by default. Its shape is a ``PolicySpec`` (stored in the model file,
``training.model_file``); widths come from the scenario's spaces.

Recurrent state is one tensor ``[L, 2, B, H]``: L = 1 (shared) or 2 (actor, critic) LSTMs, (h, c),
B rows, H units. Every row is independent of every other row: an agent only ever sees its own
observation and its own state (decentralised execution). A row's state is zeroed where
``episode_start`` is 1 before the step is taken.

With ``obs_delta`` > 0 the network's input is ``[obs, obs_delta * (obs - prev_obs)]``: its own
observation and how that changed since its previous step (zero on an episode's first step), so
approach rates of walls and robots in the lidar are inputs rather than something the LSTM must
learn to compute. The caller passes ``prev`` (the previous observation of every row).

Discrete messages (``comm_vocab = V > 0``, ``comm_tokens = C`` token columns at the end of the
action): the actor's last layer also gives ``C * V`` logits, one categorical distribution of V
tokens per channel beside the Gaussian of the ``act_dim - C`` continuous actions. The network's
head output ``pi`` [..., (act_dim - C) + C * V] holds both (the Gaussian means, then the logits);
an action row holds the continuous values, then the tokens as whole numbers. Its log-probability
and entropy are the sums over both heads (``action_log_prob``, ``action_entropy``); without tokens
``pi`` is the Gaussian mean and everything is as before.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F


@dataclass(frozen=True)
class PolicySpec:
    """Shape of an ActorCritic (stored in the model file); widths come from the scenario's spaces."""

    obs_dim: int
    act_dim: int
    lstm_hidden_size: int = 64
    shared_lstm: bool = True
    net_arch: int = 64
    encoder_size: int = 0
    log_std_init: float = 0.0
    obs_delta: float = 0.0
    comm_vocab: int = 0         # discrete messages: tokens per channel (0: none)
    comm_tokens: int = 0        # token columns at the end of the action (the channels)

    def __post_init__(self) -> None:
        if (self.comm_vocab > 0) != (self.comm_tokens > 0) or self.comm_vocab == 1 or \
                not 0 <= self.comm_tokens < self.act_dim:
            raise ValueError(f"comm_vocab ({self.comm_vocab}) and comm_tokens ({self.comm_tokens}) must both be 0, or "
                             f"a vocabulary >= 2 and fewer token columns than act_dim ({self.act_dim})")

    @classmethod
    def from_config(cls, cfg: Any, obs_dim: int, act_dim: int,
                    tokens: tuple[int, int] | None = None) -> "PolicySpec":
        """``tokens``: (first token column, vocabulary) of the env's discrete messages, or None."""
        vocab, n_tok = (0, 0) if tokens is None else (int(tokens[1]), act_dim - int(tokens[0]))
        return cls(obs_dim, act_dim, cfg.lstm_hidden_size, cfg.shared_lstm, cfg.net_arch, cfg.encoder_size,
                   cfg.log_std_init, cfg.obs_delta, vocab, n_tok)

    @property
    def n_continuous(self) -> int:
        """Gaussian (continuous) actions: all but the token columns."""
        return self.act_dim - self.comm_tokens

    @property
    def head_dim(self) -> int:
        """Width of the actor's output ``pi``: the Gaussian means, then ``comm_tokens * comm_vocab`` logits."""
        return self.n_continuous + self.comm_tokens * self.comm_vocab

    @property
    def input_dim(self) -> int:
        """Width of the network's input: the observation, and its change with ``obs_delta``."""
        return self.obs_dim * (2 if self.obs_delta > 0 else 1)


def _mlp(n_in: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh())


def lstm_sequence(lstm: nn.LSTM, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                  starts: torch.Tensor) -> torch.Tensor:
    """Run ``lstm`` over x [T, B, in] from (h, c) [B, H], zeroing the state of rows where starts[t] = 1.

    Exact per-episode reset inside a sequence. Where no row restarts after t = 0 the whole sequence
    goes through one fused ``nn.LSTM`` call; otherwise the input projection is one matmul and only
    the recurrent part loops over time.
    """
    keep = 1.0 - starts                                                # [T, B]
    h = h * keep[0, :, None]
    c = c * keep[0, :, None]
    T = x.shape[0]
    if T == 1 or not bool((starts[1:] > 0).any()):
        out, _ = lstm(x, (h[None].contiguous(), c[None].contiguous()))
        return out
    w_ih, w_hh, b_ih, b_hh = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0
    xw = F.linear(x, w_ih, b_ih + b_hh)                                # [T, B, 4H]
    keep = keep[..., None]
    outs = []
    for t in range(T):
        if t > 0:
            h = h * keep[t]
            c = c * keep[t]
        gates = torch.addmm(xw[t], h, w_hh.t())
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs)


class ActorCritic(nn.Module):
    def __init__(self, spec: PolicySpec):
        super().__init__()
        self.spec = spec
        H, W = spec.lstm_hidden_size, spec.net_arch
        if spec.encoder_size > 0:
            self.encoder: nn.Module = nn.Sequential(nn.Linear(spec.input_dim, spec.encoder_size), nn.Tanh())
            n_in = spec.encoder_size
        else:
            self.encoder = nn.Identity()
            n_in = spec.input_dim
        self.lstm = nn.LSTM(n_in, H)
        self.lstm_vf = None if spec.shared_lstm else nn.LSTM(n_in, H)
        self.pi_net, self.vf_net = _mlp(H, W), _mlp(H, W)
        self.mu = nn.Linear(W, spec.head_dim)          # Gaussian means (then token logits)
        self.value_head = nn.Linear(W, 1)
        self.log_std = nn.Parameter(torch.full((spec.n_continuous,), float(spec.log_std_init)))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight, math.sqrt(2))
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LSTM):
                for name, p in m.named_parameters():
                    if "weight" in name:
                        nn.init.orthogonal_(p, 1.0)
                    else:
                        nn.init.zeros_(p)
        nn.init.orthogonal_(self.mu.weight, 0.01)
        nn.init.orthogonal_(self.value_head.weight, 1.0)

    @property
    def n_lstm(self) -> int:
        return 1 if self.lstm_vf is None else 2

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(self.n_lstm, 2, batch, self.spec.lstm_hidden_size, device=device)

    def features(self, obs: torch.Tensor, prev: torch.Tensor | None, starts: torch.Tensor | None
                 ) -> torch.Tensor:
        """The encoder's input for obs [..., D]: obs itself, or with ``obs_delta`` also
        ``obs_delta * (obs - prev)``, zero where ``starts`` is 1 (or everywhere if ``prev`` is None)."""
        k = self.spec.obs_delta
        if k <= 0:
            return obs
        if prev is None:
            return torch.cat([obs, torch.zeros_like(obs)], -1)
        delta = obs - prev
        if starts is not None:
            delta = delta * (1.0 - starts)[..., None]
        return torch.cat([obs, k * delta], -1)

    def sequence(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor,
                 prev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """obs [T, B, D], state [L, 2, B, H] at t = 0, starts [T, B], prev [T, B, D] (each step's
        previous observation; ``obs_delta`` models) -> pi [T, B, head_dim] (the Gaussian means, then
        token logits), value [T, B]."""
        return self.sequence_from_input(self.features(obs, prev, starts), state, starts)

    def sequence_from_input(self, inputs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """``sequence`` from the network's input [T, B, input_dim] (``features``) instead of observations."""
        x = self.encoder(inputs)
        hp = lstm_sequence(self.lstm, x, state[0, 0], state[0, 1], starts)
        hv = hp if self.lstm_vf is None else lstm_sequence(self.lstm_vf, x, state[1, 0], state[1, 1], starts)
        return self.mu(self.pi_net(hp)), self.value_head(self.vf_net(hv)).squeeze(-1)

    def step(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor | None = None,
             prev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step: obs [B, D], state [L, 2, B, H], starts [B], prev [B, D] (``obs_delta`` models)
        -> pi [B, head_dim] (the mean without tokens), value [B], new state."""
        if starts is not None:
            state = state * (1.0 - starts)[None, None, :, None]
        x = self.encoder(self.features(obs, prev, starts))[None]
        new = []
        _, (h, c) = self.lstm(x, (state[0, 0:1].contiguous(), state[0, 1:2].contiguous()))
        new.append(torch.cat([h, c]))
        hp = h[0]
        if self.lstm_vf is None:
            hv = hp
        else:
            _, (h2, c2) = self.lstm_vf(x, (state[1, 0:1].contiguous(), state[1, 1:2].contiguous()))
            new.append(torch.cat([h2, c2]))
            hv = h2[0]
        return self.mu(self.pi_net(hp)), self.value_head(self.vf_net(hv)).squeeze(-1), torch.stack(new)

    def value(self, obs: torch.Tensor, state: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        """V(obs) from state [L, 2, B, H] (used to bootstrap truncated episodes)."""
        return self.step(obs, state, None, prev)[1]

    def act_only(self, obs: torch.Tensor, state: torch.Tensor, prev: torch.Tensor | None = None,
                 starts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Actor path only: obs [B, D], actor state [2, B, H] -> pi [B, head_dim], new actor state."""
        x = self.encoder(self.features(obs, prev, starts))[None]
        _, (h, c) = self.lstm(x, (state[0:1].contiguous(), state[1:2].contiguous()))
        return self.mu(self.pi_net(h[0])), torch.cat([h, c])


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Sum over the action dimension of the diagonal Gaussian log density."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    return (log_std + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)


# ----------------------------------------------------------------------------- both heads (discrete messages)
def split_head(pi: torch.Tensor, spec: PolicySpec) -> tuple[torch.Tensor, torch.Tensor | None]:
    """pi [..., head_dim] -> Gaussian means [..., n_continuous] and token logits [..., C, V] (None
    without tokens)."""
    n = spec.n_continuous
    if not spec.comm_vocab:
        return pi, None
    return pi[..., :n], pi[..., n:].unflatten(-1, (spec.comm_tokens, spec.comm_vocab))


def action_log_prob(actions: torch.Tensor, pi: torch.Tensor, log_std: torch.Tensor, spec: PolicySpec) -> torch.Tensor:
    """Log-probability of action rows [..., act_dim] (continuous values, then tokens): the Gaussian's
    plus, with tokens, every channel's categorical log-probability."""
    mean, logits = split_head(pi, spec)
    if logits is None:
        return gaussian_log_prob(actions, mean, log_std)
    n = spec.n_continuous
    tokens = actions[..., n:].long()[..., None]                                  # [..., C, 1]
    logp_tok = torch.log_softmax(logits, -1).gather(-1, tokens).squeeze(-1).sum(-1)
    return gaussian_log_prob(actions[..., :n], mean, log_std) + logp_tok


def action_entropy(pi: torch.Tensor, log_std: torch.Tensor, spec: PolicySpec) -> torch.Tensor:
    """Entropy of the action distribution per row [...] (the Gaussian's plus every channel's
    categorical entropy)."""
    mean, logits = split_head(pi, spec)
    ent = gaussian_entropy(log_std).expand(mean.shape[:-1])
    if logits is None:
        return ent
    logp = torch.log_softmax(logits, -1)
    return ent - (logp.exp() * logp).sum((-2, -1))


def sample_actions(pi: torch.Tensor, log_std: torch.Tensor, spec: PolicySpec,
                   generator: torch.Generator | None = None, deterministic: bool = False) -> torch.Tensor:
    """Action rows [..., act_dim] from pi: Gaussian samples (unclipped; the means if
    ``deterministic``), then with tokens one sampled token per channel (Gumbel-max; the most likely
    if ``deterministic``) as a whole number."""
    mean, logits = split_head(pi, spec)
    if deterministic:
        cont = mean
    else:
        cont = mean + torch.exp(log_std) * torch.randn(mean.shape, generator=generator, device=mean.device,
                                                       dtype=mean.dtype)
    if logits is None:
        return cont
    if deterministic:
        tokens = logits.argmax(-1)
    else:
        u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        tokens = (logits - torch.log(-torch.log(u))).argmax(-1)
    return torch.cat([cont, tokens.to(cont.dtype)], -1)


def env_actions(actions: torch.Tensor, spec: PolicySpec) -> torch.Tensor:
    """What the env is sent: the continuous values clipped to [-1, 1], the tokens as they are."""
    if not spec.comm_vocab:
        return actions.clamp(-1.0, 1.0)
    n = spec.n_continuous
    return torch.cat([actions[..., :n].clamp(-1.0, 1.0), actions[..., n:]], -1)
