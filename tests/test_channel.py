"""The communication channel: settings, the compiled kernel against the numpy reference, and the
engine integration (spaces, actions, observations) for any scenario."""
import numpy as np
import pytest

from entropy_engine.config import ConfigError, build_config
from entropy_engine.scenarios import scenario_class
from entropy_engine.training.config import TrainConfig


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize("scenario", ["navigation", "flocking"])
def test_channel_settings_on_every_scenario(scenario):
    cfg = build_config(scenario_class(scenario).Config,
                       {"comm_dim": "4", "comm_range": "2.5", "comm_combine": "nearest", "comm_k": "3",
                        "comm_noise": "0.1", "comm_dropout": "0.2", "comm_delay": "2", "comm_occlusion": "true"})
    assert (cfg.comm_dim, cfg.comm_range, cfg.comm_combine, cfg.comm_k) == (4, 2.5, "nearest", 3)
    assert (cfg.comm_noise, cfg.comm_dropout, cfg.comm_delay, cfg.comm_occlusion) == (0.1, 0.2, 2, True)
    assert cfg.comm_obs_width == 3 * (4 + 3) + 1
    assert build_config(scenario_class(scenario).Config, {}).comm_dim == 0     # off by default
    assert build_config(scenario_class(scenario).Config, {"comm_dim": 5}).comm_obs_width == 6   # mean: C + count


