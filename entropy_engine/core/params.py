"""World configuration: the differential-drive model, collision and lidar constants.

Units are SI (metres, seconds, kilograms, radians). All state arrays are float32; kernels compute
in float64 internally and store float32.

Differential drive (per agent, every control step of ``dt`` seconds)::

    F_l, F_r = a_l * max_wheel_force, a_r * max_wheel_force        # a in [-1, 1]
    F   = F_l + F_r                                                 # push along the heading
    tau = (F_r - F_l) * wheel_base / 2                              # turn (counter-clockwise > 0)
    v_f <- v_f * exp(-c_v dt) + F / (m c_v)     * (1 - exp(-c_v dt))  # exact for linear damping
    w   <- w   * exp(-c_w dt) + tau / (I c_w)   * (1 - exp(-c_w dt))
    v_lat <- v_lat * lateral_slip                                   # wheels resist sliding sideways
    |v_f| <= max_speed, |w| <= max_angular_speed, I = m r^2 / 2 (a disc)
    theta <- theta + w dt ;  position <- position + v dt  (v rebuilt from v_f, v_lat, new heading)

With the defaults, full power on both wheels reaches F / (m c_v) = 1.5 m/s (the speed limit)
and the largest move in one step (0.15 m) is smaller than the agent radius (0.2 m), which together
with the swept wall test in the collision pass guarantees that no agent tunnels through a wall.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

from ..config import field, require


@dataclass(frozen=True)
class WorldConfig:
    """Physical constants of one world (shared by every scenario)."""

    arena_size: Optional[float] = field(
        None, "Side of the square arena in metres; None: sqrt(area_per_agent * n_agents), at least 10 m."
    )
    area_per_agent: float = field(10.0, "Arena area per agent in m^2 used when arena_size is None.")
    agent_radius: float = field(0.2, "Radius of every robot (a disc), metres.")
    dt: float = field(0.1, "Control and physics step, seconds.")
    mass: float = field(1.0, "Robot mass, kg.")
    max_wheel_force: float = field(1.5, "Force of one wheel at power 1, newtons.")
    wheel_base: float = field(0.3, "Distance between the two wheels, metres.")
    linear_damping: float = field(2.0, "Linear velocity damping rate c_v, 1/s.")
    angular_damping: float = field(5.0, "Angular velocity damping rate c_w, 1/s.")
    lateral_slip: float = field(0.1, "Fraction of sideways velocity kept per step (0 = no slip).")
    max_speed: float = field(1.5, "Speed limit, m/s.")
    max_angular_speed: float = field(4.0, "Turn-rate limit, rad/s.")
    n_rays: int = field(32, "Lidar rays over 360 degrees; ray 0 along the heading, counter-clockwise.")
    lidar_range: float = field(3.0, "Lidar range in metres (readings are distance / range, 1 = no hit).")
    collision_iterations: int = field(
        32, "Position-correction passes per step (robot-robot and robot-wall contacts solved together in each).")
    backend: str = field(
        "numba", "Physics backend: 'numba' (compiled, batched, default), 'pymunk' (the original's Chipmunk2D), "
                  "or any backend added with core.backends.register_backend.")
    pymunk_lidar: Literal["compiled", "pymunk"] = field(
        "compiled", "Lidar of the pymunk backend: 'compiled' ray kernels or 'pymunk' (one segment query per ray).")

    def __post_init__(self) -> None:
        for name in ("agent_radius", "dt", "mass", "max_wheel_force", "wheel_base", "linear_damping",
                     "angular_damping", "max_speed", "max_angular_speed", "lidar_range", "area_per_agent"):
            v = getattr(self, name)
            require(math.isfinite(v) and v > 0, f"{name} must be a positive number, got {v!r}")
        require(self.arena_size is None or (math.isfinite(self.arena_size) and self.arena_size > 0),
                f"arena_size must be positive or None, got {self.arena_size!r}")
        require(0.0 <= self.lateral_slip <= 1.0, f"lateral_slip must be in [0, 1], got {self.lateral_slip!r}")
        require(self.n_rays >= 1, f"n_rays must be >= 1, got {self.n_rays!r}")
        require(self.collision_iterations >= 1, "collision_iterations must be >= 1")
        from .backends import BACKENDS

        require(self.backend in BACKENDS, f"backend must be one of {sorted(BACKENDS)}, got {self.backend!r}")
        require(self.max_speed * self.dt < self.agent_radius,
                f"max_speed * dt ({self.max_speed * self.dt:.3f} m) must be smaller than agent_radius "
                f"({self.agent_radius} m) so that no agent can pass through a wall in one step")

    def arena_for(self, n_agents: int) -> float:
        """The arena side used for ``n_agents`` agents."""
        if self.arena_size is not None:
            return float(self.arena_size)
        return max(10.0, math.sqrt(self.area_per_agent * n_agents))

    @property
    def inertia(self) -> float:
        """Moment of inertia of a uniform disc, kg m^2."""
        return 0.5 * self.mass * self.agent_radius ** 2
