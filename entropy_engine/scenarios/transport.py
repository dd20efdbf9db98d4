"""Transport: robots push a disc too heavy for one of them into a goal zone."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from ..config import ConfigError, field, require
from ..core.backends import make_world
from ..core.objects import GRAVITY
from . import transport_kernels as tk
from .base import Scenario, ScenarioConfig


@dataclass(frozen=True)
class TransportConfig(ScenarioConfig):
    """Transport scenario settings (plus every physical constant of ``WorldConfig``)."""

    n_objects: int = field(1, "Movable discs per world: object 0 is the one to deliver, the others (same size, mass "
                              "and friction) are clutter that robots may push out of the way.")
    object_radius: float = field(0.5, "Radius of the objects (discs), metres.")
    object_mass: float = field(8.0, "Mass of the object, kg.")
    object_friction: float = field(
        0.045, "Coulomb ground-friction coefficient of the object: it resists with mu * mass * 9.81 N (3.5 N by "
               "default, more than one robot's 2 * max_wheel_force = 3 N, less than two robots').")
    object_margin: float = field(1.5, "The object starts at least this far (centre) from the border, metres.")
    goal_radius: float = field(1.0, "Radius of the goal zone; the task is done when the object's centre is inside.")
    goal_margin: float = field(1.2, "The goal's centre is at least this far from the border, metres.")
    goal_min_distance: float = field(3.0, "The goal's centre starts at least this far from the object's, metres.")
    obs_scale: float = field(5.0, "Divisor (metres) of the object and goal vectors; farther ones keep direction, "
                                  "norm 1.")
    spawn_spacing: float = field(0.6, "Robots start at least this far apart (centres), metres.")
    progress_reward: float = field(10.0, "Reward to every robot per metre the object gets closer to the goal.")
    success_reward: float = field(10.0, "Reward to every robot when the object reaches the goal.")
    approach_reward: float = field(0.5, "Shaping: reward per metre the robot gets closer to the push point "
                                        "(behind the object, on the far side from the goal).")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(isinstance(self.n_objects, int) and not isinstance(self.n_objects, bool) and self.n_objects >= 1,
                f"n_objects must be an integer >= 1, got {self.n_objects!r}")
        for name in ("object_radius", "object_mass", "goal_radius", "obs_scale", "goal_min_distance"):
            v = getattr(self, name)
            require(math.isfinite(v) and v > 0, f"{name} must be a positive number, got {v!r}")
        for name in ("object_friction", "progress_reward", "success_reward", "approach_reward"):
            v = getattr(self, name)
            require(math.isfinite(v) and v >= 0, f"{name} must be a number >= 0, got {v!r}")
        require(math.isfinite(self.object_margin) and self.object_margin >= self.object_radius,
                f"object_margin must be >= object_radius ({self.object_radius}), got {self.object_margin!r}")
        require(math.isfinite(self.goal_margin) and self.goal_margin >= 0,
                f"goal_margin must be a number >= 0, got {self.goal_margin!r}")
        require(math.isfinite(self.spawn_spacing) and self.spawn_spacing >= 2 * self.agent_radius + 0.02,
                f"spawn_spacing must be >= 2 * agent_radius + 0.02 ({2 * self.agent_radius + 0.02:.2f} m) so that "
                f"robots start apart, got {self.spawn_spacing!r}")


class Transport(Scenario):
    """Differential-drive robots push a heavy disc (the object) into a goal zone.

    Every world has one movable object (``core.objects``: a disc of ``object_radius`` 0.5 m,
    ``object_mass`` 8 kg, ground friction ``object_friction`` 0.045, i.e. 3.5 N) and one goal
    zone (a disc of ``goal_radius`` 1 m). One robot pushes with at most 3 N and cannot move the
    object; two or more pushing together can. When the object's centre enters the goal zone, every
    robot's episode ends (terminated); in training the world then starts a new task.

    ## Observation (float32, 40 values for the default 32 rays)

    | Index    | Observation                                                          | Range   |
    |----------|----------------------------------------------------------------------|---------|
    | 0 .. R-1 | lidar distance / ``lidar_range`` (walls, robots and the object)      | [0, 1], 1 = nothing in range |
    | R, R+1   | ego velocity (forward, left) / ``max_speed``                         | [-1, 1] |
    | R+2, R+3 | object centre minus own centre, ego frame, / max(``obs_scale``, distance) | [-1, 1] |
    | R+4, R+5 | goal centre minus object centre, ego frame, / max(``obs_scale``, distance) | [-1, 1] |
    | R+6, R+7 | object velocity, ego frame, / ``max_speed``                          | [-1, 1] |

    ## Action (float32, 2 values)

    | Index | Action            | Range   |
    |-------|-------------------|---------|
    | 0     | left wheel power  | [-1, 1] |
    | 1     | right wheel power | [-1, 1] |

    Values outside [-1, 1] are clipped; NaN or inf is an error (drive model: ``core.params``).

    ## Reward (per robot, per step; defaults)

    ``10 * (metres the object got closer to the goal) + 10 to every robot when it reaches the
    goal + 0.5 * (metres the robot got closer to its push point)``: the first two are shared by
    the world's robots; the push point is behind the object on the far side from the goal (at
    ``object_radius + agent_radius`` from its centre); that last term is shaping.

    ## Episode end

    - Termination: the object's centre is within ``goal_radius`` of the goal's (every robot of the
      world at once).
    - Truncation: ``max_steps`` (500) steps since the world's reset.
    - ``info`` per robot and step: ``collided`` (touched a wall, robot or the object) and
      ``delivered`` (the object reached the goal in this step).

    ## Metrics (per agent-episode, logged as ``env/<metric>``, printed by ``entropy eval``)

    - ``success_rate``: fraction of episodes in which the object reached the goal;
    - ``time_to_goal``: seconds from the episode's start until the object reached the goal, or the
      whole episode (``max_steps * dt``) when it did not (lower is better);
    - ``object_progress``: metres the object got closer to the goal during the episode.

    ## Start state

    At every reset the object is at a uniform point at least ``object_margin`` (1.5 m) from the
    border, at rest (with ``n_objects`` > 1 the others are clutter at uniform points 0.1 m apart
    and off the goal); the goal at a uniform point ``goal_margin`` (1.2 m) from the border and at
    least ``goal_min_distance`` (3 m) from the object; robots at uniform points at least
    ``spawn_spacing`` apart and 0.2 m clear of the object, headings uniform. The arena has its four
    border walls only (the default ``area_per_agent`` gives 10 m for 10 robots).

    ## Arguments

    ``Transport(config, num_worlds, n_agents, seed)``: see ``TransportConfig`` for every field.
    Needs a compiled backend (``backend='numba'`` or ``'cuda'``): the pymunk backend has no movable objects.
    """

    name = "transport"
    Config = TransportConfig
    info_keys = {"collided": "the robot touched a wall, another robot or the object in this step",
                 "delivered": "the world's object reached the goal in this step"}
    episode_stats = {"success": "1 when the object reached the goal",
                     "time": "dt per step (the episode's duration in seconds)",
                     "progress": "metres the object got closer to the goal"}
    metrics = {"success_rate": ("success", "fraction of episodes in which the object reached the goal"),
               "time_to_goal": ("time", "seconds until the object reached the goal (the episode's length if never)"),
               "object_progress": ("progress", "metres the object got closer to the goal")}
    success_stat = "success"
    # settings a curriculum may change during a run, per world (columns of self._params [E, P])
    settings = {"progress_reward": tk.P_PROGRESS, "success_reward": tk.P_SUCCESS, "approach_reward": tk.P_APPROACH,
                "goal_min_distance": tk.P_GOAL_MIN_D}
    per_world_settings = True

    @classmethod
    def check_settings(cls, config: TransportConfig, values: dict[str, float]) -> None:
        """Beyond finite numbers: reward weights >= 0 and ``0 < goal_min_distance <=`` the configured one
        (the arena was checked to fit it; read at each new task)."""
        super().check_settings(config, values)
        for name, v in values.items():
            if name == "goal_min_distance" and not 0 < v <= config.goal_min_distance:
                raise ConfigError(f"setting goal_min_distance must be in (0, {config.goal_min_distance}] (the "
                                  f"configured goal_min_distance is the farthest), got {v!r}")
            if v < 0:
                raise ConfigError(f"setting {name} must be >= 0, got {v!r}")

    def __init__(self, config: TransportConfig, num_worlds: int, n_agents: int, seed: int | None = None):
        self.config = config
        self.world = w = make_world(config, num_worlds, n_agents, max_walls=4, max_objects=config.n_objects)
        E, N, R = w.num_worlds, w.n_agents, config.n_rays
        self._check_room(w.arena, N)
        self.allocate(R + 8, seed)                             # obs [E, N, R+8], reward, terminated, stats [3, E, N]
        ob = w.objects
        M = config.n_objects
        ob.place(np.full((E, M, 2), 0.5 * w.arena), config.object_radius, config.object_mass, config.object_friction,
                 active=np.zeros((E, M), np.bool_))
        self.goal = np.zeros((E, 2), np.float32)               # [E, 2] goal zone centre
        self.gdist = np.zeros(E, np.float64)                   # [E] object-goal distance after the last step
        self._prev_gdist = np.zeros(E, np.float64)             # [E] the one before
        self.done = np.zeros(E, np.bool_)                      # [E] the object is in the goal zone
        self.gap = np.zeros((E, N), np.float64)                # [E, N] distance to the push point
        self.prev_contact = np.zeros((E, N), np.bool_)         # [E, N] scratch of leave_out
        self.info = {"collided": w.contact, "delivered": np.zeros((E, N), np.bool_)}  # [E, N] each
        p = np.zeros(tk.N_PARAMS, np.float64)
        p[tk.P_ARENA] = w.arena
        p[tk.P_RADIUS] = config.agent_radius
        p[tk.P_OBJ_R] = config.object_radius
        p[tk.P_OBJ_MARGIN] = config.object_margin
        p[tk.P_GOAL_R] = config.goal_radius
        p[tk.P_GOAL_MARGIN] = config.goal_margin
        p[tk.P_GOAL_MIN_D] = config.goal_min_distance
        p[tk.P_SPACING] = config.spawn_spacing
        p[tk.P_VMAX] = config.max_speed
        p[tk.P_SCALE] = config.obs_scale
        p[tk.P_PROGRESS] = config.progress_reward
        p[tk.P_SUCCESS] = config.success_reward
        p[tk.P_APPROACH] = config.approach_reward
        p[tk.P_DT] = config.dt
        self._params = np.repeat(p[None], E, axis=0)           # [E, P] each world's settings (curricula)

    # ------------------------------------------------------------------ spec
    def observation_space(self) -> spaces.Box:
        """Lidar [0, 1], then ego velocity, object vector, goal vector, object velocity in [-1, 1]."""
        R = self.config.n_rays
        low = np.concatenate([np.zeros(R), -np.ones(8)]).astype(np.float32)
        return spaces.Box(low=low, high=np.ones(R + 8, np.float32), dtype=np.float32)

    def action_space(self) -> spaces.Box:
        """Left and right wheel power."""
        return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)

    def _check_room(self, arena: float, n_agents: int) -> None:
        """Refuse arenas where the object, the goal and the robots cannot be placed apart."""
        cfg = self.config
        if arena - 2 * cfg.object_margin <= 0 or arena - 2 * cfg.goal_margin <= 0:
            raise ConfigError(
                f"arena of {arena:.1f} m is too small: the object keeps object_margin {cfg.object_margin} m and the "
                f"goal goal_margin {cfg.goal_margin} m from the border; raise arena_size or lower the margins")
        if cfg.goal_min_distance > math.hypot(arena, arena) - cfg.object_margin - cfg.goal_margin:
            raise ConfigError(f"goal_min_distance {cfg.goal_min_distance} m cannot fit in an arena of {arena:.1f} m")
        free = arena ** 2 - cfg.n_objects * math.pi * (cfg.object_radius + cfg.agent_radius + 0.2) ** 2
        if cfg.n_objects * (2 * cfg.object_radius + 0.1) ** 2 > 0.25 * arena ** 2:
            raise ConfigError(f"arena of {arena:.1f} m is too small for {cfg.n_objects} objects of radius "
                              f"{cfg.object_radius} m; raise arena_size or lower n_objects")
        if n_agents * cfg.spawn_spacing ** 2 > 0.5 * free:
            raise ConfigError(
                f"arena of {arena:.1f} m is too small for {n_agents} agents {cfg.spawn_spacing} m apart beside the "
                f"object; raise arena_size or area_per_agent, or lower n_agents or spawn_spacing")
        if cfg.object_friction * cfg.object_mass * GRAVITY >= 2 * n_agents * cfg.max_wheel_force:
            raise ConfigError(
                f"the object's friction force {cfg.object_friction * cfg.object_mass * GRAVITY:.1f} N is more than all "
                f"{n_agents} robots can push ({2 * n_agents * cfg.max_wheel_force:.1f} N); lower object_friction or "
                f"object_mass")

    # ------------------------------------------------------------------ episodes
    def reset(self, mask: np.ndarray | None = None) -> None:
        w = self.world
        if mask is None:
            mask = np.ones(w.num_worlds, np.bool_)
        a = w.arena
        ob = w.objects
        tk.reset_worlds(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active, ob.pos, ob.vel,
                        ob.active, self.goal, self.gdist, self.done)
        w.walls[mask, :4] = np.array([[0, 0, a, 0], [a, 0, a, a], [a, a, 0, a], [0, a, 0, 0]], np.float32)
        w.n_walls[mask] = 4
        w.contact[mask] = False
        w.sync(mask)
        self._refresh()

    def respawn(self, mask: np.ndarray) -> None:
        w = self.world
        ob = w.objects
        tk.respawn_agents(mask, self.rng, self._params, w.pos, w.vel, w.theta, w.omega, w.active, ob.pos, ob.vel,
                          ob.active, self.goal, self.gdist, self.done)
        w.sync(mask.any(axis=1))
        self._refresh()

    def _refresh(self) -> None:
        """Lidar and observations from the current state (after a reset or respawn)."""
        w = self.world
        w.refresh_lidar()
        self._agents(False)

    def _agents(self, with_reward: bool) -> None:
        w = self.world
        ob = w.objects
        tk.agent_phase(with_reward, w.pos, w.vel, w.theta, w.active, w.lidar, ob.pos, ob.vel, self.goal, self.gdist,
                       self._prev_gdist, self.done, self._params, self.gap, self.prev_contact, self.reward, self.stats,
                       self.terminated, self.obs)

    def step(self, actions: np.ndarray) -> None:
        w = self.world
        w.step(actions)
        tk.world_phase(w.objects.pos, self.goal, self._params, self.gdist, self._prev_gdist, self.done)
        self._agents(True)
        np.logical_and(self.done[:, None], w.active, out=self.info["delivered"])

    # ------------------------------------------------------------------ policies and drawing
    def heuristic(self, obs: np.ndarray) -> np.ndarray:
        """Go behind the object (seen from the goal), then push it towards the goal."""
        return transport_heuristic(obs, self.config)

    def draw(self, canvas, world_index: int) -> None:
        """The goal zone (green ring) and the object (a grey disc)."""
        canvas.ring(self.goal[world_index], self.config.goal_radius, (60, 170, 60))
        ob = self.world.objects
        for m in np.flatnonzero(ob.active[world_index]):
            canvas.disc(ob.pos[world_index, m], float(ob.radius[world_index, m]), (120, 110, 100))


def transport_heuristic(obs: np.ndarray, config: TransportConfig) -> np.ndarray:
    """Scripted pushing for the transport scenario, batched over any leading axes of ``obs``.

    In the robot's frame: the push point lies behind the object on the line from the goal through
    the object's centre. A robot behind the object (within 50 degrees of that line, seen from the
    object) drives at a point just beyond the object's centre towards the goal, which pushes the
    object goalwards and corrects sideways drift; any other robot heads for the push point, swinging
    around the object when it is in the way, and avoids walls and robots seen by the lidar.
    """
    obs = np.asarray(obs, np.float32)
    R = config.n_rays
    scale = config.obs_scale
    o = obs[..., R + 2:R + 4] * scale                                       # [..., 2] to the object, metres
    g = obs[..., R + 4:R + 6]                                               # [..., 2] object -> goal (direction)
    u = g / np.maximum(np.linalg.norm(g, axis=-1, keepdims=True), 1e-6)
    ro = config.object_radius + config.agent_radius
    d_o = np.linalg.norm(o, axis=-1, keepdims=True)
    me = -o / np.maximum(d_o, 1e-6)                                         # object -> robot direction
    behind = (me * u).sum(-1, keepdims=True) < -math.cos(math.radians(50))
    push_target = o + u * 0.6
    side = me - (me * u).sum(-1, keepdims=True) * u                         # robot's side of the object's axis
    side = side / np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-6)
    waypoint = o - u * (ro + 0.3)
    close = d_o < ro + 0.6
    swing = o + side * (ro + 0.5) - u * 0.3                                 # go around on the robot's own side
    approach = np.where(close & ~behind, swing, waypoint)
    target = np.where(behind & (d_o < ro + 1.0), push_target, approach)
    desired = target / np.maximum(np.linalg.norm(target, axis=-1, keepdims=True), 1e-6)
    lidar = obs[..., :R] * config.lidar_range
    ang = 2 * np.pi * np.arange(R) / R
    ray_dir = np.stack([np.cos(ang), np.sin(ang)], axis=1)                  # [R, 2]
    near = np.clip((0.4 - (lidar - config.agent_radius)) / 0.4, 0.0, 1.0) ** 2
    pushing = behind & (d_o < ro + 0.3)
    desired = desired - np.where(pushing, 0.0, 0.6) * (near @ ray_dir)
    err = np.arctan2(desired[..., 1], desired[..., 0])
    forward = np.clip(np.cos(err), 0.0, 1.0)
    turn = np.clip(2.0 * err, -1.0, 1.0)
    act = np.stack([forward - turn, forward + turn], axis=-1)
    return np.clip(act, -1.0, 1.0).astype(np.float32)
