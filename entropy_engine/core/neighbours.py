"""Neighbour sensor: the K nearest other robots within a range, read from the spatial grid.

For every active agent ``i`` of every world the sensor lists the (at most) ``k`` nearest other
*active* agents whose centre lies within ``sense_range`` metres of ``i``'s centre, nearest first,
in ``i``'s ego frame (x along the heading, y to its left, counter-clockwise).

## Output

``out`` is float32 ``[E, N, K, F]`` (world, agent, slot, feature) with ``F = 5 + A`` for ``A``
per-agent attribute columns (``A = 0`` when no attributes are given):

| feature | name      | meaning                                                        | range        |
|---------|-----------|----------------------------------------------------------------|--------------|
| 0       | ``dx``    | neighbour centre minus own centre, ego x, / ``sense_range``    | [-1, 1]      |
| 1       | ``dy``    | the same, ego y                                                | [-1, 1]      |
| 2       | ``dvx``   | neighbour velocity minus own velocity, ego x, / ``max_speed``  | [-2, 2]      |
| 3       | ``dvy``   | the same, ego y                                                | [-2, 2]      |
| 4       | ``mask``  | 1 if the slot holds a neighbour, 0 if it is padding            | {0, 1}       |
| 5 + a   | attribute | the neighbour's ``attributes[w, j, a]`` (e.g. a team id), as is | any          |

The mask sits at index 4 for every number of attributes. Slots are sorted by distance; equal
distances (compared exactly, as float64 squared distances of the float32 positions) are ordered
by the neighbour's agent index, so the result is fully deterministic. Empty slots and all slots
of inactive agents are zeros. ``indices`` [E, N, K] int32 holds the neighbours' agent ids in the
same order (-1 for an empty slot), for scenarios that need to know *who* is near.

## Cost

Each agent visits only the grid cells that can hold a point within ``sense_range`` (see
``grid.cell_span``), so the work per agent depends on the local density, not on N; ``sense_range`` may
be larger than a grid cell (more cells are visited). The top-K list is an insertion-sorted buffer
of K entries per agent in preallocated scratch arrays: nothing is allocated per step. Each agent's
slots are written by exactly one thread and depend on nothing another thread writes, so the
result is bit-identical for any number of threads and for every schedule.

## Use

```python
sensor = NeighbourSensor(world, k=8, sense_range=2.0, n_attributes=1)
out = sensor.sense(attributes=team[:, :, None])   # rebuilds the grid from world.pos
out = sensor.sense(attributes=..., grid=(cell_start, cell_items))  # a grid already current
```

The grid is the world's own (``WorldState.grid()``: CSR ``cell_start`` [E, g*g + 1], ``cell_items``
[E, N], cells ``phys[CELL]`` metres wide, ``grid_size`` per side). ``neighbours_reference.py``
holds the brute-force O(N^2) numpy version the tests compare against.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from .grid import cell_span
from .kernels import CELL, V_MAX

# Layout of one neighbour slot (features 5 .. 5 + A - 1 are the attribute columns).
DX, DY, DVX, DVY, MASK = range(5)
N_BASE_FEATURES = 5


# ----------------------------------------------------------------------------- one agent
@njit(cache=True, inline="always")
def _agent_neighbours(w, i, pos, vel, theta, active, attrs, sense_range, inv_speed, cell, g, cell_start,
                      cell_items, d2buf, best_j, out):
    """Fill out[w, i] and best_j[w, i] (d2buf [K] float64 scratch); returns the number of grid
    candidates examined."""
    k_max = out.shape[2]
    n_feat = out.shape[3]
    if not active[w, i]:
        for s in range(k_max):
            best_j[w, i, s] = -1
            for f in range(n_feat):
                out[w, i, s, f] = 0.0
        return 0
    px = np.float64(pos[w, i, 0])
    py = np.float64(pos[w, i, 1])
    r2 = sense_range * sense_range
    found = 0
    examined = 0
    x0, x1, y0, y1 = cell_span(px, py, sense_range, cell, g)
    for cy in range(y0, y1 + 1):
        for cx in range(x0, x1 + 1):
            c = cy * g + cx
            for kk in range(cell_start[w, c], cell_start[w, c + 1]):
                j = cell_items[w, kk]
                examined += 1
                if j == i:
                    continue
                dx = np.float64(pos[w, j, 0]) - px
                dy = np.float64(pos[w, j, 1]) - py
                d2 = dx * dx + dy * dy
                if d2 > r2:
                    continue
                if found == k_max:  # full: must beat the current last entry
                    ld = d2buf[k_max - 1]
                    if d2 > ld or (d2 == ld and j > best_j[w, i, k_max - 1]):
                        continue
                    s = k_max - 1
                else:
                    s = found
                    found += 1
                while s > 0:
                    pd = d2buf[s - 1]
                    if pd < d2 or (pd == d2 and best_j[w, i, s - 1] < j):
                        break
                    d2buf[s] = pd
                    best_j[w, i, s] = best_j[w, i, s - 1]
                    s -= 1
                d2buf[s] = d2
                best_j[w, i, s] = j
    th = np.float64(theta[w, i])
    ct = math.cos(th)
    st = math.sin(th)
    inv_range = 1.0 / sense_range
    vxi = np.float64(vel[w, i, 0])
    vyi = np.float64(vel[w, i, 1])
    n_attr = n_feat - 5
    for s in range(found):
        j = best_j[w, i, s]
        dx = np.float64(pos[w, j, 0]) - px
        dy = np.float64(pos[w, j, 1]) - py
        dvx = np.float64(vel[w, j, 0]) - vxi
        dvy = np.float64(vel[w, j, 1]) - vyi
        out[w, i, s, 0] = (ct * dx + st * dy) * inv_range
        out[w, i, s, 1] = (-st * dx + ct * dy) * inv_range
        out[w, i, s, 2] = (ct * dvx + st * dvy) * inv_speed
        out[w, i, s, 3] = (-st * dvx + ct * dvy) * inv_speed
        out[w, i, s, 4] = 1.0
        for a in range(n_attr):
            out[w, i, s, 5 + a] = attrs[w, j, a]
    for s in range(found, k_max):
        best_j[w, i, s] = -1
        for f in range(n_feat):
            out[w, i, s, f] = 0.0
    return examined


# ----------------------------------------------------------------------------- drivers
@njit(cache=True, parallel=True)
def neighbours_by_agent(pos, vel, theta, active, attrs, sense_range, inv_speed, cell, g, cell_start, cell_items,
                        best_d2, best_j, out):
    """All agents of all worlds in one parallel loop over ``world * agent``.

    pos/vel [E,N,2] float32; theta [E,N]; active [E,N] bool; attrs [E,N,A] float32;
    cell_start [E,g*g+1], cell_items [E,N] (the current grid); best_d2 [E,N,K] float64 and
    best_j [E,N,K] int32 scratch (best_j is also the ``indices`` output); out [E,N,K,5+A] float32.
    """
    n = pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        _agent_neighbours(w, k - w * n, pos, vel, theta, active, attrs, sense_range, inv_speed, cell, g,
                          cell_start, cell_items, best_d2[w, k - w * n], best_j, out)


@njit(cache=True, parallel=True)
def neighbours_by_world(pos, vel, theta, active, attrs, sense_range, inv_speed, cell, g, cell_start, cell_items,
                        best_d2, best_j, out):
    """``neighbours_by_agent`` with one task per world (same arithmetic, same result)."""
    for w in prange(pos.shape[0]):
        for i in range(pos.shape[1]):
            _agent_neighbours(w, i, pos, vel, theta, active, attrs, sense_range, inv_speed, cell, g,
                              cell_start, cell_items, best_d2[w, i], best_j, out)


@njit(cache=True)
def candidates_examined(pos, vel, theta, active, attrs, sense_range, inv_speed, cell, g, cell_start, cell_items,
                        best_d2, best_j, out, examined):
    """The sensor on the calling thread, also writing how many grid entries each agent examined to
    examined [E,N] int64 (a cost measure for tests: it must not grow with N at constant density)."""
    for w in range(pos.shape[0]):
        for i in range(pos.shape[1]):
            examined[w, i] = _agent_neighbours(w, i, pos, vel, theta, active, attrs, sense_range, inv_speed,
                                               cell, g, cell_start, cell_items, best_d2[w, i], best_j, out)


SCHEDULES = {"agent": neighbours_by_agent, "world": neighbours_by_world}


# ----------------------------------------------------------------------------- the sensor
class NeighbourSensor:
    """The K nearest neighbours of every agent of a world (any backend's ``WorldState``; see the
    module docstring for the layout). Arrays are allocated once; ``sense`` writes ``out`` and ``indices`` in place and
    returns ``out``.

    Args:
        world: the batched world (any backend) whose ``pos``, ``vel``, ``theta``, ``active`` are read.
        k: slots per agent (>= 1); agents with fewer neighbours in range get padding.
        sense_range: metres, centre to centre (> 0); any value, also beyond one grid cell.
        n_attributes: attribute columns appended after the mask (>= 0).
    """

    def __init__(self, world, k: int, sense_range: float, n_attributes: int = 0):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if isinstance(sense_range, bool) or not isinstance(sense_range, (int, float, np.floating, np.integer)) \
                or not math.isfinite(sense_range) or sense_range <= 0:
            raise ValueError(f"sense_range must be a positive finite number of metres, got {sense_range!r}")
        if isinstance(n_attributes, bool) or not isinstance(n_attributes, (int, np.integer)) or n_attributes < 0:
            raise ValueError(f"n_attributes must be a non-negative integer, got {n_attributes!r}")
        self.world = world
        self.k = int(k)
        self.sense_range = float(sense_range)
        self.n_attributes = int(n_attributes)
        E, N = world.num_worlds, world.n_agents
        self.n_features = N_BASE_FEATURES + self.n_attributes
        self.out = np.zeros((E, N, self.k, self.n_features), np.float32)  # [E, N, K, 5 + A] see table
        self.indices = np.full((E, N, self.k), -1, np.int32)  # [E, N, K] neighbour ids, -1 = empty
        self._best_d2 = np.zeros((E, N, self.k), np.float64)  # [E, N, K] scratch: squared distances
        self._no_attrs = np.zeros((E, N, 0), np.float32)      # [E, N, 0] used when A == 0
        self.schedule_override: str | None = None  # 'agent' or 'world' to force one (tests, bench)

    @property
    def schedule(self) -> str:
        """'world' (a world per task) with >= 2 worlds per thread, else 'agent' (as ``World``).

        There is no serial variant for tiny batches: a non-parallel build of the same loop measured
        about 2x slower than the parallel drivers even on one thread from 4 worlds x 10 agents up,
        and saved only ~1 us per call for a single 10-agent world (``neighbours_bench``)."""
        if self.schedule_override is not None:
            return self.schedule_override
        return "world" if self.world.num_worlds >= 2 * numba.get_num_threads() else "agent"

    def _args(self, attributes, grid):
        w = self.world
        E, N, A = w.num_worlds, w.n_agents, self.n_attributes
        if A == 0:
            if attributes is not None:
                raise ValueError("this sensor has n_attributes=0; pass attributes=None")
            attrs = self._no_attrs
        else:
            if not isinstance(attributes, np.ndarray) or attributes.shape != (E, N, A) \
                    or attributes.dtype != np.float32:
                got = (f"{attributes.dtype} {attributes.shape}" if isinstance(attributes, np.ndarray)
                       else type(attributes).__name__)
                raise ValueError(f"attributes must be a float32 array of shape {(E, N, A)}, got {got}")
            attrs = attributes
        if grid is None:
            cell_start, cell_items = w.grid()
        else:
            cell_start, cell_items = grid
            g = w.grid_size
            if cell_start.shape != (E, g * g + 1) or cell_items.shape != (E, N):
                raise ValueError(f"grid must be (cell_start {(E, g * g + 1)}, cell_items {(E, N)}), got "
                                 f"({cell_start.shape}, {cell_items.shape})")
        return (w.pos, w.vel, w.theta, w.active, attrs, self.sense_range, 1.0 / float(w.phys[V_MAX]),
                float(w.phys[CELL]), w.grid_size, cell_start, cell_items, self._best_d2, self.indices, self.out)

    def sense(self, attributes: np.ndarray | None = None, grid=None) -> np.ndarray:
        """Write ``out`` [E, N, K, 5 + A] and ``indices`` [E, N, K] from the world's current state.

        ``attributes``: float32 [E, N, A] when the sensor has attribute columns, else None.
        ``grid``: ``(cell_start, cell_items)`` already built from the current positions (e.g.
        right after ``World.step``), or None to rebuild it with ``World.grid()``. A refused call
        (wrong shapes) changes nothing.
        """
        args = self._args(attributes, grid)
        SCHEDULES[self.schedule](*args)
        return self.out

    def examined(self, attributes: np.ndarray | None = None, grid=None) -> np.ndarray:
        """Sense serially and return the number of grid entries each agent examined, [E, N] int64."""
        counts = np.zeros((self.world.num_worlds, self.world.n_agents), np.int64)
        candidates_examined(*self._args(attributes, grid), counts)
        return counts
