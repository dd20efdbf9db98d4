"""CUDA drivers of the world step: which GPU thread runs which per-agent phase, and the barriers.

The phases themselves are ``core.kernels``' njit functions compiled as device functions
(``gpu.target.device``): the arithmetic of a step is the CPU backend's. Two schedules, like the CPU
drivers in ``core.step``:

- ``step_worlds`` (worlds of up to ``BLOCK_MAX`` agents): a thread per agent, as many whole worlds per
  thread block as fit in ``BLOCK_MAX`` threads (12 worlds of 10), ``syncthreads`` between the phases
  and each world's grid built by its first agent's thread (``kernels.build_grid``, the CPU's
  counting sort). One launch steps every world.
- the agent schedule (larger worlds, up to one world of a million agents): every phase is a launch
  over all ``world x agent`` threads, and the grid is built in parallel (``grid_*``: counts by
  atomics, a scan per world, a scatter by atomics, then each cell's ids sorted ascending, which is
  exactly the order of the CPU's stable counting sort).

Collisions: the CPU solves islands of touching robots, each to its fixed point, on one thread; here
every robot with contact candidates takes part in every Jacobi pass. Running all passes is what the
CPU's island solver is bit-identical to (``core.kernels.solve_island``), so both give the same step.
"""
from __future__ import annotations

from numba import int32

from ..core import kernels as K
from ..core.grid import cell_of
from .target import cuda, device

cu = cuda()
BLOCK_MAX = 128      # worlds of at most this many agents: whole worlds per block (step_worlds)
SCAN_THREADS = 1024  # threads of the per-world scan of grid cell counts

d_drive = device(K.phase_drive)
d_contacts = device(K.phase_contacts)
d_push = device(K.phase_push)
d_settle = device(K.phase_settle)
d_lidar = device(K.phase_lidar)
d_build_grid = device(K.build_grid)
d_cell_of = device(cell_of)


# ----------------------------------------------------------------------------- a block per world
@cu.jit
def step_worlds(actions, pos, vel, theta, omega, active, walls, n_walls, phys, g, iterations, ray_cs,
                start, moved, tmp, cell_start, cell_fill, cell_items, nbr, n_nbr, near_wall, lidar, contact):
    """One step of the ``blockDim.x // N`` worlds of block ``blockIdx.x``, a thread per agent (see
    ``core.step.step_by_world`` for the arrays). Every thread reaches every barrier."""
    n = pos.shape[1]
    t = cu.threadIdx.x
    per_block = cu.blockDim.x // n
    lw = t // n
    w = cu.blockIdx.x * per_block + lw
    i = t - lw * n
    ok = lw < per_block and w < pos.shape[0]
    if ok:
        d_drive(w, i, actions, pos, vel, theta, omega, active, phys, start, moved, contact)
    cu.syncthreads()
    if ok and i == 0:
        d_build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    cu.syncthreads()
    if ok:
        d_contacts(w, i, pos, active, walls, n_walls, phys, g, cell_start, cell_items, nbr, n_nbr, near_wall)
    cu.syncthreads()
    pushed = ok and n_nbr[w, i] > 0
    for it in range(iterations):
        src = pos if it % 2 == 0 else tmp
        dst = tmp if it % 2 == 0 else pos
        if pushed:
            d_push(w, i, src, dst, active, walls, n_walls, phys, start, nbr, n_nbr, near_wall, contact)
        cu.syncthreads()
    if pushed and iterations % 2 == 1:
        pos[w, i, 0] = tmp[w, i, 0]
        pos[w, i, 1] = tmp[w, i, 1]
    cu.syncthreads()
    if ok:
        d_settle(w, i, pos, vel, active, walls, n_walls, phys, start, moved, contact)
    cu.syncthreads()
    if ok and i == 0:
        d_build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    cu.syncthreads()
    if ok:
        d_lidar(w, i, pos, theta, active, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar)


@cu.jit
def lidar_worlds(mask, pos, theta, active, walls, n_walls, phys, g, ray_cs, cell_start, cell_fill, cell_items,
                 lidar):
    """The grid and lidar of the worlds of block ``blockIdx.x`` (as ``step_worlds``) where ``mask[w]``
    (after a reset or respawn)."""
    n = pos.shape[1]
    t = cu.threadIdx.x
    per_block = cu.blockDim.x // n
    lw = t // n
    w = cu.blockIdx.x * per_block + lw
    i = t - lw * n
    ok = lw < per_block and w < pos.shape[0]
    if ok:
        ok = mask[w]
    if ok and i == 0:
        d_build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    cu.syncthreads()
    if ok:
        d_lidar(w, i, pos, theta, active, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar)


