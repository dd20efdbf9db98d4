"""Rendezvous: the swarm gathers at a goal that only one robot, chosen at random, can see: it must talk."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from gymnasium import spaces

from ..config import ConfigError, field, require
from ..core.backends import make_world
from . import rendezvous_kernels as rk
from .base import Scenario, ScenarioConfig

# The heuristic's messages carry goal offsets in the world frame divided by this (metres).
MESSAGE_SCALE = 10.0


@dataclass(frozen=True)
class RendezvousConfig(ScenarioConfig):
    """Rendezvous scenario settings (plus every physical constant of ``WorldConfig``). The channel is
    on by default (``comm_dim`` 3, ``comm_range`` 5 m, ``comm_combine`` 'nearest'): without it only the
    informed robot can find the goal; ``comm_dim=0`` switches it off."""

    comm_dim: int = field(3, "Message values each agent sends per step (extra actions in [-1, 1]); 0 = no channel.")
    comm_range: float = field(5.0, "Radio range in metres, centre to centre: only senders this close are heard.")
    comm_combine: Literal["mean", "max", "nearest"] = field(
        "nearest", "How a receiver combines the messages it hears: 'mean' or 'max' per value, or 'nearest': the "
                   "comm_k nearest senders, each with its ego-frame relative position and a mask.")
    max_steps: int = field(200, "Episode length limit (truncation), steps.")
    goal_radius: float = field(1.0, "A robot whose centre is this close to the goal is in the zone, metres.")
    goal_margin: float = field(1.5, "The goal keeps this distance from the border, metres.")
    goal_obs_scale: float = field(5.0, "Goal vector divisor in metres; farther goals keep direction, norm 1.")
    spawn_spacing: float = field(1.0, "Robots start on random distinct cells of a lattice with this spacing "
                                      "covering the whole arena, jittered, metres.")
    progress_reward: float = field(1.0, "Reward per metre the robot itself gets closer to the goal.")
    team_reward: float = field(2.0, "Reward per metre the world's robots got closer to the goal, on average "
                                    "(credit for helping others: a message only pays through them).")
    zone_reward: float = field(0.1, "Reward for every step the robot is in the goal zone.")
    collision_penalty: float = field(0.1, "Penalty for every step in contact with a wall or robot.")
    collision_onset_penalty: float = field(0.5, "One-off penalty on the first step of each contact (a collision).")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("goal_radius", "goal_obs_scale"):
            v = getattr(self, name)
            require(isinstance(v, (int, float)) and math.isfinite(v) and v > 0,
                    f"{name} must be a positive number, got {v!r}")
        for name in ("progress_reward", "team_reward", "zone_reward", "collision_penalty",
                     "collision_onset_penalty"):
            v = getattr(self, name)
            require(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0,
                    f"{name} must be a number >= 0, got {v!r}")
        require(isinstance(self.goal_margin, (int, float)) and math.isfinite(self.goal_margin)
                and self.goal_margin >= self.agent_radius,
                f"goal_margin must be >= agent_radius ({self.agent_radius}), got {self.goal_margin!r}")
        require(isinstance(self.spawn_spacing, (int, float)) and math.isfinite(self.spawn_spacing)
                and self.spawn_spacing >= 2 * self.agent_radius + 0.02,
                f"spawn_spacing must be >= 2 * agent_radius + 0.02 ({2 * self.agent_radius + 0.02:.2f} m) so that "
                f"robots start apart, got {self.spawn_spacing!r}")


class Rendezvous(Scenario):
    """Differential-drive robots gather at a goal that only one of them knows.

    Every world has one goal zone (a disc of ``goal_radius`` = 1 m at a random place) and one
    *informed* robot, drawn at random at every reset: it alone observes the goal (in its own frame);
    the others observe nothing of it. The swarm must gather in the zone, so the informed robot has
    to tell the others where it is, and robots out of its radio range need relays: the task is
    impossible to do well without the communication channel (``comm_*`` settings, on by default:
    3 values per robot, 5 m range, the 4 nearest senders heard with their ego-frame positions).
    Every robot has a compass (its heading), so messages can carry directions in a frame that all
    robots share. No robot's episode ends early.

    ## Observation (float32, 41 values for the default 32 rays, then the channel's block)

    | Index     | Observation                                                        | Range   |
    |-----------|--------------------------------------------------------------------|---------|
    | 0 .. R-1  | lidar distance / ``lidar_range`` (R = ``n_rays`` rays, ray 0 along the heading, counter-clockwise; walls and other robots) | [0, 1], 1 = nothing in range |
    | R, R+1    | ego velocity (forward, left) / ``max_speed``                       | [-1, 1] |
    | R+2, R+3  | compass: cos and sin of the heading (world frame)                  | [-1, 1] |
    | R+4       | informed: 1 for the robot that sees the goal, else 0               | {0, 1}  |
    | R+5, R+6  | goal vector, ego frame (forward, left) / max(``goal_obs_scale``, distance); zeros for the others | [-1, 1] |
    | R+7, R+8  | the same goal vector in the world frame (x, y); zeros for the others | [-1, 1] |
    | R+9 ..    | the channel's received block (``comm_combine`` 'nearest': ``comm_k`` slots of message, sender's ego-frame position / ``comm_range`` and mask; 'mean'/'max': the combined message; then the heard count; README "Communication channels") | see there |

    ## Action (float32, 2 + ``comm_dim`` values)

    | Index     | Action                                  | Range   |
    |-----------|-----------------------------------------|---------|
    | 0         | left wheel power                        | [-1, 1] |
    | 1         | right wheel power                       | [-1, 1] |
    | 2 ..      | the message (``comm_dim`` values)       | [-1, 1] |

    Values outside [-1, 1] are clipped; NaN or inf is an error (drive model: ``core.params``).

    ## Reward (per robot, per step; defaults)

    ``1.0 * (metres the robot got closer to the goal) + 2.0 * (metres the world's robots got
    closer, mean over them) + 0.1 while in the zone - 0.1 while touching a wall or robot - 0.5 on
    the first step of each contact``. The team term is how a message earns anything: it pays the
    sender through the robots it guided.

    ## Episode end

    - Termination: none (``terminated`` is always False).
    - Truncation: ``max_steps`` (200) steps since the world's reset.
    - ``info`` per robot and step: ``collided`` and ``in_zone`` (booleans).

    ## Metrics (per agent-episode, logged as ``env/<metric>``, printed by ``entropy eval``)

    End-of-episode values are written as the change since the robot's previous step, so their sum
    is the value after the episode's last step:

    - ``in_zone_fraction``: 1 if the robot ends the episode in the zone, so the metric is the
      fraction of robots in the zone at the end (the primary metric; the informed robot alone
      gives 1/N);
    - ``gathered_rate``: 1 if every robot of the world ends in the zone (the success statistic);
    - ``gather_time``: steps until every robot of the world was in the zone at once (``max_steps``
      when never);
    - ``goal_distance``: the robot's distance to the goal at the end, metres;
    - ``collisions_per_agent``: contact onsets (first step of each contact with a wall or robot)
      per robot and episode.

    ## Start state

    At every reset the robots are placed on random distinct cells of a lattice covering the arena
    (cells ``spawn_spacing`` = 1 m wide, ``floor((arena - 2 * (agent_radius + 0.05)) /
    spawn_spacing)`` a side, centred), jittered; headings are uniform; the goal is uniform in the
    arena minus ``goal_margin`` (1.5 m); the informed robot is uniform among the N. A robot
    respawned inside a running world (never by this scenario's own rules) starts at a random point
    at least ``spawn_spacing`` from every other robot. The arena has its four border walls only.

    ## Arguments

    ``Rendezvous(config, num_worlds, n_agents, seed)``: see ``RendezvousConfig`` for every field.
    """

    name = "rendezvous"
    Config = RendezvousConfig
    heuristic_uses_channel = True
    info_keys = {"collided": "the robot touched a wall or another robot in this step",
                 "in_zone": "the robot's centre is in the goal zone after this step"}
    episode_stats = {"in_zone": "change of the flag 'in the goal zone' (telescopes to the final value)",
                     "gathered": "change of the flag 'every robot of the world in the zone' (telescopes)",
                     "gather_time": "1 per step until every robot of the world has been in the zone at once",
                     "distance": "change of the distance to the goal, metres (telescopes)",
                     "collisions": "contacts started (first step of each contact with a wall or robot)"}
    metrics = {"in_zone_fraction": ("in_zone", "fraction of the robots in the goal zone at the episode's end"),
               "gathered_rate": ("gathered", "fraction of episodes ending with every robot in the zone"),
               "gather_time": ("gather_time", "steps until every robot was in the zone at once (max_steps: never)"),
               "goal_distance": ("distance", "distance to the goal at the episode's end, metres"),
               "collisions_per_agent": ("collisions", "contact onsets per agent-episode")}
    success_stat = "gathered"
    # reward weights a curriculum may change during a run, per world (columns of self._params [E, P])
    settings = {"progress_reward": rk.P_PROGRESS, "team_reward": rk.P_TEAM, "zone_reward": rk.P_ZONE,
                "collision_penalty": rk.P_COLL, "collision_onset_penalty": rk.P_ONSET}
    per_world_settings = True

    @classmethod
    def check_settings(cls, config: RendezvousConfig, values: dict[str, float]) -> None:
        """Beyond finite numbers: every reward weight >= 0 (as in ``RendezvousConfig``)."""
        super().check_settings(config, values)
        for name, v in values.items():
            if v < 0:
                raise ConfigError(f"setting {name} must be >= 0, got {v!r}")

    def __init__(self, config: RendezvousConfig, num_worlds: int, n_agents: int, seed: int | None = None):
        self.config = config
        if isinstance(n_agents, (int, np.integer)) and n_agents == 1:
            raise ConfigError("rendezvous needs n_agents >= 2 (one robot has nobody to tell), got 1")
        self.world = w = make_world(config, num_worlds, n_agents, max_walls=4)
        E, N, R = w.num_worlds, w.n_agents, config.n_rays
        margin = config.agent_radius + 0.05
        self._side = int((w.arena - 2 * margin) // config.spawn_spacing)
        if self._side ** 2 < N:
            raise ConfigError(
                f"arena of {w.arena:.1f} m is too small for {N} agents: the spawn lattice has {self._side} x "
                f"{self._side} cells of spawn_spacing {config.spawn_spacing} m; raise arena_size or "
                f"area_per_agent, or lower n_agents or spawn_spacing")
        if w.arena - 2 * config.goal_margin <= 0:
            raise ConfigError(f"arena of {w.arena:.1f} m leaves no room for the goal inside goal_margin "
                              f"({config.goal_margin} m each side); raise arena_size or lower goal_margin")
        self.allocate(R + 9, seed)                           # obs [E, N, R+9], reward, terminated, stats [5, E, N]
        self.info = {"collided": w.contact, "in_zone": np.zeros((E, N), np.bool_)}   # [E, N] each
        self.goal = np.zeros((E, 2), np.float32)            # [E, 2] the goal's centre
        self.informed = np.zeros(E, np.int64)               # [E] index of the robot that sees the goal
        self.dist = np.zeros((E, N), np.float32)            # [E, N] distance to the goal
        self._progress = np.zeros((E, N), np.float32)       # [E, N] metres closer in the last step
        self.n_in = np.zeros(E, np.int32)                   # [E] robots in the zone
        self.n_active = np.zeros(E, np.int32)               # [E] active robots
        self._team = np.zeros(E, np.float64)                # [E] mean progress of the world's robots
        self.ever = np.zeros(E, np.bool_)                   # [E] every robot has been in the zone at once
        self._last = np.zeros((3, E, N), np.float64)        # [3, E, N] last end-of-episode values written
        self._fresh = np.ones((E, N), np.bool_)             # [E, N] the agent's episode has had no step
        self.prev_contact = np.zeros((E, N), np.bool_)      # [E, N] contact flags of the last step
        self._order = np.zeros((E, self._side ** 2), np.int64)  # [E, cells] scratch permutation
        p = np.zeros(rk.N_PARAMS, np.float64)
        p[rk.P_ARENA] = w.arena
        p[rk.P_RADIUS] = config.agent_radius
        p[rk.P_SPACING] = config.spawn_spacing
        p[rk.P_VMAX] = config.max_speed
        p[rk.P_GOAL_R] = config.goal_radius
        p[rk.P_MARGIN] = config.goal_margin
        p[rk.P_GOAL_SCALE] = config.goal_obs_scale
        p[rk.P_PROGRESS] = config.progress_reward
        p[rk.P_TEAM] = config.team_reward
        p[rk.P_ZONE] = config.zone_reward
        p[rk.P_COLL] = config.collision_penalty
        p[rk.P_ONSET] = config.collision_onset_penalty
        self._params = np.repeat(p[None], E, axis=0)         # [E, P] each world's settings (curricula)

    # ------------------------------------------------------------------ spec
    def observation_space(self) -> spaces.Box:
        """Lidar [0, 1], ego velocity [-1, 1], compass [-1, 1], informed flag [0, 1], goal vector in the ego
        and the world frame [-1, 1]."""
        R = self.config.n_rays
        low = np.concatenate([np.zeros(R), -np.ones(4), [0.0], -np.ones(4)]).astype(np.float32)
        high = np.ones(R + 9, np.float32)
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def action_space(self) -> spaces.Box:
        """Left and right wheel power."""
        return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)

    # ------------------------------------------------------------------ episodes
    def reset(self, mask: np.ndarray | None = None) -> None:
        w = self.world
        if mask is None:
            mask = np.ones(w.num_worlds, np.bool_)
        rk.reset_worlds(mask, self.rng, self._params, self._side, w.pos, w.vel, w.theta, w.omega, w.active,
                        self._order, self.goal, self.informed, w.walls, w.n_walls)
        w.contact[mask] = False
        self.prev_contact[mask] = False
        self._fresh[mask] = True
        self.ever[mask] = False
        w.sync(mask)
        self._refresh()

    def respawn(self, mask: np.ndarray) -> None:
        w = self.world
        rk.respawn_agents(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active)
        self.prev_contact[mask] = False
        self._fresh[mask] = True
        w.sync(mask.any(axis=1))
        self._refresh()

    def _refresh(self) -> None:
        """Lidar, distances and observations from the current state (after a reset or respawn): the
        distances restart from the new positions, so no progress is scored across a (re)start."""
        w = self.world
        w.refresh_lidar()
        rk.world_phase(w.pos, w.active, self.goal, self._params, self.dist, self._progress, self.info["in_zone"],
                       self.n_in, self.n_active, self._team)
        self._agents(False)

    def _agents(self, with_reward: bool) -> None:
        w = self.world
        rk.agent_phase(with_reward, self._fresh, w.pos, w.vel, w.theta, w.active, w.contact, self.prev_contact,
                       w.lidar, self.goal, self.informed, self.dist, self._progress, self.info["in_zone"], self.n_in,
                       self.n_active, self._team, self.ever, self._params, self._last, self.reward, self.stats,
                       self.obs)

    def step(self, actions: np.ndarray) -> None:
        w = self.world
        w.step(actions)
        rk.world_phase(w.pos, w.active, self.goal, self._params, self.dist, self._progress, self.info["in_zone"],
                       self.n_in, self.n_active, self._team)
        self._agents(True)
        self.ever |= (self.n_in == self.n_active) & (self.n_active > 0)

    # ------------------------------------------------------------------ policies and drawing
    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """The informed robot drives to the goal and broadcasts it; the others steer to the goal
        they hear of and relay it; a robot that hears nothing explores (``rendezvous_heuristic``)."""
        return rendezvous_heuristic(obs, self.config)

    def draw(self, canvas, world_index: int) -> None:
        """The goal zone (ring of ``goal_radius``) and a ring around the informed robot."""
        e = world_index
        canvas.ring(self.goal[e], self.config.goal_radius, (230, 150, 20))
        i = int(self.informed[e])
        if self.world.active[e, i]:
            canvas.ring(self.world.pos[e, i], 0.35, (230, 150, 20), width_frac=0.2)


def rendezvous_heuristic(obs: np.ndarray, config: RendezvousConfig) -> np.ndarray:
    """Scripted rendezvous that uses the channel, batched over any leading axes of ``obs``.

    ``obs`` is the whole observation (the channel's block included when ``comm_dim > 0``); the
    actions are the wheels followed by ``comm_dim`` message values. Protocol (``comm_dim >= 3``;
    with fewer values the messages are zeros and nothing is heard): a robot that knows where the goal
    is sends (confidence x goal offset from itself in the world frame / ``MESSAGE_SCALE``,
    confidence); the informed robot has confidence 1, a relay 0.9 times the best confidence it
    hears, a robot that knows nothing 0. With ``comm_combine = 'nearest'`` a receiver turns each
    heard estimate into its own (sender's position + sender's offset, rotated with its compass) and
    takes their mean weighted by confidence^8; with 'mean' or 'max' it takes the combined offset
    divided by the combined confidence (the sender's own position unknown: off by up to
    ``comm_range``). A robot that knows the goal turns towards it and drives slower as it gets
    close (the informed robot stops on the goal, the others within half the zone's radius); a robot
    that knows nothing explores on a wide spiral. Lidar hits within 0.4 m of the body push it away.
    """
    obs = np.asarray(obs, np.float32)
    R = config.n_rays
    D0 = R + 9
    lead = obs.shape[:-1]
    c, s = obs[..., R + 2], obs[..., R + 3]
    informed = obs[..., R + 4] > 0.5
    g = obs[..., R + 5:R + 7]
    n = np.linalg.norm(g, axis=-1, keepdims=True)
    scale = np.where(n < 0.999, 1.0, 1.0 / np.maximum(n, 1e-6)) * config.goal_obs_scale  # metres per unit
    est = np.where(informed[..., None], g * scale, 0.0)                         # ego frame, metres
    conf = informed.astype(np.float32)
    known = informed.copy()
    C = config.comm_dim
    talk = C >= 3 and obs.shape[-1] > D0
    if talk:
        if config.comm_combine == "nearest":
            K = config.comm_k
            slots = obs[..., D0:D0 + K * (C + 3)].reshape(lead + (K, C + 3))
            heard_conf = np.clip(slots[..., 2], 0.0, 1.0) * (slots[..., C + 2] > 0.5)   # [..., K]
            safe = np.maximum(heard_conf, 1e-6)
            wx, wy = slots[..., 0] * MESSAGE_SCALE / safe, slots[..., 1] * MESSAGE_SCALE / safe  # world frame
            rx, ry = slots[..., C] * config.comm_range, slots[..., C + 1] * config.comm_range
            best = heard_conf.max(-1)
            wgt = heard_conf ** 8
        else:
            heard_conf = np.clip(obs[..., D0 + 2:D0 + 3], 0.0, 1.0)                    # [..., 1] combined
            safe = np.maximum(heard_conf, 1e-6)
            wx, wy = obs[..., D0:D0 + 1] * MESSAGE_SCALE / safe, obs[..., D0 + 1:D0 + 2] * MESSAGE_SCALE / safe
            rx = ry = np.zeros_like(wx)
            best = heard_conf[..., 0]
            wgt = (heard_conf > 1e-3).astype(np.float32)
        cc, ss = c[..., None], s[..., None]
        cand_x = rx + (cc * wx + ss * wy)                                      # ego frame: sender + its offset
        cand_y = ry + (-ss * wx + cc * wy)
        wsum = wgt.sum(-1)
        heard = (wsum > 1e-6) & ~informed
        inv = 1.0 / np.maximum(wsum, 1e-12)
        relay = np.stack([(cand_x * wgt).sum(-1) * inv, (cand_y * wgt).sum(-1) * inv], axis=-1)
        est = np.where(heard[..., None], relay, est)
        conf = np.where(informed, 1.0, np.where(heard, 0.9 * best, 0.0)).astype(np.float32)
        known = informed | heard
    d = np.linalg.norm(est, axis=-1)
    lidar = obs[..., :R] * config.lidar_range
    ang = 2 * np.pi * np.arange(R) / R
    ray_dir = np.stack([np.cos(ang), np.sin(ang)], axis=1)                      # [R, 2]
    near = np.clip((0.4 - (lidar - config.agent_radius)) / 0.4, 0.0, 1.0) ** 2
    avoid = -(near @ ray_dir)
    explore = np.broadcast_to(np.array([1.0, 0.25], np.float32), est.shape)
    to_goal = est / np.maximum(d, 1e-6)[..., None]
    desired = np.where(known[..., None], to_goal, explore) + 1.0 * avoid
    err = np.arctan2(desired[..., 1], desired[..., 0])
    stop = np.where(informed, 0.1, 0.5 * config.goal_radius)
    slow = np.where(known, np.clip((d - stop) / 1.0, 0.0, 1.0), 0.7)
    forward = np.clip(np.cos(err), 0.0, 1.0) * 0.8 * slow
    turn = np.clip(1.5 * err, -1.0, 1.0) * np.maximum(slow, 0.3)
    act = np.stack([forward - turn, forward + turn], axis=-1)
    act = np.clip(act, -1.0, 1.0).astype(np.float32)
    if C == 0:
        return act
    msg = np.zeros(lead + (C,), np.float32)
    if talk:
        ex, ey = est[..., 0], est[..., 1]                                       # ego -> world frame
        msg[..., 0] = np.clip((c * ex - s * ey) / MESSAGE_SCALE, -1.0, 1.0) * conf
        msg[..., 1] = np.clip((s * ex + c * ey) / MESSAGE_SCALE, -1.0, 1.0) * conf
        msg[..., 2] = conf
    return np.concatenate([act, msg], axis=-1)
