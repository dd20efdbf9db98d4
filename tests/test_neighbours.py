"""The neighbour sensor and the landmark kernels agree with the brute-force numpy references."""
import math

import numba
import numpy as np
import pytest

from entropy_engine.core.grid import cell_of
from entropy_engine.core.landmarks import Landmarks
from entropy_engine.core.grid import cell_span
from entropy_engine.core.neighbours import NeighbourSensor
from entropy_engine.core.neighbours_reference import (nearest_landmark_reference, neighbours_reference,
                                                      occupancy_reference)
from entropy_engine.core.params import WorldConfig
from entropy_engine.core.world import World


def _world(num_worlds, n_agents, arena, seed, inactive=0.1, lattice=False):
    w = World(WorldConfig(arena_size=arena), num_worlds, n_agents, max_walls=4)
    rng = np.random.default_rng(seed)
    if lattice:  # many agents at exactly equal distances from each other
        side = math.ceil(math.sqrt(n_agents))
        xy = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)[:n_agents]
        w.pos[:] = (0.5 + xy * 0.5)[None]
    else:
        w.pos[:] = rng.uniform(0.2, arena - 0.2, (num_worlds, n_agents, 2))
    w.vel[:] = rng.uniform(-1.5, 1.5, (num_worlds, n_agents, 2))
    w.theta[:] = rng.uniform(-np.pi, np.pi, (num_worlds, n_agents))
    w.active[:] = rng.random((num_worlds, n_agents)) >= inactive
    return w


def _check(w, sensor, attrs=None):
    out = sensor.sense(attributes=attrs)
    for e in range(w.num_worlds):
        ref, idx = neighbours_reference(w.pos[e], w.vel[e], w.theta[e], w.active[e], sensor.sense_range,
                                        w.config.max_speed, sensor.k, None if attrs is None else attrs[e])
        np.testing.assert_array_equal(sensor.indices[e], idx)      # same neighbours, same order
        np.testing.assert_allclose(out[e], ref, atol=1e-6, rtol=0)
    return out


@pytest.mark.parametrize("E,N,K,sense_range,arena,n_attr,seed", [
    (3, 12, 4, 2.0, 6.0, 0, 0),     # range below one grid cell (3.2 m)
    (2, 40, 8, 7.5, 12.0, 1, 1),    # range over two cells: a 5 x 5 block of cells
    (2, 60, 3, 1.0, 20.0, 2, 2),    # sparse: many agents with empty slots
    (1, 3, 8, 5.0, 6.0, 1, 3),      # N < K + 1: padding in every row
    (4, 1, 2, 3.0, 10.0, 0, 4),     # a single agent: nothing to sense
    (2, 200, 16, 4.0, 25.0, 0, 5),  # several grid cells, K large
])
def test_neighbours_match_reference(E, N, K, sense_range, arena, n_attr, seed):
    w = _world(E, N, arena, seed)
    sensor = NeighbourSensor(w, k=K, sense_range=sense_range, n_attributes=n_attr)
    attrs = None
    if n_attr:
        attrs = np.random.default_rng(seed).integers(0, 3, (E, N, n_attr)).astype(np.float32)
    out = _check(w, sensor, attrs)
    assert out.shape == (E, N, K, 5 + n_attr) and out.dtype == np.float32
    assert (out[~w.active] == 0).all() and (sensor.indices[~w.active] == -1).all()
    if N > 1:
        assert out[..., 4].any()  # the scene is not trivial
    assert np.abs(out[..., :2]).max() <= 1.0 + 1e-6


