"""Uniform-grid cell arithmetic shared by every kernel that looks for nearby agents.

The world sorts its agents into a ``g x g`` grid of cells ``cell`` metres wide each step
(``kernels.build_grid``: CSR offsets ``cell_start`` [E, g*g + 1], agent ids ``cell_items`` [E, N]).
``cell_of`` says which cell a point falls in; ``cell_span`` says which cells can hold a point within
a given reach. Collisions, lidar, the neighbour sensor and landmarks all iterate the grid through
``cell_span``. This module imports nothing from the rest of the core, so every kernel module can
use it.
"""
from __future__ import annotations

from numba import njit

SPAN_EPS = 1e-7  # cells of margin in cell_span: float rounding can never drop a cell that holds a hit


@njit(cache=True, inline="always")
def cell_of(x, y, cell, g):
    """The cell (cx, cy) of the point (x, y); points outside the arena fall into the edge cells."""
    cx = min(max(int(x / cell), 0), g - 1)
    cy = min(max(int(y / cell), 0), g - 1)
    return cx, cy


@njit(cache=True, inline="always")
def cell_span(x, y, reach, cell, g):
    """The block of grid cells that can hold a point within ``reach`` of (x, y).

    Returns ``(x0, x1, y0, y1)``, inclusive cell indices clamped to the ``g x g`` grid of cells
    ``cell`` metres wide, so that every agent whose centre is within ``reach`` of (x, y) lies in
    a cell ``cy * g + cx`` with ``x0 <= cx <= x1`` and ``y0 <= cy <= y1``. Iterate it as::

        x0, x1, y0, y1 = cell_span(px, py, reach, cell, g)
        for cy in range(y0, y1 + 1):
            for cx in range(x0, x1 + 1):
                c = cy * g + cx
                for k in range(cell_start[w, c], cell_start[w, c + 1]):
                    j = cell_items[w, k]   # a candidate: still test its distance

    It agrees with ``cell_of`` (positions outside the arena fall into the edge cells and are
    still found). With ``reach <= cell`` the block is within the 3 x 3 cells around (x, y), and
    often smaller; larger reaches give larger blocks. Cells are visited in the same row-major
    order as a full 3 x 3 loop, so a loop over the span finds the same candidates in the same
    order, only skipping cells that cannot hold one. A margin of ``SPAN_EPS`` cells keeps float
    rounding from dropping a cell.
    """
    top = g - 1.0
    fx0 = min(max((x - reach) / cell - SPAN_EPS, 0.0), top)
    fx1 = min(max((x + reach) / cell + SPAN_EPS, 0.0), top)
    fy0 = min(max((y - reach) / cell - SPAN_EPS, 0.0), top)
    fy1 = min(max((y + reach) / cell + SPAN_EPS, 0.0), top)
    return int(fx0), int(fx1), int(fy0), int(fy1)
