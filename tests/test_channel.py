"""The communication channel: settings, the compiled kernel against the numpy reference, and the
engine integration (spaces, actions, observations) for any scenario."""
import numpy as np
import pytest

from entropy_engine.config import ConfigError, build_config
from entropy_engine.scenarios import SCENARIOS, scenario_class
from entropy_engine.training.config import TrainConfig


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_channel_settings_on_every_scenario(scenario):
    cfg = build_config(scenario_class(scenario).Config,
                       {"comm_dim": "4", "comm_range": "2.5", "comm_combine": "nearest", "comm_k": "3",
                        "comm_noise": "0.1", "comm_dropout": "0.2", "comm_delay": "2", "comm_occlusion": "true"})
    assert (cfg.comm_dim, cfg.comm_range, cfg.comm_combine, cfg.comm_k) == (4, 2.5, "nearest", 3)
    assert (cfg.comm_noise, cfg.comm_dropout, cfg.comm_delay, cfg.comm_occlusion) == (0.1, 0.2, 2, True)
    assert cfg.comm_obs_width == 3 * (4 + 3) + 1
    # off by default, except where the task needs it (rendezvous: one robot sees the goal)
    assert build_config(scenario_class(scenario).Config, {}).comm_dim == (3 if scenario == "rendezvous" else 0)
    assert build_config(scenario_class(scenario).Config, {"comm_dim": 5, "comm_combine": "mean"}).comm_obs_width == 6   # C + count


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


# ----------------------------------------------------------------------------- the episode engine
from entropy_engine import BatchEnv  # noqa: E402

COMM = dict(comm_dim=4, comm_range=3.0)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_spaces_gain_the_channel_for_every_scenario(scenario):
    plain = BatchEnv(scenario, num_worlds=2, n_agents=6, seed=0, comm_dim=0)
    env = BatchEnv(scenario, num_worlds=2, n_agents=6, seed=0, comm_combine="mean", **COMM)
    assert env.act_dim == plain.act_dim + 4 and env.obs_dim == plain.obs_dim + 5
    assert env.action_space.shape == (env.act_dim,) and env.observation_space.shape == (env.obs_dim,)
    np.testing.assert_array_equal(env.action_space.low[plain.act_dim:], -1.0)
    np.testing.assert_array_equal(env.action_space.high[plain.act_dim:], 1.0)
    np.testing.assert_array_equal(env.observation_space.low[:plain.obs_dim], plain.observation_space.low)
    obs = env.reset()
    assert obs.shape == (12, env.obs_dim) and not obs[:, plain.obs_dim:].any()   # nothing heard yet
    heur = env.heuristic_actions()                    # scenario heuristics still work: zero messages,
    assert heur.shape == (12, env.act_dim)            # unless the heuristic talks (rendezvous)
    assert env.scenario.heuristic_uses_channel or not heur[:, plain.act_dim:].any()
    for _ in range(5):
        obs, *_ = env.step(env.heuristic_actions())
        assert env.observation_space.contains(obs[0])


def test_channel_leaves_the_scenario_untouched_and_delivers_messages():
    """The same wheel actions give the same scenario observations with the channel on (it draws from
    its own streams), and the received block is what the channel computes from the messages sent."""
    kw = dict(num_worlds=3, n_agents=8, seed=4, max_steps=30)
    plain = BatchEnv(**kw)
    env = BatchEnv(comm_combine="max", **kw, **COMM)
    np.testing.assert_array_equal(env.reset()[:, :plain.obs_dim], plain.reset())
    rng = np.random.default_rng(0)
    for t in range(70):      # crosses respawns and world resets
        wheels = rng.uniform(-1, 1, (24, 2)).astype(np.float32)
        msgs = rng.uniform(-1.5, 1.5, (24, 4)).astype(np.float32)    # out of range: clipped
        a = plain.step(wheels)
        b = env.step(np.concatenate([wheels, msgs], 1))
        np.testing.assert_array_equal(b[0][:, :plain.obs_dim], a[0])
        for x, y in zip(a[1:4], b[1:4]):
            np.testing.assert_array_equal(x, y)
        heard = b[0][:, plain.obs_dim:plain.obs_dim + 4]
        assert heard.min() >= -1 and heard.max() <= 1
        if t == 3:   # no episode has ended yet: the block is the maximum over senders within 3 m
            pos = env.scenario.world.pos.reshape(24, 2)
            w = np.repeat(np.arange(3), 8)
            near = (np.linalg.norm(pos[:, None] - pos[None], axis=-1) <= 3.0) & (w[:, None] == w[None])
            np.fill_diagonal(near, False)
            clipped = np.clip(msgs, -1, 1)
            for i in range(24):
                expect = clipped[near[i]].max(0) if near[i].any() else np.zeros(4)
                np.testing.assert_array_equal(heard[i], expect.astype(np.float32))
            assert near.any()


