"""CUDA drivers of the step of worlds with movable objects: which thread runs which phase of
``core.object_kernels``, and the barriers.

The phases are ``core.object_kernels``' njit functions compiled as device functions
(``gpu.target.device``), so robots and objects move by the CPU backend's arithmetic. Robots and
objects are bodies (``B = N + M`` per world: robots first). Two schedules, as for worlds without
objects (``gpu.kernels``):

- ``step_worlds`` (worlds of up to ``kernels.BLOCK_MAX`` bodies): a thread per body, whole worlds per
  thread block, ``syncthreads`` between phases; each world's body grid and islands are built by its
  first thread (the robots' grid at the end by its second), and its islands are solved one per
  thread (thread s solves island s, all passes, stopping at the fixed point as the CPU does).
- the agent schedule (larger worlds): every phase a launch over all robots, objects or bodies; the
  body and robot grids are built in parallel (``gpu.kernels.grid_*``), the islands of each world by
  one thread per world (``islands_all``: a serial union-find over the world's B bodies, O(B + contact
  candidates) on one GPU thread per world; the islands are then solved in parallel).

``lidar_worlds`` / the agent-style launches recompute the lidar after resets and respawns.
"""
from __future__ import annotations

from ..core import kernels as K
from ..core import object_kernels as OK
from .target import cuda, device

cu = cuda()

d_drive = device(K.phase_drive)
d_settle = device(K.phase_settle)
d_build_grid = device(K.build_grid)
d_build_islands = device(K.build_islands)
d_predict = device(OK.phase_predict)
d_gather = device(OK.phase_gather)
d_body_contacts = device(OK.phase_body_contacts)
d_solve_island = device(OK.solve_body_island)
d_friction = device(OK.phase_friction)
d_off_objects = device(OK.phase_off_objects)
d_scatter = device(OK.phase_scatter)
d_lidar = device(OK.lidar_bodies)


@cu.jit(device=True)
def _body_of(w, b, n, pos, active, opos, oradius, oactive, phys, bpos, brad, bactive):
    """Body b's position, radius and activity (``lidar_by_world``'s gather)."""
    d_scatter(w, b, n, pos, opos, bpos)
    if b < n:
        brad[w, b] = phys[K.RADIUS]
        bactive[w, b] = active[w, b]
    else:
        brad[w, b] = oradius[w, b - n]
        bactive[w, b] = oactive[w, b - n]


# ----------------------------------------------------------------------------- a block per world
@cu.jit
def step_worlds(actions, pos, vel, theta, omega, active, walls, n_walls, phys, ophys, g, iterations, ray_cs,
                start, moved, opos, ovel, oradius, omass, ofriction, oactive, ostart, bpos, btmp, bstart, brad,
                binv, bactive, bcontact, bcell_start, bcell_fill, bcell_items, nbr, n_nbr, near_wall, islands,
                cell_start, cell_fill, cell_items, lidar, contact):
    """One step of the ``blockDim.x // B`` worlds of block ``blockIdx.x``, a thread per body (see
    ``core.object_kernels.step_by_world`` for the arrays). Every thread reaches every barrier."""
    n = pos.shape[1]
    nb = n + opos.shape[1]
    t = cu.threadIdx.x
    per_block = cu.blockDim.x // nb
    lw = t // nb
    w = cu.blockIdx.x * per_block + lw
    b = t - lw * nb
    ok = lw < per_block and w < pos.shape[0]
    robot = ok and b < n
    obj = ok and b >= n
    if robot:
        d_drive(w, b, actions, pos, vel, theta, omega, active, phys, start, moved, contact)
    if obj:
        d_predict(w, b - n, opos, ovel, oactive, ostart, phys)
    cu.syncthreads()
    if ok:
        d_gather(w, b, n, pos, start, active, opos, ostart, oradius, omass, oactive, phys, bpos, bstart, brad, binv,
                 bactive, bcontact)
    cu.syncthreads()
    if ok and b == 0:
        d_build_grid(w, bpos, bactive, phys, g, bcell_start, bcell_fill, bcell_items)
    cu.syncthreads()
    if ok:
        d_body_contacts(w, b, bpos, brad, bactive, walls, n_walls, phys, ophys, g, bcell_start, bcell_items, nbr,
                        n_nbr, near_wall)
    cu.syncthreads()
    if ok and b == 0:
        d_build_islands(w, n_nbr, nbr, islands)
    cu.syncthreads()
    if ok and b < islands[w, 0]:
        d_solve_island(w, b, islands, iterations, bpos, btmp, brad, binv, walls, n_walls, phys, bstart, nbr, n_nbr,
                       near_wall, bcontact)
    cu.syncthreads()
    if obj:
        d_friction(w, b - n, n, bpos, brad, opos, ovel, ostart, omass, ofriction, oactive, walls, n_walls, phys,
                   ophys, nbr, n_nbr)
    cu.syncthreads()
    if robot:
        d_off_objects(w, b, n, pos, bpos, opos, oradius, phys, nbr, n_nbr, bcontact, contact)
        d_settle(w, b, pos, vel, active, walls, n_walls, phys, start, moved, contact)
    cu.syncthreads()
    if ok:
        d_scatter(w, b, n, pos, opos, bpos)
    cu.syncthreads()
    if ok and b == 0:
        d_build_grid(w, bpos, bactive, phys, g, bcell_start, bcell_fill, bcell_items)
    if ok and b == 1:   # the robots' grid (WorldState.grid()), as the CPU step leaves it
        d_build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    cu.syncthreads()
    if robot:
        d_lidar(w, b, pos, theta, active, walls, n_walls, phys, ophys, g, bpos, brad, bcell_start, bcell_items,
                ray_cs, lidar)


