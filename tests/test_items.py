"""core.items: the compiled carry / deliver / pick-up rules and the item sensor against the plain-numpy
reference (core.items_reference), counts conserved, clear placement, thread-count independence and
bad arguments."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from entropy_engine.core.backends import make_world
from entropy_engine.core.items import Items
from entropy_engine.core.items_reference import is_clear, sense_reference, update_reference
from entropy_engine.core.landmarks import Landmarks
from entropy_engine.core.params import WorldConfig
from entropy_engine.core.rng import seed_states


def _setup(E=3, N=12, M=15, capacity=2, seed=0, arena=8.0):
    world = make_world(WorldConfig(arena_size=arena), E, N, 4)
    rng = np.random.default_rng(seed)
    world.pos[:] = rng.uniform(0.5, arena - 0.5, (E, N, 2))
    world.theta[:] = rng.uniform(-np.pi, np.pi, (E, N))
    world.active[:] = True
    a = arena
    world.walls[:, :4] = np.array([[0, 0, a, 0], [a, 0, a, a], [a, a, 0, a], [0, a, 0, 0]], np.float32)
    world.n_walls[:] = 4
    nests = Landmarks(world, 2)                       # two nests per world, the second off in world 0
    nests.place(rng.uniform(1.5, arena - 1.5, (E, 2, 2)), 0.9,
                active=np.array([[True, False]] + [[True, True]] * (E - 1)))
    items = Items(world, M, item_radius=0.12, capacity=capacity, k=5, sense_range=3.0, margin=0.4, spacing=0.3,
                  nest_clearance=0.3)
    states = seed_states(seed, E)
    items.scatter(np.ones(E, bool), M - 2, states, nests)   # two slots stay unused
    return world, nests, items, states


def _check_clear(world, nests, items, e, m):
    return is_clear(items.pos[e, m], m, items.pos[e], items.present[e], world.pos[e], world.active[e], nests.pos[e],
                    nests.radius[e], nests.active[e], world.arena, 0.4, 0.3, 0.3, world.radius, items.item_radius)


def test_scatter_places_every_item_clear():
    world, nests, items, _ = _setup()
    assert (items.present.sum(1) == 13).all() and not items.present[:, 13:].any()
    assert (items.free == items.present).all() and (items.carrier == -1).all() and (items.load == 0).all()
    for e in range(3):
        for m in range(13):
            assert _check_clear(world, nests, items, e, m), (e, m)


@pytest.mark.parametrize("capacity", [1, 2])
def test_update_and_sensor_match_the_numpy_reference(capacity):
    """300 steps of robots driving at random (and towards items, so that many are picked up and
    delivered): every update equals the reference's carriers, loads, pick-ups and deliveries, items
    that were not re-placed sit where the reference puts them, re-placed ones are clear, the number
    of items never changes and the sensor equals the brute-force sort."""
    world, nests, items, states = _setup(capacity=capacity)
    E, N = world.num_worlds, world.n_agents
    rng = np.random.default_rng(1)
    n_deliv = n_pick = 0
    for t in range(300):
        acts = rng.uniform(-1, 1, (E, N, 2)).astype(np.float32)
        world.step(acts)
        if t % 5 == 0:       # teleport loaded robots into a nest and others onto items: every rule runs
            for e in range(E):
                loaded = np.flatnonzero(items.load[e] > 0)[:2]
                world.pos[e, loaded] = nests.pos[e, 0] + rng.uniform(-0.3, 0.3, (len(loaded), 2))
                room = np.setdiff1d(np.flatnonzero(items.load[e] < capacity), loaded)[:3]
                free = np.flatnonzero(items.free[e])[:len(room)]
                world.pos[e, room[:len(free)]] = items.pos[e, free] + rng.uniform(-0.1, 0.1, (len(free), 2))
        before = {k: getattr(items, k).copy() for k in ("pos", "present", "carrier", "load")}
        items.update(states, nests)
        for e in range(E):
            ref = update_reference(before["pos"][e], before["present"][e], before["carrier"][e], before["load"][e],
                                   world.pos[e], world.active[e], nests.pos[e], nests.radius[e], nests.active[e],
                                   world.radius, items.item_radius, capacity)
            assert np.array_equal(items.carrier[e], ref["carrier"]), (t, e)
            assert np.array_equal(items.load[e], ref["load"]) and np.array_equal(items.picked[e], ref["picked"])
            assert np.array_equal(items.delivered[e], ref["delivered"])
            assert items.world_delivered[e] == ref["delivered"].sum()
            keep = items.present[e] & ~ref["replaced"]
            np.testing.assert_allclose(items.pos[e][keep], ref["pos"][keep], atol=1e-6)
            for m in np.flatnonzero(ref["replaced"]):
                assert _check_clear(world, nests, items, e, m), (t, e, m)
            assert items.present[e].sum() == 13 and (items.load[e] <= capacity).all()
            assert items.load[e].sum() == (items.carrier[e] >= 0).sum()
            assert np.array_equal(items.free[e], items.present[e] & (items.carrier[e] < 0))
        n_deliv += int(items.delivered.sum())
        n_pick += int(items.picked.sum())
        items.sense()
        for e in range(E):
            out, idx = sense_reference(world.pos[e], world.theta[e], world.active[e], items.pos[e], items.free[e],
                                       5, 3.0)
            assert np.array_equal(items.sensed_index[e], idx), (t, e)
            np.testing.assert_allclose(items.sensed[e], out, atol=1e-6)
    assert n_pick >= 50 and n_deliv >= 20, (n_pick, n_deliv)


def test_release_and_departed_carriers_put_items_back():
    world, nests, items, states = _setup(capacity=1)
    for e in range(3):   # robots 0..2 stand on items: they pick them up
        world.pos[e, :3] = items.pos[e, :3]
    items.update(states, nests)
    assert (items.load[:, :3] == 1).all()
    mask = np.zeros((3, 12), bool)
    mask[0, 0] = mask[1, 1] = True
    items.release(mask, states, nests)
    assert items.load[0, 0] == 0 and items.load[1, 1] == 0 and items.load[2, :3].sum() == 3
    assert items.free[0, 0] and items.free[1, 1] and _check_clear(world, nests, items, 0, 0)
    world.active[2, 2] = False                       # robot 2 of world 2 left the world carrying item 2
    items.update(states, nests)
    assert items.free[2, 2] and items.carrier[2, 2] == -1 and items.delivered[2].sum() == 0
    assert (items.present.sum(1) == 13).all()


def test_results_do_not_depend_on_the_thread_count():
    def run(threads):
        old = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            world, nests, items, states = _setup(E=6, seed=3)
            rng = np.random.default_rng(0)
            for _ in range(150):
                world.step(rng.uniform(-1, 1, (6, 12, 2)).astype(np.float32))
                world.pos[:, 0] = items.pos[:, 0]
                items.update(states, nests)
                items.sense()
            return items.pos.copy(), items.carrier.copy(), items.sensed.copy(), states.copy()
        finally:
            numba.set_num_threads(old)
    a, b = run(1), run(numba.config.NUMBA_NUM_THREADS)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("kw, match", [
    (dict(max_items=0), "max_items must be an integer >= 1"),
    (dict(max_items=4, capacity=0), "capacity must be an integer >= 1"),
    (dict(max_items=4, item_radius=-0.1), "item_radius must be a positive"),
    (dict(max_items=4, sense_range=float("nan")), "sense_range must be a positive"),
    (dict(max_items=4, margin=0.05), "margin must be >= item_radius"),
    (dict(max_items=4, margin=5.0), "leave room"),
])
def test_bad_arguments_are_refused(kw, match):
    world = make_world(WorldConfig(arena_size=8.0), 1, 2, 4)
    with pytest.raises(ValueError, match=match):
        Items(world, **kw)


def test_scatter_refuses_more_items_than_slots():
    world, nests, items, states = _setup()
    before = items.pos.copy()
    with pytest.raises(ValueError, match="n_items must be <= max_items"):
        items.scatter(np.ones(3, bool), 16, states, nests)
    assert np.array_equal(items.pos, before)
