"""Coverage: N robots spread over N landmarks (the multi-robot analogue of MPE ``simple_spread``)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from ..config import ConfigError, field, require
from ..core.backends import make_world
from ..core.landmarks import Landmarks
from ..core.neighbours import NeighbourSensor
from . import coverage_kernels as ck
from .base import Scenario, ScenarioConfig


@dataclass(frozen=True)
class CoverageConfig(ScenarioConfig):
    """Coverage scenario settings (plus every physical constant of ``WorldConfig``)."""

    max_steps: int = field(200, "Episode length limit (truncation), steps.")
    n_landmark_obs: int = field(4, "KL: nearest landmarks in the observation (nearest first, padded and masked).")
    n_neighbours: int = field(4, "K: neighbours in the observation (nearest first, padded and masked).")
    sense_range: float = field(3.0, "Neighbour sensing range, metres, centre to centre.")
    landmark_radius: float = field(0.3, "A landmark is occupied while a robot's centre is this close, metres.")
    landmark_margin: float = field(0.8, "Landmarks keep this distance from the border, metres.")
    landmark_spacing: float = field(1.0, "Landmark centres are at least this far apart, metres.")
    landmark_obs_scale: float = field(
        5.0, "Landmark vector divisor in metres; farther landmarks keep direction, norm 1.")
    spawn_spacing: float = field(0.8, "Robots start at random places at least this far apart, metres.")
    occupy_reward: float = field(0.1, "Reward per step to the robot that is the nearest robot of an occupied "
                                      "landmark (summed over robots: occupied landmarks x this).")
    distance_penalty: float = field(0.05, "Shared penalty per step per metre of the world's mean landmark -> "
                                          "nearest robot distance (simple_spread's reward, normalised).")
    progress_reward: float = field(2.0, "Shared reward per metre the world's mean landmark -> nearest robot "
                                        "distance shrank in the step (shaping).")
    contribution_reward: float = field(0.05, "Reward per step per metre of the robot's marginal contribution: "
                                            "over the landmarks it is the nearest robot of, how much farther the "
                                            "next robot is (each capped at landmark_obs_scale; a difference reward).")
    collision_penalty: float = field(0.1, "Penalty for every step in contact with a wall or robot.")
    collision_onset_penalty: float = field(2.0, "One-off penalty on the first step of each contact (a collision).")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_landmark_obs", "n_neighbours"):
            v = getattr(self, name)
            require(isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                    f"{name} must be an integer >= 1, got {v!r}")
        for name in ("sense_range", "landmark_radius", "landmark_obs_scale"):
            v = getattr(self, name)
            require(math.isfinite(v) and v > 0, f"{name} must be a positive number, got {v!r}")
        for name in ("occupy_reward", "distance_penalty", "progress_reward", "contribution_reward", "collision_penalty",
                     "collision_onset_penalty"):
            v = getattr(self, name)
            require(math.isfinite(v) and v >= 0, f"{name} must be a number >= 0, got {v!r}")
        require(math.isfinite(self.landmark_margin) and self.landmark_margin >= self.agent_radius,
                f"landmark_margin must be >= agent_radius ({self.agent_radius}), got {self.landmark_margin!r}")
        require(math.isfinite(self.landmark_spacing) and self.landmark_spacing >= 2 * self.landmark_radius,
                f"landmark_spacing must be >= 2 * landmark_radius ({2 * self.landmark_radius:.2f} m) so that one "
                f"robot occupies at most one landmark, got {self.landmark_spacing!r}")
        require(math.isfinite(self.spawn_spacing) and self.spawn_spacing >= 2 * self.agent_radius + 0.02,
                f"spawn_spacing must be >= 2 * agent_radius + 0.02 ({2 * self.agent_radius + 0.02:.2f} m) so that "
                f"robots start apart, got {self.spawn_spacing!r}")


class Coverage(Scenario):
    """N differential-drive robots spread out so that every one of N landmarks has a robot on it.

    Every world has as many landmarks (discs of ``landmark_radius``, 0.3 m) as robots, placed at
    random at every reset, at least ``landmark_spacing`` (1 m) apart and ``landmark_margin``
    (0.8 m) from the border. A landmark is *occupied* while some robot's centre is inside its disc.
    The arena has its four border walls only (no interior walls). No robot's episode ends early.

    ## Observation (float32, 70 values for the default 32 rays, KL = 4 landmarks and K = 4 neighbours)

    | Index              | Observation                                                   | Range   |
    |--------------------|---------------------------------------------------------------|---------|
    | 0 .. R-1           | lidar distance / ``lidar_range`` (R = ``n_rays`` rays, ray 0 along the heading, counter-clockwise; walls and other robots) | [0, 1], 1 = nothing in range |
    | R, R+1             | ego velocity (forward, left) / ``max_speed``                  | [-1, 1] |
    | R+2+4m, R+3+4m     | landmark m's centre minus own, ego frame, / max(``landmark_obs_scale``, distance) | [-1, 1] |
    | R+4+4m             | distance from landmark m to its nearest *other* robot / ``landmark_obs_scale`` | [0, 1], 1 = 5 m or more |
    | R+5+4m             | landmark m's mask: 1 = a landmark, 0 = padding (all four zero) | {0, 1} |
    | B+5k, B+1+5k       | neighbour k's centre minus own, ego frame, / ``sense_range`` (B = R+2+4KL) | [-1, 1] |
    | B+2+5k, B+3+5k     | neighbour k's velocity minus own, ego frame, / ``max_speed``   | [-2, 2] |
    | B+4+5k             | neighbour k's mask: 1 = a neighbour, 0 = padding (all five zero) | {0, 1} |

    Landmarks are the ``n_landmark_obs`` (KL = 4) nearest landmarks, nearest first, m = 0 .. KL-1
    (a landmark vector keeps its direction and has norm 1 beyond 5 m). The "other robot" feature
    tells a robot whether a landmark is already taken or about to be (a small value: another robot
    is on it or near it). Neighbours are the ``n_neighbours`` (K = 4) nearest other robots within
    ``sense_range`` (3 m), nearest first (``core.neighbours.NeighbourSensor``). Every entry is
    clipped to its range.

    ## Action

    ``Box(-1, 1, (2,))``: left and right wheel power (as in navigation).

    ## Reward (per robot and step)

    With D the world's mean over landmarks of the distance from the landmark to its nearest robot
    (metres; the normalised form of ``simple_spread``'s shared reward) after the step, and D' the
    same before it::

        r = occupy_reward * [the robot is the nearest robot of an occupied landmark]
            + contribution_reward * sum over the landmarks l whose nearest robot it is of
                                    min(d2_l - d1_l, landmark_obs_scale)
            - distance_penalty * D + progress_reward * (D' - D)
            - collision_penalty * [in contact] - collision_onset_penalty * [first step of each contact]

    where d1_l and d2_l are landmark l's distances to its nearest and second-nearest robot. The
    distance terms are shared by every robot of the world; the occupancy term is the team's
    occupied landmarks split between the robots that hold them (landmarks are at least two radii
    apart, so a robot holds at most one); the contribution term is a difference reward, how much
    farther the landmarks' nearest robot would be without this robot (it tells a robot what it
    adds itself, which a shared reward alone hides among N robots). ``progress_reward`` is a
    shaping term, scaled by ``set_shaping_scale``.

    ## Episode end

    - Termination: none (``terminated`` is always False).
    - Truncation: ``max_steps`` (200) steps since the world's reset.
    - ``info`` per robot and step: ``collided`` (the robot touched a wall or robot) and
      ``on_landmark`` (the robot is the nearest robot of an occupied landmark).

    ## Metrics (per agent-episode, logged as ``env/<metric>``, printed by ``entropy eval``)

    Every robot of a world carries the world's value of the first three (so their metric is the
    mean over world-episodes); each is the value after the episode's last step (written per step
    as its change, which sums to the last value):

    - ``occupied_fraction``: fraction of landmarks occupied at the end of the episode;
    - ``landmark_distance``: mean over landmarks of the distance to the nearest robot at the end,
      metres;
    - ``all_covered``: 1 if every landmark is occupied at the end (the success statistic);
    - ``collisions_per_agent``: contact onsets (first step of each contact with a wall or robot)
      per robot and episode.

    ## Start state

    At every reset the landmarks are drawn first (uniform in the arena minus the margin, rejection
    sampled for the spacing), then the robots, uniform in the arena at least ``spawn_spacing``
    (0.8 m) apart, at rest with uniform headings. A robot respawned inside a running world (never by
    this scenario's own rules) starts at a random point at least ``spawn_spacing`` from every other
    robot.

    ## Arguments

    ``Coverage(config, num_worlds, n_agents, seed)``: see ``CoverageConfig`` for every field. The
    landmark work per world is O(N^2) (every landmark tests every robot): meant for tens of robots
    per world, not thousands.
    """

    name = "coverage"
    Config = CoverageConfig
    info_keys = {"collided": "the robot touched a wall or another robot in this step",
                 "on_landmark": "the robot is the nearest robot of an occupied landmark"}
    episode_stats = {"occupied": "change of the world's occupied fraction of landmarks",
                     "distance": "change of the world's mean landmark -> nearest robot distance (metres)",
                     "all_covered": "change of [every landmark occupied]",
                     "collisions": "contacts started (first step of each contact with a wall or robot)"}
    metrics = {"occupied_fraction": ("occupied", "fraction of landmarks occupied at the end of the episode"),
               "landmark_distance": ("distance", "mean landmark -> nearest robot distance at the end, metres"),
               "all_covered": ("all_covered", "fraction of episodes ending with every landmark occupied"),
               "collisions_per_agent": ("collisions", "contact onsets per agent-episode")}
    success_stat = "all_covered"
    # reward weights a curriculum may change during a run, per world (columns of self._params [E, P])
    settings = {"occupy_reward": ck.P_OCCUPY, "distance_penalty": ck.P_DIST, "contribution_reward": ck.P_CONTRIB,
                "collision_penalty": ck.P_COLL, "collision_onset_penalty": ck.P_ONSET,
                "progress_reward": ck.P_PROGRESS}
    shaping_terms = ("progress_reward",)
    per_world_settings = True

    def __init__(self, config: CoverageConfig, num_worlds: int, n_agents: int, seed: int | None = None):
        self.config = config
        self.world = w = make_world(config, num_worlds, n_agents, max_walls=4)
        E, N, R = w.num_worlds, w.n_agents, config.n_rays
        KL, K = config.n_landmark_obs, config.n_neighbours
        self._check_room(w.arena, N)
        self.allocate(R + 2 + ck.N_SLOT * KL + 5 * K, seed)   # obs [E, N, D], reward, terminated, stats [4, E, N]
        self.sensor = NeighbourSensor(w, K, config.sense_range)
        self.landmarks = Landmarks(w, N)                      # N landmarks per world
        self.info = {"collided": w.contact, "on_landmark": np.zeros((E, N), np.bool_)}  # [E, N] each
        self.d1 = np.zeros((E, N), np.float64)                # [E, L] landmark -> nearest robot distance
        self.j1 = np.zeros((E, N), np.int32)                  # [E, L] that robot's index
        self.d2 = np.zeros((E, N), np.float64)                # [E, L] landmark -> second-nearest robot distance
        self.occupied = np.zeros((E, N), np.bool_)           # [E, L] a robot's centre is inside the disc
        self.owner = np.zeros((E, N), np.int32)               # [E, N] occupied landmarks robot i is nearest to
        self.contrib = np.zeros((E, N), np.float64)           # [E, N] robot i's marginal contribution, metres
        self.mean_d = np.zeros(E, np.float64)                 # [E] mean landmark distance after the last step
        self.prev_mean_d = np.zeros(E, np.float64)            # [E] ... before it
        self.frac = np.zeros(E, np.float64)                   # [E] occupied fraction after the last step
        self.prev_frac = np.zeros(E, np.float64)              # [E] ... before it
        self.prev_contact = np.zeros((E, N), np.bool_)        # [E, N] contact flags of the last step
        self.t = np.zeros(E, np.int64)                        # [E] steps since the world's reset
        self._first = np.zeros(E, np.bool_)                   # [E] scratch: this step is the episode's first
        self._best_d2 = np.zeros((E, N, KL), np.float64)      # [E, N, KL] scratch: nearest landmarks
        self._best_l = np.zeros((E, N, KL), np.int32)         # [E, N, KL] scratch
        p = np.zeros(ck.N_PARAMS, np.float64)
        p[ck.P_ARENA] = w.arena
        p[ck.P_RADIUS] = config.agent_radius
        p[ck.P_LM_R] = config.landmark_radius
        p[ck.P_LM_MARGIN] = config.landmark_margin
        p[ck.P_LM_SPACING] = config.landmark_spacing
        p[ck.P_SPACING] = config.spawn_spacing
        p[ck.P_VMAX] = config.max_speed
        p[ck.P_LM_SCALE] = config.landmark_obs_scale
        p[ck.P_OCCUPY] = config.occupy_reward
        p[ck.P_DIST] = config.distance_penalty
        p[ck.P_CONTRIB] = config.contribution_reward
        p[ck.P_COLL] = config.collision_penalty
        p[ck.P_ONSET] = config.collision_onset_penalty
        self._params = np.repeat(p[None], E, axis=0)         # [E, P] each world's settings (curricula)
        self.set_shaping_scale(1.0)

    # ------------------------------------------------------------------ spec
    def observation_space(self) -> spaces.Box:
        """Lidar [0, 1], ego velocity [-1, 1], KL landmark slots (vector [-1, 1], other robot's
        distance [0, 1], mask [0, 1]), K neighbour slots (position [-1, 1], velocity [-2, 2], mask)."""
        R, KL, K = self.config.n_rays, self.config.n_landmark_obs, self.config.n_neighbours
        lm_lo, lm_hi = np.array([-1, -1, 0, 0], np.float32), np.ones(4, np.float32)
        nb_lo, nb_hi = np.array([-1, -1, -2, -2, 0], np.float32), np.array([1, 1, 2, 2, 1], np.float32)
        low = np.concatenate([np.zeros(R), -np.ones(2), np.tile(lm_lo, KL), np.tile(nb_lo, K)]).astype(np.float32)
        high = np.concatenate([np.ones(R), np.ones(2), np.tile(lm_hi, KL), np.tile(nb_hi, K)]).astype(np.float32)
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def action_space(self) -> spaces.Box:
        """Left and right wheel power."""
        return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)


    def _check_room(self, arena: float, n_agents: int) -> None:
        """Refuse arenas that cannot hold N landmarks at their spacing or N robots at theirs."""
        cfg = self.config
        room = arena - 2 * cfg.landmark_margin
        # a square lattice of spacing s fits floor(room / s) + 1 points a side: ask for twice the
        # landmarks (rejection sampling must find free places quickly)
        side = math.floor(max(room, 0.0) / cfg.landmark_spacing) + 1 if room >= 0 else 0
        if room < 0 or side * side < 2 * n_agents:
            raise ConfigError(
                f"arena of {arena:.1f} m is too small for {n_agents} landmarks: {max(room, 0):.1f} m between the "
                f"landmark margins ({cfg.landmark_margin} m each side) holds {side * side} points landmark_spacing "
                f"{cfg.landmark_spacing} m apart, fewer than 2 x {n_agents}; raise arena_size or area_per_agent, "
                f"or lower n_agents, landmark_spacing or landmark_margin")
        free = arena - 2 * (cfg.agent_radius + 0.05)
        side = math.floor(free / cfg.spawn_spacing) + 1
        if side * side < 2 * n_agents:
            raise ConfigError(
                f"arena of {arena:.1f} m is too small for {n_agents} agents spawn_spacing {cfg.spawn_spacing} m "
                f"apart; raise arena_size or area_per_agent, or lower n_agents or spawn_spacing")

    # ------------------------------------------------------------------ episodes
    def reset(self, mask: np.ndarray | None = None) -> None:
        w, lm = self.world, self.landmarks
        if mask is None:
            mask = np.ones(w.num_worlds, np.bool_)
        ck.reset_worlds(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active, lm.pos, lm.radius,
                        lm.active, w.walls, w.n_walls)
        w.contact[mask] = False
        self.prev_contact[mask] = False
        self.t[mask] = 0
        w.sync(mask)
        self._refresh()

    def respawn(self, mask: np.ndarray) -> None:
        w = self.world
        ck.respawn_agents(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active)
        self.prev_contact[mask] = False
        w.sync(mask.any(axis=1))
        self._refresh()

    def _refresh(self) -> None:
        """Lidar, neighbours, landmark distances and observations from the current state."""
        self.world.refresh_lidar()
        self.sensor.sense()
        self._world_phase()
        self._agents(False)

    def _world_phase(self) -> None:
        w, lm = self.world, self.landmarks
        ck.world_phase(w.pos, w.active, lm.pos, lm.radius, lm.active, self._params, self.d1, self.j1, self.d2,
                       self.occupied, self.mean_d, self.frac, self.owner, self.contrib)

    def _agents(self, with_reward: bool) -> None:
        w, lm = self.world, self.landmarks
        ck.agent_phase(with_reward, self._first, w.pos, w.vel, w.theta, w.active, w.contact, self.prev_contact,
                       w.lidar, self.sensor.out, lm.pos, lm.active, self.d1, self.j1, self.d2, self.occupied,
                       self.mean_d, self.prev_mean_d, self.frac, self.prev_frac, self.owner, self.contrib, self._params,
                       self._best_d2, self._best_l, self.reward, self.stats, self.obs)

    def step(self, actions: np.ndarray) -> None:
        w = self.world
        w.step(actions)
        self.sensor.sense()
        self.t += 1
        np.equal(self.t, 1, out=self._first)
        self.prev_mean_d[:] = self.mean_d
        self.prev_frac[:] = self.frac
        self._world_phase()
        self._agents(True)
        np.greater(self.owner, 0, out=self.info["on_landmark"])

    # ------------------------------------------------------------------ policies and drawing
    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """Decentralised greedy assignment: drive to the nearest landmark this robot is the closest
        robot to, with lidar avoidance (see ``coverage_heuristic``)."""
        return coverage_heuristic(obs, self.config)

    def draw(self, canvas, world_index: int) -> None:
        """The world's landmarks: a ring of ``landmark_radius``, green while occupied."""
        lm = self.landmarks
        for l in np.flatnonzero(lm.active[world_index]):
            color = (40, 170, 60) if self.occupied[world_index, l] else (230, 150, 20)
            canvas.ring(lm.pos[world_index, l], lm.radius[world_index, l], color)


def coverage_heuristic(obs: np.ndarray, config: CoverageConfig) -> np.ndarray:
    """Scripted greedy coverage, batched over any leading axes of ``obs``.

    The decentralised form of greedy nearest-pair assignment (which pairs the closest robot and
    landmark first, then the closest remaining pair, ...): a robot *claims* the nearest of its KL
    observed landmarks that it is closer to than any other robot (the globally closest pair always
    claims each other); when it is closer to none, it heads for the one with the largest margin
    ``other robot's distance - own distance`` (the least contested) among those that no other
    robot is on or touching, if any. It turns towards the target, drives forward in proportion to
    cos(heading error), slows down within 0.6 m and stops inside the disc; lidar hits within 0.5 m
    of its surface (walls, robots) push the desired direction away.
    """
    obs = np.asarray(obs, np.float32)
    R, KL = config.n_rays, config.n_landmark_obs
    scale = config.landmark_obs_scale
    lead = obs.shape[:-1]
    slots = obs[..., R + 2:R + 2 + ck.N_SLOT * KL].reshape(lead + (KL, ck.N_SLOT))
    vec = slots[..., 0:2]                                                   # [..., KL, 2]
    own = np.linalg.norm(vec, axis=-1) * scale                              # [..., KL] metres (>= 5: 5)
    other = slots[..., 2] * scale
    mask = slots[..., 3] > 0.5
    claim = mask & (own < other)
    big = np.float32(1e6)
    pick_claim = np.argmin(np.where(claim, own, big), axis=-1)
    free = mask & (other > config.landmark_radius + config.agent_radius)   # nobody on it or touching it
    pick_free = np.argmax(np.where(free, other - own, np.where(mask, other - own - big, -4 * big)), axis=-1)
    pick = np.where(claim.any(-1), pick_claim, pick_free)[..., None]        # [..., 1]
    target = np.take_along_axis(vec, pick[..., None], axis=-2)[..., 0, :] * scale   # [..., 2] metres
    dist = np.take_along_axis(own, pick, axis=-1)                           # [..., 1]
    has = mask.any(-1, keepdims=True)
    tdir = target / np.maximum(dist, 1e-6)
    lidar = obs[..., :R] * config.lidar_range
    ang = 2 * np.pi * np.arange(R) / R
    ray_dir = np.stack([np.cos(ang), np.sin(ang)], axis=1)                  # [R, 2]
    near = np.clip((0.5 - (lidar - config.agent_radius)) / 0.5, 0.0, 1.0) ** 2
    avoid = -(near @ ray_dir)
    desired = tdir + 1.0 * avoid
    err = np.arctan2(desired[..., 1], desired[..., 0])
    arrive = np.clip((dist - 0.5 * config.landmark_radius) / 0.6, 0.0, 1.0)    # 0 well inside the disc
    forward = np.clip(np.cos(err), 0.0, 1.0) * 0.8 * arrive[..., 0] * has[..., 0]
    turn = np.clip(1.5 * err, -1.0, 1.0) * (arrive[..., 0] > 0) * has[..., 0]
    act = np.stack([forward - turn, forward + turn], axis=-1)
    return np.clip(act, -1.0, 1.0).astype(np.float32)
