"""Aggregation: robots spawned spread over the arena gather into one cluster, with no meeting point given."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from ..config import ConfigError, field, require
from ..core.backends import make_world
from ..core.kernels import CELL
from ..core.neighbours import NeighbourSensor
from . import aggregation_kernels as ak
from .base import Scenario, ScenarioConfig


@dataclass(frozen=True)
class AggregationConfig(ScenarioConfig):
    """Aggregation scenario settings (plus every physical constant of ``WorldConfig``)."""

    n_neighbours: int = field(6, "K: neighbours in the observation (nearest first, padded and masked).")
    sense_range: float = field(3.0, "Neighbour sensing range, metres, centre to centre.")
    cue_range: float = field(6.0, "Range of the coarse cue (direction to the centroid of the other robots "
                                  "within it, and their count), metres; >= sense_range.")
    link_distance: float = field(0.8, "Two robots whose centres are at most this far apart are linked; a "
                                      "cluster is a connected component of links, metres (0.8 = 4 radii).")
    spawn_spacing: float = field(1.0, "Robots start on random distinct cells of a lattice with this spacing "
                                      "covering the whole arena, jittered, metres.")
    cluster_reward: float = field(0.2, "Reward per step times the fraction of the world's robots in the "
                                       "robot's own cluster.")
    spread_penalty: float = field(0.05, "Penalty per step per metre of nearest-neighbour distance beyond "
                                        "link_distance (capped at sense_range; shaping).")
    collision_penalty: float = field(0.5, "Penalty for every step in contact with a wall or robot.")
    collision_onset_penalty: float = field(2.0, "One-off penalty on the first step of each contact (a collision).")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(isinstance(self.n_neighbours, int) and self.n_neighbours >= 1,
                f"n_neighbours must be an integer >= 1, got {self.n_neighbours!r}")
        for name in ("sense_range", "cue_range", "link_distance"):
            v = getattr(self, name)
            require(math.isfinite(v) and v > 0, f"{name} must be a positive number, got {v!r}")
        for name in ("cluster_reward", "spread_penalty", "collision_penalty", "collision_onset_penalty"):
            v = getattr(self, name)
            require(math.isfinite(v) and v >= 0, f"{name} must be a number >= 0, got {v!r}")
        require(self.cue_range >= self.sense_range,
                f"cue_range ({self.cue_range}) must be >= sense_range ({self.sense_range})")
        require(self.link_distance >= 2 * self.agent_radius,
                f"link_distance must be >= 2 * agent_radius ({2 * self.agent_radius:.2f} m, contact), "
                f"got {self.link_distance!r}")
        require(math.isfinite(self.spawn_spacing) and self.spawn_spacing >= 2 * self.agent_radius + 0.02,
                f"spawn_spacing must be >= 2 * agent_radius + 0.02 ({2 * self.agent_radius + 0.02:.2f} m) so that "
                f"robots start apart, got {self.spawn_spacing!r}")


class Aggregation(Scenario):
    """Differential-drive robots, spawned spread over the arena, gather into one cluster.

    No meeting point is given: the robots must agree on one through what they sense. Two robots
    are *linked* when their centres are at most ``link_distance`` (0.8 m = 4 radii, a gap of
    0.4 m between bodies) apart; a *cluster* is a connected component of links (computed every
    step by union-find over the spatial grid). The world is aggregated when all its robots form
    one cluster. No robot's episode ends early.

    ## Observation (float32, 67 values for the default 32 rays and K = 6 neighbours)

    | Index            | Observation                                                   | Range   |
    |------------------|---------------------------------------------------------------|---------|
    | 0 .. R-1         | lidar distance / ``lidar_range`` (R = ``n_rays`` rays, ray 0 along the heading, counter-clockwise; walls and other robots) | [0, 1], 1 = nothing in range |
    | R, R+1           | ego velocity (forward, left) / ``max_speed``                  | [-1, 1] |
    | R+2+5k, R+3+5k   | neighbour k's centre minus own, ego frame, / ``sense_range``   | [-1, 1] |
    | R+4+5k, R+5+5k   | neighbour k's velocity minus own, ego frame, / ``max_speed``   | [-2, 2] |
    | R+6+5k           | neighbour k's mask: 1 = a neighbour, 0 = padding (all five zero) | {0, 1} |
    | R+2+5K, R+3+5K   | cue: mean offset to the other robots within ``cue_range``, ego frame, / ``cue_range`` (0 when none) | [-1, 1] |
    | R+4+5K           | cue count: robots within ``cue_range`` / (N - 1)              | [0, 1]  |

    Neighbours are the ``n_neighbours`` (K = 6) nearest other robots within ``sense_range``
    (3 m), nearest first (``core.neighbours.NeighbourSensor``), for k = 0 .. K-1. The cue is a
    longer-range but coarse signal (only the centroid of the robots within ``cue_range``, 6 m, and
    how many they are): without it two clusters more than 3 m apart would never see each other. A robot with
    nobody within ``cue_range`` sees zeros and must explore. Every entry is clipped to its range.

    ## Action (float32, 2 values)

    | Index | Action            | Range   |
    |-------|-------------------|---------|
    | 0     | left wheel power  | [-1, 1] |
    | 1     | right wheel power | [-1, 1] |

    Values outside [-1, 1] are clipped; NaN or inf is an error (drive model: ``core.params``).

    ## Reward (per robot, per step; defaults)

    ``0.2 * (robots in the robot's own cluster) / (active robots of the world)
    - 0.05 * max(0, d_nn - 0.8 m) - 0.5 while touching a wall or robot - 2.0 on the first step
    of each contact``, where d_nn is the centre distance to the nearest sensed neighbour
    (``sense_range`` when nobody is in range). The cluster term is local credit (a robot earns for
    the cluster it is in, so joining any cluster pays and merging clusters pays everyone in them);
    the d_nn term is a shaping term, scaled by ``set_shaping_scale``.

    ## Episode end

    - Termination: none (``terminated`` is always False).
    - Truncation: ``max_steps`` (500) steps since the world's reset.
    - ``info`` per robot and step: ``collided`` (bool) and ``cluster_fraction`` (float: the
      fraction of the world's robots in the robot's own cluster).

    ## Metrics (per agent-episode, logged as ``env/<metric>``, printed by ``entropy eval``)

    A metric is the mean over agent-episodes of a statistic summed over the episode. The
    end-of-episode values are written as the change since the robot's previous step, so their sum
    is the value after the episode's last step:

    - ``largest_cluster``: the fraction of the world's robots in its largest cluster after the last
      step (1 = one cluster, 1/N = nobody linked); every robot carries its world's value, so the
      metric is the mean over world-episodes (the primary metric);
    - ``largest_cluster_mean``: the same fraction averaged over the episode's steps (how fast);
    - ``centroid_distance``: the robot's distance to its world's centroid (mean position of its
      robots) after the last step, metres, averaged over robots (lower is tighter);
    - ``collisions_per_agent``: contact onsets (first step of each contact with a wall or robot)
      per robot and episode;
    - ``aggregated_rate``: the fraction of episodes that end with all robots in one cluster (the
      success statistic).

    ## Start state

    At every reset the robots are placed on random distinct cells of a lattice covering the whole
    arena (cells ``spawn_spacing`` = 1 m wide, ``floor((arena - 2 * (agent_radius + 0.05)) /
    spawn_spacing)`` a side, centred), jittered inside their cell; headings are uniform. A robot
    respawned inside a running world (never by this scenario's own rules) starts at a random point
    at least ``spawn_spacing`` from every other robot. The arena has its four border walls only.

    ## Arguments

    ``Aggregation(config, num_worlds, n_agents, seed)``: see ``AggregationConfig`` for every field.
    """

    name = "aggregation"
    Config = AggregationConfig
    info_keys = {"collided": "the robot touched a wall or another robot in this step",
                 "cluster_fraction": "fraction of the world's robots in the robot's own cluster after this step"}
    episode_stats = {"largest": "change of the world's largest-cluster fraction (telescopes to the final value)",
                     "largest_mean": "the world's largest-cluster fraction / max_steps, per step",
                     "centroid": "change of the distance to the world's centroid, metres (telescopes)",
                     "collisions": "contacts started (first step of each contact with a wall or robot)",
                     "aggregated": "change of the flag 'all robots in one cluster' (telescopes)"}
    metrics = {"largest_cluster": ("largest", "fraction of the robots in the largest cluster at the episode's end"),
               "largest_cluster_mean": ("largest_mean", "fraction in the largest cluster, mean over steps"),
               "centroid_distance": ("centroid", "distance to the world's centroid at the episode's end, metres"),
               "collisions_per_agent": ("collisions", "contact onsets per agent-episode"),
               "aggregated_rate": ("aggregated", "fraction of episodes ending with one cluster")}
    success_stat = "aggregated"
    # reward weights a curriculum may change during a run, per world (columns of self._params [E, P])
    settings = {"cluster_reward": ak.P_CLUSTER, "collision_penalty": ak.P_COLL,
                "collision_onset_penalty": ak.P_ONSET, "spread_penalty": ak.P_SPREAD}
    shaping_terms = ("spread_penalty",)
    per_world_settings = True

    def __init__(self, config: AggregationConfig, num_worlds: int, n_agents: int, seed: int | None = None):
        self.config = config
        if isinstance(n_agents, (int, np.integer)) and n_agents == 1:
            raise ConfigError("aggregation needs n_agents >= 2 (one robot has nobody to gather with), got 1")
        self.world = w = make_world(config, num_worlds, n_agents, max_walls=4)
        E, N, R, K = w.num_worlds, w.n_agents, config.n_rays, config.n_neighbours
        margin = config.agent_radius + 0.05
        self._side = int((w.arena - 2 * margin) // config.spawn_spacing)
        if self._side ** 2 < N:
            raise ConfigError(
                f"arena of {w.arena:.1f} m is too small for {N} agents: the spawn lattice has {self._side} x "
                f"{self._side} cells of spawn_spacing {config.spawn_spacing} m; raise arena_size or "
                f"area_per_agent, or lower n_agents or spawn_spacing")
        self.allocate(R + 5 + 5 * K, seed)                   # obs [E, N, R+5+5K], reward, terminated, stats [5, E, N]
        self.sensor = NeighbourSensor(w, K, config.sense_range)
        self.info = {"collided": w.contact, "cluster_fraction": np.zeros((E, N), np.float32)}  # [E, N] each
        self.label = np.full((E, N), -1, np.int32)          # [E, N] cluster id = its smallest agent index
        self.size = np.zeros((E, N), np.int32)              # [E, N] robots in the cluster rooted at index
        self.n_active = np.zeros(E, np.int32)               # [E] active robots
        self.largest = np.zeros(E, np.int32)                # [E] robots in the largest cluster
        self.centroid = np.zeros((E, 2), np.float64)        # [E, 2] mean position of the active robots
        self._parent = np.zeros((E, N), np.int32)           # [E, N] scratch: union-find forest
        self._last = np.zeros((3, E, N), np.float64)        # [3, E, N] last end-of-episode values written
        self._fresh = np.ones((E, N), np.bool_)             # [E, N] the agent's episode has had no step
        self.prev_contact = np.zeros((E, N), np.bool_)      # [E, N] contact flags of the last step
        self._order = np.zeros((E, self._side ** 2), np.int64)  # [E, cells] scratch permutation
        p = np.zeros(ak.N_PARAMS, np.float64)
        p[ak.P_ARENA] = w.arena
        p[ak.P_RADIUS] = config.agent_radius
        p[ak.P_SPACING] = config.spawn_spacing
        p[ak.P_VMAX] = config.max_speed
        p[ak.P_SENSE] = config.sense_range
        p[ak.P_CUE] = config.cue_range
        p[ak.P_LINK] = config.link_distance
        p[ak.P_CLUSTER] = config.cluster_reward
        p[ak.P_COLL] = config.collision_penalty
        p[ak.P_ONSET] = config.collision_onset_penalty
        p[ak.P_INV_T] = 1.0 / config.max_steps
        p[ak.P_CELL] = float(w.phys[CELL])
        self._params = np.repeat(p[None], E, axis=0)         # [E, P] each world's settings (curricula)
        self.set_shaping_scale(1.0)

    # ------------------------------------------------------------------ spec
    def observation_space(self) -> spaces.Box:
        """Lidar [0, 1], ego velocity [-1, 1], K neighbour slots (position [-1, 1], velocity [-2, 2],
        mask [0, 1]), cue vector [-1, 1], cue count [0, 1]."""
        R, K = self.config.n_rays, self.config.n_neighbours
        slot_lo = np.array([-1, -1, -2, -2, 0], np.float32)
        slot_hi = np.array([1, 1, 2, 2, 1], np.float32)
        low = np.concatenate([np.zeros(R), -np.ones(2), np.tile(slot_lo, K), [-1, -1, 0]]).astype(np.float32)
        high = np.concatenate([np.ones(R), np.ones(2), np.tile(slot_hi, K), np.ones(3)]).astype(np.float32)
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def action_space(self) -> spaces.Box:
        """Left and right wheel power."""
        return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)


    # ------------------------------------------------------------------ episodes
    def reset(self, mask: np.ndarray | None = None) -> None:
        w = self.world
        if mask is None:
            mask = np.ones(w.num_worlds, np.bool_)
        ak.reset_worlds(mask, self.rng, self._params, self._side, w.pos, w.vel, w.theta, w.omega, w.active,
                        self._order, w.walls, w.n_walls)
        w.contact[mask] = False
        self.prev_contact[mask] = False
        self._fresh[mask] = True
        w.sync(mask)
        self._refresh()

    def respawn(self, mask: np.ndarray) -> None:
        w = self.world
        ak.respawn_agents(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active)
        self.prev_contact[mask] = False
        self._fresh[mask] = True
        w.sync(mask.any(axis=1))
        self._refresh()

    def _refresh(self) -> None:
        """Lidar, neighbours, clusters and observations from the current state (after a reset or respawn)."""
        self.world.refresh_lidar()
        self._sense_and_score(False)

    def _sense_and_score(self, with_reward: bool) -> None:
        w = self.world
        cell_start, cell_items = w.grid()
        self.sensor.sense(grid=(cell_start, cell_items))
        ak.world_phase(w.pos, w.active, cell_start, cell_items, w.grid_size, self._params, self._parent, self.size,
                       self.label, self.n_active, self.largest, self.centroid)
        ak.agent_phase(with_reward, self._fresh, w.pos, w.vel, w.theta, w.active, w.contact, self.prev_contact,
                       w.lidar, self.sensor.out, cell_start, cell_items, w.grid_size, self.label, self.size,
                       self.n_active, self.largest, self.centroid, self._params, self._last,
                       self.info["cluster_fraction"], self.reward, self.stats, self.obs)

    def step(self, actions: np.ndarray) -> None:
        self.world.step(actions)
        self._sense_and_score(True)

    # ------------------------------------------------------------------ policies and drawing
    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """Move towards the centroid of the sensed neighbours (else the cue, else explore on a wide
        spiral), keep apart from close robots and walls, stop when packed."""
        return aggregation_heuristic(obs, self.config)

    def draw(self, canvas, world_index: int) -> None:
        """The world's centroid (small disc) and a ring around every robot of the largest cluster."""
        w, e = self.world, world_index
        act = w.active[e]
        if not act.any():
            return
        canvas.disc(w.pos[e][act].mean(axis=0), 0.08, (230, 150, 20))
        sizes = np.where(self.label[e] >= 0, self.size[e][np.maximum(self.label[e], 0)], 0)
        if sizes.max() >= 2:
            for i in np.flatnonzero(sizes == sizes.max()):
                canvas.ring(w.pos[e, i], self.config.link_distance / 2, (230, 150, 20), width_frac=0.15)


def aggregation_heuristic(obs: np.ndarray, config: AggregationConfig) -> np.ndarray:
    """Scripted aggregation for the aggregation scenario, batched over any leading axes of ``obs``.

    In the robot's frame the target is the centroid of the sensed neighbours (the classic
    cohesion rule); with nobody within ``sense_range`` it is the cue (the centroid of the robots
    within ``cue_range``); with nobody there either the robot explores: straight ahead on a wide
    left spiral. Separation pushes away from neighbours closer than 0.6 m and lidar hits within
    0.5 m of the body. The robot turns towards the desired direction and drives forward in
    proportion to cos(heading error) and to how far the target still is (it stops when the local
    centroid is within 0.5 m: packed).
    """
    obs = np.asarray(obs, np.float32)
    R, K = config.n_rays, config.n_neighbours
    lead = obs.shape[:-1]
    nb = obs[..., R + 2:R + 2 + 5 * K].reshape(lead + (K, 5))
    m = nb[..., 4]                                                          # [..., K]
    rel = nb[..., 0:2] * config.sense_range                                 # [..., K, 2] metres
    cnt = m.sum(-1, keepdims=True)                                          # [..., 1]
    coh = (rel * m[..., None]).sum(-2) / np.maximum(cnt, 1.0)               # [..., 2] to the local centroid
    cue = obs[..., R + 2 + 5 * K:R + 4 + 5 * K] * config.cue_range          # [..., 2] to the cue centroid
    has_nb = cnt > 0
    has_cue = obs[..., R + 4 + 5 * K:R + 5 + 5 * K] > 0
    explore = np.broadcast_to(np.array([1.0, 0.15], np.float32), coh.shape)
    # with neighbours: their centroid pulled a little towards the wider cue, so that small groups merge
    target = np.where(has_nb, coh + 0.3 * cue, np.where(has_cue, cue, explore))
    dist = np.linalg.norm(target, axis=-1, keepdims=True)
    t_dir = target / np.maximum(dist, 1e-6)
    d = np.linalg.norm(rel, axis=-1)                                        # [..., K]
    push = m * np.clip((0.6 - d) / 0.2, 0.0, 1.0)
    sep = -(rel / np.maximum(d, 1e-3)[..., None] * push[..., None]).sum(-2)
    lidar = obs[..., :R] * config.lidar_range
    ang = 2 * np.pi * np.arange(R) / R
    ray_dir = np.stack([np.cos(ang), np.sin(ang)], axis=1)                  # [R, 2]
    near = np.clip((0.5 - (lidar - config.agent_radius)) / 0.5, 0.0, 1.0) ** 2
    avoid = -(near @ ray_dir)
    desired = t_dir + 1.5 * sep + 1.0 * avoid
    err = np.arctan2(desired[..., 1], desired[..., 0])
    far = np.where((has_nb | has_cue)[..., 0], np.clip((dist[..., 0] - 0.5) / 1.0, 0.0, 1.0), 1.0)
    front = np.clip((lidar[..., 0] - config.agent_radius - 0.15) / 0.3, 0.0, 1.0)   # a body just ahead: stop
    forward = np.clip(np.cos(err), 0.0, 1.0) * 0.8 * far * front
    turn = np.clip(1.5 * err, -1.0, 1.0) * np.maximum(far, 0.3)
    act = np.stack([forward - turn, forward + turn], axis=-1)
    return np.clip(act, -1.0, 1.0).astype(np.float32)