@cu.jit
def lidar_worlds(mask, pos, theta, active, walls, n_walls, phys, ophys, g, ray_cs, opos, oradius, oactive, bpos,
                 brad, bactive, bcell_start, bcell_fill, bcell_items, cell_start, cell_fill, cell_items, lidar):
    """Bodies, grids and lidar of the worlds of block ``blockIdx.x`` (as ``step_worlds``) where ``mask[w]``
    (``core.object_kernels.lidar_by_world``; after a reset or respawn)."""
    n = pos.shape[1]
    nb = n + opos.shape[1]
    t = cu.threadIdx.x
    per_block = cu.blockDim.x // nb
    lw = t // nb
    w = cu.blockIdx.x * per_block + lw
    b = t - lw * nb
    ok = lw < per_block and w < pos.shape[0]
    if ok:
        ok = mask[w]
    if ok:
        _body_of(w, b, n, pos, active, opos, oradius, oactive, phys, bpos, brad, bactive)
    cu.syncthreads()
    if ok and b == 0:
        d_build_grid(w, bpos, bactive, phys, g, bcell_start, bcell_fill, bcell_items)
    if ok and b == 1:
        d_build_grid(w, pos, active, phys, g, cell_start, cell_fill, cell_items)
    cu.syncthreads()
    if ok and b < n:
        d_lidar(w, b, pos, theta, active, walls, n_walls, phys, ophys, g, bpos, brad, bcell_start, bcell_items,
                ray_cs, lidar)


# ----------------------------------------------------------------------------- a thread per robot/object/body
@cu.jit
def predict_all(opos, ovel, oactive, ostart, phys):
    k = cu.grid(1)
    m = opos.shape[1]
    if k < opos.shape[0] * m:
        d_predict(k // m, k % m, opos, ovel, oactive, ostart, phys)


@cu.jit
def gather_all(pos, start, active, opos, ostart, oradius, omass, oactive, phys, bpos, bstart, brad, binv, bactive,
               bcontact):
    k = cu.grid(1)
    n = pos.shape[1]
    nb = n + opos.shape[1]
    if k < pos.shape[0] * nb:
        d_gather(k // nb, k % nb, n, pos, start, active, opos, ostart, oradius, omass, oactive, phys, bpos, bstart,
                 brad, binv, bactive, bcontact)


@cu.jit
def contacts_all(bpos, brad, bactive, walls, n_walls, phys, ophys, g, bcell_start, bcell_items, nbr, n_nbr,
                 near_wall):
    k = cu.grid(1)
    nb = bpos.shape[1]
    if k < bpos.shape[0] * nb:
        d_body_contacts(k // nb, k % nb, bpos, brad, bactive, walls, n_walls, phys, ophys, g, bcell_start,
                        bcell_items, nbr, n_nbr, near_wall)


@cu.jit
def islands_all(n_nbr, nbr, islands):
    """World w's islands (a thread per world: ``kernels.build_islands``, serial over its bodies)."""
    w = cu.grid(1)
    if w < n_nbr.shape[0]:
        d_build_islands(w, n_nbr, nbr, islands)


@cu.jit
def solve_all(islands, iterations, bpos, btmp, brad, binv, walls, n_walls, phys, bstart, nbr, n_nbr, near_wall,
              bcontact):
    """Island s of world w on thread (w, s), for s below the world's island count."""
    k = cu.grid(1)
    nb = bpos.shape[1]
    if k < bpos.shape[0] * nb:
        w = k // nb
        s = k % nb
        if s < islands[w, 0]:
            d_solve_island(w, s, islands, iterations, bpos, btmp, brad, binv, walls, n_walls, phys, bstart, nbr,
                           n_nbr, near_wall, bcontact)


@cu.jit
def friction_all(n, bpos, brad, opos, ovel, ostart, omass, ofriction, oactive, walls, n_walls, phys, ophys, nbr,
                 n_nbr):
    k = cu.grid(1)
    m = opos.shape[1]
    if k < opos.shape[0] * m:
        d_friction(k // m, k % m, n, bpos, brad, opos, ovel, ostart, omass, ofriction, oactive, walls, n_walls, phys,
                   ophys, nbr, n_nbr)


@cu.jit
def settle_all(pos, vel, active, walls, n_walls, phys, start, moved, bpos, opos, oradius, nbr, n_nbr, bcontact,
               contact):
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        w = k // n
        i = k % n
        d_off_objects(w, i, n, pos, bpos, opos, oradius, phys, nbr, n_nbr, bcontact, contact)
        d_settle(w, i, pos, vel, active, walls, n_walls, phys, start, moved, contact)


@cu.jit
def scatter_all(pos, opos, bpos):
    k = cu.grid(1)
    n = pos.shape[1]
    nb = bpos.shape[1]
    if k < pos.shape[0] * nb:
        d_scatter(k // nb, k % nb, n, pos, opos, bpos)


@cu.jit
def bodies_all(pos, active, opos, oradius, oactive, phys, bpos, brad, bactive):
    """Every body's position, radius and activity (before the lidar of a reset)."""
    k = cu.grid(1)
    n = pos.shape[1]
    nb = bpos.shape[1]
    if k < pos.shape[0] * nb:
        _body_of(k // nb, k % nb, n, pos, active, opos, oradius, oactive, phys, bpos, brad, bactive)


@cu.jit
def lidar_all(pos, theta, active, walls, n_walls, phys, ophys, g, bpos, brad, bcell_start, bcell_items, ray_cs, lidar):
    k = cu.grid(1)
    n = pos.shape[1]
    if k < pos.shape[0] * n:
        d_lidar(k // n, k % n, pos, theta, active, walls, n_walls, phys, ophys, g, bpos, brad, bcell_start,
                bcell_items, ray_cs, lidar)