# ----------------------------------------------------------------------------- a thread per agent
@cu.jit
def drive_all(actions, pos, vel, theta, omega, active, phys, start, moved, contact):
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        d_drive(k // n, k % n, actions, pos, vel, theta, omega, active, phys, start, moved, contact)


@cu.jit
def grid_count(pos, active, phys, g, cell_start, agent_cell):
    """Per agent: its cell (``agent_cell``, -1 if inactive) and +1 on that cell's count, kept one
    place up in ``cell_start`` (cleared before) so that an inclusive scan gives the offsets."""
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        i = k % n
        if active[w, i]:
            cx, cy = d_cell_of(pos[w, i, 0], pos[w, i, 1], phys[K.CELL], g)
            c = cy * g + cx
            agent_cell[w, i] = c
            cu.atomic.add(cell_start, (w, c + 1), 1)
        else:
            agent_cell[w, i] = -1


@cu.jit
def grid_scan(cell_start, cell_fill):
    """Inclusive prefix sum of world ``blockIdx.x``'s counts (CSR offsets), copied into the fill cursors."""
    w = cu.blockIdx.x
    t = cu.threadIdx.x
    bd = cu.blockDim.x
    m = cell_start.shape[1]
    part = cu.shared.array(SCAN_THREADS, int32)
    chunk = (m + bd - 1) // bd
    lo = min(t * chunk, m)
    hi = min(lo + chunk, m)
    s = 0
    for c in range(lo, hi):
        s += cell_start[w, c]
    part[t] = s
    cu.syncthreads()
    if t == 0:
        acc = 0
        for q in range(bd):
            v = part[q]
            part[q] = acc
            acc += v
    cu.syncthreads()
    acc = part[t]
    for c in range(lo, hi):
        acc += cell_start[w, c]
        cell_start[w, c] = acc
        if c < m - 1:
            cell_fill[w, c] = acc


@cu.jit
def grid_scatter(agent_cell, cell_fill, cell_items):
    k = cu.grid(1)
    n = agent_cell.shape[1]
    if k < agent_cell.shape[0] * n:
        w = k // n
        c = agent_cell[w, k % n]
        if c >= 0:
            slot = cu.atomic.add(cell_fill, (w, c), 1)
            cell_items[w, slot] = k % n


@cu.jit
def grid_sort(cell_start, cell_items):
    """Each cell's ids in ascending order (insertion sort; a cell holds a handful)."""
    k = cu.grid(1)
    m = cell_start.shape[1] - 1
    if k < cell_start.shape[0] * m:
        w = k // m
        c = k % m
        lo = cell_start[w, c]
        hi = cell_start[w, c + 1]
        for a in range(lo + 1, hi):
            v = cell_items[w, a]
            b = a - 1
            while b >= lo and cell_items[w, b] > v:
                cell_items[w, b + 1] = cell_items[w, b]
                b -= 1
            cell_items[w, b + 1] = v


@cu.jit
def contacts_all(pos, active, walls, n_walls, phys, g, cell_start, cell_items, nbr, n_nbr, near_wall):
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        d_contacts(k // n, k % n, pos, active, walls, n_walls, phys, g, cell_start, cell_items, nbr, n_nbr,
                   near_wall)


@cu.jit
def push_all(src, dst, active, walls, n_walls, phys, start, nbr, n_nbr, near_wall, contact):
    k = cu.grid(1)
    n = src.shape[1]
    if k < src.shape[0] * n:
        w = k // n
        i = k % n
        if n_nbr[w, i] > 0:
            d_push(w, i, src, dst, active, walls, n_walls, phys, start, nbr, n_nbr, near_wall, contact)


@cu.jit
def copy_pushed(tmp, pos, n_nbr):
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        i = k % n
        if n_nbr[w, i] > 0:
            pos[w, i, 0] = tmp[w, i, 0]
            pos[w, i, 1] = tmp[w, i, 1]


@cu.jit
def settle_all(pos, vel, active, walls, n_walls, phys, start, moved, contact):
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        d_settle(k // n, k % n, pos, vel, active, walls, n_walls, phys, start, moved, contact)


@cu.jit
def lidar_all(pos, theta, active, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar):
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        d_lidar(k // n, k % n, pos, theta, active, walls, n_walls, phys, g, cell_start, cell_items, ray_cs, lidar)


@cu.jit
def zero_int(a):
    """a[...] = 0 for a 2-D int array (one thread per element)."""
    k = cu.grid(1)
    m = a.shape[1]
    if k < a.shape[0] * m:
        a[k // m, k % m] = 0
