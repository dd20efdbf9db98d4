"""Communication channel: messages between agents with range, loss, delay, noise and walls.

Every step each active agent sends ``comm_dim`` values (its message, in [-1, 1]); every active
agent then receives the messages sent ``comm_delay`` steps earlier by the other agents that are
active now, within ``comm_range`` metres of it now (centre to centre), whose link is not cut by a
wall (``comm_occlusion``) and not lost (``comm_dropout``, drawn per link and step); Gaussian noise
of std ``comm_noise`` is added to every received value. Settings: ``core.channel_config``.

## Output (float32 ``[E, N, W]``, ``W = ChannelConfig.comm_obs_width``)

``comm_combine = "mean"`` or ``"max"``: ``C = comm_dim`` values, the mean (or maximum) of the heard
messages per value (zeros when nothing is heard), then the heard count. ``"nearest"``: ``comm_k``
slots of ``C + 3`` values, nearest heard sender first (ties by agent index), then the count:

| slot feature | meaning                                                            | range    |
|--------------|--------------------------------------------------------------------|----------|
| 0 .. C-1     | the sender's message as received (noise included)                  | ~[-1, 1] |
| C, C+1       | sender centre minus own centre, ego x and y (heading, left) / range| [-1, 1]  |
| C+2          | mask: 1 if the slot holds a sender, 0 if it is padding             | {0, 1}   |

The last value is ``min(heard, comm_k) / comm_k`` where ``heard`` counts every message received
this step. Inactive agents receive zeros. The link geometry (range, walls, relative position) is
that of the receiving step; a message carries only its values.

## Discrete messages (``comm_vocab = V >= 2``)

The sender's message is ``comm_dim`` tokens, integers in ``0 .. V-1`` (one per channel). On the
air a token is its one-hot (V values: 1 at the token, 0 elsewhere), so a message is
``comm_values = comm_dim * V`` values and everything above applies to them unchanged, with
``C = comm_values``: ``mean`` gives per channel the fraction of heard senders that sent each token
(a histogram), ``max`` whether anyone heard sent it (1 or 0), ``nearest`` each kept sender's
one-hots; noise, when on, is added to every one-hot value as received.

## Storage, randomness, cost

Messages of the last ``comm_delay + 1`` steps live in a preallocated ring ``msgs [T, E, N, C]``
with ``valid [T, E, N]`` (the sender was active when it sent; cleared when a world resets or an
agent respawns, so nothing crosses episodes). Loss and noise come from a counter-based hash: once
per step each world draws a 64-bit key from its own stream (``rng``, SplitMix64, ``core.rng``),
and the draws of the link (receiver ``i``, sender ``j``) are ``SplitMix64(key, counter)`` with
``counter = (i * N + j) * (2C + 1) + d`` (``d = 0``: loss, ``1 .. 2C``: Box-Muller pairs). No
draw depends on the order links are visited, so results are bit-identical for any thread count.
Each receiver visits only the grid cells within ``comm_range`` (``neighbours.cell_span``): cost
linear in the number of agents at a given density. ``channel_reference.py`` is the plain numpy
version the tests compare against.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .geometry import segments_cross
from .kernels import CELL
from .grid import cell_span
from .rng import check_seed, next_u64

MEAN, MAX, NEAREST = 0, 1, 2
MODES = {"mean": MEAN, "max": MAX, "nearest": NEAREST}
STREAM_KEY = 0xC0111  # spawn key of the channel's streams: independent of the scenario's

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


def channel_states(seed: int | None, num_worlds: int) -> np.ndarray:
    """Per-world channel streams [E] uint64 from one seed (independent of ``core.rng.seed_states``)."""
    ss = np.random.SeedSequence(check_seed(seed), spawn_key=(STREAM_KEY,))
    return ss.generate_state(num_worlds, dtype=np.uint64).astype(np.uint64)


# ----------------------------------------------------------------------------- counter-based draws
@njit(cache=True, inline="always")
def link_uniform(key, counter):
    """Uniform in [0, 1): SplitMix64 output number ``counter`` of the stream seeded with ``key``."""
    z = key + (counter + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    return np.float64(z >> _S11) * _INV53


@njit(cache=True, inline="always")
def link_normal(key, counter):
    """Standard normal from the draws ``counter`` and ``counter + 1`` (Box-Muller)."""
    u1 = 1.0 - link_uniform(key, counter)          # (0, 1]
    u2 = link_uniform(key, counter + np.uint64(1))
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True, inline="always")
def _heard(w, i, j, px, py, pos, walls, n_walls, occlusion, dropout, key, base):
    """Whether the message of sender j reaches receiver i (range already checked): walls, loss."""
    if occlusion:
        qx = np.float64(pos[w, j, 0])
        qy = np.float64(pos[w, j, 1])
        for s in range(n_walls[w]):
            if segments_cross(px, py, qx, qy, np.float64(walls[w, s, 0]), np.float64(walls[w, s, 1]),
                              np.float64(walls[w, s, 2]), np.float64(walls[w, s, 3])):
                return False
    if dropout > 0.0 and link_uniform(key, base) < dropout:
        return False
    return True


@njit(cache=True, inline="always")
def _received(msgs, rs, w, j, c, noise, key, base):
    """Value c of sender j's message as received (ring slot rs), noise included."""
    v = np.float64(msgs[rs, w, j, c])
    if noise > 0.0:
        v += noise * link_normal(key, base + np.uint64(1 + 2 * c))
    return v