def test_equal_distances_are_ordered_by_index():
    w = _world(2, 49, 6.0, 0, inactive=0.15, lattice=True)  # 7 x 7 lattice, 0.5 m apart
    sensor = NeighbourSensor(w, k=6, sense_range=0.75)
    _check(w, sensor)
    # an interior agent of a full lattice row has 4 neighbours at 0.5 m and 4 at 0.707 m
    w.active[:] = True
    sensor.sense()
    centre = 24
    assert list(sensor.indices[0, centre]) == [17, 23, 25, 31, 16, 18]
    d = np.hypot(sensor.out[0, centre, :, 0], sensor.out[0, centre, :, 1]) * 0.75
    np.testing.assert_allclose(d, [0.5] * 4 + [math.sqrt(0.5)] * 2, atol=1e-6)


def test_ego_frame_and_velocity():
    w = World(WorldConfig(arena_size=10.0), 1, 2, max_walls=4)
    w.active[:] = True
    w.pos[0] = [(5.0, 5.0), (6.0, 5.0)]   # the neighbour 1 m east
    w.theta[0] = [np.pi / 2, 0.0]         # agent 0 faces north: east is to its right
    w.vel[0] = [(0.0, 1.5), (0.0, 0.0)]   # agent 0 drives forward at full speed
    sensor = NeighbourSensor(w, k=2, sense_range=2.0, n_attributes=1)
    out = sensor.sense(attributes=np.array([[[0.0], [7.0]]], np.float32))
    np.testing.assert_allclose(out[0, 0, 0], [0.0, -0.5, -1.0, 0.0, 1.0, 7.0], atol=1e-6)
    np.testing.assert_allclose(out[0, 0, 1], 0.0)
    np.testing.assert_allclose(out[0, 1, 0], [-0.5, 0.0, 0.0, 1.0, 1.0, 0.0], atol=1e-6)
    w.pos[0, 1] = (7.0, 5.0)              # exactly at the range: still sensed
    sensor.sense(attributes=np.zeros((1, 2, 1), np.float32))
    assert sensor.out[0, 0, 0, 4] == 1.0
    w.pos[0, 1] = (7.01, 5.0)             # just beyond
    sensor.sense(attributes=np.zeros((1, 2, 1), np.float32))
    assert (sensor.out[0, 0] == 0).all() and sensor.indices[0, 0, 0] == -1


def test_schedules_and_thread_counts_are_bit_identical():
    w = _world(6, 300, 30.0, 7)
    sensor = NeighbourSensor(w, k=8, sense_range=4.0, n_attributes=1)
    attrs = np.random.default_rng(0).random((6, 300, 1)).astype(np.float32)
    results = []
    threads = numba.get_num_threads()
    try:
        for n_threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n_threads)
            for schedule in ("agent", "world"):
                sensor.schedule_override = schedule
                sensor.sense(attributes=attrs)
                results.append((sensor.out.copy(), sensor.indices.copy()))
    finally:
        numba.set_num_threads(threads)
    sensor.examined(attributes=attrs)  # the non-parallel build used for cost counts
    results.append((sensor.out.copy(), sensor.indices.copy()))
    assert results[0][0][..., 4].sum() > 1000
    for out, idx in results[1:]:
        assert out.tobytes() == results[0][0].tobytes() and (idx == results[0][1]).all()


def test_grid_argument_and_rebuild_agree():
    w = _world(3, 50, 10.0, 3)
    sensor = NeighbourSensor(w, k=5, sense_range=2.5)
    a = sensor.sense().copy()
    w.step(np.zeros((3, 50, 2), np.float32))  # positions change; hand over a freshly built grid
    b = sensor.sense(grid=w.grid()).copy()
    c = sensor.sense().copy()
    assert not np.array_equal(a, b) and np.array_equal(b, c)


