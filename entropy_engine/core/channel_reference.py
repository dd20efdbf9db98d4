"""Plain-Python/numpy reference of the communication channel (``core.channel``), for tests.

Every pair of agents is examined (O(N^2) per world), draws are computed with Python integers, and
the ring buffer is a list of past messages: slow and obvious. The compiled channel must agree
with it to float32 rounding.
"""
from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def link_uniform(key: int, counter: int) -> float:
    """SplitMix64 output number ``counter`` of the stream seeded with ``key``, as a uniform in [0, 1)."""
    z = (key + (counter + 1) * GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return (z >> 11) * 2.0 ** -53


def link_normal(key: int, counter: int) -> float:
    u1 = 1.0 - link_uniform(key, counter)
    u2 = link_uniform(key, counter + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _crosses(p0, p1, a, b) -> bool:
    """Segment p0-p1 properly crosses segment a-b (as ``geometry.segments_cross``)."""
    def orient(o, u, v):
        return (u[0] - o[0]) * (v[1] - o[1]) - (u[1] - o[1]) * (v[0] - o[0])
    d1, d2 = orient(a, b, p0), orient(a, b, p1)
    d3, d4 = orient(p0, p1, a), orient(p0, p1, b)
    return d1 * d2 < 0.0 and d3 * d4 < 0.0


def links_reference(pos: np.ndarray, active: np.ndarray, walls: np.ndarray, cfg) -> set[tuple[int, int]]:
    """The pairs (i, j), i < j, of active agents of ONE world whose messages can reach each other
    this step before random loss: within ``comm_range`` and, with ``comm_occlusion``, not across a
    wall (the checks ``receive_reference`` makes, receiver i). pos [N, 2], active [N], walls [W, 4]."""
    pos64 = pos.astype(np.float64)
    out = set()
    for i in range(len(pos64)):
        for j in range(i + 1, len(pos64)):
            if not (active[i] and active[j]):
                continue
            d = pos64[j] - pos64[i]
            if d[0] * d[0] + d[1] * d[1] > cfg.comm_range ** 2:
                continue
            if cfg.comm_occlusion and any(_crosses(pos64[i], pos64[j], wall[:2].astype(np.float64),
                                                   wall[2:].astype(np.float64)) for wall in walls):
                continue
            out.add((i, j))
    return out


def receive_reference(key: int, msgs: np.ndarray, valid: np.ndarray, pos: np.ndarray, theta: np.ndarray,
                      active: np.ndarray, walls: np.ndarray, cfg) -> np.ndarray:
    """What every agent of ONE world receives in one step.

    key: the world's 64-bit key of this step; msgs [N, C] and valid [N]: the messages sent
    ``comm_delay`` steps ago; pos [N, 2], theta [N], active [N]: the world now; walls [W, 4] the
    world's wall segments in use; cfg: a ``ChannelConfig``. Returns float32 [N, comm_obs_width].
    """
    N, C = msgs.shape
    K = cfg.comm_k
    out = np.zeros((N, cfg.comm_obs_width), np.float32)
    stride = 2 * C + 1
    pos64 = pos.astype(np.float64)
    for i in range(N):
        if not active[i]:
            continue
        heard = []   # (d2, j, received values)
        for j in range(N):
            if j == i or not active[j] or not valid[j]:
                continue
            d = pos64[j] - pos64[i]
            d2 = d[0] * d[0] + d[1] * d[1]
            if d2 > cfg.comm_range ** 2:
                continue
            if cfg.comm_occlusion and any(_crosses(pos64[i], pos64[j], wall[:2].astype(np.float64),
                                                   wall[2:].astype(np.float64)) for wall in walls):
                continue
            base = (i * N + j) * stride
            if cfg.comm_dropout > 0 and link_uniform(key, base) < cfg.comm_dropout:
                continue
            values = msgs[j].astype(np.float64).copy()
            if cfg.comm_noise > 0:
                values += [cfg.comm_noise * link_normal(key, base + 1 + 2 * c) for c in range(C)]
            heard.append((d2, j, values, d))
        if heard:
            if cfg.comm_combine == "mean":
                out[i, :C] = np.mean([h[2] for h in heard], axis=0)
            elif cfg.comm_combine == "max":
                out[i, :C] = np.max([h[2] for h in heard], axis=0)
            else:
                ct, st = math.cos(float(theta[i])), math.sin(float(theta[i]))
                for s, (d2, j, values, d) in enumerate(sorted(heard, key=lambda h: (h[0], h[1]))[:K]):
                    o = s * (C + 3)
                    out[i, o:o + C] = values
                    out[i, o + C] = (ct * d[0] + st * d[1]) / cfg.comm_range
                    out[i, o + C + 1] = (-st * d[0] + ct * d[1]) / cfg.comm_range
                    out[i, o + C + 2] = 1.0
        out[i, -1] = min(len(heard), K) / K
    return out


def one_hot_reference(tokens: np.ndarray, vocab: int) -> np.ndarray:
    """Discrete messages on the air: tokens [..., comm_dim] (whole numbers 0 .. vocab-1) -> float32
    [..., comm_dim * vocab], channel c's token t as a 1 at c * vocab + t."""
    tokens = np.asarray(tokens)
    out = np.zeros(tokens.shape[:-1] + (tokens.shape[-1] * vocab,), np.float32)
    for idx in np.ndindex(*tokens.shape[:-1]):
        for c in range(tokens.shape[-1]):
            t = int(tokens[idx + (c,)])
            assert t == tokens[idx + (c,)] and 0 <= t < vocab, f"token {tokens[idx + (c,)]!r} not in 0 .. {vocab - 1}"
            out[idx + (c * vocab + t,)] = 1.0
    return out


class ChannelReference:
    """The whole channel over steps, with the ring buffer as a list of the past steps' messages."""

    def __init__(self, cfg, num_worlds: int, n_agents: int):
        self.cfg = cfg
        self.past = [(np.zeros((num_worlds, n_agents, cfg.comm_values), np.float32),
                      np.zeros((num_worlds, n_agents), np.bool_))] * (cfg.comm_delay + 1)

    def step(self, keys, messages, world) -> np.ndarray:
        """Send ``messages`` [E, N, comm_dim] (tokens with ``comm_vocab``) from the active agents of
        ``world`` and return what every agent receives [E, N, width], using this step's per-world
        ``keys`` [E]."""
        if self.cfg.comm_vocab:
            messages = one_hot_reference(messages, self.cfg.comm_vocab)
        self.past = self.past[1:] + [(messages.astype(np.float32).copy(), world.active.copy())]
        msgs, valid = self.past[0]
        return np.stack([receive_reference(int(keys[e]), msgs[e], valid[e], world.pos[e], world.theta[e],
                                           world.active[e], world.walls[e, :world.n_walls[e]], self.cfg)
                         for e in range(world.num_worlds)])
