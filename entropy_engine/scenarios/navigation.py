"""Navigation: every robot drives to its own goal through walls and the rest of the swarm."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from ..config import ConfigError, field, require
from ..core.backends import make_world
from ..core.kernels import CELL
from . import navigation_kernels as nk
from .base import Scenario, ScenarioConfig


@dataclass(frozen=True)
class NavigationConfig(ScenarioConfig):
    """Navigation scenario settings (plus every physical constant of ``WorldConfig``)."""

    n_obstacles: int = field(4, "Interior wall segments per episode (randomised at every reset).")
    obstacle_min_length: float = field(1.0, "Shortest interior wall, metres.")
    obstacle_max_length: float = field(3.0, "Longest interior wall, metres.")
    obstacle_margin: float = field(1.0, "Interior walls keep this distance from the border, metres.")
    obstacle_gap: float = field(1.0, "Interior walls keep this distance from each other, metres.")
    spawn_clearance: float = field(0.05, "Extra gap between spawned agents, goals and walls, metres.")
    goal_radius: float = field(0.3, "An agent whose centre is this close to its goal has reached it.")
    min_goal_distance: float = field(1.0, "Every goal starts at least this far from its agent, metres.")
    progress_reward: float = field(1.0, "Reward per metre of progress towards the goal.")
    goal_reward: float = field(10.0, "One-off bonus for reaching the goal.")
    collision_penalty: float = field(0.5, "Penalty for every step in contact with a wall or robot.")
    time_penalty: float = field(0.01, "Penalty for every step (encourages short paths).")
    collision_onset_penalty: float = field(
        0.0, "One-off penalty on the first step of each contact with a wall or robot (a collision).")
    proximity_penalty: float = field(
        0.0, "Penalty per step, times (1 - gap / proximity_distance), for the nearest lidar hit closer than "
             "proximity_distance to the robot's surface.")
    proximity_distance: float = field(0.3, "Gap to the robot's surface (metres) below which the clearance terms act.")
    approach_penalty: float = field(
        0.0, "Penalty per step, times the largest (own speed towards a lidar hit / max_speed) * "
             "(1 - gap / proximity_distance) over rays closer than proximity_distance.")
    goal_obs_scale: float = field(5.0, "Goal vector divisor in metres; farther goals keep direction, norm 1.")
    active_fraction: float = field(
        1.0, "Share of the robots that take part in each episode (the first round(f * n_agents), at least 1); "
             "the others are inactive until the next reset (not simulated, not sensed, no episodes).")

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in dataclasses.fields(self):     # rewards, sizes, speeds: NaN or inf only ever produce NaN
            v = getattr(self, f.name)
            if isinstance(v, float):
                require(math.isfinite(v), f"{f.name} must be a finite number, got {v!r}")
        require(self.n_obstacles >= 0, f"n_obstacles must be >= 0, got {self.n_obstacles!r}")
        require(0 < self.obstacle_min_length <= self.obstacle_max_length,
                "need 0 < obstacle_min_length <= obstacle_max_length")
        require(self.goal_radius > 0, f"goal_radius must be positive, got {self.goal_radius!r}")
        require(self.goal_obs_scale > 0, "goal_obs_scale must be positive")
        require(self.spawn_clearance >= 0, "spawn_clearance must be >= 0")
        require(self.min_goal_distance >= 0, "min_goal_distance must be >= 0")
        require(self.proximity_distance >= 0, "proximity_distance must be >= 0")
        require(0 < self.active_fraction <= 1, f"active_fraction must be in (0, 1], got {self.active_fraction!r}")


class Navigation(Scenario):
    """Differential-drive robots each drive to their own goal in a walled square arena.

    ## Observation (float32, 36 values for the default 32 rays)

    | Index  | Observation                                   | Range   |
    |--------|-----------------------------------------------|---------|
    | 0-31   | lidar distance / ``lidar_range`` (ray 0 along the heading, counter-clockwise, measured from the robot's centre; walls and other robots) | [0, 1], 1 = nothing in range |
    | 32     | forward velocity / ``max_speed``              | [-1, 1] |
    | 33     | sideways (left) velocity / ``max_speed``      | [-1, 1] |
    | 34     | goal vector, forward component / s            | [-1, 1] |
    | 35     | goal vector, left component / s               | [-1, 1] |

    ``s = max(goal_obs_scale, distance to goal)``: the goal vector is exact within 5 m and a unit
    vector pointing at the goal beyond.

    ## Action (float32, 2 values)

    | Index | Action            | Range   |
    |-------|-------------------|---------|
    | 0     | left wheel power  | [-1, 1] |
    | 1     | right wheel power | [-1, 1] |

    Values outside [-1, 1] are clipped; NaN or inf is an error. The drive model is documented in
    ``entropy_engine.core.params``.

    ## Reward (per agent, per step; defaults)

    ``1.0 * (metres of progress towards the goal) + 10.0 on reaching the goal
    - 0.5 if in contact with a wall or robot this step - 0.01``, minus three optional shaping terms
    (all 0 by default) that train collision avoidance:

    - ``collision_onset_penalty`` once on the first step of each contact (a collision as the
      ``collisions_per_agent`` metric counts it);
    - ``proximity_penalty * (1 - gap / proximity_distance)`` for the nearest lidar hit whose gap
      ``lidar * lidar_range - agent_radius`` (robot surface to hit, metres) is below
      ``proximity_distance`` (0.3 m);
    - ``approach_penalty * max_k (v . u_k / max_speed) * (1 - gap_k / proximity_distance)`` over the
      rays k with a gap below ``proximity_distance`` that the robot is moving towards (``u_k``: ray
      direction, ``v``: the robot's velocity).

    The clearance terms only use the agent's own lidar and velocity, i.e. its observation.

    ## Episode end

    - Termination (per agent): its centre comes within ``goal_radius`` (0.3 m) of its goal.
    - Truncation: ``max_steps`` (500) steps since the world's reset.
    - ``info`` per agent and step: ``reached_goal`` and ``collided`` (booleans).

    ## Metrics (per agent-episode, logged as ``env/<metric>``, printed by ``entropy eval``)

    - ``success_rate``: the mean of ``success`` (1 if the agent reached its goal);
    - ``collisions_per_agent``: the mean of ``collisions`` (contact onsets: the first step of each
      contact with a wall or robot).

    ## Start state

    Interior walls (``n_obstacles`` segments of 1-3 m, at least 1 m from each other and from the
    border), robots and goals are placed at random at every reset: robots and goals each on
    distinct cells of a jittered lattice, so that no two robots overlap, no two goals overlap and
    none is within ``spawn_clearance`` of a wall; every goal starts at least ``min_goal_distance``
    (1 m) from its robot; headings are uniform. Only the first ``round(active_fraction * N)`` robots
    (at least one; all by default) take part; the others stay inactive until the next reset.

    ## Settings that may change during a run, per world (``settings``; curricula)

    ``n_obstacles`` (at most the configured count), ``obstacle_min_length``, ``obstacle_max_length``
    (at most the configured one), ``min_goal_distance``, ``goal_radius`` (a larger goal is an easier
    task), ``active_fraction`` and every reward weight;
    the kernels read each world's values from its row of ``_params`` [E, P].

    ## Arguments

    ``Navigation(config, num_worlds, n_agents, seed)``: see ``NavigationConfig`` for every field.
    """

    name = "navigation"
    Config = NavigationConfig
    info_keys = {"reached_goal": "the agent reached its goal in this step (it terminates)",
                 "collided": "the agent touched a wall or another robot in this step"}
    episode_stats = {"success": "1 if the agent reached its goal",
                     "collisions": "contacts started (first step of each contact with a wall or robot)"}
    metrics = {"success_rate": ("success", "fraction of agent-episodes that reached their goal"),
               "collisions_per_agent": ("collisions", "contact onsets per agent-episode")}
    success_stat = "success"
    # settings a curriculum may change during a run, per world (columns of self._params [E, P])
    settings = {"n_obstacles": nk.P_N_OBST, "obstacle_min_length": nk.P_OBST_MIN, "goal_radius": nk.P_GOAL_R,
                "obstacle_max_length": nk.P_OBST_MAX, "min_goal_distance": nk.P_MIN_GOAL_D,
                "active_fraction": nk.P_ACTIVE, "progress_reward": nk.P_PROGRESS, "goal_reward": nk.P_GOAL_BONUS,
                "collision_penalty": nk.P_COLLISION, "time_penalty": nk.P_TIME,
                "collision_onset_penalty": nk.P_ONSET, "proximity_penalty": nk.P_PROX,
                "approach_penalty": nk.P_APPROACH}
    shaping_terms = ("collision_onset_penalty", "proximity_penalty", "approach_penalty")
    per_world_settings = True

    @classmethod
    def check_settings(cls, config: NavigationConfig, values: dict[str, float]) -> None:
        """Beyond finite numbers: at most the configured ``n_obstacles`` walls (the wall arrays hold
        that many) and an integer count, walls no longer than the configured ``obstacle_max_length``
        (the spawn room was checked for it), ``0 < obstacle_min_length <= obstacle_max_length``,
        ``min_goal_distance >= 0``, ``goal_radius > 0``, ``0 < active_fraction <= 1``."""
        super().check_settings(config, values)
        get = lambda name: float(values.get(name, getattr(config, name)))   # noqa: E731
        n = get("n_obstacles")
        if not (n.is_integer() and 0 <= n <= config.n_obstacles):
            raise ConfigError(f"setting n_obstacles must be an integer in [0, {config.n_obstacles}] (the configured "
                              f"n_obstacles is the most walls a world holds), got {values.get('n_obstacles')!r}")
        lo, hi = get("obstacle_min_length"), get("obstacle_max_length")
        if not (0 < lo <= hi <= config.obstacle_max_length):
            raise ConfigError(f"settings need 0 < obstacle_min_length <= obstacle_max_length <= {config.obstacle_max_length} "
                              f"(the configured obstacle_max_length), got {lo!r} and {hi!r}")
        if get("min_goal_distance") < 0:
            raise ConfigError(f"setting min_goal_distance must be >= 0, got {get('min_goal_distance')!r}")
        if not get("goal_radius") > 0:
            raise ConfigError(f"setting goal_radius must be > 0 (metres), got {get('goal_radius')!r}")
        if not 0 < get("active_fraction") <= 1:
            raise ConfigError(f"setting active_fraction must be in (0, 1], got {get('active_fraction')!r}")

    def __init__(self, config: NavigationConfig, num_worlds: int, n_agents: int, seed: int | None = None):
        self.config = config
        self.world = w = make_world(config, num_worlds, n_agents, max_walls=4 + config.n_obstacles)
        E, N, R = w.num_worlds, w.n_agents, config.n_rays
        self._check_room(w.arena, N)
        self.allocate(R + 4, seed)                        # obs [E, N, 36], reward, terminated, stats [2, E, N], rng
        self.info = {"reached_goal": self.terminated, "collided": w.contact}   # [E, N] each
        self.goals = np.zeros((E, N, 2), np.float32)      # [E, N, 2] goal positions
        self.dist = np.zeros((E, N), np.float32)          # [E, N] distance to goal after last step
        self.prev_contact = np.zeros((E, N), np.bool_)    # [E, N] contact flags of the last step
        self._placed = np.zeros(E, np.int64)              # [E] agents placed by the last reset
        self._respawned = np.zeros((E, N), np.int64)     # [E, N] scratch: agents respawned so far (respawn)
        n_cells = self._lattice_cells(w.arena) ** 2
        self._order = np.zeros((E, n_cells), np.int64)    # [E, cells] scratch permutation
        p = np.zeros(nk.N_PARAMS, np.float64)            # one row; every world starts with it
        p[nk.P_ARENA] = w.arena
        p[nk.P_RADIUS] = config.agent_radius
        p[nk.P_GOAL_R] = config.goal_radius
        p[nk.P_N_OBST] = config.n_obstacles
        p[nk.P_OBST_MIN] = config.obstacle_min_length
        p[nk.P_OBST_MAX] = config.obstacle_max_length
        p[nk.P_OBST_MARGIN] = config.obstacle_margin
        p[nk.P_OBST_GAP] = config.obstacle_gap
        p[nk.P_CLEAR] = config.spawn_clearance
        p[nk.P_PROGRESS] = config.progress_reward
        p[nk.P_GOAL_BONUS] = config.goal_reward
        p[nk.P_COLLISION] = config.collision_penalty
        p[nk.P_TIME] = config.time_penalty
        p[nk.P_GOAL_SCALE] = config.goal_obs_scale
        p[nk.P_VMAX] = config.max_speed
        p[nk.P_ONSET] = config.collision_onset_penalty
        p[nk.P_PROX] = config.proximity_penalty
        p[nk.P_PROX_D] = config.proximity_distance
        p[nk.P_APPROACH] = config.approach_penalty
        p[nk.P_RANGE] = config.lidar_range
        p[nk.P_MIN_GOAL_D] = config.min_goal_distance
        p[nk.P_ACTIVE] = config.active_fraction
        self._params = np.repeat(p[None], E, axis=0)      # [E, P] each world's settings (curricula)

    def observation_space(self) -> spaces.Box:
        """Lidar in [0, 1] (n_rays), ego velocity / max_speed and scaled ego goal vector in [-1, 1]."""
        n = self.config.n_rays
        low = np.concatenate([np.zeros(n), -np.ones(4)]).astype(np.float32)
        return spaces.Box(low=low, high=np.ones(n + 4, np.float32), dtype=np.float32)

    def action_space(self) -> spaces.Box:
        """Left and right wheel power."""
        return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)

    def _lattice_cells(self, arena: float) -> int:
        r = self.config.agent_radius
        return max(0, int((arena - 2 * (r + self.config.spawn_clearance)) / (4 * r)))

    def _check_room(self, arena: float, n_agents: int) -> None:
        """Refuse arenas where the lattice cannot hold every robot even with the walls in it."""
        cfg = self.config
        side = self._lattice_cells(arena)
        cell = 4 * cfg.agent_radius
        # an interior wall can spoil the cells within (clearance + r) of it on both sides
        per_wall = (cfg.obstacle_max_length / cell + 2) * (2 * (cfg.agent_radius + cfg.spawn_clearance) / cell + 2)
        usable = side * side - cfg.n_obstacles * per_wall
        if usable < n_agents:
            raise ConfigError(
                f"arena of {arena:.1f} m is too small for {n_agents} agents of radius {cfg.agent_radius} m "
                f"with {cfg.n_obstacles} interior walls (about {max(int(usable), 0)} spawn places); "
                f"raise arena_size or area_per_agent, or lower n_agents or n_obstacles"
            )

    def reset(self, mask: np.ndarray | None = None) -> None:
        w = self.world
        if mask is None:
            mask = np.ones(w.num_worlds, np.bool_)
        with w.threads():
            nk.reset_worlds(mask, self.rng, self._params, w.walls, w.n_walls, w.pos, w.vel, w.theta, w.omega,
                            w.active, self.goals, self._order, self._placed)
        if np.any(self._placed[mask] < w.n_agents):
            bad = int(np.flatnonzero(mask & (self._placed < w.n_agents))[0])
            raise RuntimeError(
                f"world {bad}: could place only {self._placed[bad]} of {w.n_agents} agents or goals; "
                "the arena is too crowded (raise arena_size or lower n_obstacles)"
            )
        w.contact[mask] = False
        self.prev_contact[mask] = False
        w.sync(mask)
        self._refresh()

    def respawn(self, mask: np.ndarray) -> None:
        w = self.world
        with w.threads():
            cell_start, cell_items = w.grid()
            nk.respawn_agents(mask, self.rng, self._params, w.walls, w.n_walls, w.pos, w.vel, w.theta, w.omega,
                              w.active, self.goals, w.grid_size, w.phys[CELL], cell_start, cell_items, self._respawned)
        self.prev_contact[mask] = False
        w.sync(mask.any(axis=1))
        self._refresh()

    def _refresh(self) -> None:
        """Lidar and observations from the current state (after a reset or respawn)."""
        w = self.world
        with w.threads():
            w.refresh_lidar()
            nk.observe(w.pos, w.vel, w.theta, self.goals, w.lidar, w.active, self._params, self.obs, self.dist)

    def step(self, actions: np.ndarray) -> None:
        w = self.world
        with w.threads():   # one thread for small batches (BatchEnv.step lets the thread count follow the load)
            w.step(actions)
            nk.reward_observe(w.pos, w.vel, w.theta, self.goals, w.active, w.contact, self.prev_contact, w.lidar,
                              self._params, self.dist, self.reward, self.terminated, self.stats, self.obs)

    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """Go to the goal, steering away from lidar hits closer than 1 m (a potential field)."""
        return navigation_heuristic(obs, self.config.n_rays, self.config.lidar_range)

    def draw(self, canvas, world_index: int) -> None:
        """Every active agent's goal as a ring in the agent's colour."""
        active = self.world.active[world_index]
        for i in np.flatnonzero(active):
            canvas.ring(self.goals[world_index, i], float(self._params[world_index, nk.P_GOAL_R]),
                        canvas.agent_color(i))


def navigation_heuristic(obs: np.ndarray, n_rays: int = 32, lidar_range: float = 3.0) -> np.ndarray:
    """Scripted policy for the navigation scenario, batched over any leading axes."""
    obs = np.asarray(obs, np.float32)
    lidar = obs[..., :n_rays] * lidar_range                      # metres
    goal = obs[..., n_rays + 2:n_rays + 4]
    ang = 2 * np.pi * np.arange(n_rays) / n_rays
    ray_dir = np.stack([np.cos(ang), np.sin(ang)], axis=1)       # [R, 2] ego frame
    push = np.clip((1.0 - lidar) / 1.0, 0.0, 1.0) ** 2           # within 1 m
    goal_norm = np.linalg.norm(goal, axis=-1, keepdims=True)
    desired = goal / np.maximum(goal_norm, 1e-6) - 1.5 * push @ ray_dir / 4.0
    heading_err = np.arctan2(desired[..., 1], desired[..., 0])
    front = np.minimum(lidar[..., :2].min(-1), lidar[..., -1])
    forward = np.clip(np.cos(heading_err), 0.0, 1.0) * np.clip((front - 0.3) / 0.7, 0.2, 1.0)
    forward = forward * np.clip(goal_norm[..., 0] * 5.0 / 0.6, 0.3, 1.0)  # slow down near the goal
    turn = np.clip(1.5 * heading_err, -1.0, 1.0)
    act = np.stack([forward - turn, forward + turn], axis=-1)
    return np.clip(act, -1.0, 1.0).astype(np.float32)