def test_bad_input_is_refused_and_changes_nothing():
    w = _world(2, 10, 6.0, 0)
    for kwargs in ({"k": 0}, {"k": 2.5}, {"sense_range": -1.0}, {"sense_range": float("nan")},
                   {"n_attributes": -1}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            NeighbourSensor(w, **{"k": 3, "sense_range": 2.0, **kwargs})
    sensor = NeighbourSensor(w, k=3, sense_range=2.0, n_attributes=1)
    sensor.sense(attributes=np.ones((2, 10, 1), np.float32))
    before = sensor.out.copy()
    w.pos[:] = np.random.default_rng(9).uniform(0.2, 5.8, w.pos.shape)
    for attrs in (None, np.ones((2, 10, 2), np.float32), np.ones((2, 10, 1), np.float64), [[1.0]]):
        with pytest.raises(ValueError, match="attributes must be a float32 array of shape"):
            sensor.sense(attributes=attrs)
    with pytest.raises(ValueError, match="grid must be"):
        sensor.sense(attributes=np.ones((2, 10, 1), np.float32), grid=(np.zeros((2, 3), np.int32),
                                                                       np.zeros((2, 10), np.int32)))
    with pytest.raises(ValueError, match="n_attributes=0"):
        NeighbourSensor(w, k=3, sense_range=2.0).sense(attributes=np.ones((2, 10, 1), np.float32))
    assert sensor.out.tobytes() == before.tobytes()


def test_cell_span_covers_every_cell_within_reach():
    rng = np.random.default_rng(0)
    cell, g = 3.2, 7
    for _ in range(2000):
        x, y = rng.uniform(-1.0, g * cell + 1.0, 2)
        reach = rng.choice([0.0, rng.uniform(0, cell), rng.uniform(cell, 3 * cell)])
        x0, x1, y0, y1 = cell_span(x, y, reach, cell, g)
        assert 0 <= x0 <= x1 < g and 0 <= y0 <= y1 < g
        cx, cy = cell_of(x, y, cell, g)
        if reach <= cell:  # never more than the 3 x 3 block of the hand-written loops
            assert cx - 1 <= x0 and x1 <= cx + 1 and cy - 1 <= y0 and y1 <= cy + 1
        for ang in np.linspace(0, 2 * np.pi, 16, endpoint=False):
            for frac in (0.0, 0.5, 1.0):  # points on and inside the reach circle
                px = x + frac * reach * math.cos(ang)
                py = y + frac * reach * math.sin(ang)
                qx, qy = cell_of(px, py, cell, g)
                assert x0 <= qx <= x1 and y0 <= qy <= y1


def test_cost_per_agent_does_not_grow_with_n():
    """Grid entries examined per agent stay flat from 1,000 to 10,000 agents at constant density
    (a brute-force sensor would examine N - 1)."""
    means = []
    for n in (1_000, 10_000):
        w = _world(1, n, math.sqrt(10.0 * n), 0, inactive=0.0)
        sensor = NeighbourSensor(w, k=8, sense_range=3.0)
        means.append(sensor.examined().mean())
        assert sensor.out[..., 4].mean() > 0.2  # many slots are filled: the test is not vacuous
    assert means[0] < 40 and means[1] < 40 and means[1] < 1.2 * means[0], means


def test_neighbours_match_reference_at_ten_thousand_agents():
    n = 10_000
    w = _world(1, n, math.sqrt(10.0 * n), 11, inactive=0.05)
    sensor = NeighbourSensor(w, k=8, sense_range=4.0, n_attributes=1)
    attrs = (np.arange(n) % 4).astype(np.float32)[None, :, None]
    out = sensor.sense(attributes=np.ascontiguousarray(attrs))
    rows = np.random.default_rng(0).choice(n, 150, replace=False)
    ref, idx = neighbours_reference(w.pos[0], w.vel[0], w.theta[0], w.active[0], 4.0, w.config.max_speed, 8,
                                    attrs[0], rows=rows)
    np.testing.assert_array_equal(sensor.indices[0, rows], idx[rows])
    np.testing.assert_allclose(out[0, rows], ref[rows], atol=1e-6, rtol=0)
    assert out[0, rows, :, 4].mean() > 0.4


# ----------------------------------------------------------------------------- landmarks
def _landmarks(w, L, seed, radius_hi=2.0):
    rng = np.random.default_rng(seed)
    lm = Landmarks(w, L)
    E = w.num_worlds
    active = rng.random((E, L)) > 0.2
    active[0] = False  # world 0 has no landmark at all
    lm.place(rng.uniform(0, w.arena, (E, L, 2)), rng.uniform(0, radius_hi, (E, L)), active=active)
    return lm


@pytest.mark.parametrize("seed", [0, 1])
def test_nearest_landmark_matches_reference(seed):
    w = _world(4, 30, 8.0, seed)
    lm = _landmarks(w, 6, seed)
    out, index = lm.nearest(scale=8.0)
    for e in range(w.num_worlds):
        ref, idx = nearest_landmark_reference(w.pos[e], w.theta[e], w.active[e], lm.pos[e], lm.radius[e],
                                              lm.active[e], 8.0)
        np.testing.assert_array_equal(index[e], idx)
        np.testing.assert_allclose(out[e], ref, atol=1e-6, rtol=0)
    assert (out[0] == 0).all() and (index[0] == -1).all()
    assert out[1:, :, 2].any() and not out[1:, :, 2].all() and out[1:, :, 3].any()


def test_nearest_landmark_ties_and_ego_frame():
    w = World(WorldConfig(arena_size=10.0), 1, 1, max_walls=4)
    w.active[:] = True
    w.pos[0, 0] = (5.0, 5.0)
    w.theta[0, 0] = np.pi / 2                   # facing north
    lm = Landmarks(w, 3)
    lm.place(np.array([[(7.0, 5.0), (3.0, 5.0), (5.0, 9.0)]]), 0.5)  # two at 2 m: index 0 wins
    out, index = lm.nearest(scale=2.0)
    assert index[0, 0] == 0
    np.testing.assert_allclose(out[0, 0], [0.0, -1.0, 0.0, 1.0], atol=1e-6)  # east = to the right


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_occupancy_matches_reference(seed):
    w = _world(3, 80, 12.0, seed)
    lm = _landmarks(w, 8, seed, radius_hi=5.0)  # radii beyond one grid cell (3.2 m)
    lm.radius[1, 0] = 0.0
    counts = lm.occupancy()
    for e in range(w.num_worlds):
        np.testing.assert_array_equal(counts[e], occupancy_reference(w.pos[e], w.active[e], lm.pos[e],
                                                                     lm.radius[e], lm.active[e]))
    assert counts.sum() > 10 and (counts[0] == 0).all()


def test_landmark_bad_input_is_refused_and_changes_nothing():
    w = _world(2, 5, 6.0, 0)
    with pytest.raises(ValueError, match="max_landmarks"):
        Landmarks(w, 0)
    lm = Landmarks(w, 3)
    lm.place(np.ones((2, 3, 2)), 0.5)
    state = (lm.pos.copy(), lm.radius.copy(), lm.active.copy())
    bad = [((np.ones((2, 2, 2)), 0.5), "pos must have shape"),
           ((np.full((2, 3, 2), np.nan), 0.5), "finite"),
           ((np.ones((2, 3, 2)), -1.0), "radius must be finite and >= 0"),
           ((np.ones((2, 3, 2)), np.ones(3)), "radius must be a number or shape"),
           ((np.ones((2, 3, 2)), 0.5, np.array([1, 0])), "worlds must be a bool array")]
    for args, msg in bad:
        with pytest.raises(ValueError, match=msg):
            lm.place(*args)
    with pytest.raises(ValueError, match="scale"):
        lm.nearest(scale=0.0)
    for got, want in zip((lm.pos, lm.radius, lm.active), state):
        np.testing.assert_array_equal(got, want)
    lm.place(np.zeros((2, 3, 2)), 1.0, worlds=np.array([False, True]))  # only world 1 changes
    assert (lm.pos[0] == 1).all() and (lm.pos[1] == 0).all() and (lm.radius[1] == 1).all()