def test_respawn_and_reset_clear_the_received_block():
    env = BatchEnv(num_worlds=2, n_agents=6, seed=1, max_steps=5, **COMM)
    env.reset()
    for _ in range(5):
        obs, _, term, trunc, info = env.step(np.ones((12, 6)) * 0.5)
    assert trunc.all() and info["world_done"].all()
    assert not obs[:, -5:].any()                               # new episodes: nothing heard yet
    assert info["terminal_obs"][:, -1].any()                   # the last step of the old ones had


def test_bad_messages_are_refused_and_change_nothing():
    env = BatchEnv(num_worlds=2, n_agents=3, seed=0, **COMM)
    env.reset()
    before = env.obs.copy()
    bad = np.zeros((6, 6), np.float32)
    bad[2, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(bad)
    bad[2, 4] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(bad)
    with pytest.raises(ValueError, match=r"shape \(6, 6\)"):    # the width names the channel's values
        env.step(np.zeros((6, 2), np.float32))
    np.testing.assert_array_equal(env.obs, before)
    assert env.t[0] == 0


def test_pettingzoo_api_with_the_channel():
    from pettingzoo.test import parallel_api_test

    import entropy_engine as ee

    env = ee.parallel_env(n_agents=5, seed=1, max_steps=60, comm_dim=3, comm_combine="nearest", comm_k=2,
                          comm_noise=0.1, comm_dropout=0.2, comm_delay=1, comm_occlusion=True)
    assert env.action_space("robot_0").shape == (5,) and env.observation_space("robot_0").shape == (36 + 2 * 6 + 1,)
    parallel_api_test(env, num_cycles=200)


def test_vec_env_shapes_with_the_channel():
    import entropy_engine as ee

    venv = ee.vec_env(num_worlds=2, n_agents=4, seed=0, comm_dim=8)
    assert venv.observation_space.shape == (36 + 9,) and venv.action_space.shape == (10,)
    obs = venv.reset()
    assert obs.shape == (8, 45)
    obs, reward, done, infos = venv.step(np.zeros((8, 10), np.float32))
    assert obs.shape == (8, 45) and reward.shape == (8,)
    venv.close()


def test_worker_processes_match_batchenv_with_the_channel():
    from entropy_engine.envs.shm import ShmBatchEnv

    kw = dict(num_worlds=3, n_agents=4, seed=2, max_steps=15, comm_dim=2, comm_noise=0.3, comm_dropout=0.3,
              comm_combine="nearest", comm_k=2, comm_delay=1)
    ref = BatchEnv(**kw)
    with ShmBatchEnv(workers=2, **kw) as env:
        assert (env.obs_dim, env.act_dim) == (ref.obs_dim, ref.act_dim) == (36 + 2 * 5 + 1, 4)
        assert env.observation_space == ref.observation_space and env.action_space == ref.action_space
        np.testing.assert_array_equal(env.reset(), ref.reset())
        rng = np.random.default_rng(0)
        for _ in range(35):
            act = rng.uniform(-1, 1, (12, 4))
            for x, y in zip(env.step(act)[:4], ref.step(act)[:4]):
                np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(env.heuristic_actions(), ref.heuristic_actions())
        assert env.obs[:, -1].any()


def test_native_trainer_learns_with_the_channel():
    import torch

    from entropy_engine.training.config import resolve_config
    from entropy_engine.training.native import NativeTrainer

    cfg = resolve_config("default", overrides=dict(
        num_worlds=2, n_agents=4, n_steps=16, seq_len=8, batch_size=64, n_epochs=1, total_steps=256,
        lstm_hidden_size=16, encoder_size=16, net_arch=16, checkpoint_every=0, tensorboard=False,
        env={"comm_dim": 4}))
    tr = NativeTrainer(cfg, log=lambda step, metrics: None)
    try:
        assert tr.env.obs_dim == 36 + 5 and tr.env.act_dim == 6
        before = [p.detach().clone() for p in tr.model.parameters()]
        tr.learn()
        assert tr.num_timesteps == 256
        assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    finally:
        tr.close()


def test_entropy_eval_of_the_heuristic_with_the_channel():
    """``entropy eval heuristic --env comm_dim=4``: the scripted policy drives, sending zero messages."""
    from entropy_engine.training.evaluate import evaluate

    plain = evaluate("heuristic", episodes=6, cfg=TrainConfig(n_agents=3, max_episode_steps=150))
    comm = evaluate("heuristic", episodes=6, cfg=TrainConfig(n_agents=3, max_episode_steps=150,
                                                             env={"comm_dim": 4, "comm_combine": "nearest"}))
    assert comm["success_rate"] == plain["success_rate"] > 0     # the channel changes nothing it does


# ----------------------------------------------------------------------------- discrete messages (tokens)
def test_vocab_settings():
    cfg = ChannelConfig(comm_dim=2, comm_vocab=5)
    assert cfg.comm_values == 10 and cfg.comm_obs_width == 11
    assert ChannelConfig(comm_dim=2, comm_vocab=5, comm_combine="nearest", comm_k=3).comm_obs_width == 3 * 13 + 1
    for bad in (1, -2):
        with pytest.raises(ConfigError, match="comm_vocab must be 0 .* or a vocabulary of >= 2 tokens"):
            build_config(scenario_class("navigation").Config, {"comm_dim": 2, "comm_vocab": bad})
    with pytest.raises(ConfigError, match="comm_vocab.*integer"):
        build_config(scenario_class("navigation").Config, {"comm_dim": 2, "comm_vocab": 2.5})
    with pytest.raises(ConfigError, match="comm_vocab=4 needs a channel .* comm_dim >= 1"):
        build_config(scenario_class("navigation").Config, {"comm_vocab": 4})


TOKEN_CASES = {
    "mean": dict(comm_combine="mean"),
    "max": dict(comm_combine="max"),
    "nearest": dict(comm_combine="nearest", comm_k=3),
    "everything": dict(comm_combine="nearest", comm_k=2, comm_noise=0.2, comm_dropout=0.3, comm_delay=1,
                       comm_occlusion=True, comm_range=4.0),
    "noise_dropout_mean": dict(comm_noise=0.1, comm_dropout=0.2, comm_delay=2),
}


@pytest.mark.parametrize("case", sorted(TOKEN_CASES))
def test_token_channel_matches_reference(case):
    """Discrete messages: the kernel (one-hots written into its ring) agrees with the reference (its
    own one-hot loop, then the plain channel)."""
    cfg = ChannelConfig(comm_dim=2, comm_vocab=4, **TOKEN_CASES[case])
    E, N, arena = 3, 30, 8.0
    w = _world(E, N, arena, 5, n_walls=4)
    ch = Channel(w, cfg, seed=5)
    ref = ChannelReference(cfg, E, N)
    rng = np.random.default_rng(9)
    heard_any = False
    for t in range(4):
        tokens = rng.integers(0, 4, (E, N, 2)).astype(np.float32)
        out = ch.step(tokens)
        np.testing.assert_allclose(out, ref.step(ch.keys, tokens, w), atol=2e-6, rtol=0, err_msg=f"step {t}")
        heard_any |= bool(out[..., -1].any())
        w.pos[:] = np.clip(w.pos + rng.normal(0, 0.3, w.pos.shape), 0.2, arena - 0.2).astype(np.float32)
    assert out.shape == (E, N, cfg.comm_obs_width) and heard_any


def test_tokens_mean_is_a_histogram_and_max_is_any_heard():
    """Three robots in range of robot 0 send tokens (channel 0: 1, 1, 2; channel 1: 0, 0, 0)."""
    w = World(WorldConfig(arena_size=10.0), 1, 4, max_walls=1)
    w.pos[0] = [[5.0, 5.0], [6.0, 5.0], [5.0, 6.0], [4.0, 5.0]]
    w.active[:] = True
    tokens = np.array([[[0, 2], [1, 0], [1, 0], [2, 0]]], np.float32)
    mean = Channel(w, ChannelConfig(comm_dim=2, comm_vocab=3, comm_range=1.5), seed=0).step(tokens)[0, 0]
    np.testing.assert_allclose(mean, [0, 2 / 3, 1 / 3, 1, 0, 0, 3 / 4], rtol=1e-6)
    mx = Channel(w, ChannelConfig(comm_dim=2, comm_vocab=3, comm_range=1.5, comm_combine="max"), seed=0).step(tokens)
    np.testing.assert_array_equal(mx[0, 0], np.array([0, 1, 1, 1, 0, 0, 3 / 4], np.float32))
    near = Channel(w, ChannelConfig(comm_dim=2, comm_vocab=3, comm_range=1.5, comm_combine="nearest", comm_k=1),
                   seed=0).step(tokens)[0, 0]    # three at 1 m: the lowest index (robot 1) first
    np.testing.assert_allclose(near, [0, 1, 0, 1, 0, 0, 1 / 1.5, 0.0, 1.0, 1.0], atol=1e-6)


TOKENS = dict(comm_dim=2, comm_vocab=3)


def test_token_spaces_and_bad_tokens_are_refused_and_change_nothing():
    from gymnasium import spaces

    env = BatchEnv(num_worlds=2, n_agents=3, seed=0, **TOKENS)
    assert env.act_dim == 4 and env.obs_dim == 36 + 2 * 3 + 1 and env.tokens == (2, 3)
    np.testing.assert_array_equal(env.action_space.low[2:], 0)
    np.testing.assert_array_equal(env.action_space.high[2:], 2)
    assert isinstance(env.agent_action_space, spaces.Dict)
    assert env.agent_action_space["message"] == spaces.MultiDiscrete([3, 3])
    assert env.agent_action_space["move"].shape == (2,)
    obs = env.reset()
    before = obs.copy()
    good = np.zeros((6, 4), np.float32)
    for value, at in ((3, 3), (-1, 2), (0.5, 3), (2.0001, 2)):
        bad = good.copy()
        bad[4, at] = value
        with pytest.raises(ValueError, match=r"message tokens \(action columns 2..3\) must be whole numbers in "
                                             r"\[0, 2\] \(comm_vocab=3\)"):
            env.step(bad)
    np.testing.assert_array_equal(env.obs, before)
    assert env.t[0] == 0
    good[:, 2:] = [2, 1]
    obs, *_ = env.step(good)            # every robot sends (2, 1): max = the one-hots of 2 and 1
    heard = obs[:, 36:42][obs[:, -1] > 0]
    assert len(heard) and (heard == np.array([0, 0, 1, 0, 1, 0], np.float32)).all()


def test_pettingzoo_api_with_tokens():
    from pettingzoo.test import parallel_api_test

    import entropy_engine as ee

    env = ee.parallel_env(n_agents=5, seed=1, max_steps=60, comm_dim=2, comm_vocab=4, comm_combine="max",
                          comm_dropout=0.2)
    space = env.action_space("robot_0")
    assert space["message"].nvec.tolist() == [4, 4] and space["move"].shape == (2,)
    parallel_api_test(env, num_cycles=200)
    env.reset(seed=0)
    obs, *_ = env.step({a: {"move": [0.0, 0.0], "message": [3, 1]} for a in env.agents})
    heard = [o for o in obs.values() if o[-1] > 0]
    assert heard and all((o[36:44] == [0, 0, 0, 1, 0, 1, 0, 0]).all() for o in heard)
    with pytest.raises(ValueError, match=r"whole numbers in \[0, 3\]"):
        env.step({a: {"move": [0.0, 0.0], "message": [4, 0]} for a in env.agents})
    with pytest.raises(ValueError, match="keys 'move' and 'message'"):
        env.step({a: {"move": [0.0, 0.0]} for a in env.agents})


def test_random_policy_draws_tokens():
    from entropy_engine.policies import RandomPolicy

    env = BatchEnv(num_worlds=2, n_agents=3, seed=0, **TOKENS)
    act, _ = RandomPolicy(env.agent_action_space, 0).act(env.reset())
    assert act.shape == (6, 4) and set(np.unique(act[:, 2:])) <= {0.0, 1.0, 2.0}
    env.step(act)


def test_sb3_path_refuses_tokens_clearly():
    import entropy_engine as ee
    from entropy_engine.training.sb3_trainer import make_env

    with pytest.raises(ValueError, match=r"continuous messages only \(comm_vocab=0\), got comm_vocab=3"):
        ee.vec_env(num_worlds=1, n_agents=2, **TOKENS)
    with pytest.raises(ConfigError, match="native trainer"):
        make_env(TrainConfig(algo="sb3", env={"comm_dim": "2", "comm_vocab": "3"}))


def test_worker_processes_match_batchenv_with_tokens():
    from entropy_engine.envs.shm import ShmBatchEnv

    kw = dict(num_worlds=2, n_agents=4, seed=2, max_steps=15, comm_noise=0.1, **TOKENS)
    ref = BatchEnv(**kw)
    with ShmBatchEnv(workers=2, **kw) as env:
        assert env.tokens == ref.tokens and env.agent_action_space == ref.agent_action_space
        np.testing.assert_array_equal(env.reset(), ref.reset())
        rng = np.random.default_rng(0)
        for _ in range(20):
            act = np.concatenate([rng.uniform(-1, 1, (8, 2)), rng.integers(0, 3, (8, 2))], 1)
            for x, y in zip(env.step(act)[:4], ref.step(act)[:4]):
                np.testing.assert_array_equal(x, y)
        with pytest.raises(ValueError, match="must be whole numbers"):
            env.step(np.full((8, 4), 0.5))


@pytest.mark.parametrize("case", ["nearest", "everything", "noise"])
def test_silent_robots_send_nothing_and_talkers_match_the_reference(case):
    """``talkers=n``: the world's last robots (a scenario's scripted ones) move through the grid but
    have no radio. The talkers receive what the reference gives when the silent robots' messages are
    never valid (same world, same per-link random draws)."""
    from types import SimpleNamespace
    cfg = ChannelConfig(comm_dim=3, **CASES[case])
    E, N, n, arena = 3, 30, 20, 8.0
    w = _world(E, N, arena, seed=4)
    ch = Channel(w, cfg, seed=4, talkers=n)
    ref = ChannelReference(cfg, E, N)
    rng = np.random.default_rng(7)
    heard_silent = False
    for t in range(4):
        msgs = rng.uniform(-1, 1, (E, n, cfg.comm_dim)).astype(np.float32)
        out = ch.step(msgs)
        padded = np.concatenate([msgs, np.zeros((E, N - n, cfg.comm_dim), np.float32)], axis=1)
        view = SimpleNamespace(num_worlds=E, pos=w.pos, theta=w.theta, active=w.active & ch.senders,
                               walls=w.walls, n_walls=w.n_walls)
        expect = ref.step(ch.keys, padded, view)
        np.testing.assert_allclose(out[:, :n], expect[:, :n], atol=2e-6, rtol=0, err_msg=f"step {t}")
        # the silent robots were in range of talkers: leaving them out changed what was heard
        full = ChannelReference(cfg, E, N).step(ch.keys, padded, w) if cfg.comm_delay == 0 else None
        if full is not None and not np.allclose(full[:, :n], expect[:, :n]):
            heard_silent = True
        w.pos[:] = np.clip(w.pos + rng.normal(0, 0.3, w.pos.shape), 0.2, arena - 0.2).astype(np.float32)
        w.active[:] = rng.random(w.active.shape) >= 0.1
    assert out[:, :n, -1].any()
    assert heard_silent or cfg.comm_delay > 0
    with pytest.raises(ValueError, match="talkers must be between 1"):
        Channel(w, cfg, talkers=N + 1)
