"""Items: small things lying in the arena that robots pick up by touching them, carry, and drop at a nest.

An ``Items`` container holds up to ``M`` items per world. Items are not bodies: robots drive over
them (they are not seen by the lidar and never collide). The number of items in a world never
changes during an episode: an item is either on the floor or carried, and a delivered item
reappears at once somewhere clear.

| array          | shape      | dtype   | meaning                                                        |
|----------------|------------|---------|----------------------------------------------------------------|
| ``pos``        | [E, M, 2]  | float32 | centre, metres (a carried item sits at its carrier's centre)   |
| ``present``    | [E, M]     | bool    | the item exists in this world (a world may use fewer than M)   |
| ``carrier``    | [E, M]     | int32   | the agent carrying it, -1 while it lies on the floor           |
| ``free``       | [E, M]     | bool    | present and on the floor (what robots can sense and pick up)   |
| ``load``       | [E, N]     | int32   | items each agent carries (0 .. ``capacity``)                   |
| ``delivered``  | [E, N]     | int32   | items each agent delivered in the last ``update``              |
| ``picked``     | [E, N]     | int32   | items each agent picked up in the last ``update``              |

Rules of one ``update`` (after the world has moved; one task per world, items in index order, so
the result does not depend on threads):

1. A carried item follows its carrier. An item whose carrier has left the world (inactive) is
   placed again somewhere clear.
2. Delivery: an active agent that carries items and whose centre lies inside a nest disc (any
   active disc of the ``nest_*`` arrays, e.g. a ``core.landmarks.Landmarks``) delivers all of
   them; each delivered item is placed again somewhere clear.
3. Pick-up: a free item is picked up by the nearest active agent that touches it (centre distance
   <= ``agent_radius + item_radius``) and carries fewer than ``capacity`` items; equal distances go
   to the lower agent index. An agent may pick up several items in one step up to its capacity.
4. The item grid (free items only) is rebuilt for the sensor.

"Somewhere clear" (``place`` / at every reset and respawn): a uniform point at least ``margin``
from the border, outside every nest disc by ``nest_clearance`` (a hard rule: 256 tries), then at
least ``spacing`` from the other present items and ``agent_radius + item_radius + 0.05`` m from every
active robot (64 tries; the last point outside the nests is kept when none is clear). The random
numbers come from the caller's per-world streams (``core.rng``).

``sense()`` -> ``sensed`` float32 [E, N, K, 3] and ``sensed_index`` int32 [E, N, K]: per agent the
(at most) K nearest free items whose centre lies within ``sense_range`` of its centre, nearest first
(equal distances by item index), in its ego frame:

| feature | meaning                                                            | range   |
|---------|--------------------------------------------------------------------|---------|
| 0       | item centre minus own centre, ego x (along the heading) / range     | [-1, 1] |
| 1       | the same, ego y (to the left)                                       | [-1, 1] |
| 2       | 1 if the slot holds an item, 0 for padding (all three zero)        | {0, 1}  |

## Cost

Items are sorted into a grid of the world's cell size (``grid.cell_span``); the sensor visits only
the cells within ``sense_range`` and a pick-up only the agent-grid cells within touching reach, so
both grow with the local density, not with N or M. Placing an item checks the other items of its
world (O(M) per try) and the robots near it over the agent grid.
``items_reference.py`` holds the plain-numpy versions the tests compare against. Each driver
(``scatter``, ``release``, ``update``, ``sense_items``) runs a per-world or per-agent function
(``scatter_world``, ``release_world``, ``update_world``, ``sense_one``) in a ``prange`` loop; the
GPU compiles the same functions (``gpu.foraging``).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .grid import cell_of, cell_span
from .kernels import CELL
from .rng import uniform

# Layout of the float64 ``params`` vector of the kernels.
P_ARENA, P_AGENT_R, P_ITEM_R, P_CAPACITY, P_MARGIN, P_NEST_CLEAR, P_SPACING, P_RANGE, P_CELL = range(9)
N_PARAMS = 9
ROBOT_GAP = 0.05   # metres between a placed item's edge and a robot's body


@njit(cache=True, inline="always")
def _in_nest(x, y, nest_pos, nest_radius, nest_active, w, extra):
    """Whether (x, y) lies within ``radius + extra`` of an active nest centre of world w."""
    for l in range(nest_pos.shape[1]):
        if nest_active[w, l]:
            dx = x - np.float64(nest_pos[w, l, 0])
            dy = y - np.float64(nest_pos[w, l, 1])
            r = np.float64(nest_radius[w, l]) + extra
            if dx * dx + dy * dy <= r * r:
                return True
    return False


@njit(cache=True)
def build_item_grid(w, item_pos, free, cell, g, start, fill, cells):
    """Counting sort of world w's free items into the g x g grid (CSR: start [E, g*g+1], cells [E, M];
    fill [E, g*g] is scratch), in item order within a cell."""
    n_cells = g * g
    for c in range(n_cells + 1):
        start[w, c] = 0
    for m in range(item_pos.shape[1]):
        if free[w, m]:
            cx, cy = cell_of(item_pos[w, m, 0], item_pos[w, m, 1], cell, g)
            start[w, cy * g + cx + 1] += 1
    for c in range(n_cells):
        start[w, c + 1] += start[w, c]
        fill[w, c] = start[w, c]
    for m in range(item_pos.shape[1]):
        if free[w, m]:
            cx, cy = cell_of(item_pos[w, m, 0], item_pos[w, m, 1], cell, g)
            c = cy * g + cx
            cells[w, fill[w, c]] = m
            fill[w, c] += 1


@njit(cache=True)
def place_item(w, m, rng, p, present, agent_pos, agent_active, g, cell_start, cell_items, item_pos,
               nest_pos, nest_radius, nest_active):
    """Put item m of world w somewhere clear (see the module docstring) using world w's stream.
    The agent grid (cell_start, cell_items) must hold the current robot positions."""
    L = p[P_ARENA]
    edge = p[P_MARGIN]
    reach = p[P_AGENT_R] + p[P_ITEM_R] + ROBOT_GAP
    reach2 = reach * reach
    sp2 = p[P_SPACING] * p[P_SPACING]
    n_items = item_pos.shape[1]
    x = y = 0.5 * L
    for _try in range(64):
        for _t in range(256):   # outside the nests: a hard rule
            x = edge + (L - 2.0 * edge) * uniform(rng, w)
            y = edge + (L - 2.0 * edge) * uniform(rng, w)
            if not _in_nest(x, y, nest_pos, nest_radius, nest_active, w, p[P_NEST_CLEAR]):
                break
        ok = True
        for k in range(n_items):
            if k != m and present[w, k]:
                if (np.float64(item_pos[w, k, 0]) - x) ** 2 + (np.float64(item_pos[w, k, 1]) - y) ** 2 < sp2:
                    ok = False
                    break
        if ok:
            x0, x1, y0, y1 = cell_span(x, y, reach, p[P_CELL], g)
            for cy in range(y0, y1 + 1):
                for cx in range(x0, x1 + 1):
                    c = cy * g + cx
                    for kk in range(cell_start[w, c], cell_start[w, c + 1]):
                        j = cell_items[w, kk]
                        if agent_active[w, j] and (np.float64(agent_pos[w, j, 0]) - x) ** 2 + \
                                (np.float64(agent_pos[w, j, 1]) - y) ** 2 < reach2:
                            ok = False
        if ok:
            break
    item_pos[w, m, 0] = x
    item_pos[w, m, 1] = y


@njit(cache=True)
def scatter_world(w, n_items, rng, p, item_pos, present, carrier, free, load, agent_pos, agent_active, g, cell_start,
                  cell_items, nest_pos, nest_radius, nest_active, item_start, item_fill, item_cells):
    """World w: the first n_items slots present and placed one by one (each clear of the ones before
    it), the rest absent; nobody carries anything; the item grid rebuilt. (CPU driver: ``scatter``;
    GPU: ``gpu.foraging``.)"""
    for m in range(item_pos.shape[1]):
        present[w, m] = False
        carrier[w, m] = -1
        free[w, m] = False
    for i in range(load.shape[1]):
        load[w, i] = 0
    for m in range(n_items):
        place_item(w, m, rng, p, present, agent_pos, agent_active, g, cell_start, cell_items,
                   item_pos, nest_pos, nest_radius, nest_active)
        present[w, m] = True
        free[w, m] = True
    build_item_grid(w, item_pos, free, p[P_CELL], g, item_start, item_fill, item_cells)


@njit(cache=True, parallel=True)
def scatter(mask, n_items, rng, p, item_pos, present, carrier, free, load, agent_pos, agent_active, g, cell_start,
            cell_items, nest_pos, nest_radius, nest_active, item_start, item_fill, item_cells):
    """``scatter_world`` for every world where mask[w], in parallel."""
    for w in prange(item_pos.shape[0]):
        if mask[w]:
            scatter_world(w, n_items, rng, p, item_pos, present, carrier, free, load, agent_pos, agent_active, g,
                          cell_start, cell_items, nest_pos, nest_radius, nest_active, item_start, item_fill,
                          item_cells)


@njit(cache=True)
def release_world(w, mask, rng, p, item_pos, present, carrier, free, load, agent_pos, agent_active, g, cell_start,
                  cell_items, nest_pos, nest_radius, nest_active, item_start, item_fill, item_cells):
    """World w: items carried by the agents where mask[w, i] are placed again somewhere clear (free),
    in item order; those agents carry nothing afterwards; the item grid rebuilt if an item moved."""
    touched = False
    for m in range(item_pos.shape[1]):
        j = carrier[w, m]
        if present[w, m] and j >= 0 and mask[w, j]:
            carrier[w, m] = -1
            place_item(w, m, rng, p, present, agent_pos, agent_active, g, cell_start, cell_items,
                       item_pos, nest_pos, nest_radius, nest_active)
            free[w, m] = True
            touched = True
    for i in range(load.shape[1]):
        if mask[w, i]:
            load[w, i] = 0
    if touched:
        build_item_grid(w, item_pos, free, p[P_CELL], g, item_start, item_fill, item_cells)


@njit(cache=True, parallel=True)
def release(mask, rng, p, item_pos, present, carrier, free, load, agent_pos, agent_active, g, cell_start,
            cell_items, nest_pos, nest_radius, nest_active, item_start, item_fill, item_cells):
    """``release_world`` for every world, in parallel: items carried by the agents where mask[w, i]
    are placed again somewhere clear (free); those agents carry nothing afterwards."""
    for w in prange(item_pos.shape[0]):
        release_world(w, mask, rng, p, item_pos, present, carrier, free, load, agent_pos, agent_active, g,
                      cell_start, cell_items, nest_pos, nest_radius, nest_active, item_start, item_fill, item_cells)


@njit(cache=True)
def update_world(w, rng, p, item_pos, present, carrier, free, load, delivered, picked, world_delivered, agent_pos,
                 agent_active, g, cell_start, cell_items, nest_pos, nest_radius, nest_active, item_start, item_fill,
                 item_cells):
    """One step of the rules of the module docstring for world w (items in index order); writes
    delivered[w], picked[w], world_delivered[w] and world w's item grid (the agent grid must hold the
    current robot positions). (CPU driver: ``update``; GPU:
    ``gpu.foraging``.)"""
    n = agent_pos.shape[1]
    n_items = item_pos.shape[1]
    touch = p[P_AGENT_R] + p[P_ITEM_R]
    touch2 = touch * touch
    cap = np.int32(p[P_CAPACITY])
    for i in range(n):
        delivered[w, i] = 0
        picked[w, i] = 0
    total = 0
    # 1 and 2: carried items follow, are re-placed when the carrier left, or are delivered
    for m in range(n_items):
        j = carrier[w, m]
        if not present[w, m] or j < 0:
            continue
        if agent_active[w, j]:
            ax = np.float64(agent_pos[w, j, 0])
            ay = np.float64(agent_pos[w, j, 1])
            if not _in_nest(ax, ay, nest_pos, nest_radius, nest_active, w, 0.0):
                item_pos[w, m, 0] = agent_pos[w, j, 0]
                item_pos[w, m, 1] = agent_pos[w, j, 1]
                continue
            delivered[w, j] += 1
            total += 1
        load[w, j] -= 1
        carrier[w, m] = -1
        place_item(w, m, rng, p, present, agent_pos, agent_active, g, cell_start, cell_items,
                   item_pos, nest_pos, nest_radius, nest_active)
        free[w, m] = True
    world_delivered[w] = total
    # 3: pick-ups, items in index order, each by the nearest touching agent with room
    for m in range(n_items):
        if not free[w, m]:
            continue
        x = np.float64(item_pos[w, m, 0])
        y = np.float64(item_pos[w, m, 1])
        best = np.inf
        best_j = -1
        x0, x1, y0, y1 = cell_span(x, y, touch, p[P_CELL], g)
        for cy in range(y0, y1 + 1):
            for cx in range(x0, x1 + 1):
                c = cy * g + cx
                for kk in range(cell_start[w, c], cell_start[w, c + 1]):
                    j = cell_items[w, kk]
                    if not agent_active[w, j] or load[w, j] >= cap:
                        continue
                    d2 = (np.float64(agent_pos[w, j, 0]) - x) ** 2 + (np.float64(agent_pos[w, j, 1]) - y) ** 2
                    if d2 <= touch2 and (d2 < best or (d2 == best and j < best_j)):
                        best = d2
                        best_j = j
        if best_j >= 0:
            carrier[w, m] = best_j
            free[w, m] = False
            load[w, best_j] += 1
            picked[w, best_j] += 1
            item_pos[w, m, 0] = agent_pos[w, best_j, 0]
            item_pos[w, m, 1] = agent_pos[w, best_j, 1]
    # 4: the grid of the free items
    build_item_grid(w, item_pos, free, p[P_CELL], g, item_start, item_fill, item_cells)


@njit(cache=True, parallel=True)
def update(rng, p, item_pos, present, carrier, free, load, delivered, picked, world_delivered, agent_pos,
           agent_active, g, cell_start, cell_items, nest_pos, nest_radius, nest_active, item_start, item_fill,
           item_cells):
    """``update_world`` for every world, in parallel: one step of the rules of the module docstring;
    writes delivered, picked [E, N], world_delivered [E] and the item grid (item_start [E, g*g+1],
    item_cells [E, M]; item_fill is scratch). The agent grid must hold the current robot positions."""
    for w in prange(agent_pos.shape[0]):
        update_world(w, rng, p, item_pos, present, carrier, free, load, delivered, picked, world_delivered, agent_pos,
                     agent_active, g, cell_start, cell_items, nest_pos, nest_radius, nest_active, item_start,
                     item_fill, item_cells)


@njit(cache=True, inline="always")
def sense_one(w, i, pos, theta, active, item_pos, p, g, item_start, item_cells, d2buf, out_index, out):
    """Agent i of world w: out[w, i] [K, 3] and out_index[w, i] [K], its K nearest free items within
    ``sense_range`` over the item grid (see the module docstring); d2buf [E, N, K] float64 scratch.
    (CPU driver: ``sense_items``; GPU: ``gpu.foraging``.)"""
    k_max = out.shape[2]
    rng_ = p[P_RANGE]
    r2 = rng_ * rng_
    inv = 1.0 / rng_
    for s in range(k_max):
        out_index[w, i, s] = -1
        out[w, i, s, 0] = 0.0
        out[w, i, s, 1] = 0.0
        out[w, i, s, 2] = 0.0
    if not active[w, i]:
        return
    px = np.float64(pos[w, i, 0])
    py = np.float64(pos[w, i, 1])
    found = 0
    x0, x1, y0, y1 = cell_span(px, py, rng_, p[P_CELL], g)
    for cy in range(y0, y1 + 1):
        for cx in range(x0, x1 + 1):
            c = cy * g + cx
            for kk in range(item_start[w, c], item_start[w, c + 1]):
                m = item_cells[w, kk]
                dx = np.float64(item_pos[w, m, 0]) - px
                dy = np.float64(item_pos[w, m, 1]) - py
                d2 = dx * dx + dy * dy
                if d2 > r2:
                    continue
                if found == k_max:
                    ld = d2buf[w, i, k_max - 1]
                    if d2 > ld or (d2 == ld and m > out_index[w, i, k_max - 1]):
                        continue
                    s = k_max - 1
                else:
                    s = found
                    found += 1
                while s > 0:
                    pd = d2buf[w, i, s - 1]
                    if pd < d2 or (pd == d2 and out_index[w, i, s - 1] < m):
                        break
                    d2buf[w, i, s] = pd
                    out_index[w, i, s] = out_index[w, i, s - 1]
                    s -= 1
                d2buf[w, i, s] = d2
                out_index[w, i, s] = m
    th = np.float64(theta[w, i])
    ct = math.cos(th)
    st = math.sin(th)
    for s in range(found):
        m = out_index[w, i, s]
        dx = np.float64(item_pos[w, m, 0]) - px
        dy = np.float64(item_pos[w, m, 1]) - py
        out[w, i, s, 0] = min(max((ct * dx + st * dy) * inv, -1.0), 1.0)
        out[w, i, s, 1] = min(max((-st * dx + ct * dy) * inv, -1.0), 1.0)
        out[w, i, s, 2] = 1.0


@njit(cache=True, parallel=True)
def sense_items(pos, theta, active, item_pos, p, g, item_start, item_cells, d2buf, out_index, out):
    """``sense_one`` for every agent, in parallel: out [E, N, K, 3] and out_index [E, N, K], the K
    nearest free items of every agent within ``sense_range`` over the item grid."""
    n = pos.shape[1]
    for k in prange(pos.shape[0] * n):
        w = k // n
        sense_one(w, k - w * n, pos, theta, active, item_pos, p, g, item_start, item_cells, d2buf, out_index, out)


def _positive(name: str, v, allow_zero: bool = False) -> float:
    ok = not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v) \
        and (v >= 0 if allow_zero else v > 0)
    if not ok:
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} finite number, got {v!r}")
    return float(v)


def _count(name: str, v, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    return int(v)


class Items:
    """Up to ``max_items`` items in each world of ``world`` (see the module docstring).

    Args:
        world: the batched world (any backend's ``WorldState``) whose robots carry the items.
        max_items: item slots per world (M >= 1).
        item_radius: metres (> 0); a robot touches an item at centre distance <= agent_radius + item_radius.
        capacity: items one robot can carry at once (>= 1).
        k: sensor slots per robot (>= 1).
        sense_range: sensor range, metres, centre to centre (> 0).
        margin: placed items keep this distance from the border, metres (>= item_radius).
        spacing: placed items keep this centre distance from each other, metres (>= 0).
        nest_clearance: placed items keep this distance from every nest disc's edge, metres (>= 0).
    """

    def __init__(self, world, max_items: int, item_radius: float = 0.1, capacity: int = 1, k: int = 4,
                 sense_range: float = 4.0, margin: float = 0.5, spacing: float = 0.4, nest_clearance: float = 0.5):
        M = _count("max_items", max_items)
        capacity = _count("capacity", capacity)
        k = _count("k", k)
        item_radius = _positive("item_radius", item_radius)
        sense_range = _positive("sense_range", sense_range)
        spacing = _positive("spacing", spacing, allow_zero=True)
        nest_clearance = _positive("nest_clearance", nest_clearance, allow_zero=True)
        margin = _positive("margin", margin)
        if margin < item_radius or 2 * margin >= world.arena:
            raise ValueError(f"margin must be >= item_radius ({item_radius}) and leave room in the "
                             f"{world.arena:.1f} m arena, got {margin!r}")
        self.world = world
        E, N = world.num_worlds, world.n_agents
        self.max_items, self.capacity, self.k = M, capacity, k
        self.item_radius, self.sense_range = item_radius, sense_range
        self.pos = np.zeros((E, M, 2), np.float32)          # [E, M, 2] centres, metres
        self.present = np.zeros((E, M), np.bool_)           # [E, M] the item exists
        self.carrier = np.full((E, M), -1, np.int32)        # [E, M] carrying agent, -1 on the floor
        self.free = np.zeros((E, M), np.bool_)              # [E, M] present and on the floor
        self.load = np.zeros((E, N), np.int32)              # [E, N] items carried
        self.delivered = np.zeros((E, N), np.int32)         # [E, N] delivered in the last update
        self.picked = np.zeros((E, N), np.int32)            # [E, N] picked up in the last update
        self.world_delivered = np.zeros(E, np.int32)        # [E] delivered in the last update
        self.sensed = np.zeros((E, N, k, 3), np.float32)    # [E, N, K, 3] see sense()
        self.sensed_index = np.full((E, N, k), -1, np.int32)  # [E, N, K] item ids, -1 = empty slot
        g = world.grid_size
        self._start = np.zeros((E, g * g + 1), np.int32)    # [E, cells + 1] item grid offsets
        self._fill = np.zeros((E, g * g), np.int32)         # [E, cells] scratch
        self._cells = np.zeros((E, M), np.int32)            # [E, M] free item ids sorted by cell
        self._d2 = np.zeros((E, N, k), np.float64)          # [E, N, K] sensor scratch
        p = np.zeros(N_PARAMS, np.float64)
        p[P_ARENA] = world.arena
        p[P_AGENT_R] = world.radius
        p[P_ITEM_R] = item_radius
        p[P_CAPACITY] = capacity
        p[P_MARGIN] = margin
        p[P_NEST_CLEAR] = nest_clearance
        p[P_SPACING] = spacing
        p[P_RANGE] = sense_range
        p[P_CELL] = float(world.phys[CELL])
        self.params = p

    def _grid(self, grid):
        return self.world.grid() if grid is None else grid

    def scatter(self, worlds: np.ndarray, n_items: int, rng: np.ndarray, nests, grid=None) -> None:
        """Worlds where ``worlds`` [E] is True get ``n_items`` (<= max_items) items placed clear (robots
        already placed); nobody carries anything. ``nests``: an object with ``pos`` [E, L, 2],
        ``radius`` and ``active`` [E, L] (``core.landmarks.Landmarks``); ``rng``: per-world streams [E];
        ``grid``: the world's current grid or None to rebuild it."""
        n_items = _count("n_items", n_items)
        if n_items > self.max_items:
            raise ValueError(f"n_items must be <= max_items ({self.max_items}), got {n_items}")
        w = self.world
        cs, ci = self._grid(grid)
        scatter(worlds, n_items, rng, self.params, self.pos, self.present, self.carrier, self.free, self.load,
                w.pos, w.active, w.grid_size, cs, ci, nests.pos, nests.radius, nests.active, self._start,
                self._fill, self._cells)

    def release(self, agents: np.ndarray, rng: np.ndarray, nests, grid=None) -> None:
        """Items carried by the agents where ``agents`` [E, N] is True go back to clear places on the floor."""
        w = self.world
        cs, ci = self._grid(grid)
        release(agents, rng, self.params, self.pos, self.present, self.carrier, self.free, self.load, w.pos,
                w.active, w.grid_size, cs, ci, nests.pos, nests.radius, nests.active, self._start, self._fill,
                self._cells)

    def update(self, rng: np.ndarray, nests, grid=None) -> None:
        """Carry, deliver and pick up (module docstring); writes ``delivered``, ``picked``,
        ``world_delivered`` and the item grid."""
        w = self.world
        cs, ci = self._grid(grid)
        update(rng, self.params, self.pos, self.present, self.carrier, self.free, self.load, self.delivered,
               self.picked, self.world_delivered, w.pos, w.active, w.grid_size, cs, ci, nests.pos, nests.radius,
               nests.active, self._start, self._fill, self._cells)

    def sense(self) -> np.ndarray:
        """The K nearest free items of every agent, ``sensed`` [E, N, K, 3] (and ``sensed_index``), in place."""
        w = self.world
        sense_items(w.pos, w.theta, w.active, self.pos, self.params, w.grid_size, self._start, self._cells,
                    self._d2, self.sensed_index, self.sensed)
        return self.sensed
