"""Formation: the swarm holds a shape (ring, line or wedge) around a reference point that moves."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from ..config import ConfigError, field, require
from ..core.backends import make_world
from ..core.neighbours import NeighbourSensor
from . import formation_kernels as fk
from .base import Scenario, ScenarioConfig

SHAPES = ("ring", "line", "wedge")   # the order of the observation's one-hot
WEDGE_HALF_ANGLE = math.radians(40.0)  # angle of each wedge arm to the wedge's axis


@dataclass(frozen=True)
class FormationConfig(ScenarioConfig):
    """Formation scenario settings (plus every physical constant of ``WorldConfig``)."""

    n_neighbours: int = field(6, "K: neighbours in the observation (nearest first, padded and masked).")
    sense_range: float = field(3.0, "Neighbour sensing range, metres, centre to centre.")
    slot_spacing: float = field(0.6, "Distance between neighbouring slots of a shape, metres.")
    slot_tolerance: float = field(0.3, "A robot is in its slot when its centre is this close, metres.")
    wall_clearance: float = field(0.1, "Every slot keeps this gap between a robot in it and the border, metres.")
    ref_speed: float = field(0.3, "Speed of the reference point, m/s.")
    ref_turn_rate: float = field(0.5, "Largest turn rate of the reference point's heading, rad/s.")
    ref_waypoint_radius: float = field(0.5, "The reference picks a new waypoint when this close to its own, metres.")
    ref_waypoint_min_distance: float = field(2.0, "A new waypoint is at least this far from the reference, "
                                                  "metres (when its box allows it).")
    ref_obs_scale: float = field(5.0, "Reference vector divisor in metres; farther keeps direction, norm 1.")
    slot_obs_scale: float = field(2.0, "Slot vector divisor in metres; farther keeps direction, norm 1.")
    spawn_spacing: float = field(0.6, "Robots start at random points at least this far apart, metres.")
    error_penalty: float = field(0.1, "Penalty per step per metre of distance to the robot's assigned slot.")
    slot_reward: float = field(0.05, "Reward per step while the robot is within slot_tolerance of its slot.")
    collision_penalty: float = field(0.5, "Penalty for every step in contact with a wall or robot.")
    collision_onset_penalty: float = field(2.0, "One-off penalty on the first step of each contact (a collision).")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(isinstance(self.n_neighbours, int) and self.n_neighbours >= 1,
                f"n_neighbours must be an integer >= 1, got {self.n_neighbours!r}")
        for name in ("sense_range", "slot_tolerance", "ref_waypoint_radius", "ref_obs_scale", "slot_obs_scale",
                     "ref_turn_rate"):
            v = getattr(self, name)
            require(math.isfinite(v) and v > 0, f"{name} must be a positive number, got {v!r}")
        for name in ("wall_clearance", "ref_speed", "ref_waypoint_min_distance", "error_penalty", "slot_reward",
                     "collision_penalty", "collision_onset_penalty"):
            v = getattr(self, name)
            require(math.isfinite(v) and v >= 0, f"{name} must be a number >= 0, got {v!r}")
        require(math.isfinite(self.ref_speed) and self.ref_speed < self.max_speed,
                f"ref_speed must be below max_speed ({self.max_speed} m/s) so robots can keep up, got "
                f"{self.ref_speed!r}")
        lim = 2 * self.agent_radius + 0.05
        require(math.isfinite(self.slot_spacing) and self.slot_spacing >= lim,
                f"slot_spacing must be >= 2 * agent_radius + 0.05 ({lim:.2f} m) so that robots in "
                f"neighbouring slots do not touch, got {self.slot_spacing!r}")
        require(math.isfinite(self.spawn_spacing) and self.spawn_spacing >= 2 * self.agent_radius + 0.02,
                f"spawn_spacing must be >= 2 * agent_radius + 0.02 ({2 * self.agent_radius + 0.02:.2f} m) so that "
                f"robots start apart, got {self.spawn_spacing!r}")


def shape_offsets(n: int, spacing: float) -> np.ndarray:
    """Slot offsets of every shape for ``n`` robots, float64 [3, n, 2], in the shape's own frame
    (x = the shape's axis), each centred on its mean (the reference point is the slots' centroid).

    - ring: ``n`` slots on a circle, neighbouring slots ``spacing`` apart (radius
      ``spacing / (2 sin(pi / n))``; one slot at the centre when n = 1);
    - line: ``n`` slots on a line across the axis, ``spacing`` apart;
    - wedge: a V opening backwards: slot 0 at the apex, then slots alternately on the left and
      right arms, ``spacing`` apart along each arm, arms at 40 degrees to the axis.
    """
    out = np.zeros((len(SHAPES), n, 2), np.float64)
    k = np.arange(n)
    if n > 1:
        r = spacing / (2 * math.sin(math.pi / n))
        out[0, :, 0] = r * np.cos(2 * math.pi * k / n)
        out[0, :, 1] = r * np.sin(2 * math.pi * k / n)
    out[1, :, 1] = (k - (n - 1) / 2) * spacing
    j = (k + 1) // 2                                   # 0, 1, 1, 2, 2, ...
    side = np.where(k % 2 == 1, 1.0, -1.0)
    out[2, :, 0] = -j * spacing * math.cos(WEDGE_HALF_ANGLE)
    out[2, :, 1] = side * j * spacing * math.sin(WEDGE_HALF_ANGLE)
    out -= out.mean(axis=1, keepdims=True)
    return out


class Formation(Scenario):
    """Differential-drive robots hold a shape around a reference point that moves through the arena.

    At every reset each world draws a shape (ring, line or wedge, uniformly; ``SHAPES``) with N
    slots ``slot_spacing`` (0.6 m) apart at a uniform random orientation, centred on a reference
    point. The reference drives at ``ref_speed`` (0.3 m/s) towards a random waypoint, turning at
    most ``ref_turn_rate`` (0.5 rad/s), so it follows a smooth random path; when it is within
    ``ref_waypoint_radius`` of the waypoint it draws a new one. The reference stays in a box that
    keeps every slot ``wall_clearance`` from the walls for a robot in it, so every slot is
    reachable. The shape translates with the reference (it does not rotate).

    Slots are assigned to robots by the optimal matching, recomputed at every step: the
    assignment of active robots to slots minimising the sum of centre-to-slot distances
    (Hungarian algorithm, ``formation_kernels.hungarian``, exact, O(N^3) per world). Each robot
    observes its assigned slot, so the policy learns to track a moving target and to hand slots
    over by itself; the same matching scores the reward and the formation error.

    ## Observation (float32, 73 values for the default 32 rays and K = 6 neighbours)

    | Index              | Observation                                                   | Range   |
    |--------------------|---------------------------------------------------------------|---------|
    | 0 .. R-1           | lidar distance / ``lidar_range`` (R = ``n_rays`` rays, ray 0 along the heading, counter-clockwise; walls and other robots) | [0, 1], 1 = nothing in range |
    | R, R+1             | ego velocity (forward, left) / ``max_speed``                  | [-1, 1] |
    | R+2+5k, R+3+5k     | neighbour k's centre minus own, ego frame, / ``sense_range``   | [-1, 1] |
    | R+4+5k, R+5+5k     | neighbour k's velocity minus own, ego frame, / ``max_speed``   | [-2, 2] |
    | R+6+5k             | neighbour k's mask: 1 = a neighbour, 0 = padding (all five zero) | {0, 1} |
    | B, B+1             | reference point minus own centre, ego frame, / max(``ref_obs_scale``, distance) | [-1, 1] |
    | B+2, B+3           | reference point's velocity, ego frame, / ``max_speed``        | [-1, 1] |
    | B+4, B+5, B+6      | shape one-hot: ring, line, wedge                              | {0, 1}  |
    | B+7, B+8           | assigned slot minus own centre, ego frame, / max(``slot_obs_scale``, distance) | [-1, 1] |

    B = R + 2 + 5K. Neighbours are the ``n_neighbours`` (K = 6) nearest other robots within
    ``sense_range`` (3 m), nearest first (``core.neighbours.NeighbourSensor``). Every entry is
    clipped to its range. The reference velocity is zero in the observation of a reset.

    ## Action (float32, 2 values)

    | Index | Action            | Range   |
    |-------|-------------------|---------|
    | 0     | left wheel power  | [-1, 1] |
    | 1     | right wheel power | [-1, 1] |

    Values outside [-1, 1] are clipped; NaN or inf is an error (drive model: ``core.params``).

    ## Reward (per robot, per step; defaults)

    ``-0.1 * (distance to the assigned slot, metres) + 0.05 while within slot_tolerance (0.3 m)
    of it - 0.5 while touching a wall or robot - 2.0 on the first step of each contact``.
    The distance is measured after the step, with the step's matching. The collision onset
    penalty is a shaping term, scaled by ``set_shaping_scale`` (a curriculum).

    ## Episode end

    - Termination: none (``terminated`` is always False).
    - Truncation: ``max_steps`` (500) steps since the world's reset.
    - ``info`` per robot and step: ``collided`` (bool), ``slot`` (the assigned slot's index).

    ## Metrics (per agent-episode, logged as ``env/<metric>``, printed by ``entropy eval``)

    - ``formation_error``: the robot's distance to its slot under the optimal matching, metres,
      averaged over the episode's steps; its mean over robots is the mean matched distance, i.e.
      the formation error after optimal matching (lower is better; primary metric);
    - ``formed_fraction``: fraction of the episode's steps in which every robot of the world was
      within ``slot_tolerance`` of its slot;
    - ``collisions_per_agent``: contact onsets (first step of each contact with a wall or robot)
      per robot and episode.

    ## Start state

    Robots start at random points at least ``spawn_spacing`` (0.6 m) apart with uniform headings,
    at rest; the reference at a random point of its box with a random heading. A robot respawned
    inside a running world (never by this scenario's own rules) starts at a random clear point.
    The arena has its four border walls only.

    ## Arguments

    ``Formation(config, num_worlds, n_agents, seed)``: see ``FormationConfig`` for every field.
    """

    name = "formation"
    Config = FormationConfig
    info_keys = {"collided": "the robot touched a wall or another robot in this step",
                 "slot": "index of the slot the optimal matching assigned to the robot in this step"}
    episode_stats = {"formation_error": "distance to the matched slot (metres) / max_steps, per step",
                     "formed": "1 / max_steps when every robot of the world is within slot_tolerance, per step",
                     "collisions": "contacts started (first step of each contact with a wall or robot)"}
    metrics = {"formation_error": ("formation_error", "mean distance to the slot under the optimal matching, metres"),
               "formed_fraction": ("formed", "fraction of steps with every robot within slot_tolerance of its slot"),
               "collisions_per_agent": ("collisions", "contact onsets per agent-episode")}
    success_stat = None
    # reward weights a curriculum may change during a run, per world (columns of self._params [E, P])
    settings = {"error_penalty": fk.P_ERR, "slot_reward": fk.P_BONUS, "collision_penalty": fk.P_COLL,
                "collision_onset_penalty": fk.P_ONSET}
    shaping_terms = ("collision_onset_penalty",)
    per_world_settings = True

    def __init__(self, config: FormationConfig, num_worlds: int, n_agents: int, seed: int | None = None):
        self.config = config
        self.world = w = make_world(config, num_worlds, n_agents, max_walls=4)
        E, N, R, K = w.num_worlds, w.n_agents, config.n_rays, config.n_neighbours
        self.shape_off = shape_offsets(N, config.slot_spacing)              # [3, N, 2] shape frame
        self.shape_extent = np.linalg.norm(self.shape_off, axis=2).max(axis=1)   # [3] metres
        self._check_room(w.arena, N)
        self.allocate(R + 2 + 5 * K + 9, seed)            # obs [E, N, R+11+5K], reward, terminated, stats [3, E, N]
        self.sensor = NeighbourSensor(w, K, config.sense_range)
        self.shape = np.zeros(E, np.int64)                  # [E] shape index into SHAPES
        self.slot_off = np.zeros((E, N, 2), np.float64)     # [E, N, 2] slot offsets from the reference, world frame
        self.margin = np.zeros(E, np.float64)               # [E] the reference's box: [margin, arena - margin]^2
        self.ref = np.zeros((E, 2), np.float64)             # [E, 2] reference point
        self.ref_heading = np.zeros(E, np.float64)          # [E] its heading, rad
        self.ref_vel = np.zeros((E, 2), np.float64)         # [E, 2] its velocity in the last step, m/s
        self.waypoint = np.zeros((E, 2), np.float64)        # [E, 2] where the reference is heading
        self.slots = np.zeros((E, N, 2), np.float64)        # [E, N, 2] slot positions
        self.assign = np.full((E, N), -1, np.int64)         # [E, N] assigned slot (-1: inactive robot)
        self.match_d = np.zeros((E, N), np.float64)         # [E, N] distance to the assigned slot
        self.formed = np.zeros(E, np.bool_)                 # [E] every robot within slot_tolerance
        self.prev_contact = np.zeros((E, N), np.bool_)      # [E, N] contact flags of the last step
        self.info = {"collided": w.contact, "slot": self.assign}
        self._scratch = (np.zeros((E, N, N)), np.zeros((E, N + 1)), np.zeros((E, N + 1)),
                         np.zeros((E, N + 1), np.int64), np.zeros((E, N + 1), np.int64), np.zeros((E, N + 1)),
                         np.zeros((E, N + 1), np.bool_), np.zeros((E, N), np.int64), np.zeros((E, N), np.int64))
        p = np.zeros(fk.N_PARAMS, np.float64)
        p[fk.P_ARENA] = w.arena
        p[fk.P_RADIUS] = config.agent_radius
        p[fk.P_SPACING] = config.spawn_spacing
        p[fk.P_CLEAR] = config.wall_clearance
        p[fk.P_REF_SPEED] = config.ref_speed
        p[fk.P_REF_TURN] = config.ref_turn_rate
        p[fk.P_WP_R] = config.ref_waypoint_radius
        p[fk.P_WP_MIN_D] = config.ref_waypoint_min_distance
        p[fk.P_DT] = config.dt
        p[fk.P_VMAX] = config.max_speed
        p[fk.P_SENSE] = config.sense_range
        p[fk.P_REF_SCALE] = config.ref_obs_scale
        p[fk.P_SLOT_SCALE] = config.slot_obs_scale
        p[fk.P_ERR] = config.error_penalty
        p[fk.P_BONUS] = config.slot_reward
        p[fk.P_TOL] = config.slot_tolerance
        p[fk.P_COLL] = config.collision_penalty
        p[fk.P_INV_T] = 1.0 / config.max_steps
        self._params = np.repeat(p[None], E, axis=0)         # [E, P] each world's settings (curricula)
        self.set_shaping_scale(1.0)

    # ------------------------------------------------------------------ spec
    def observation_space(self) -> spaces.Box:
        """Lidar [0, 1], ego velocity [-1, 1], K neighbour slots (position [-1, 1], velocity [-2, 2],
        mask [0, 1]), reference vector and velocity [-1, 1], shape one-hot [0, 1], slot vector [-1, 1]."""
        R, K = self.config.n_rays, self.config.n_neighbours
        slot_lo = np.array([-1, -1, -2, -2, 0], np.float32)
        slot_hi = np.array([1, 1, 2, 2, 1], np.float32)
        task_lo = np.array([-1, -1, -1, -1, 0, 0, 0, -1, -1], np.float32)
        task_hi = np.ones(9, np.float32)
        low = np.concatenate([np.zeros(R), -np.ones(2), np.tile(slot_lo, K), task_lo]).astype(np.float32)
        high = np.concatenate([np.ones(R), np.ones(2), np.tile(slot_hi, K), task_hi]).astype(np.float32)
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def action_space(self) -> spaces.Box:
        """Left and right wheel power."""
        return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)


    def _check_room(self, arena: float, n_agents: int) -> None:
        """Refuse arenas in which the largest shape leaves the reference no room, or the robots
        cannot start ``spawn_spacing`` apart."""
        cfg = self.config
        ext = float(self.shape_extent.max())
        margin = ext + cfg.agent_radius + cfg.wall_clearance
        if arena - 2 * margin < 0.5:
            raise ConfigError(
                f"arena of {arena:.1f} m is too small for {n_agents} agents in formation: the widest shape reaches "
                f"{ext:.2f} m from its centre, which leaves {arena - 2 * margin:.2f} m (< 0.5 m) for the reference "
                f"point to move; raise arena_size or area_per_agent, or lower n_agents or slot_spacing")
        side = math.ceil(math.sqrt(2 * n_agents))
        if side * cfg.spawn_spacing > arena - 2 * (cfg.agent_radius + 0.05):
            raise ConfigError(
                f"arena of {arena:.1f} m is too small for {n_agents} agents: they need a block of {side} x {side} "
                f"cells of spawn_spacing {cfg.spawn_spacing} m to start apart; raise arena_size or lower n_agents "
                f"or spawn_spacing")

    # ------------------------------------------------------------------ episodes
    def reset(self, mask: np.ndarray | None = None) -> None:
        w = self.world
        if mask is None:
            mask = np.ones(w.num_worlds, np.bool_)
        fk.reset_worlds(mask, self.rng, self._params, self.shape_off, self.shape_extent, w.pos, w.vel, w.theta,
                        w.omega, w.active, self.shape, self.slot_off, self.margin, self.ref, self.ref_heading,
                        self.waypoint, w.walls, w.n_walls)
        w.contact[mask] = False
        self.prev_contact[mask] = False
        w.sync(mask)
        self._refresh()

    def respawn(self, mask: np.ndarray) -> None:
        w = self.world
        fk.respawn_agents(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active)
        self.prev_contact[mask] = False
        w.sync(mask.any(axis=1))
        self._refresh()

    def remove(self, mask: np.ndarray) -> None:
        super().remove(mask)
        self.assign[mask] = -1

    def _match(self, move: bool) -> None:
        w = self.world
        fk.world_phase(move, w.pos, w.active, self.rng, self._params, self.margin, self.slot_off, self.ref,
                       self.ref_heading, self.ref_vel, self.waypoint, self.slots, self.assign, self.match_d,
                       self.formed, *self._scratch)

    def _agents(self, with_reward: bool) -> None:
        w = self.world
        fk.agent_phase(with_reward, w.pos, w.vel, w.theta, w.active, w.contact, self.prev_contact, w.lidar,
                       self.sensor.out, self.shape, self.ref, self.ref_vel, self.slots, self.assign, self.match_d,
                       self.formed, self._params, self.reward, self.stats, self.obs)

    def _refresh(self) -> None:
        """Lidar, neighbours, matching and observations from the current state (after a reset or
        respawn); the reference does not move."""
        self.world.refresh_lidar()
        self.sensor.sense()
        self._match(False)
        self._agents(False)

    def step(self, actions: np.ndarray) -> None:
        self.world.step(actions)
        self.sensor.sense()
        self._match(True)
        self._agents(True)

    # ------------------------------------------------------------------ policies and drawing
    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """Drive to the assigned slot (feed-forward of the reference's velocity) with lidar avoidance."""
        return formation_heuristic(obs, self.config)

    def draw(self, canvas, world_index: int) -> None:
        """The shape's slots (rings of ``slot_tolerance``), the reference point (disc) and a line
        from each robot to its assigned slot."""
        e = world_index
        color = (230, 150, 20)
        for k in range(self.world.n_agents):
            canvas.ring(self.slots[e, k], self.config.slot_tolerance, color, 0.15)
        canvas.disc(self.ref[e], 0.08, color)
        for i in np.flatnonzero(self.world.active[e]):
            canvas.segment(self.world.pos[e, i], self.slots[e, self.assign[e, i]], (150, 150, 150), 0.02)


def formation_heuristic(obs: np.ndarray, config: FormationConfig) -> np.ndarray:
    """Scripted slot tracking for the formation scenario, batched over any leading axes of ``obs``.

    In the robot's frame: desired velocity = the reference's velocity (feed-forward) + 1.5/s times
    the vector to the assigned slot (capped at 1 m/s) + a push away from lidar hits closer than
    0.3 m to the robot's surface. The robot turns towards it and drives forward in proportion to
    the desired speed and cos(heading error); it drives backwards to a slot close behind it.
    """
    obs = np.asarray(obs, np.float32)
    R, K = config.n_rays, config.n_neighbours
    vmax = config.max_speed
    B = R + 2 + 5 * K
    ref_v = obs[..., B + 2:B + 4] * vmax                                        # [..., 2] m/s
    slot = obs[..., B + 7:B + 9]
    n = np.linalg.norm(slot, axis=-1, keepdims=True)
    slot_m = slot * np.where(n < 0.999, config.slot_obs_scale, config.slot_obs_scale + 1.0)   # metres (approx. far)
    d = np.linalg.norm(slot_m, axis=-1, keepdims=True)
    pull = slot_m * 1.5
    pull = pull / np.maximum(np.linalg.norm(pull, axis=-1, keepdims=True) / 1.0, 1.0)
    lidar = obs[..., :R] * config.lidar_range
    ang = 2 * np.pi * np.arange(R) / R
    ray_dir = np.stack([np.cos(ang), np.sin(ang)], axis=1)                      # [R, 2]
    near = np.clip((0.3 - (lidar - config.agent_radius)) / 0.3, 0.0, 1.0) ** 2
    avoid = -(near @ ray_dir)
    desired = ref_v + pull + 0.6 * avoid                                        # [..., 2] m/s
    speed = np.linalg.norm(desired, axis=-1)
    err = np.arctan2(desired[..., 1], desired[..., 0])
    back = (np.abs(err) > 0.6 * np.pi) & (d[..., 0] < 0.6)                      # a slot just behind: reverse
    err = np.where(back, np.arctan2(-desired[..., 1], -desired[..., 0]), err)
    sign = np.where(back, -1.0, 1.0)
    forward = sign * np.clip(np.cos(err), 0.0, 1.0) * np.clip(speed / vmax * 1.2, 0.0, 1.0)
    turn = np.clip(1.5 * err, -1.0, 1.0) * np.clip(speed / 0.1, 0.0, 1.0)
    act = np.stack([forward - turn, forward + turn], axis=-1)
    return np.clip(act, -1.0, 1.0).astype(np.float32)