# ----------------------------------------------------------------------------- one receiver
@njit(cache=True, inline="always")
def _receive(w, i, keys, msgs, valid, rs, pos, theta, active, walls, n_walls, comm_range, mode, noise, dropout,
             occlusion, cell, g, cell_start, cell_items, d2buf, acc, best_j, out):
    """Fill out[w, i] (scratch: d2buf [K] and acc [C] float64, best_j[w, i] [K] int32)."""
    width = out.shape[2]
    for f in range(width):
        out[w, i, f] = 0.0
    if not active[w, i]:
        return
    n = pos.shape[1]
    C = msgs.shape[3]
    k_max = best_j.shape[2]
    stride = np.uint64(2 * C + 1)
    key = keys[w]
    px = np.float64(pos[w, i, 0])
    py = np.float64(pos[w, i, 1])
    r2 = comm_range * comm_range
    heard = 0
    kept = 0
    x0, x1, y0, y1 = cell_span(px, py, comm_range, cell, g)
    for cy in range(y0, y1 + 1):
        for cx in range(x0, x1 + 1):
            c0 = cy * g + cx
            for kk in range(cell_start[w, c0], cell_start[w, c0 + 1]):
                j = cell_items[w, kk]
                if j == i or not valid[rs, w, j]:
                    continue
                dx = np.float64(pos[w, j, 0]) - px
                dy = np.float64(pos[w, j, 1]) - py
                d2 = dx * dx + dy * dy
                if d2 > r2:
                    continue
                base = (np.uint64(i) * np.uint64(n) + np.uint64(j)) * stride
                if not _heard(w, i, j, px, py, pos, walls, n_walls, occlusion, dropout, key, base):
                    continue
                heard += 1
                if mode == MEAN:
                    for c in range(C):
                        v = _received(msgs, rs, w, j, c, noise, key, base)
                        acc[c] = v if heard == 1 else acc[c] + v
                elif mode == MAX:
                    for c in range(C):
                        v = _received(msgs, rs, w, j, c, noise, key, base)
                        if heard == 1 or v > out[w, i, c]:
                            out[w, i, c] = v
                else:   # nearest: insertion into the sorted top-k (distance, then index)
                    if kept == k_max:
                        ld = d2buf[k_max - 1]
                        if d2 > ld or (d2 == ld and j > best_j[w, i, k_max - 1]):
                            continue
                        s = k_max - 1
                    else:
                        s = kept
                        kept += 1
                    while s > 0:
                        pd = d2buf[s - 1]
                        if pd < d2 or (pd == d2 and best_j[w, i, s - 1] < j):
                            break
                        d2buf[s] = pd
                        best_j[w, i, s] = best_j[w, i, s - 1]
                        s -= 1
                    d2buf[s] = d2
                    best_j[w, i, s] = j
    if heard == 0:
        return
    if mode == MEAN:
        inv = 1.0 / heard
        for c in range(C):
            out[w, i, c] = acc[c] * inv
    elif mode == NEAREST:
        th = np.float64(theta[w, i])
        ct = math.cos(th)
        st = math.sin(th)
        inv_range = 1.0 / comm_range
        for s in range(kept):
            j = best_j[w, i, s]
            base = (np.uint64(i) * np.uint64(n) + np.uint64(j)) * stride
            o = s * (C + 3)
            for c in range(C):
                out[w, i, o + c] = _received(msgs, rs, w, j, c, noise, key, base)
            dx = np.float64(pos[w, j, 0]) - px
            dy = np.float64(pos[w, j, 1]) - py
            out[w, i, o + C] = (ct * dx + st * dy) * inv_range
            out[w, i, o + C + 1] = (-st * dx + ct * dy) * inv_range
            out[w, i, o + C + 2] = 1.0
    out[w, i, width - 1] = min(heard, k_max) / k_max


