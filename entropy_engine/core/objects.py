"""Movable objects: discs with their own radius, mass and ground friction that robots push.

A world built with ``max_objects = M > 0`` (``core.backends.make_world(..., max_objects=M)``) holds
up to M objects per world in ``world.objects``, preallocated and written in place:

| array       | shape     | dtype   | meaning                                                        |
|-------------|-----------|---------|----------------------------------------------------------------|
| ``pos``     | [E, M, 2] | float32 | centre, metres, world frame                                    |
| ``vel``     | [E, M, 2] | float32 | velocity, m/s                                                  |
| ``radius``  | [E, M]    | float32 | radius, metres (> 0)                                           |
| ``mass``    | [E, M]    | float32 | mass, kg (> 0)                                                 |
| ``friction``| [E, M]    | float32 | Coulomb ground-friction coefficient mu (>= 0), g = 9.81 m/s^2  |
| ``active``  | [E, M]    | bool    | objects in use (a world may use fewer than M)                  |

The physics (compiled, ``core.object_kernels``; plain numpy reference in
``core.object_reference``), per step of ``dt``:

1. robots drive (the drive model of ``core.params``); every object moves by its velocity;
2. robots and objects are *bodies* (discs): contact candidates are found once over a spatial grid
   of all bodies, then Jacobi passes move every body by its share of each overlap, the share of a
   body of mass m_i against one of mass m_j being ``m_j / (m_i + m_j)`` (equal robots: one half,
   as in a world without objects), and out of the walls, in the same passes;
3. ground friction: the Coulomb impulse ``mu m g dt`` slows the object and the robots touching it
   (which move with it) alike, so the object's velocity over the step (its displacement / dt)
   loses ``mu m g dt / (m + mass of the touching robots)`` of speed (a slower object stops where it
   started the step: static friction); it is capped at the robots' ``max_speed`` and the object
   is moved out of every wall;
4. robots are moved out of the objects' final discs, then out of the walls (walls win), and their
   position corrections become velocity changes, as in a world without objects.

Position corrections weighted by mass conserve momentum, so a group of robots pushing an object
moves like one body: robots of mass m pushing with force F each move an object of mass M_o and
friction mu only if their summed push beats ``mu M_o g``; one robot (``2 * max_wheel_force`` =
3 N by default) cannot move an object whose friction force is larger. Objects are seen by the
lidar (as discs of their own radius) and are not robots: the neighbour sensor and ``grid()`` see
robots only. Objects do not spin. A world with ``M = 0`` steps exactly as before objects existed
(same kernels, bit-identical trajectories).
"""
from __future__ import annotations

import numpy as np

GRAVITY = 9.81  # m/s^2, for the friction force mu * m * g


class Objects:
    """Up to ``max_objects`` movable discs in each of ``num_worlds`` worlds (see the module docstring)."""

    def __init__(self, num_worlds: int, max_objects: int):
        if isinstance(max_objects, bool) or not isinstance(max_objects, (int, np.integer)) or max_objects < 0:
            raise ValueError(f"max_objects must be an integer >= 0, got {max_objects!r}")
        E, M = int(num_worlds), int(max_objects)
        self.max_objects = M
        self.pos = np.zeros((E, M, 2), np.float32)      # [E, M, 2] centres, metres
        self.vel = np.zeros((E, M, 2), np.float32)      # [E, M, 2] velocities, m/s
        self.radius = np.full((E, M), 0.5, np.float32)  # [E, M] radii, metres
        self.mass = np.ones((E, M), np.float32)         # [E, M] masses, kg
        self.friction = np.zeros((E, M), np.float32)    # [E, M] Coulomb coefficients
        self.active = np.zeros((E, M), np.bool_)        # [E, M] objects in use

    def place(self, pos, radius, mass, friction, worlds: np.ndarray | None = None,
              active: np.ndarray | None = None, arena: float | None = None) -> None:
        """Set the objects of the worlds where ``worlds`` [E] (bool) is True (all if None), at rest.

        pos: [E, M, 2]; radius, mass, friction: a number or [E, M]; active: [E, M] bool (all True if
        None). ``arena``: if given, every active object must lie inside [radius, arena - radius]^2.
        Rows of other worlds are ignored. A refused call (bad shape, NaN, radius or mass <= 0,
        friction < 0, outside the arena) changes nothing."""
        E, M = self.active.shape
        pos = np.asarray(pos, np.float64)
        if pos.shape != (E, M, 2):
            raise ValueError(f"object pos must have shape {(E, M, 2)}, got {pos.shape}")
        sel = np.ones(E, bool) if worlds is None else np.asarray(worlds)
        if sel.shape != (E,) or sel.dtype != np.bool_:
            raise ValueError(f"worlds must be a bool array of shape {(E,)}, got {sel.dtype} {sel.shape}")
        act = np.ones((E, M), bool) if active is None else np.asarray(active)
        if act.shape != (E, M) or act.dtype != np.bool_:
            raise ValueError(f"object active must be a bool array of shape {(E, M)}, got {act.dtype} {act.shape}")
        vals = {}
        for name, v, lo, strict in (("radius", radius, 0.0, True), ("mass", mass, 0.0, True),
                                    ("friction", friction, 0.0, False)):
            a = np.broadcast_to(np.asarray(v, np.float64), (E, M)) if np.ndim(v) == 0 else np.asarray(v, np.float64)
            if a.shape != (E, M):
                raise ValueError(f"object {name} must be a number or shape {(E, M)}, got {a.shape}")
            ok = np.isfinite(a[sel]).all() and ((a[sel] > lo).all() if strict else (a[sel] >= lo).all())
            if not ok:
                raise ValueError(f"object {name} must be finite and {'>' if strict else '>='} {lo:g}")
            vals[name] = a
        if not np.isfinite(pos[sel]).all():
            raise ValueError("object pos must be finite")
        if arena is not None:
            r = vals["radius"][sel][..., None]
            p = pos[sel]
            inside = (p >= r - 1e-6) & (p <= arena - r + 1e-6)
            if not inside.all(axis=-1)[act[sel]].all():
                raise ValueError(f"active objects must lie inside the arena [radius, {arena:g} - radius]^2")
        self.pos[sel] = pos[sel]
        self.vel[sel] = 0.0
        for name, a in vals.items():
            getattr(self, name)[sel] = a[sel]
        self.active[sel] = act[sel]

    def max_radius(self) -> float:
        """The largest radius of an active object (0 with none)."""
        r = self.radius[self.active]
        return float(r.max()) if r.size else 0.0

