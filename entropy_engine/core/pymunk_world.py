"""The original design's physics as a backend: one ``pymunk.Space`` (Chipmunk2D) per world.

``PymunkWorld`` is a ``core.state.WorldState`` (the arrays, grid and compiled lidar every backend
shares) that keeps its bodies in Chipmunk spaces, so scenarios, envs and trainers do not know which
backend they run on (``WorldConfig.backend = "pymunk"``; ``make_world`` builds it). It has none of
the compiled backend's step scratch.

Model
-----
- Every agent is a dynamic circle body (mass ``mass``, moment ``inertia`` of a disc). Each step
  the two wheel forces ``a_l * max_wheel_force`` and ``a_r * max_wheel_force`` are applied along
  the body's heading at the wheel points ``(0, +wheel_base/2)`` (left) and ``(0, -wheel_base/2)``
  (right) with ``apply_force_at_local_point``; Chipmunk accumulates them into a force and a
  torque ``(F_r - F_l) * wheel_base / 2``.
- Before the physics step the accumulated force and torque are turned into the step's velocity
  and turn rate with the documented drive model (exact linear damping, lateral friction
  ``lateral_slip``, speed and turn-rate limits; see ``core.params``) and consumed, so Chipmunk's
  own velocity integration adds nothing. Chipmunk then advances the space in ``SUBSTEPS``
  substeps of ``dt / SUBSTEPS``: free bodies move exactly ``v dt`` and turn ``w dt`` (the drive
  model's update), and contacts are detected every substep and resolved by Chipmunk's impulse
  solver and position bias (``BIAS_PER_STEP``: 90 % of an overlap is removed per control step).
  A robot pushing at full power against a wall or another robot stays within 1 cm of contact.
- Walls are static segments; contacts have no friction and no bounce (``elasticity = 0``), like
  the compiled backend's position correction. ``contact`` is set for the robots of every contact
  where the solver had to push (a robot driving into a wall or robot, or an impact) or that is
  deeper than Chipmunk's resting overlap; a robot merely resting against a wall is not in contact.
- Lidar (``pymunk_lidar``): ``"compiled"`` casts the compiled ray kernels on the synced arrays;
  ``"pymunk"`` makes one ``space.segment_query_first`` per ray (the original's path, kept as the
  reference) with the same normalisation: distance from the centre / ``lidar_range``, ray 0 along
  the heading, counter-clockwise, walls and other robots, never the robot itself.

Agreement with the compiled backend (``tests/test_pymunk_backend.py``): away from contacts the
motion is the documented drive model exactly; the two backends differ only by float32 (compiled)
versus float64 (Chipmunk) rounding: under any constant wheel power positions agree within
1e-3 m and headings within 1e-3 rad after 100 steps (10 s). Contacts are resolved differently
(impulses here, position projection there), so trajectories diverge after the first collision.

Determinism: Chipmunk is deterministic for the same sequence of operations, and every operation
here happens in a fixed order (worlds, then agents by index), so one seed gives one trajectory.
"""
from __future__ import annotations

import math

import numpy as np

from ..config import ConfigError
from ..optional import optional_import
from . import kernels
from .params import WorldConfig
from .state import WorldState

AGENT_TYPE = 1  # collision_type of robots; walls keep 0
SUBSTEPS = 4  # Chipmunk steps per control step: contacts are detected every dt / SUBSTEPS
BIAS_PER_STEP = 0.1  # fraction of an overlap left after one control step of Chipmunk's correction


def import_pymunk():
    """Import pymunk or fail with a message that says how to install it."""
    return optional_import("pymunk", "the 'pymunk' backend", "pymunk")


def _drive_func(config: WorldConfig):
    """The documented drive model applied to a body's accumulated wheel force and torque.

    Sets the body's velocity and turn rate for the coming control step and consumes the force
    (so Chipmunk's own velocity integration adds nothing); Chipmunk then moves the body with that
    velocity through the substeps while contact impulses act on it.
    """
    dt = config.dt
    decay = math.exp(-config.linear_damping * dt)
    k_force = (1.0 - decay) / (config.mass * config.linear_damping)
    adecay = math.exp(-config.angular_damping * dt)
    k_torque = (1.0 - adecay) / (config.inertia * config.angular_damping)
    slip = config.lateral_slip
    vmax = config.max_speed
    wmax = config.max_angular_speed
    cos, sin, sqrt = math.cos, math.sin, math.sqrt

    def drive(body):
        th = body.angle
        c, s = cos(th), sin(th)
        vx, vy = body.velocity
        fx, fy = body.force
        v_f = (vx * c + vy * s) * decay + (fx * c + fy * s) * k_force
        v_f = min(max(v_f, -vmax), vmax)
        v_l = (-vx * s + vy * c) * slip
        om = body.angular_velocity * adecay + body.torque * k_torque
        om = min(max(om, -wmax), wmax)
        th = th + om * dt
        c, s = cos(th), sin(th)
        vx = v_f * c - v_l * s
        vy = v_f * s + v_l * c
        sp = sqrt(vx * vx + vy * vy)
        if sp > vmax:
            vx *= vmax / sp
            vy *= vmax / sp
        body.velocity = (vx, vy)
        body.angular_velocity = om
        body.force = (0.0, 0.0)
        body.torque = 0.0

    return drive


