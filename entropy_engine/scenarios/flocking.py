"""Flocking: the swarm moves as one group towards a waypoint that moves on whenever the group reaches it."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from ..config import ConfigError, field, require
from ..core.backends import make_world
from ..core.neighbours import NeighbourSensor
from . import flocking_kernels as fk
from .base import Scenario, ScenarioConfig


@dataclass(frozen=True)
class FlockingConfig(ScenarioConfig):
    """Flocking scenario settings (plus every physical constant of ``WorldConfig``)."""

    n_neighbours: int = field(6, "K: neighbours in the observation (nearest first, padded and masked).")
    sense_range: float = field(4.0, "Neighbour sensing range, metres, centre to centre.")
    waypoint_radius: float = field(1.0, "The group reaches the waypoint when its centroid is this close, metres.")
    waypoint_margin: float = field(1.5, "Waypoints keep this distance from the border, metres.")
    waypoint_min_distance: float = field(3.0, "A new waypoint is at least this far from the previous one "
                                              "(at a reset: from the group's centroid), metres.")
    waypoint_obs_scale: float = field(
        5.0, "Waypoint vector divisor in metres; farther waypoints keep direction, norm 1.")
    spawn_spacing: float = field(0.8, "Robots start on a jittered lattice with this spacing (in a block of "
                                      "ceil(sqrt(2 N))^2 cells at a random place), metres.")
    progress_reward: float = field(1.0, "Reward per metre the robot itself gets closer to the waypoint.")
    waypoint_reward: float = field(5.0, "Reward to every robot of the world when the group reaches the waypoint.")
    alignment_reward: float = field(0.05, "Reward per step times the mean cos(heading difference) to the sensed "
                                          "neighbours (shaping).")
    cohesion_penalty: float = field(0.1, "Penalty per step per metre of distance to the group's centroid beyond "
                                         "cohesion_distance (shaping).")
    cohesion_distance: float = field(1.5, "Distance to the centroid (metres) below which cohesion costs nothing.")
    separation_penalty: float = field(0.5, "Penalty per step times (1 - d / separation_distance) when the nearest "
                                           "neighbour's centre is at d < separation_distance (shaping).")
    separation_distance: float = field(0.6, "Centre distance (metres) below which the separation term acts.")
    collision_penalty: float = field(0.5, "Penalty for every step in contact with a wall or robot.")
    collision_onset_penalty: float = field(2.0, "One-off penalty on the first step of each contact (a collision).")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(isinstance(self.n_neighbours, int) and self.n_neighbours >= 1,
                f"n_neighbours must be an integer >= 1, got {self.n_neighbours!r}")
        for name in ("sense_range", "waypoint_radius", "waypoint_obs_scale", "waypoint_min_distance",
                     "cohesion_distance", "separation_distance"):
            v = getattr(self, name)
            require(math.isfinite(v) and v > 0, f"{name} must be a positive number, got {v!r}")
        for name in ("progress_reward", "waypoint_reward", "alignment_reward", "cohesion_penalty",
                     "separation_penalty", "collision_penalty", "collision_onset_penalty"):
            v = getattr(self, name)
            require(math.isfinite(v) and v >= 0, f"{name} must be a number >= 0, got {v!r}")
        require(math.isfinite(self.waypoint_margin) and self.waypoint_margin >= self.agent_radius,
                f"waypoint_margin must be >= agent_radius ({self.agent_radius}), got {self.waypoint_margin!r}")
        require(math.isfinite(self.spawn_spacing) and self.spawn_spacing >= 2 * self.agent_radius + 0.02,
                f"spawn_spacing must be >= 2 * agent_radius + 0.02 ({2 * self.agent_radius + 0.02:.2f} m) so that "
                f"robots start apart, got {self.spawn_spacing!r}")


class Flocking(Scenario):
    """Differential-drive robots move as one group towards a waypoint that moves on when reached.

    Every world has one waypoint. When the centroid of the group (the mean position of its robots)
    comes within ``waypoint_radius`` (1 m) of it, every robot is rewarded and a new waypoint is
    drawn at random, at least ``waypoint_min_distance`` (3 m) away. No robot's episode ends early:
    a flock keeps flying until ``max_steps``.

    ## Observation (float32, 66 values for the default 32 rays and K = 6 neighbours)

    | Index            | Observation                                                   | Range   |
    |------------------|---------------------------------------------------------------|---------|
    | 0 .. R-1         | lidar distance / ``lidar_range`` (R = ``n_rays`` rays, ray 0 along the heading, counter-clockwise; walls and other robots) | [0, 1], 1 = nothing in range |
    | R, R+1           | ego velocity (forward, left) / ``max_speed``                  | [-1, 1] |
    | R+2+5k, R+3+5k   | neighbour k's centre minus own, ego frame, / ``sense_range``   | [-1, 1] |
    | R+4+5k, R+5+5k   | neighbour k's velocity minus own, ego frame, / ``max_speed``   | [-2, 2] |
    | R+6+5k           | neighbour k's mask: 1 = a neighbour, 0 = padding (all five zero) | {0, 1} |
    | R+2+5K, R+3+5K   | waypoint vector, ego frame (forward, left) / max(``waypoint_obs_scale``, distance) | [-1, 1] |

    Neighbours are the ``n_neighbours`` (K = 6) nearest other robots within ``sense_range``
    (4 m), nearest first (``core.neighbours.NeighbourSensor``), for k = 0 .. K-1. Every entry is
    clipped to its range.

    ## Action (float32, 2 values)

    | Index | Action            | Range   |
    |-------|-------------------|---------|
    | 0     | left wheel power  | [-1, 1] |
    | 1     | right wheel power | [-1, 1] |

    Values outside [-1, 1] are clipped; NaN or inf is an error (drive model: ``core.params``).

    ## Reward (per robot, per step; defaults)

    ``1.0 * (metres the robot got closer to the waypoint) + 5.0 to every robot when the group
    reaches the waypoint + 0.05 * mean_k cos(heading_k - heading) over the sensed neighbours
    - 0.1 * max(0, distance to the centroid - 1.5 m) - 0.5 * max(0, 1 - d_nn / 0.6 m)
    - 0.5 while touching a wall or robot - 2.0 on the first step of each contact``,
    where d_nn is the centre distance to the nearest sensed neighbour. The progress on the step
    that reaches a waypoint is measured to the old waypoint (a new waypoint gives no jump). The
    alignment, cohesion and separation terms are shaping terms, scaled by ``set_shaping_scale``.

    ## Episode end

    - Termination: none (``terminated`` is always False).
    - Truncation: ``max_steps`` (500) steps since the world's reset; every episode therefore
      lasts exactly ``max_steps`` steps.
    - ``info`` per robot and step: ``collided`` and ``waypoint_reached`` (booleans).

    ## Metrics (per agent-episode, logged as ``env/<metric>``, printed by ``entropy eval``)

    A metric is the mean over agent-episodes of a statistic summed over the episode. Since every
    episode lasts ``max_steps`` steps, the time averages below write ``value / max_steps`` per
    step, so their sum is the mean over the episode's steps:

    - ``polarisation``: the world's order parameter ``|mean_i (cos theta_i, sin theta_i)|`` over
      its active robots (1 = all headings equal, about 1/sqrt(N) for random headings), averaged
      over the episode's steps (every robot of the world carries the world's value, so the metric
      is its mean over worlds and steps);
    - ``cohesion``: the robot's distance to its group's centroid in metres, averaged over the
      episode's steps (so the metric is the mean distance to the centroid over robots and steps;
      lower is tighter);
    - ``min_spacing``: the smallest centre-to-centre distance from the robot to its nearest
      neighbour during the episode, metres (capped at ``sense_range``; 2 * agent_radius = 0.4 m is
      contact), averaged over robots (written as the change of the running minimum, which sums to
      the minimum);
    - ``collisions_per_agent``: contact onsets (first step of each contact with a wall or robot)
      per robot and episode;
    - ``waypoints_reached``: waypoints the robot's group reached during the episode (every robot
      of the world counts each one, so the metric is waypoints per world-episode).

    ## Start state

    At every reset the robots are placed on random distinct cells of a lattice with
    ``spawn_spacing`` (0.8 m) between cells, ``ceil(sqrt(2 N))`` cells a side, jittered, in a
    block at a random place of the arena; headings are uniform. A robot respawned inside a running
    world (never by this scenario's own rules) starts at a random point at least
    ``spawn_spacing`` from every other robot. The arena has its four border walls only.

    ## Arguments

    ``Flocking(config, num_worlds, n_agents, seed)``: see ``FlockingConfig`` for every field.
    """

    name = "flocking"
    Config = FlockingConfig
    info_keys = {"collided": "the robot touched a wall or another robot in this step",
                 "waypoint_reached": "the robot's group reached its waypoint in this step"}
    episode_stats = {"polarisation": "the world's order parameter / max_steps, per step",
                     "cohesion": "distance to the group's centroid (metres) / max_steps, per step",
                     "min_spacing": "change of the running minimum of the nearest-neighbour distance (metres)",
                     "collisions": "contacts started (first step of each contact with a wall or robot)",
                     "waypoints": "1 when the robot's group reached its waypoint"}
    metrics = {"polarisation": ("polarisation", "order parameter of the headings, mean over steps (1 = aligned)"),
               "cohesion": ("cohesion", "mean distance to the group's centroid, metres"),
               "min_spacing": ("min_spacing", "smallest nearest-neighbour centre distance in an episode, metres"),
               "collisions_per_agent": ("collisions", "contact onsets per agent-episode"),
               "waypoints_reached": ("waypoints", "waypoints the group reached per episode")}
    success_stat = None
    # reward weights a curriculum may change during a run, per world (columns of self._params [E, P])
    settings = {"progress_reward": fk.P_PROGRESS, "waypoint_reward": fk.P_WP_BONUS, "collision_penalty": fk.P_COLL,
                "collision_onset_penalty": fk.P_ONSET, "alignment_reward": fk.P_ALIGN,
                "cohesion_penalty": fk.P_COH, "separation_penalty": fk.P_SEP}
    shaping_terms = ("alignment_reward", "cohesion_penalty", "separation_penalty")
    per_world_settings = True

    def __init__(self, config: FlockingConfig, num_worlds: int, n_agents: int, seed: int | None = None):
        self.config = config
        self.world = w = make_world(config, num_worlds, n_agents, max_walls=4)
        E, N, R, K = w.num_worlds, w.n_agents, config.n_rays, config.n_neighbours
        self._side = math.ceil(math.sqrt(2 * N))
        self._check_room(w.arena, N)
        self.allocate(R + 4 + 5 * K, seed)                   # obs [E, N, R+4+5K], reward, terminated, stats [5, E, N]
        self.sensor = NeighbourSensor(w, K, config.sense_range)
        self.info = {"collided": w.contact, "waypoint_reached": np.zeros((E, N), np.bool_)}  # [E, N] each
        self.waypoint = np.zeros((E, 2), np.float32)        # [E, 2] current waypoint
        self._prev_wp = np.zeros((E, 2), np.float32)        # [E, 2] waypoint the last step was scored against
        self.centroid = np.zeros((E, 2), np.float64)        # [E, 2] group centroid after the last step
        self.polar = np.zeros(E, np.float64)                # [E] order parameter after the last step
        self.reached = np.zeros(E, np.bool_)                # [E] the group reached its waypoint in the last step
        self.dist = np.zeros((E, N), np.float32)            # [E, N] distance to the waypoint
        self.min_nn = np.zeros((E, N), np.float32)          # [E, N] running min of the nearest-neighbour distance
        self.prev_contact = np.zeros((E, N), np.bool_)      # [E, N] contact flags of the last step
        self.t = np.zeros(E, np.int64)                      # [E] steps since the world's reset
        self._first = np.zeros(E, np.bool_)                 # [E] scratch: this step is the episode's first
        self._order = np.zeros((E, self._side ** 2), np.int64)  # [E, cells] scratch permutation
        p = np.zeros(fk.N_PARAMS, np.float64)
        p[fk.P_ARENA] = w.arena
        p[fk.P_RADIUS] = config.agent_radius
        p[fk.P_WP_R] = config.waypoint_radius
        p[fk.P_WP_MARGIN] = config.waypoint_margin
        p[fk.P_WP_MIN_D] = config.waypoint_min_distance
        p[fk.P_SPACING] = config.spawn_spacing
        p[fk.P_VMAX] = config.max_speed
        p[fk.P_WP_SCALE] = config.waypoint_obs_scale
        p[fk.P_PROGRESS] = config.progress_reward
        p[fk.P_WP_BONUS] = config.waypoint_reward
        p[fk.P_COH_D] = config.cohesion_distance
        p[fk.P_SEP_D] = config.separation_distance
        p[fk.P_COLL] = config.collision_penalty
        p[fk.P_ONSET] = config.collision_onset_penalty
        p[fk.P_SENSE] = config.sense_range
        p[fk.P_INV_T] = 1.0 / config.max_steps
        self._params = np.repeat(p[None], E, axis=0)         # [E, P] each world's settings (curricula)
        self.set_shaping_scale(1.0)

    # ------------------------------------------------------------------ spec
    def observation_space(self) -> spaces.Box:
        """Lidar [0, 1], ego velocity [-1, 1], K neighbour slots (position [-1, 1], velocity [-2, 2],
        mask [0, 1]), waypoint vector [-1, 1]."""
        R, K = self.config.n_rays, self.config.n_neighbours
        slot_lo = np.array([-1, -1, -2, -2, 0], np.float32)
        slot_hi = np.array([1, 1, 2, 2, 1], np.float32)
        low = np.concatenate([np.zeros(R), -np.ones(2), np.tile(slot_lo, K), -np.ones(2)]).astype(np.float32)
        high = np.concatenate([np.ones(R), np.ones(2), np.tile(slot_hi, K), np.ones(2)]).astype(np.float32)
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def action_space(self) -> spaces.Box:
        """Left and right wheel power."""
        return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)


    def _check_room(self, arena: float, n_agents: int) -> None:
        """Refuse arenas that cannot hold the spawn block or leave no room for waypoints."""
        cfg = self.config
        block = self._side * cfg.spawn_spacing
        if block > arena:
            raise ConfigError(
                f"arena of {arena:.1f} m is too small for {n_agents} agents: the spawn block is {self._side} x "
                f"{self._side} cells of spawn_spacing {cfg.spawn_spacing} m = {block:.1f} m a side; raise "
                f"arena_size or area_per_agent, or lower n_agents or spawn_spacing")
        room = arena - 2 * cfg.waypoint_margin
        if room < cfg.waypoint_min_distance:
            raise ConfigError(
                f"arena of {arena:.1f} m leaves {room:.1f} m between the waypoint margins ({cfg.waypoint_margin} m "
                f"each side), less than waypoint_min_distance ({cfg.waypoint_min_distance} m); raise arena_size "
                f"or lower waypoint_margin or waypoint_min_distance")

    # ------------------------------------------------------------------ episodes
    def reset(self, mask: np.ndarray | None = None) -> None:
        w = self.world
        if mask is None:
            mask = np.ones(w.num_worlds, np.bool_)
        fk.reset_worlds(mask, self.rng, self._params, self._side, w.pos, w.vel, w.theta, w.omega, w.active,
                        self.waypoint, self._order, w.walls, w.n_walls)
        w.contact[mask] = False
        self.prev_contact[mask] = False
        self.t[mask] = 0
        w.sync(mask)
        self._refresh()

    def respawn(self, mask: np.ndarray) -> None:
        w = self.world
        fk.respawn_agents(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active)
        self.prev_contact[mask] = False
        w.sync(mask.any(axis=1))
        self._refresh()

    def _refresh(self) -> None:
        """Lidar, neighbours and observations from the current state (after a reset or respawn)."""
        w = self.world
        w.refresh_lidar()
        self.sensor.sense()
        fk.world_phase(w.pos, w.theta, w.active, self.rng, self._params, False, self.centroid, self.polar,
                       self.reached, self.waypoint, self._prev_wp)
        self._agents(False)

    def _agents(self, with_reward: bool) -> None:
        w = self.world
        fk.agent_phase(with_reward, self._first, w.pos, w.vel, w.theta, w.active, w.contact, self.prev_contact,
                       w.lidar, self.sensor.out, self.sensor.indices, self.centroid, self.polar, self.reached,
                       self._prev_wp, self.waypoint, self._params, self.dist, self.min_nn, self.reward,
                       self.stats, self.obs)

    def step(self, actions: np.ndarray) -> None:
        w = self.world
        w.step(actions)
        self.sensor.sense()
        self.t += 1
        np.equal(self.t, 1, out=self._first)
        fk.world_phase(w.pos, w.theta, w.active, self.rng, self._params, True, self.centroid, self.polar,
                       self.reached, self.waypoint, self._prev_wp)
        self._agents(True)
        np.logical_and(self.reached[:, None], w.active, out=self.info["waypoint_reached"])

    # ------------------------------------------------------------------ policies and drawing
    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """Reynolds boids (separation, alignment, cohesion) from the neighbour slots, plus waypoint
        attraction and wall avoidance from the lidar, steered onto the wheels."""
        return flocking_heuristic(obs, self.config)

    def draw(self, canvas, world_index: int) -> None:
        """The world's waypoint (ring of ``waypoint_radius``) and the group's centroid (small disc)."""
        canvas.ring(self.waypoint[world_index], self.config.waypoint_radius, (230, 150, 20))
        if self.world.active[world_index].any():
            canvas.disc(self.world.pos[world_index][self.world.active[world_index]].mean(axis=0),
                        0.08, (230, 150, 20))


def flocking_heuristic(obs: np.ndarray, config: FlockingConfig) -> np.ndarray:
    """Scripted boids for the flocking scenario, batched over any leading axes of ``obs``.

    In the robot's frame: a desired direction = waypoint direction + cohesion (towards the mean
    position of the sensed neighbours) + alignment (their mean velocity direction) + separation
    (away from neighbours closer than 1.5 x ``separation_distance``) + wall and robot avoidance
    from lidar hits within 0.6 m; the robot turns towards it and drives forward in proportion to
    cos(heading error), slower when the group is behind it.
    """
    obs = np.asarray(obs, np.float32)
    R, K = config.n_rays, config.n_neighbours
    vmax, rng_ = config.max_speed, config.sense_range
    lead = obs.shape[:-1]
    v_ego = obs[..., R:R + 2] * vmax                                        # [..., 2] m/s
    nb = obs[..., R + 2:R + 2 + 5 * K].reshape(lead + (K, 5))
    m = nb[..., 4]                                                          # [..., K]
    rel = nb[..., 0:2] * rng_                                               # [..., K, 2] metres
    v_nb = nb[..., 2:4] * vmax + v_ego[..., None, :]                        # [..., K, 2] m/s
    cnt = m.sum(-1, keepdims=True)                                          # [..., 1]
    inv = 1.0 / np.maximum(cnt, 1.0)
    coh = (rel * m[..., None]).sum(-2) * inv                                # [..., 2] to the local centre
    ali = (v_nb * m[..., None]).sum(-2) * inv
    ali = ali / np.maximum(np.linalg.norm(ali, axis=-1, keepdims=True), 0.3)
    d = np.linalg.norm(rel, axis=-1)                                        # [..., K]
    sep_d = 1.5 * config.separation_distance
    push = m * np.clip((sep_d - d) / sep_d, 0.0, 1.0)
    sep = -(rel / np.maximum(d, 1e-3)[..., None] * push[..., None]).sum(-2)
    wp = obs[..., R + 2 + 5 * K:R + 4 + 5 * K]
    wp_dir = wp / np.maximum(np.linalg.norm(wp, axis=-1, keepdims=True), 1e-6)
    lidar = obs[..., :R] * config.lidar_range
    ang = 2 * np.pi * np.arange(R) / R
    ray_dir = np.stack([np.cos(ang), np.sin(ang)], axis=1)                  # [R, 2]
    near = np.clip((0.6 - (lidar - config.agent_radius)) / 0.6, 0.0, 1.0) ** 2
    avoid = -(near @ ray_dir)
    coh_w = np.clip(np.linalg.norm(coh, axis=-1, keepdims=True) / 2.0, 0.0, 1.0)
    coh_dir = coh / np.maximum(np.linalg.norm(coh, axis=-1, keepdims=True), 1e-6)
    desired = wp_dir + 0.8 * coh_w * coh_dir + 0.5 * ali + 2.0 * sep + 1.0 * avoid
    err = np.arctan2(desired[..., 1], desired[..., 0])
    behind = np.clip(-coh[..., 0] / 1.5, 0.0, 1.0)                          # the group is behind: wait
    forward = np.clip(np.cos(err), 0.0, 1.0) * (0.8 - 0.5 * behind)
    turn = np.clip(1.5 * err, -1.0, 1.0)
    act = np.stack([forward - turn, forward + turn], axis=-1)
    return np.clip(act, -1.0, 1.0).astype(np.float32)
