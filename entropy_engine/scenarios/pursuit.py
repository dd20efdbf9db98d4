"""Pursuit: learning pursuers capture scripted evaders that flee; a capture takes two pursuers at once."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from ..config import ConfigError, field, require
from ..core.backends import make_world
from ..core.neighbours import NeighbourSensor
from . import pursuit_kernels as pk
from .base import Scenario, ScenarioConfig
from .scripted import ScriptedRobots, check_scripted


@dataclass(frozen=True)
class PursuitConfig(ScenarioConfig):
    """Pursuit scenario settings (plus every physical constant of ``WorldConfig``)."""

    n_evaders: int = field(3, "Scripted evaders per world (robots N .. N+M-1 of the world; not agents).")
    capture_range: float = field(0.8, "An evader is captured when enough pursuers' centres are this close to "
                                      "its centre at once, metres.")
    capture_count: int = field(2, "Pursuers needed within capture_range at once for a capture (>= 2).")
    pursuer_power: float = field(0.8, "The pursuers' wheel powers are multiplied by this (top speed "
                                      "pursuer_power * max_speed).")
    evader_power: float = field(1.0, "The evaders' wheel powers are multiplied by this (faster than the "
                                     "pursuers by default).")
    wall_margin: float = field(1.0, "Evaders steer away from borders closer than this, metres.")
    n_neighbours: int = field(6, "K: neighbours in the observation (nearest first, padded and masked).")
    sense_range: float = field(4.0, "Neighbour sensing range (pursuers and evaders alike), metres.")
    evader_obs_scale: float = field(5.0, "Nearest-evader vector divisor in metres; farther evaders keep "
                                         "direction, norm 1.")
    spawn_spacing: float = field(1.0, "Robots start at least this far apart (centre to centre), metres.")
    respawn_clearance: float = field(2.0, "A captured evader reappears at least this far from every robot, metres.")
    capture_reward: float = field(5.0, "Reward to each pursuer within capture_range of a captured evader.")
    team_reward: float = field(1.0, "Reward to every pursuer of the world per capture.")
    approach_reward: float = field(0.2, "Reward per metre the pursuer got closer to its nearest evader (shaping).")
    collision_penalty: float = field(0.05, "Penalty for every step in contact with a wall or robot.")
    collision_onset_penalty: float = field(0.2, "One-off penalty on the first step of each contact.")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_evaders", "n_neighbours"):
            v = getattr(self, name)
            require(isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                    f"{name} must be an integer >= 1, got {v!r}")
        require(isinstance(self.capture_count, int) and not isinstance(self.capture_count, bool)
                and self.capture_count >= 2, f"capture_count must be an integer >= 2, got {self.capture_count!r}")
        for name in ("capture_range", "sense_range", "evader_obs_scale", "wall_margin", "spawn_spacing",
                     "respawn_clearance"):
            v = getattr(self, name)
            require(math.isfinite(v) and v > 0, f"{name} must be a positive number, got {v!r}")
        for name in ("pursuer_power", "evader_power"):
            v = getattr(self, name)
            require(math.isfinite(v) and 0 < v <= 1, f"{name} must be in (0, 1], got {v!r}")
        for name in ("capture_reward", "team_reward", "approach_reward", "collision_penalty",
                     "collision_onset_penalty"):
            v = getattr(self, name)
            require(math.isfinite(v) and v >= 0, f"{name} must be a number >= 0, got {v!r}")
        require(self.capture_range > 2 * self.agent_radius,
                f"capture_range must exceed 2 * agent_radius ({2 * self.agent_radius} m, contact), got "
                f"{self.capture_range!r}")
        require(self.spawn_spacing >= 2 * self.agent_radius + 0.02,
                f"spawn_spacing must be >= 2 * agent_radius + 0.02 ({2 * self.agent_radius + 0.02:.2f} m), got "
                f"{self.spawn_spacing!r}")


class Pursuit(Scenario):
    """Pursuers (the learners) capture evaders (scripted robots) that flee; two pursuers must be close at once.

    Every world holds ``n_agents`` pursuers and ``n_evaders`` (M = 3) evaders, all ordinary robots
    for the physics, the lidar and the neighbour sensor. The evaders are not agents of any env:
    their wheel powers come from a compiled policy inside the step (``scenarios.scripted``): each
    flees from the pursuers it senses (within ``sense_range``, 4 m; weighted towards the nearest),
    steers away from borders closer than ``wall_margin`` (1 m), backs up when the way out is behind
    it and cruises at 40 % power when no pursuer is in sight. Evaders drive at full power
    (``evader_power`` 1.0: 1.5 m/s), pursuers at ``pursuer_power`` (0.8: 1.2 m/s), so one pursuer
    cannot run an evader down. An evader is captured when at least ``capture_count`` (2) pursuers
    have their centres within ``capture_range`` (0.8 m) of its centre at the end of a step; it
    reappears at the start of the next step at a random point at least ``respawn_clearance``
    (2 m) from every robot (the world's own random stream).

    ## Observation (float32, 72 values for the default 32 rays and K = 6 neighbours)

    | Index            | Observation                                                   | Range   |
    |------------------|---------------------------------------------------------------|---------|
    | 0 .. R-1         | lidar distance / ``lidar_range`` (R = ``n_rays`` rays, ray 0 along the heading, counter-clockwise; walls, pursuers and evaders) | [0, 1], 1 = nothing in range |
    | R, R+1           | ego velocity (forward, left) / ``max_speed``                  | [-1, 1] |
    | R+2+6k, R+3+6k   | neighbour k's centre minus own, ego frame, / ``sense_range``   | [-1, 1] |
    | R+4+6k, R+5+6k   | neighbour k's velocity minus own, ego frame, / ``max_speed``   | [-2, 2] |
    | R+6+6k           | neighbour k's mask: 1 = a neighbour, 0 = padding (all six zero) | {0, 1} |
    | R+7+6k           | neighbour k is an evader (1) or a fellow pursuer (0)           | {0, 1}  |
    | R+2+6K, R+3+6K   | nearest evader's centre minus own, ego frame (forward, left) / max(``evader_obs_scale``, distance) | [-1, 1] |

    Neighbours are the ``n_neighbours`` (K = 6) nearest other robots, pursuers or evaders, within
    ``sense_range``, nearest first (``core.neighbours.NeighbourSensor`` with the evader flag as an
    attribute), for k = 0 .. K-1. The nearest-evader vector is known at any distance (a tracker).
    Every entry is clipped to its range.

    ## Action (float32, 2 values)

    | Index | Action            | Range   |
    |-------|-------------------|---------|
    | 0     | left wheel power  | [-1, 1] |
    | 1     | right wheel power | [-1, 1] |

    Values outside [-1, 1] are clipped; NaN or inf is an error. The world applies them times
    ``pursuer_power`` (drive model: ``core.params``).

    ## Reward (per pursuer, per step; defaults)

    ``5.0 per capture the pursuer took part in (within capture_range of the captured evader)
    + 1.0 to every pursuer per capture in its world + 0.2 * (metres the pursuer got closer to the
    evader that was nearest at the last step) - 0.05 while touching a wall or robot - 0.2 on the
    first step of each contact``. The approach term is a shaping term (``set_shaping_scale``);
    it is skipped when that evader was captured and reappeared elsewhere.

    ## Episode end

    - Termination: none (``terminated`` is always False).
    - Truncation: ``max_steps`` (500) steps since the world's reset.
    - ``info`` per pursuer and step: ``collided`` (touched a wall or robot) and ``captures`` (the
      number of captures it took part in this step).

    ## Metrics (per agent-episode, logged as ``env/<metric>``, printed by ``entropy eval``)

    - ``captures_per_episode``: captures in the pursuer's world during the episode (every pursuer
      counts each one, so the metric is captures per world-episode);
    - ``first_capture_steps``: steps until the world's first capture (the step of the first
      capture, 1-based; the episode's length if there was none; lower is better);
    - ``capture_assists``: captures the pursuer itself took part in per episode;
    - ``collisions_per_agent``: contact onsets per pursuer and episode.

    ``success_stat`` is ``captures``: an episode succeeds when its world captured at least once.

    ## Start state

    At every reset the pursuers, then the evaders, are placed one by one at random points at
    least ``spawn_spacing`` (1 m) from the robots already placed and 0.25 m from the border (64
    rejection tries each), at rest with uniform headings. A pursuer respawned inside a running world
    (never by this scenario's own rules) starts the same way. The arena has its four border walls
    only; its side is ``arena_for(n_agents + n_evaders)``.

    ## Arguments

    ``Pursuit(config, num_worlds, n_agents, seed)``: ``n_agents`` pursuers (>= ``capture_count``);
    see ``PursuitConfig`` for every field.
    """

    name = "pursuit"
    Config = PursuitConfig
    info_keys = {"collided": "the robot touched a wall or another robot in this step",
                 "captures": "captures the pursuer took part in this step"}
    episode_stats = {"captures": "captures in the pursuer's world this step",
                     "first_capture": "1 while the world had no capture before this step",
                     "assists": "captures the pursuer took part in this step",
                     "collisions": "contacts started (first step of each contact with a wall or robot)"}
    metrics = {"captures_per_episode": ("captures", "captures per world-episode"),
               "first_capture_steps": ("first_capture", "steps until the world's first capture (episode "
                                                        "length if none)"),
               "capture_assists": ("assists", "captures the pursuer took part in per episode"),
               "collisions_per_agent": ("collisions", "contact onsets per agent-episode")}
    success_stat = "captures"
    # settings a curriculum may change during a run, per world (columns of self._params [E, P])
    settings = {"capture_reward": pk.P_CAP_REW, "team_reward": pk.P_TEAM_REW, "approach_reward": pk.P_APPROACH,
                "collision_penalty": pk.P_COLL, "collision_onset_penalty": pk.P_ONSET,
                "evader_power": pk.P_EV_POWER}
    shaping_terms = ("approach_reward",)
    per_world_settings = True

    @classmethod
    def check_settings(cls, config: PursuitConfig, values: dict[str, float]) -> None:
        """Beyond finite numbers: reward weights >= 0 and ``0 < evader_power <= 1`` (as in ``PursuitConfig``)."""
        super().check_settings(config, values)
        for name, v in values.items():
            if name == "evader_power" and not 0 < v <= 1:
                raise ConfigError(f"setting evader_power must be in (0, 1], got {v!r}")
            if v < 0:
                raise ConfigError(f"setting {name} must be >= 0, got {v!r}")

    def __init__(self, config: PursuitConfig, num_worlds: int, n_agents: int, seed: int | None = None):
        self.config = config
        check_scripted(n_agents, config.n_evaders, min_learners=config.capture_count)
        M = config.n_evaders
        self.n_scripted = M
        self.world = w = make_world(config, num_worlds, n_agents + M, max_walls=4)
        E, N, R, K = w.num_worlds, n_agents, config.n_rays, config.n_neighbours
        self._check_room(w.arena, N + M)
        self.allocate(R + 4 + pk.SLOT * K, seed)             # obs [E, N, R+4+6K], reward, terminated, stats [4, E, N]
        self.scripted = ScriptedRobots(w, M)
        self.sensor = NeighbourSensor(w, K, config.sense_range, n_attributes=1)
        self.info = {"collided": np.zeros((E, N), np.bool_), "captures": np.zeros((E, N), np.float32)}
        self.captured = np.zeros((E, M), np.bool_)          # [E, M] captured in the last step, reappears next
        self.moved = np.zeros((E, M), np.bool_)             # [E, M] reappeared at the start of this step
        self.caps_now = np.zeros(E, np.float64)             # [E] captures in the last step
        self.caps_total = np.zeros(E, np.int64)             # [E] captures since the world's reset
        self._first_flag = np.zeros(E, np.bool_)            # [E] no capture before the last step
        self.target = np.full((E, N), -1, np.int64)         # [E, N] nearest evader (robot id) at the last obs
        self.dist = np.zeros((E, N), np.float64)            # [E, N] its distance then
        self.prev_contact = np.zeros((E, N), np.bool_)      # [E, N] contact flags of the last step
        p = np.zeros(pk.N_PARAMS, np.float64)
        p[pk.P_ARENA] = w.arena
        p[pk.P_RADIUS] = config.agent_radius
        p[pk.P_SPACING] = config.spawn_spacing
        p[pk.P_CLEAR] = config.respawn_clearance
        p[pk.P_CAP_R] = config.capture_range
        p[pk.P_CAP_N] = config.capture_count
        p[pk.P_VMAX] = config.max_speed
        p[pk.P_SENSE] = config.sense_range
        p[pk.P_EV_POWER] = config.evader_power
        p[pk.P_WALL_M] = config.wall_margin
        p[pk.P_EV_SCALE] = config.evader_obs_scale
        p[pk.P_CAP_REW] = config.capture_reward
        p[pk.P_TEAM_REW] = config.team_reward
        p[pk.P_COLL] = config.collision_penalty
        p[pk.P_ONSET] = config.collision_onset_penalty
        self._params = np.repeat(p[None], E, axis=0)         # [E, P] each world's settings (curricula)
        self.set_shaping_scale(1.0)

    # ------------------------------------------------------------------ spec
    def observation_space(self) -> spaces.Box:
        """Lidar [0, 1], ego velocity [-1, 1], K neighbour slots (position [-1, 1], velocity [-2, 2],
        mask and evader flag [0, 1]), nearest-evader vector [-1, 1]."""
        R, K = self.config.n_rays, self.config.n_neighbours
        slot_lo = np.array([-1, -1, -2, -2, 0, 0], np.float32)
        slot_hi = np.array([1, 1, 2, 2, 1, 1], np.float32)
        low = np.concatenate([np.zeros(R), -np.ones(2), np.tile(slot_lo, K), -np.ones(2)]).astype(np.float32)
        high = np.concatenate([np.ones(R), np.ones(2), np.tile(slot_hi, K), np.ones(2)]).astype(np.float32)
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def action_space(self) -> spaces.Box:
        """Left and right wheel power."""
        return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)

    def _check_room(self, arena: float, n_robots: int) -> None:
        """Refuse arenas whose free area cannot hold the robots ``spawn_spacing`` apart, or too small
        for an evader to keep ``wall_margin`` from the borders with room to run."""
        cfg = self.config
        need = n_robots * cfg.spawn_spacing ** 2
        free = (arena - 0.5) ** 2
        if need > 0.5 * free:
            raise ConfigError(
                f"arena of {arena:.1f} m is too small for {n_robots} robots (pursuers + {cfg.n_evaders} evaders) "
                f"spawn_spacing {cfg.spawn_spacing} m apart (they need {need:.0f} m^2, more than half of the "
                f"{free:.0f} m^2 free); raise arena_size or area_per_agent, or lower n_agents, n_evaders or "
                f"spawn_spacing")
        if arena < 2 * cfg.wall_margin + 2 * cfg.capture_range:
            raise ConfigError(
                f"arena of {arena:.1f} m leaves evaders no room between their wall margins ({cfg.wall_margin} m "
                f"each side); raise arena_size or lower wall_margin")

    # ------------------------------------------------------------------ episodes
    def reset(self, mask: np.ndarray | None = None) -> None:
        w = self.world
        if mask is None:
            mask = np.ones(w.num_worlds, np.bool_)
        a = w.arena
        pk.reset_worlds(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active, self.captured,
                        self.caps_total)
        w.walls[mask, :4] = np.array([[0, 0, a, 0], [a, 0, a, a], [a, a, 0, a], [0, a, 0, 0]], np.float32)
        w.n_walls[mask] = 4
        w.contact[mask] = False
        self.prev_contact[mask] = False
        w.sync(mask)
        self._refresh()

    def respawn(self, mask: np.ndarray) -> None:
        w = self.world
        pk.respawn_pursuers(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active)
        self.prev_contact[mask] = False
        w.sync(mask.any(axis=1))
        self._refresh()

    def _refresh(self) -> None:
        """Lidar, neighbours and observations from the current state (after a reset or respawn)."""
        w = self.world
        w.refresh_lidar()
        self.sensor.sense(attributes=self.scripted.kind)
        self._agents(False)

    def _agents(self, with_reward: bool) -> None:
        w = self.world
        pk.agent_phase(with_reward, self.n_learners, w.pos, w.vel, w.theta, w.active, w.contact, self.prev_contact,
                       w.lidar, self.sensor.out, self.info["captures"], self.caps_now, self._first_flag,
                       self.moved, self._params, self.target, self.dist, self.info["collided"], self.reward,
                       self.stats, self.obs)

    def step(self, actions: np.ndarray) -> None:
        w, N = self.world, self.n_learners
        pk.respawn_captured(self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active, self.captured,
                            self.moved)
        if self.moved.any():
            w.sync(self.moved.any(axis=1))
            self.sensor.sense(attributes=self.scripted.kind)   # the evaders flee from what they sense now
        pk.evader_actions(N, self.rng, self._params, w.pos, w.theta, w.active, self.sensor.indices,
                          self.scripted.actions)
        w.step(self.scripted.world_actions(actions, self.config.pursuer_power))
        self.sensor.sense(attributes=self.scripted.kind)
        pk.detect_captures(N, self._params, w.pos, w.active, self.captured, self.info["captures"], self.caps_now,
                           self.caps_total, self._first_flag)
        self._agents(True)

    # ------------------------------------------------------------------ policies and drawing
    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """Each pursuer heads for its nearest evader, offset sideways away from the fellow pursuers
        near it so that pairs close in from different sides."""
        return pursuit_heuristic(obs, self.config)

    def draw(self, canvas, world_index: int) -> None:
        """Every active evader's capture range (a red ring); the renderer draws the evaders black."""
        w, N = self.world, self.n_learners
        for j in range(N, w.n_agents):
            if w.active[world_index, j]:
                canvas.ring(w.pos[world_index, j], self.config.capture_range, (220, 60, 60), width_frac=0.08)


def pursuit_heuristic(obs: np.ndarray, config: PursuitConfig) -> np.ndarray:
    """Scripted pursuers, batched over any leading axes of ``obs``.

    In the robot's frame: the nearest evader's position (from its neighbour slot when it is in
    sensing range, else the tracker vector); a sideways offset of up to 0.9 m away from every
    fellow pursuer that is within 2.5 m of the same evader (so two pursuers flank it from opposite
    sides), fading as the pursuer gets within 1.2 m; separation from pursuers closer than 0.6 m;
    wall avoidance from lidar hits within 0.5 m that are not the evader. The robot turns towards
    the point and drives at full power times cos(heading error).
    """
    obs = np.asarray(obs, np.float32)
    R, K, S = config.n_rays, config.n_neighbours, pk.SLOT
    rng_ = config.sense_range
    lead = obs.shape[:-1]
    nb = obs[..., R + 2:R + 2 + S * K].reshape(lead + (K, S))
    mask = nb[..., 4]
    is_ev = nb[..., 5] * mask                                               # [..., K]
    mate = mask * (1.0 - nb[..., 5])
    rel = nb[..., 0:2] * rng_                                               # [..., K, 2] metres
    tr = obs[..., R + 2 + S * K:R + 4 + S * K]                              # tracker vector
    tn = np.linalg.norm(tr, axis=-1, keepdims=True)
    tracked = np.where(tn < 0.999, tr * config.evader_obs_scale, tr / np.maximum(tn, 1e-6) * 8.0)
    # nearest sensed evader (slots are nearest first), else the tracker
    first_ev = np.argmax(is_ev, axis=-1)                                    # [...]
    has_ev = is_ev.max(axis=-1) > 0
    ev_slot = np.take_along_axis(rel, first_ev[..., None, None], axis=-2)[..., 0, :]
    target = np.where(has_ev[..., None], ev_slot, tracked)                  # [..., 2] metres, ego frame
    d_t = np.linalg.norm(target, axis=-1, keepdims=True)
    t_dir = target / np.maximum(d_t, 1e-6)
    perp = np.stack([-t_dir[..., 1], t_dir[..., 0]], axis=-1)               # left of the line to the evader
    near_ev = mate * (np.linalg.norm(rel - target[..., None, :], axis=-1) < 2.5)
    side = (rel * perp[..., None, :]).sum(-1)                               # [..., K] mates' side (+ left)
    push_side = -(near_ev * np.sign(side + 1e-3)).sum(-1, keepdims=True)    # go to the other side
    fade = np.clip((d_t - 1.2) / 1.5, 0.0, 1.0)
    aim = target + 0.9 * np.clip(push_side, -1.0, 1.0) * fade * perp
    d_m = np.linalg.norm(rel, axis=-1)
    sep = -((rel / np.maximum(d_m, 1e-3)[..., None]) * (mate * np.clip((0.6 - d_m) / 0.6, 0, 1))[..., None]).sum(-2)
    lidar = obs[..., :R] * config.lidar_range
    ang = 2 * np.pi * np.arange(R) / R
    ray_dir = np.stack([np.cos(ang), np.sin(ang)], axis=1)                  # [R, 2]
    toward = t_dir @ ray_dir.T                                              # [..., R] cos to the target
    near = np.clip((0.5 - (lidar - config.agent_radius)) / 0.5, 0.0, 1.0) ** 2 * (toward < 0.7)
    avoid = -(near @ ray_dir)
    a_dir = aim / np.maximum(np.linalg.norm(aim, axis=-1, keepdims=True), 1e-6)
    desired = a_dir + 1.5 * sep + 1.0 * avoid
    err = np.arctan2(desired[..., 1], desired[..., 0])
    forward = np.clip(np.cos(err), 0.0, 1.0)
    turn = np.clip(2.0 * err, -1.0, 1.0)
    act = np.stack([forward - turn, forward + turn], axis=-1)
    return np.clip(act, -1.0, 1.0).astype(np.float32)