class PymunkWorld(WorldState):
    """``WorldState`` stepped by Chipmunk2D: one ``pymunk.Space`` per world (see the module docstring)."""

    def __init__(self, config: WorldConfig, num_worlds: int, n_agents: int, max_walls: int,
                 substeps: int = SUBSTEPS, max_objects: int = 0):
        if max_objects:
            raise ConfigError("the 'pymunk' backend does not simulate movable objects (core.objects); this "
                              "scenario needs them: use backend='numba'")
        super().__init__(config, num_worlds, n_agents, max_walls)
        self.substeps = int(substeps)
        self._pm = pymunk = import_pymunk()
        E, N = self.num_worlds, self.n_agents
        self._drive = _drive_func(config)
        self._half_base = 0.5 * config.wheel_base
        self._filters = [pymunk.ShapeFilter(group=i + 1) for i in range(N)]  # a ray ignores its robot
        self._spaces: list = []
        self._bodies: list[list] = []
        self._shapes: list[list] = []
        self._wall_shapes: list[list] = [[] for _ in range(E)]
        self._in_space = np.zeros((E, N), np.bool_)           # [E, N] body currently in its space
        self._live: list[list[int]] = [[] for _ in range(E)]  # active agent ids per world, ascending
        # [E, ...] the state last written to / read from the spaces, to find what a reset changed
        self._seen_pos = np.full((E, N, 2), np.nan, np.float32)
        self._seen_vel = np.zeros((E, N, 2), np.float32)
        self._seen_theta = np.zeros((E, N), np.float32)
        self._seen_omega = np.zeros((E, N), np.float32)
        self._seen_walls = np.zeros_like(self.walls)
        self._seen_n_walls = np.zeros(E, np.int32)
        for w in range(E):
            self._spaces.append(self._new_space(w))
            bodies, shapes = [], []
            for i in range(N):
                body = pymunk.Body(config.mass, config.inertia)
                shape = pymunk.Circle(body, config.agent_radius)
                shape.friction = 0.0
                shape.elasticity = 0.0
                shape.collision_type = AGENT_TYPE
                shape.filter = self._filters[i]
                bodies.append(body)
                shapes.append(shape)
            self._bodies.append(bodies)
            self._shapes.append(shapes)
        self._agent_of = {id(s): i for w in range(E) for i, s in enumerate(self._shapes[w])}
        self._rays = self.ray_cs.shape[0]
        self._ray_angles = 2.0 * np.pi * np.arange(self._rays) / self._rays  # [R]

    # ------------------------------------------------------------------ construction helpers
    def _new_space(self, w: int):
        space = self._pm.Space()
        space.iterations = 10
        space.collision_slop = 1e-3   # metres of overlap Chipmunk tolerates (default 0.1 is half a robot)
        space.damping = 1.0           # damping is the drive model's, not Chipmunk's
        space.collision_bias = BIAS_PER_STEP ** (1.0 / self.config.dt)  # Chipmunk's unit: overlap left per second
        space.on_collision(post_solve=self._on_contact, data=w)
        return space

    def _on_contact(self, arbiter, space, w) -> None:
        """post_solve: a contact counts when the solver had to push (the robot drives into it)
        or the overlap exceeds what Chipmunk tolerates at rest (``collision_slop``)."""
        if arbiter.total_impulse.length <= 1e-9:
            points = arbiter.contact_point_set.points
            if not points or min(p.distance for p in points) > -(space.collision_slop + kernels.CONTACT_TOL):
                return
        for shape in arbiter.shapes:
            if shape.collision_type == AGENT_TYPE:
                self.contact[w, self._agent_of[id(shape)]] = True

    def _rebuild_walls(self, w: int) -> None:
        space = self._spaces[w]
        if self._wall_shapes[w]:
            space.remove(*self._wall_shapes[w])
        n = int(self.n_walls[w])
        segs = []
        for x1, y1, x2, y2 in self.walls[w, :n].astype(np.float64).tolist():
            seg = self._pm.Segment(space.static_body, (x1, y1), (x2, y2), 0.0)
            seg.friction = 0.0
            seg.elasticity = 0.0
            segs.append(seg)
        if segs:
            space.add(*segs)
        self._wall_shapes[w] = segs
        self._seen_walls[w] = self.walls[w]
        self._seen_n_walls[w] = n

    def _place(self, w: int, agents) -> None:
        """Move the given agents of world ``w`` to their array state, adding/removing bodies."""
        space = self._spaces[w]
        for i in agents:
            body, shape = self._bodies[w][i], self._shapes[w][i]
            if self._in_space[w, i]:
                space.remove(body, shape)  # drops its arbiters: a teleport keeps no contact history
                self._in_space[w, i] = False
            body.position = (float(self.pos[w, i, 0]), float(self.pos[w, i, 1]))
            body.angle = float(self.theta[w, i])
            body.velocity = (float(self.vel[w, i, 0]), float(self.vel[w, i, 1]))
            body.angular_velocity = float(self.omega[w, i])
            body.force = (0.0, 0.0)
            body.torque = 0.0
            if self.active[w, i]:
                space.add(body, shape)
                self._in_space[w, i] = True
        self._live[w] = np.flatnonzero(self._in_space[w]).tolist()
        self._remember(w)

    def _remember(self, w) -> None:
        self._seen_pos[w] = self.pos[w]
        self._seen_vel[w] = self.vel[w]
        self._seen_theta[w] = self.theta[w]
        self._seen_omega[w] = self.omega[w]

    # ------------------------------------------------------------------ WorldState interface
    def sync(self, worlds: np.ndarray) -> None:
        """Rebuild the walls (if they changed) and re-place every agent whose state was written
        from outside, in the worlds where ``worlds`` [E] is True."""
        for w in np.flatnonzero(worlds).tolist():
            n = int(self.n_walls[w])
            if n != self._seen_n_walls[w] or not np.array_equal(self.walls[w, :n], self._seen_walls[w, :n]):
                self._rebuild_walls(w)
            changed = ((self.active[w] != self._in_space[w])
                       | np.any(self.pos[w] != self._seen_pos[w], axis=1)
                       | np.any(self.vel[w] != self._seen_vel[w], axis=1)
                       | (self.theta[w] != self._seen_theta[w])
                       | (self.omega[w] != self._seen_omega[w]))
            if changed.any():
                self._place(w, np.flatnonzero(changed).tolist())

    def step(self, actions: np.ndarray) -> None:
        """Advance every world by one step. ``actions`` is float32 [E, N, 2], already in [-1, 1]."""
        stale = self.active != self._in_space  # e.g. agents deactivated by the env after a goal
        if stale.any():
            for w in np.flatnonzero(stale.any(axis=1)).tolist():
                self._place(w, np.flatnonzero(stale[w]).tolist())
        self.contact[:] = False  # set by the contact handler during the substeps
        forces = (actions.astype(np.float64) * self.config.max_wheel_force).tolist()
        hb = self._half_base
        left, right = (0.0, hb), (0.0, -hb)
        drive = self._drive
        sub_dt = self.config.dt / self.substeps
        for w, space in enumerate(self._spaces):
            bodies = self._bodies[w]
            fw = forces[w]
            for i in self._live[w]:
                body = bodies[i]
                f_l, f_r = fw[i]
                body.apply_force_at_local_point((f_l, 0.0), left)
                body.apply_force_at_local_point((f_r, 0.0), right)
                drive(body)
            for _ in range(self.substeps):
                space.step(sub_dt)
            self._read_back(w)
        self.refresh_lidar()

    def _read_back(self, w: int) -> None:
        """Copy body state of world ``w`` into the shared arrays (float32, heading wrapped)."""
        live = self._live[w]
        if not live:
            return
        bodies = self._bodies[w]
        state = np.array([(*b.position, *b.velocity, b.angle, b.angular_velocity)
                          for b in (bodies[i] for i in live)], np.float64)  # [n_live, 6]
        lo, hi = self.radius, self.arena - self.radius
        out = (state[:, 0] < lo) | (state[:, 0] > hi) | (state[:, 1] < lo) | (state[:, 1] > hi)
        if out.any():  # a robot squeezed through the border: put it back inside the arena
            for k in np.flatnonzero(out).tolist():
                x, y = np.clip(state[k, :2], lo, hi)
                state[k, :2] = (x, y)
                bodies[live[k]].position = (float(x), float(y))
        sp = np.hypot(state[:, 2], state[:, 3])
        over = sp > self.config.max_speed  # collision impulses may briefly exceed the limit
        state[over, 2:4] *= (self.config.max_speed / sp[over])[:, None]
        idx = np.asarray(live)
        self.pos[w, idx] = state[:, 0:2]
        self.vel[w, idx] = state[:, 2:4]
        self.theta[w, idx] = (state[:, 4] + np.pi) % (2.0 * np.pi) - np.pi
        self.omega[w, idx] = state[:, 5]
        self._remember(w)

    def refresh_lidar(self) -> None:
        """Recompute every agent's lidar from the current state (compiled kernels or pymunk)."""
        if self.config.pymunk_lidar == "compiled":
            super().refresh_lidar()
            return
        R, rng = self._rays, self.config.lidar_range
        ang = self.theta.astype(np.float64)[:, :, None] + self._ray_angles       # [E, N, R]
        ends = self.pos.astype(np.float64)[:, :, None, :] + rng * np.stack([np.cos(ang), np.sin(ang)], -1)
        self.lidar.fill(1.0)
        for w, space in enumerate(self._spaces):
            query = space.segment_query_first
            for i in self._live[w]:
                start = (float(self.pos[w, i, 0]), float(self.pos[w, i, 1]))
                flt = self._filters[i]
                row = [1.0] * R
                for r, end in enumerate(ends[w, i].tolist()):
                    hit = query(start, end, 0.0, flt)
                    if hit is not None:
                        row[r] = hit.alpha
                self.lidar[w, i] = row
