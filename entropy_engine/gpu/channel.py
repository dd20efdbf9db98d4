"""The communication channel on the GPU: ``DeviceChannel`` (``gpu.env.DeviceEnv``'s channel).

The state of ``core.channel.Channel`` (the per-world loss/noise streams ``rng``, this step's keys,
the message ring ``msgs [T, E, N, C]`` and ``valid [T, E, N]``, the received block ``out`` and the
scratch arrays) as device arrays, copied once from a host ``Channel`` built on the numba backend, and
the channel's step as CUDA drivers of the CPU's own functions: ``core.channel._receive`` (with
``_heard``, ``_received``, ``link_uniform``, ``link_normal``) and ``core.rng.next_u64`` compiled as
device functions (``gpu.target.device``), so a receiver hears, loses and perturbs exactly the
messages it does on the CPU. The ring head is host state (``Channel.head``).

Launches per env step: ``send`` (a thread per agent: its message into the head slot, the one-hots of
its tokens with ``comm_vocab``, ``valid`` = active; each world's first agent draws the world's key
of this step), ``receive`` (a thread per agent: ``_receive`` over the grid the physics step built
from the current positions, which is the grid ``Channel.step`` rebuilds on the CPU, then the
agent's observation row: the scenario's, then the received block) and, after respawns and resets,
``restart`` (a thread per agent: the messages of respawned agents and reset worlds forgotten, their
received block zeroed, every observation row joined again), as ``envs.comm.EngineChannel.restart``.
"""
from __future__ import annotations

import numpy as np

from ..core import channel as ch
from ..core.kernels import CELL
from ..core.rng import next_u64
from .target import cuda, device, download, to_device, torch_view, upload

cu = cuda()
d_receive = device(ch._receive)
d_next_u64 = device(next_u64)


@cu.jit(device=True)
def _join(w, i, own, out, obs):
    """obs[w, i] = the scenario's observation own[w, i], then the received block out[w, i]."""
    d0 = own.shape[2]
    for d in range(d0):
        obs[w, i, d] = own[w, i, d]
    for d in range(out.shape[2]):
        obs[w, i, d0 + d] = out[w, i, d]


@cu.jit
def send(head, a0, vocab, actions, active, rng, keys, msgs, valid):
    """Agent (w, i) per thread: its message (``actions[w, i, a0:]``: values in [-1, 1], or with
    ``vocab`` tokens written as one-hots) into ring slot ``head``, ``valid`` = it is active; thread
    (w, 0) draws world w's key of this step (``Channel.step`` / ``receive_all``). The agents are the
    learners (``actions`` [E, N, A]); a scenario's scripted robots after them never send (their
    ``valid`` stays False, as the CPU's silent robots)."""
    k = cu.grid(1)
    n = actions.shape[1]
    if k < active.shape[0] * n:
        w = k // n
        i = k % n
        if i == 0:
            keys[w] = d_next_u64(rng, w)
        C = msgs.shape[3]
        if vocab > 0:
            for c in range(C):
                msgs[head, w, i, c] = 0.0
            for c in range(actions.shape[2] - a0):
                msgs[head, w, i, c * vocab + int(actions[w, i, a0 + c])] = 1.0
        else:
            for c in range(C):
                msgs[head, w, i, c] = actions[w, i, a0 + c]
        valid[head, w, i] = active[w, i]


@cu.jit
def receive(rs, keys, msgs, valid, pos, theta, active, walls, n_walls, comm_range, mode, noise, dropout, occlusion,
            cell, g, cell_start, cell_items, best_d2, acc, best_j, out, own, obs):
    """Agent (w, i) per thread: ``core.channel._receive`` (the messages of ring slot ``rs``, the grid
    of the current positions), then its observation row (``own`` [E, N, D0] and ``out`` into ``obs``).
    Only the learners (the first N robots) receive: a scripted robot's row is never read."""
    k = cu.grid(1)
    n = own.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        i = k % n
        d_receive(w, i, keys, msgs, valid, rs, pos, theta, active, walls, n_walls, comm_range, mode, noise, dropout,
                  occlusion, cell, g, cell_start, cell_items, best_d2[w, i], acc[w, i], best_j, out)
        _join(w, i, own, out, obs)


@cu.jit
def restart(agents, worlds, valid, out, own, obs):
    """Agent (w, i) per thread: if it respawned (``agents[w, i]``) or its world reset (``worlds[w]``),
    its messages in every ring slot are forgotten and its received block is zeros
    (``Channel.clear``); then its observation row is joined again."""
    k = cu.grid(1)
    n = own.shape[1]
    if k < own.shape[0] * n:
        w = k // n
        i = k % n
        if agents[w, i] or worlds[w]:
            for t in range(valid.shape[0]):
                valid[t, w, i] = False
            for d in range(out.shape[2]):
                out[w, i, d] = 0.0
        _join(w, i, own, out, obs)


