"""Discrete messages in the native trainer (the categorical head beside the Gaussian, model files,
resume, eval, play) and the renderer's view of the channel (who hears whom, message colours)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")   # before pygame is first imported: no display needed

from entropy_engine.training.network import (ActorCritic, PolicySpec, action_entropy, action_log_prob,  # noqa: E402
                                             env_actions, sample_actions)

SPEC = PolicySpec(obs_dim=7, act_dim=5, lstm_hidden_size=8, net_arch=16, log_std_init=-0.3, comm_vocab=4,
                  comm_tokens=3)   # 2 wheels (Gaussian), 3 channels of 4 tokens


def _pi(batch=(6,), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*batch, SPEC.head_dim, generator=g), torch.tensor([-0.3, 0.4])


# ----------------------------------------------------------------------------- the two heads
def test_head_widths():
    model = ActorCritic(SPEC)
    assert SPEC.n_continuous == 2 and SPEC.head_dim == 2 + 3 * 4
    assert model.mu.out_features == 14 and model.log_std.shape == (2,)
    plain = ActorCritic(PolicySpec(7, 2, 8, net_arch=16))
    assert plain.mu.out_features == 2 and plain.spec.head_dim == 2       # without tokens: as before
    for bad in (dict(comm_vocab=4), dict(comm_tokens=2), dict(comm_vocab=1, comm_tokens=2),
                dict(comm_vocab=3, comm_tokens=5)):
        with pytest.raises(ValueError, match="comm_vocab"):
            PolicySpec(7, 5, **bad)


def test_log_prob_and_entropy_match_torch_distributions():
    """The combined distribution (diagonal Gaussian x one categorical per channel) against
    torch.distributions, written the slow obvious way."""
    pi, log_std = _pi((4, 6))
    actions = sample_actions(pi, log_std, SPEC, torch.Generator().manual_seed(1))
    mean, logits = pi[..., :2], pi[..., 2:].reshape(4, 6, 3, 4)
    normal = torch.distributions.Normal(mean, log_std.exp())
    expect_logp = normal.log_prob(actions[..., :2]).sum(-1)
    expect_ent = normal.entropy().sum(-1)
    for c in range(3):
        cat = torch.distributions.Categorical(logits=logits[..., c, :])
        expect_logp = expect_logp + cat.log_prob(actions[..., 2 + c].long())
        expect_ent = expect_ent + cat.entropy()
    torch.testing.assert_close(action_log_prob(actions, pi, log_std, SPEC), expect_logp)
    torch.testing.assert_close(action_entropy(pi, log_std, SPEC), expect_ent)


def test_sampled_tokens_follow_the_softmax():
    pi = torch.zeros(20000, SPEC.head_dim)
    pi[:, 2:6] = torch.tensor([2.0, 0.0, -1.0, 1.0])          # channel 0's logits; the others uniform
    a = sample_actions(pi, torch.zeros(2), SPEC, torch.Generator().manual_seed(3))
    tokens = a[:, 2:]
    assert torch.equal(tokens, tokens.round()) and tokens.min() >= 0 and tokens.max() <= 3
    freq = torch.bincount(tokens[:, 0].long(), minlength=4).float() / len(a)
    torch.testing.assert_close(freq, torch.softmax(pi[0, 2:6], -1), atol=0.015, rtol=0)
    freq1 = torch.bincount(tokens[:, 1].long(), minlength=4).float() / len(a)
    torch.testing.assert_close(freq1, torch.full((4,), 0.25), atol=0.015, rtol=0)
    det = sample_actions(pi[:3], torch.zeros(2), SPEC, deterministic=True)
    assert det[:, 2].tolist() == [0.0, 0.0, 0.0] and torch.equal(det[:, :2], pi[:3, :2])
    sent = env_actions(torch.tensor([[3.0, -2.0, 3.0, 1.0, 0.0]]), SPEC)
    assert sent.tolist() == [[1.0, -1.0, 3.0, 1.0, 0.0]]      # wheels clipped, tokens untouched


# ----------------------------------------------------------------------------- the native trainer
def _cfg(**over):
    from entropy_engine.training.config import resolve_config

    kw = dict(num_worlds=2, n_agents=4, n_steps=16, seq_len=8, batch_size=64, n_epochs=2, total_steps=256,
              lstm_hidden_size=16, encoder_size=16, net_arch=16, checkpoint_every=0, tensorboard=False,
              env={"comm_dim": 2, "comm_vocab": 3, "comm_combine": "mean"})
    kw.update(over)
    return resolve_config("default", overrides=kw)


def test_trainer_rollout_log_probs_replay_and_update_the_token_head():
    """The log-probabilities stored in a rollout are those of the combined distribution recomputed
    over the stored sequences (what the PPO ratio starts from), tokens are whole numbers, and an
    update moves the token logits."""
    from entropy_engine.training.native import NativeTrainer

    tr = NativeTrainer(_cfg(), log=lambda s, m: None)
    try:
        assert tr.model.spec.comm_vocab == 3 and tr.model.spec.comm_tokens == 2 and tr.env.act_dim == 4
        tr.collect()
        buf = tr.buffer
        tok = buf.actions[..., 2:]
        assert torch.equal(tok, tok.round()) and tok.min() >= 0 and tok.max() <= 2 and len(tok.unique()) == 3
        d = buf.sequences()
        with torch.no_grad():
            pi, _ = tr.model.sequence(d["obs"], d["states"], d["starts"], d.get("prev_obs"))
        m = d["mask"] > 0
        torch.testing.assert_close(action_log_prob(d["actions"], pi, tr.model.log_std, tr.model.spec)[m],
                                   d["logp"][m], atol=1e-4, rtol=0)
        before = tr.model.mu.weight.detach().clone()
        metrics = tr.train_iteration()      # a rollout, advantages and one PPO update
        assert np.isfinite(metrics["train/entropy_loss"]) and metrics["train/entropy_loss"] < -2 * np.log(3) + 0.5
        assert not torch.equal(before[2:], tr.model.mu.weight[2:])       # the logit rows learned
    finally:
        tr.close()


def test_checkpoint_of_a_token_policy_resumes(tmp_path):
    from entropy_engine.training.checkpoint import load_torch_checkpoint, save_torch_checkpoint
    from entropy_engine.training.native import NativeTrainer

    a = NativeTrainer(_cfg(), log=lambda s, m: None)
    try:
        a.learn(128)
        path = save_torch_checkpoint(tmp_path / "checkpoint.zip", a.state_dict())
    finally:
        a.close()
    b = NativeTrainer(_cfg(), log=lambda s, m: None)
    try:
        b.load_state_dict(load_torch_checkpoint(path))
        assert b.num_timesteps == 128
        for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
            assert torch.equal(v, w), k
        b.learn(256)
        assert b.num_timesteps == 256 and b.n_updates == 2          # one rollout of 16 x 8 slots each
        assert not torch.equal(a.model.mu.weight, b.model.mu.weight)
    finally:
        b.close()


def test_train_save_load_eval_play_with_tokens(tmp_path, capsys):
    """`entropy train` with discrete messages, then `load_policy`, `entropy eval` and `entropy play --comm`."""
    import entropy_engine
    from entropy_engine.cli import main
    from entropy_engine.render.gif import read_gif
    from entropy_engine.training.model_file import load_model

    out = tmp_path / "run"
    tiny = ["--num-worlds", "2", "--n-agents", "4", "--n-steps", "16", "--seq-len", "8", "--batch-size", "64",
            "--n-epochs", "2", "--lstm-hidden-size", "16", "--net-arch", "16", "--max-episode-steps", "30",
            "--tensorboard", "false", "--videos", "false", "--console", "plain"]
    assert main(["train", "--out", str(out), "--total-steps", "256", "--env", "comm_dim=2", "--env", "comm_vocab=3",
                 *tiny]) == 0
    model, config = load_model(out / "models" / "model.pt")
    assert (model.spec.comm_vocab, model.spec.comm_tokens) == (3, 2)          # the file records the vocabulary
    assert config["env"]["comm_vocab"] == 3
    policy = entropy_engine.load_policy(out)
    obs = np.random.default_rng(0).normal(size=(5, policy.obs_dim)).astype(np.float32)
    for det in (True, False):
        act, _ = policy.act(obs, policy.initial_state(5), deterministic=det)
        assert act.shape == (5, 4) and np.all(np.abs(act[:, :2]) <= 1)
        assert set(np.unique(act[:, 2:])) <= {0.0, 1.0, 2.0}
    env = entropy_engine.parallel_env(n_agents=4, seed=0, comm_dim=2, comm_vocab=3)   # PettingZoo, decentralised
    o, _ = env.reset(seed=0)
    a, _ = policy.act(np.stack([o[k] for k in env.agents]), policy.initial_state(4))
    env.step({k: {"move": a[i, :2], "message": a[i, 2:].astype(int)} for i, k in enumerate(env.agents)})
    js = tmp_path / "eval.json"
    assert main(["eval", str(out), "--episodes", "2", "--num-worlds", "2", "--json", str(js)]) == 0
    assert json.loads(js.read_text())["agent_episodes"] == 8
    pytest.importorskip("pygame")
    gif = tmp_path / "radio.gif"
    assert main(["play", str(out), "--gif", str(gif), "--comm", "--max-steps", "6", "--size", "96"]) == 0
    assert read_gif(gif).shape[1:] == (96, 96, 3)
    with pytest.raises(SystemExit, match="--comm shows the communication channel, and this run has none"):
        main(["play", "--heuristic", "--gif", str(tmp_path / "x.gif"), "--comm", "--max-steps", "3"])


# ----------------------------------------------------------------------------- the renderer
def test_comm_links_match_the_reference():
    from entropy_engine.core.channel_config import ChannelConfig
    from entropy_engine.core.channel_reference import links_reference
    from entropy_engine.render.renderer import comm_links

    rng = np.random.default_rng(0)
    for trial in range(20):
        pos = rng.uniform(0, 8, (25, 2)).astype(np.float32)
        active = rng.random(25) > 0.15
        walls = rng.uniform(0, 8, (5, 4)).astype(np.float32)
        for occlusion in (False, True):
            cfg = ChannelConfig(comm_dim=1, comm_range=float(rng.uniform(1, 5)), comm_occlusion=occlusion)
            got = {tuple(p) for p in comm_links(pos, active, walls, cfg.comm_range, occlusion).tolist()}
            assert got == links_reference(pos, active, walls, cfg), (trial, occlusion)
    assert links_reference(pos, active, walls, ChannelConfig(comm_dim=1, comm_range=5.0, comm_occlusion=True)) != \
        links_reference(pos, active, walls, ChannelConfig(comm_dim=1, comm_range=5.0))   # walls cut some


@pytest.mark.parametrize("vocab", [0, 3])
def test_renderer_draws_who_hears_whom_and_the_messages(vocab):
    pytest.importorskip("pygame")
    from entropy_engine.core.channel_reference import links_reference
    from entropy_engine.render import renderer as rmod
    from entropy_engine.render.episode import episode_env

    env = episode_env("navigation", 8, seed=2, max_steps=40, n_obstacles=3, comm_dim=2, comm_range=4.0,
                      comm_occlusion=True, comm_vocab=vocab)
    cfg = env.scenario.config
    env.reset()
    r = rmod.Renderer(env, size=256, show_comm=True)
    first = r.render()
    assert not r.last_messages()[1].any()            # nothing sent yet: no message dots
    rng = np.random.default_rng(1)
    for _ in range(3):
        msg = rng.integers(0, 3, (8, 2)) if vocab else rng.uniform(-1, 1, (8, 2))
        env.step(np.concatenate([rng.uniform(-1, 1, (8, 2)), msg], 1).astype(np.float32))
    frame = r.render()
    w = env.scenario.world
    expect = links_reference(w.pos[0], w.active[0], w.walls[0, :w.n_walls[0]], cfg)
    assert {tuple(p) for p in r.links.tolist()} == expect and expect
    sent, ok = r.last_messages()
    np.testing.assert_array_equal(sent, msg[:, 0].astype(np.float32))
    assert ok.all()
    for i in np.flatnonzero(w.active[0]):            # the dot at each centre has its message's colour
        col, row = r.world_to_pixel(w.pos[0, i])
        assert tuple(int(v) for v in frame[row, col]) == rmod.message_color(msg[i, 0], vocab)
    link_px = np.all(frame == np.array(rmod.LINK_COLOR, np.uint8), axis=-1).sum()
    assert link_px > 20
    plain = rmod.Renderer(env, size=256).render()     # off by default: no links, no dots
    assert not np.all(plain == np.array(rmod.LINK_COLOR, np.uint8), axis=-1).any()
    assert first.shape == frame.shape
    with pytest.raises(ValueError, match="show_comm needs an env with a communication channel"):
        rmod.Renderer(episode_env("navigation", 3, seed=0), show_comm=True)


# ----------------------------------------------------------------------------- resume
def _trainer(env):
    from entropy_engine.training.config import resolve_config
    from entropy_engine.training.native import NativeTrainer

    return NativeTrainer(resolve_config("default", overrides=dict(
        num_worlds=4, n_agents=4, n_steps=16, seq_len=8, batch_size=64, n_epochs=1, lstm_hidden_size=16,
        encoder_size=16, net_arch=16, max_episode_steps=40, checkpoint_every=0, tensorboard=False, videos=False,
        threads=1, torch_threads=1, total_steps=100_000, env=env)))


def test_resume_continues_the_channel_streams_too(tmp_path):
    """With channel noise and loss the checkpoint holds the channel's per-world streams after the
    scenario's: two trainers restored from one file continue identically (before, the channel's draws
    restarted from the seed in one and continued in the other)."""
    from entropy_engine.training.checkpoint import load_torch_checkpoint, save_torch_checkpoint

    env = dict(comm_dim=2, comm_noise=0.3, comm_dropout=0.3)
    a = _trainer(env)
    for _ in range(3):
        a.train_iteration()
    state = a.state_dict()
    E = a.env.num_worlds
    assert tuple(state["env_rng"].shape) == (2 * E,)
    assert np.array_equal(state["env_rng"].numpy()[E:].view(np.uint64), a.env.channel.channel.rng)
    path = save_torch_checkpoint(tmp_path / "checkpoint.zip", state)
    b = _trainer(env)
    b.load_state_dict(load_torch_checkpoint(path))
    a.load_state_dict(load_torch_checkpoint(path))
    assert np.array_equal(a.env.rng_state(), b.env.rng_state())
    for _ in range(2):
        a.train_iteration()
        b.train_iteration()
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    with pytest.raises(ValueError, match=r"shape \(8,\) expected"):
        a.env.set_rng_state(np.zeros(3, np.uint64))
    a.close()
    b.close()
