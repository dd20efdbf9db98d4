"""The rendezvous scenario on the GPU: its CUDA drivers and ``RendezvousOnDevice`` (``gpu.env``'s adapter).

Resets (the spawn lattice's permutation on the scenario's preallocated scratch, a row per world), the
per-world phase (distances to the goal, the zone, the team's progress) and the per-agent phase (reward,
statistics, observation) are ``scenarios.rendezvous_kernels``' njit functions compiled as device
functions, a thread per world for the first two and a thread per agent for the last; respawns are
``gpu.spawn.respawn_clear``. The communication channel (on in the scenario's preset) is the env's
(``gpu.channel``), not the adapter's.
"""
from __future__ import annotations

from ..scenarios import rendezvous_kernels as rk
from .adapter import OnDevice
from .spawn import respawn_clear
from .target import cuda, device, to_device

cu = cuda()
d_reset_world = device(rk.reset_world)
d_world_one = device(rk.world_one)
d_agent_one = device(rk.agent_one)


@cu.jit
def reset_worlds(mask, rng, params, side, pos, vel, theta, omega, active, order, goal, informed, walls, n_walls,
                 contact, prev_contact, fresh, ever):
    """World ``w`` (a thread each) where ``mask[w]``: ``rendezvous_kernels.reset_world`` with its settings
    ``params[w]``, no contacts, every robot's episode fresh, the world not yet gathered."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        d_reset_world(w, rng, params[w], side, pos, vel, theta, omega, active, order, goal, informed, walls, n_walls)
        for i in range(pos.shape[1]):
            contact[w, i] = False
            prev_contact[w, i] = False
            fresh[w, i] = True
        ever[w] = False


@cu.jit
def world_phase(mask, pos, active, goal, params, dist, progress, in_zone, n_in, n_active, team):
    """World ``w`` (a thread each) where ``mask[w]``: ``rendezvous_kernels.world_one``."""
    w = cu.grid(1)
    if w < pos.shape[0] and mask[w]:
        d_world_one(w, pos, active, goal, params[w], dist, progress, in_zone, n_in, n_active, team)


@cu.jit
def agent_phase(mask, with_reward, fresh, pos, vel, theta, active, contact, prev_contact, lidar, goal, informed, dist,
                progress, in_zone, n_in, n_active, team, ever, params, last, rew, stats, obs):
    """Per agent of the worlds where ``mask[w]``: ``rendezvous_kernels.agent_one``."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n and mask[k // n]:
        w = k // n
        d_agent_one(w, k % n, with_reward, fresh, pos, vel, theta, active, contact, prev_contact, lidar, goal,
                    informed, dist, progress, in_zone, n_in, n_active, team, ever, params[w], last, rew, stats, obs)


@cu.jit
def gathered_once(n_in, n_active, ever):
    """World ``w`` (a thread each): ``Rendezvous.step``'s ``ever |= (n_in == n_active) & (n_active > 0)``,
    after every agent of the world read ``ever``."""
    w = cu.grid(1)
    if w < ever.shape[0] and n_in[w] == n_active[w] and n_active[w] > 0:
        ever[w] = True


class RendezvousOnDevice(OnDevice):
    """The rendezvous scenario's state on the GPU and its launches, for ``gpu.env.DeviceEnv``: the same
    arrays as ``scenarios.rendezvous.Rendezvous`` (copied from ``host`` once)."""

    def __init__(self, host, world, launch) -> None:
        super().__init__(host, world, launch)
        new = to_device
        p = host._params[0]     # arena, radius and spacing: the same in every world
        self.arena, self.edge, self.spacing = float(p[rk.P_ARENA]), float(p[rk.P_RADIUS]) + 0.05, float(p[rk.P_SPACING])
        self.side = int(host._side)
        self.goal = new(host.goal)
        self.informed = new(host.informed)
        self.dist = new(host.dist)
        self.progress = new(host._progress)
        self.in_zone = new(host.info["in_zone"])
        self.n_in = new(host.n_in)
        self.n_active = new(host.n_active)
        self.team = new(host._team)
        self.ever = new(host.ever)
        self.last = new(host._last)
        self.fresh = new(host._fresh)
        self.order = new(host._order)
        self.info = {"collided": world.contact, "in_zone": self.in_zone}

    def reset(self, mask) -> None:
        w = self.world
        reset_worlds[self.launch.worlds()](mask, self.rng, self.params, self.side, w.pos, w.vel, w.theta, w.omega,
                                            w.active, self.order, self.goal, self.informed, w.walls, w.n_walls,
                                            w.contact, self.prev_contact, self.fresh, self.ever)

    def respawn(self, mask, refresh) -> None:
        """``Rendezvous.respawn``: its robots restart fresh (never in training: no robot's episode ends early)."""
        w = self.world
        respawn_clear[self.launch.worlds()](mask, self.rng, self.arena, self.edge, self.spacing, w.pos, w.vel, w.theta,
                                            w.omega, w.active, self.prev_contact, self.fresh, refresh)

    def _phases(self, mask, with_reward: bool) -> None:
        w = self.world
        world_phase[self.launch.worlds()](mask, w.pos, w.active, self.goal, self.params, self.dist, self.progress,
                                          self.in_zone, self.n_in, self.n_active, self.team)
        agent_phase[self.launch.agents()](mask, with_reward, self.fresh, w.pos, w.vel, w.theta, w.active, w.contact,
                                          self.prev_contact, w.lidar, self.goal, self.informed, self.dist,
                                          self.progress, self.in_zone, self.n_in, self.n_active, self.team, self.ever,
                                          self.params, self.last, self.reward, self.stats, self.obs)

    def after_step(self) -> None:
        """``Rendezvous.step`` after the physics: both phases, then the 'gathered once' flag."""
        self._phases(self._all, True)
        gathered_once[self.launch.worlds()](self.n_in, self.n_active, self.ever)

    def observe(self, mask) -> None:
        """``Rendezvous._refresh`` for the worlds where ``mask`` (after their lidar was refreshed): distances
        restart from the current positions, observations without reward."""
        self._phases(mask, False)