class DeviceChannel:
    """A ``core.channel.Channel``'s arrays on the GPU and its launches for ``gpu.env.DeviceEnv``.

    Args:
        host: the host scenario (numba backend; its ``config`` has ``comm_dim > 0``).
        seed: the seed of the channel's streams (``Channel``'s: ``core.channel.channel_states``).
        world: the env's ``DeviceWorld``; launch: its ``gpu.env.Launch``.
        own_obs: the scenario adapter's observations [E, N, D0] (device array).
    """

    def __init__(self, host, seed, world, launch, own_obs) -> None:
        from ..envs.comm import EngineChannel

        eng = EngineChannel(host, seed)   # the host channel (numba), its spaces and token columns
        c = eng.channel
        cfg = host.config
        self.world, self.launch, self.own = world, launch, own_obs
        self.num_worlds = E = world.num_worlds
        N = host.n_learners   # the agents; a scenario's scripted robots after them have no radio
        self.observation_space, self.action_space = eng.observation_space, eng.action_space
        self.agent_action_space, self.tokens = eng.agent_action_space, eng.tokens
        self.obs_dim0, self.act_dim0 = eng.obs_dim0, eng.act_dim0
        self.dim, self.vocab, self.width, self.delay = c.dim, c.vocab, c.width, c.delay
        self.head = c.head                                         # ring slot written by the next step (host)
        self.mode = c.mode
        self.comm_range, self.noise = float(cfg.comm_range), float(cfg.comm_noise)
        self.dropout, self.occlusion = float(cfg.comm_dropout), bool(cfg.comm_occlusion)
        self.cell = float(host.world.phys[CELL])
        new = to_device
        self.rng = new(c.rng)                                      # [E] per-world loss/noise streams
        self.keys = new(c.keys)                                    # [E] this step's per-world keys
        self.msgs = new(c.msgs)                                    # [T, E, N, C] ring of sent messages
        self.valid = new(c.valid)                                  # [T, E, N] the slot holds a message
        self.out = new(c.out)                                      # [E, N, W] what each agent received
        self.best_d2 = new(c._best_d2)                             # [E, N, K] scratch
        self.best_j = new(c._best_j)                               # [E, N, K] scratch
        self.acc = new(c._acc)                                     # [E, N, C] scratch
        self.obs = new(np.zeros((E, N, self.obs_dim0 + self.width), np.float32))   # [E, N, D0 + W] joined
        self._no_agents, self._no_worlds = new(np.zeros((E, N), np.bool_)), new(np.zeros(E, np.bool_))

    # ------------------------------------------------------------------ streams
    def seed(self, seed: int | None) -> None:
        """Restart every world's loss/noise stream from ``seed`` (``Channel.seed``)."""
        upload(self.rng, ch.channel_states(seed, self.num_worlds))

    def rng_state(self) -> np.ndarray:
        """The per-world channel streams [E], as a host copy."""
        out = np.zeros(self.num_worlds, np.uint64)
        download(self.rng, out)
        return out

    def set_rng_state(self, state: np.ndarray) -> None:
        upload(self.rng, np.ascontiguousarray(state, np.uint64))

    # ------------------------------------------------------------------ the step
    def bad_tokens(self, actions):
        """With ``comm_vocab``: a bool tensor on the device (no host sync), True when a token column of
        ``actions`` [S, A] is not a whole number in 0 .. V-1; None without tokens."""
        if not self.vocab:
            return None
        tok = actions[:, self.act_dim0:]
        bad = (tok < 0) | (tok > self.vocab - 1)
        if tok.is_floating_point():
            bad |= tok != tok.floor()
        return bad.any()

    def check_tokens(self, actions) -> None:
        """With ``comm_vocab``: raise ValueError (``envs.validate.check_tokens``'s message) unless the
        token columns of ``actions`` [S, A] (a finite torch tensor) are whole numbers in 0 .. V-1."""
        bad = self.bad_tokens(actions)
        if bad is not None and bool(bad):
            from ..envs.validate import check_tokens

            check_tokens(actions.detach().cpu().double().numpy(), self.act_dim0, self.vocab)

    def deliver(self, actions) -> None:
        """After the scenario's step: send ``actions[..., A0:]`` [E, N, A] (device, validated), deliver
        the messages sent ``comm_delay`` steps ago and join the observations into ``obs``."""
        w, agents = self.world, self.launch.agents()
        T = self.delay + 1
        send[agents](self.head, self.act_dim0, self.vocab, actions, w.active, self.rng, self.keys, self.msgs,
                     self.valid)
        rs = (self.head - self.delay) % T
        receive[agents](rs, self.keys, self.msgs, self.valid, w.pos, w.theta, w.active, w.walls, w.n_walls,
                        self.comm_range, self.mode, self.noise, self.dropout, self.occlusion, self.cell, w.grid_size,
                        w.cell_start, w.cell_items, self.best_d2, self.acc, self.best_j, self.out, self.own, self.obs)
        self.head = (self.head + 1) % T

    def restart(self, agents=None, worlds=None) -> None:
        """After respawns of ``agents`` [E, N] and resets of ``worlds`` [E] (device masks; None: none):
        their messages are forgotten, they start with an empty received block, every row is joined again."""
        agents = self._no_agents if agents is None else agents
        worlds = self._no_worlds if worlds is None else worlds
        restart[self.launch.agents()](agents, worlds, self.valid, self.out, self.own, self.obs)

    def received(self):
        """The received block [E, N, W] as a torch view (tests)."""
        return torch_view(self.out)