@njit(cache=True, parallel=True)
def receive_all(rng, keys, msgs, valid, rs, pos, theta, active, walls, n_walls, comm_range, mode, noise, dropout,
                occlusion, cell, g, cell_start, cell_items, best_d2, acc, best_j, out):
    """Draw every world's key of this step from its stream, then fill every receiver's output.

    rng/keys [E] uint64; msgs [T,E,N,C] float32 and valid [T,E,N] bool (the ring; rs: the slot sent
    ``comm_delay`` steps ago); pos [E,N,2]; theta [E,N]; active [E,N]; walls [E,W,4]; n_walls [E];
    cell_start [E,g*g+1] and cell_items [E,N] (the grid of the current positions); best_d2 [E,N,K]
    and acc [E,N,C] float64 and best_j [E,N,K] int32 scratch; out [E,N,width] float32.
    """
    E, n = pos.shape[0], pos.shape[1]
    for w in prange(E):
        keys[w] = next_u64(rng, w)
    for t in prange(E * n):
        w = t // n
        i = t - w * n
        _receive(w, i, keys, msgs, valid, rs, pos, theta, active, walls, n_walls, comm_range, mode, noise, dropout,
                 occlusion, cell, g, cell_start, cell_items, best_d2[w, i], acc[w, i], best_j, out)