@pytest.mark.parametrize("bad, words", [
    ({"comm_range": -1.0}, "comm_range must be a positive"),
    ({"comm_range": 0.0}, "comm_range must be a positive"),
    ({"comm_range": float("inf")}, "comm_range must be a finite"),
    ({"comm_dropout": 1.5}, "comm_dropout must be in [0, 1]"),
    ({"comm_dropout": -0.1}, "comm_dropout must be in [0, 1]"),
    ({"comm_delay": -1}, "comm_delay must be >= 0"),
    ({"comm_combine": "sum"}, "comm_combine"),
    ({"comm_dim": -1}, "comm_dim must be >= 0"),
    ({"comm_k": 0}, "comm_k must be >= 1"),
    ({"comm_noise": -0.5}, "comm_noise must be >= 0"),
])
def test_impossible_channel_settings_are_clear_errors(bad, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        build_config(scenario_class("navigation").Config, bad)


def test_channel_settings_through_the_run_config():
    """``--env comm_dim=8`` reaches the scenario like any other scenario key."""
    cfg = TrainConfig(scenario="navigation", env={"comm_dim": "8", "comm_range": "3"})
    assert cfg.env_kwargs["comm_dim"] == 8 and cfg.env_kwargs["comm_range"] == 3.0
    with pytest.raises(ConfigError, match="comm_dropout"):
        TrainConfig(scenario="navigation", env={"comm_dropout": 2})


# ----------------------------------------------------------------------------- kernel vs reference
import numba  # noqa: E402

from entropy_engine.core.channel import Channel, channel_states  # noqa: E402
from entropy_engine.core.channel_config import ChannelConfig  # noqa: E402
from entropy_engine.core.channel_reference import ChannelReference, link_normal, link_uniform  # noqa: E402
from entropy_engine.core.params import WorldConfig  # noqa: E402
from entropy_engine.core.world import World  # noqa: E402


def _world(E, N, arena, seed, n_walls=0, inactive=0.1):
    w = World(WorldConfig(arena_size=arena), E, N, max_walls=max(n_walls, 1))
    rng = np.random.default_rng(seed)
    w.pos[:] = rng.uniform(0.2, arena - 0.2, (E, N, 2))
    w.theta[:] = rng.uniform(-np.pi, np.pi, (E, N))
    w.active[:] = rng.random((E, N)) >= inactive
    w.walls[:, :n_walls] = rng.uniform(0, arena, (E, n_walls, 4))
    w.n_walls[:] = n_walls
    return w


def _run(cfg, E=3, N=30, arena=8.0, seed=0, n_walls=0, steps=4):
    """Step the channel and the reference side by side (moving agents, random messages); returns
    the last output."""
    w = _world(E, N, arena, seed, n_walls)
    ch = Channel(w, cfg, seed=seed)
    ref = ChannelReference(cfg, E, N)
    rng = np.random.default_rng(seed + 100)
    for t in range(steps):
        msgs = rng.uniform(-1, 1, (E, N, cfg.comm_dim)).astype(np.float32)
        out = ch.step(msgs)
        expect = ref.step(ch.keys, msgs, w)
        np.testing.assert_allclose(out, expect, atol=2e-6, rtol=0, err_msg=f"step {t}")
        w.pos[:] = np.clip(w.pos + rng.normal(0, 0.3, w.pos.shape), 0.2, arena - 0.2).astype(np.float32)
        w.active[:] = rng.random(w.active.shape) >= 0.1
    return out


CASES = {
    "mean": dict(comm_combine="mean"),
    "max": dict(comm_combine="max"),
    "nearest": dict(comm_combine="nearest", comm_k=3),
    "nearest_k_large": dict(comm_combine="nearest", comm_k=40),
    "long_range": dict(comm_range=7.0),                     # beyond one grid cell (3.2 m): 5 x 5 cells
    "short_range": dict(comm_range=0.8, comm_combine="nearest"),
    "noise": dict(comm_noise=0.3),
    "noise_max": dict(comm_noise=0.5, comm_combine="max"),
    "dropout": dict(comm_dropout=0.4),
    "dropout_all": dict(comm_dropout=1.0),
    "delay": dict(comm_delay=2, comm_combine="nearest", comm_k=2),
    "everything": dict(comm_combine="nearest", comm_k=4, comm_noise=0.2, comm_dropout=0.3, comm_delay=1,
                       comm_occlusion=True, comm_range=4.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_channel_matches_reference(case):
    cfg = ChannelConfig(comm_dim=3, **CASES[case])
    out = _run(cfg)
    assert out.shape == (3, 30, cfg.comm_obs_width) and out.dtype == np.float32
    if case == "dropout_all":
        assert not out.any()           # every link lost: nothing heard
    else:
        assert out[..., -1].any()      # the scene is not trivial: messages were heard


@pytest.mark.parametrize("occlusion", [False, True])
def test_walls_block_messages_only_with_occlusion(occlusion):
    cfg = ChannelConfig(comm_dim=2, comm_occlusion=occlusion, comm_range=5.0)
    out = _run(cfg, n_walls=6, seed=3)
    w = World(WorldConfig(arena_size=10.0), 1, 2, max_walls=1)       # two agents, a wall between them
    w.pos[0] = [[2.0, 5.0], [4.0, 5.0]]
    w.active[:] = True
    w.walls[0, 0] = [3.0, 3.0, 3.0, 7.0]
    w.n_walls[:] = 1
    out = Channel(w, cfg, seed=0).step(np.array([[[0.5, -0.5], [0.25, 1.0]]], np.float32))
    expect = np.zeros((1, 2, 3), np.float32) if occlusion else \
        np.array([[[0.25, 1.0, 1 / 4], [0.5, -0.5, 1 / 4]]], np.float32)
    np.testing.assert_array_equal(out, expect)


def test_delay_delivers_messages_sent_that_many_steps_ago():
    w = World(WorldConfig(arena_size=10.0), 1, 2, max_walls=1)
    w.pos[0] = [[2.0, 5.0], [3.0, 5.0]]
    w.active[:] = True
    ch = Channel(w, ChannelConfig(comm_dim=1, comm_delay=2), seed=0)
    heard = [ch.step(np.full((1, 2, 1), v, np.float32))[0, 0, 0] for v in (0.1, 0.2, 0.3, 0.4)]
    assert heard == [0.0, 0.0, np.float32(0.1), np.float32(0.2)]
    ch.clear(worlds=np.array([True]))                     # a reset: nothing crosses episodes
    assert ch.step(np.full((1, 2, 1), 0.5, np.float32))[0, 0, 0] == 0.0


def test_draws_are_uniform_and_normal():
    """The counter-based draws the loss and the noise use have the right distributions."""
    u = np.array([link_uniform(12345, c) for c in range(4000)])
    z = np.array([link_normal(987, 2 * c) for c in range(4000)])
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.02 and abs(u.std() - 12 ** -0.5) < 0.02
    assert abs(z.mean()) < 0.06 and abs(z.std() - 1) < 0.05


def test_dropout_loses_that_fraction_of_links():
    cfg = ChannelConfig(comm_dim=1, comm_dropout=0.3, comm_range=100.0, comm_k=1000)
    w = _world(1, 200, 20.0, 0, inactive=0.0)
    counts = Channel(w, cfg, seed=1).step(np.zeros((1, 200, 1), np.float32))[0, :, -1] * 1000
    assert abs(counts.mean() / 199 - 0.7) < 0.02


def test_channel_bit_identical_for_any_thread_count():
    cfg = ChannelConfig(comm_dim=4, comm_combine="nearest", comm_k=5, comm_noise=0.2, comm_dropout=0.2,
                        comm_delay=1, comm_occlusion=True)
    results = []
    before = numba.get_num_threads()
    try:
        for n_threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(n_threads)
            w = _world(5, 80, 12.0, 7, n_walls=5)
            ch = Channel(w, cfg, seed=11)
            rng = np.random.default_rng(0)
            outs = [ch.step(rng.uniform(-1, 1, (5, 80, 4)).astype(np.float32)).copy() for _ in range(3)]
            results.append(np.stack(outs))
    finally:
        numba.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_channel_streams_are_per_world():
    """World w's draws do not depend on how many worlds are stepped with it (worker processes)."""
    full = channel_states(5, 8)
    ch = Channel(_world(3, 4, 8.0, 0), ChannelConfig(comm_dim=1), seed=None)
    ch.seed_worlds(5, 8, 2)
    np.testing.assert_array_equal(ch.rng, full[2:5])