# ----------------------------------------------------------------------------- the channel
class Channel:
    """The channel of one batched world (see the module docstring). Arrays are allocated once.

    Args:
        world: a world backend (``pos``, ``theta``, ``active``, ``walls``, ``n_walls``, ``grid()``,
            ``grid_size``, ``phys``).
        config: a ``ChannelConfig`` (any scenario config) with ``comm_dim > 0``.
        seed: seed of the per-world loss/noise streams (None: fresh entropy).
        talkers: the world's first ``talkers`` robots have radios (None: all). The others (a
            scenario's scripted robots) send nothing and what they receive is not read; they still
            move through the grid, so the arrays cover every robot of the world.
    """

    def __init__(self, world, config, seed: int | None = None, talkers: int | None = None):
        if config.comm_dim < 1:
            raise ValueError(f"a Channel needs comm_dim >= 1, got {config.comm_dim!r}")
        self.world = world
        self.config = config
        E, N = world.num_worlds, world.n_agents
        self.talkers = N if talkers is None else int(talkers)
        if not 1 <= self.talkers <= N:
            raise ValueError(f"talkers must be between 1 and the world's {N} robots, got {talkers!r}")
        self.senders = np.arange(N) < self.talkers              # [N] robots whose messages are sent
        # [E, N, comm_dim] the talkers' messages padded with the silent robots' zeros (None: all talk)
        self._padded = np.zeros((E, N, int(config.comm_dim)), np.float32) if self.talkers < N else None
        self.dim = int(config.comm_dim)                        # message entries an agent sends
        self.vocab = V = int(config.comm_vocab)                # 0: continuous values; V: tokens 0 .. V-1
        C = int(config.comm_values)                            # values on the air (one-hots for tokens)
        self.width = int(config.comm_obs_width)
        self.delay = int(config.comm_delay)
        T = self.delay + 1
        K = int(config.comm_k)
        self.mode = MODES[config.comm_combine]
        self.rng = channel_states(seed, E)                     # [E] per-world loss/noise streams
        self.keys = np.zeros(E, np.uint64)                     # [E] this step's per-world keys
        self.msgs = np.zeros((T, E, N, C), np.float32)         # [T, E, N, C] ring of sent messages
        self.valid = np.zeros((T, E, N), np.bool_)             # [T, E, N] the slot holds a message
        self.out = np.zeros((E, N, self.width), np.float32)    # [E, N, width] what each agent received
        self._best_d2 = np.zeros((E, N, K), np.float64)        # [E, N, K] scratch: squared distances
        self._best_j = np.full((E, N, K), -1, np.int32)        # [E, N, K] scratch: nearest senders
        self._acc = np.zeros((E, N, C), np.float64)            # [E, N, C] scratch: sums of 'mean'
        self.head = 0                                          # ring slot written by the next step
        if V:   # flat one-hot index of (agent, channel) c's token t: c * V + t
            self._offsets = (np.arange(self.dim, dtype=np.int64) * V)[None, :]   # [1, comm_dim]
            self._rows = np.arange(E * N, dtype=np.int64)[:, None] * C           # [E*N, 1] row starts
            self._flat = self.msgs.reshape(T, E * N * C)                       # views of the ring

    def seed(self, seed: int | None) -> None:
        """Restart every world's loss/noise stream from ``seed``."""
        self.rng[:] = channel_states(seed, self.world.num_worlds)

    def seed_worlds(self, seed: int | None, total_worlds: int, first: int) -> None:
        """The streams worlds ``first ..`` have in a channel of ``total_worlds`` worlds seeded with
        ``seed`` (a worker process holding a block of the worlds)."""
        self.rng[:] = channel_states(seed, total_worlds)[first:first + self.world.num_worlds]

    def _send_tokens(self, tokens: np.ndarray) -> None:
        """Write the one-hots of ``tokens`` [E, N, comm_dim] into the ring's head slot."""
        flat = self._flat[self.head]
        flat[:] = 0
        flat[self._rows + self._offsets + tokens.reshape(-1, self.dim).astype(np.int64)] = 1.0

    def clear(self, worlds: np.ndarray | None = None, agents: np.ndarray | None = None) -> None:
        """Forget the messages of the worlds where ``worlds`` [E] is True (all if both are None) and
        of the agents where ``agents`` [E, N] is True; their received block becomes zeros."""
        if worlds is None and agents is None:
            self.valid[:] = False
            self.out[:] = 0
            return
        if worlds is not None:
            self.valid[:, worlds] = False
            self.out[worlds] = 0
        if agents is not None:
            if self._padded is not None and agents.shape[1] == self.talkers:   # the talkers' [E, talkers]
                agents = np.pad(agents, ((0, 0), (0, self.world.n_agents - self.talkers)))
            self.valid[:, agents] = False
            self.out[agents] = 0

    def step(self, messages: np.ndarray, grid=None) -> np.ndarray:
        """Send ``messages`` [E, talkers, comm_dim] (float32, finite, already clipped to [-1, 1];
        with ``comm_vocab`` tokens as whole numbers in 0 .. V-1, already checked) from the active
        talkers, deliver those sent ``comm_delay`` steps ago and return ``out`` [E, N, width] (every
        robot's row; a silent robot's is never read). ``grid``: the world's grid of the current
        positions, or None to rebuild it."""
        w = self.world
        T = self.delay + 1
        if self._padded is not None:
            self._padded[:, :self.talkers] = messages
            messages = self._padded
        if self.vocab:
            self._send_tokens(messages)
        else:
            np.copyto(self.msgs[self.head], messages)
        if self._padded is None:
            np.copyto(self.valid[self.head], w.active)
        else:
            np.logical_and(w.active, self.senders, out=self.valid[self.head])
        rs = (self.head - self.delay) % T
        cell_start, cell_items = w.grid() if grid is None else grid
        cfg = self.config
        receive_all(self.rng, self.keys, self.msgs, self.valid, rs, w.pos, w.theta, w.active, w.walls, w.n_walls,
                    float(cfg.comm_range), self.mode, float(cfg.comm_noise), float(cfg.comm_dropout),
                    bool(cfg.comm_occlusion), float(w.phys[CELL]), w.grid_size, cell_start, cell_items,
                    self._best_d2, self._acc, self._best_j, self.out)
        self.head = (self.head + 1) % T
        return self.out
