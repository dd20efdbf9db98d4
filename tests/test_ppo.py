"""PPO pieces against hand-computed values, and exact LSTM state resets at episode starts."""
from __future__ import annotations

import math

import pytest
import torch

from entropy_engine.training.config import build_config, TrainConfig
from entropy_engine.training.policy import ActorCritic, PolicySpec, gaussian_log_prob, lstm_sequence
from entropy_engine.training.ppo import compute_gae, ppo_loss
from entropy_engine.training.rollout import RolloutBuffer


def test_gae_hand_computed():
    g, lam = 0.9, 0.8
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])   # the episode ends at t = 1
    last_value = torch.tensor([2.0])
    adv, ret = compute_gae(rewards, values, dones, last_value, g, lam)
    d2 = 3.0 + g * 2.0 - 1.5                     # 3.3
    d1 = 2.0 - 1.0                               # terminal: no bootstrap, 1.0
    d0 = 1.0 + g * 1.0 - 0.5                     # 1.4
    a2, a1 = d2, d1                              # nothing flows back across the episode end
    a0 = d0 + g * lam * a1                       # 1.4 + 0.72
    assert adv[:, 0].tolist() == pytest.approx([a0, a1, a2])
    assert ret[:, 0].tolist() == pytest.approx([a0 + 0.5, a1 + 1.0, a2 + 1.5])


def test_gae_matches_reference_loop():
    torch.manual_seed(0)
    T, S = 7, 5
    r, v, lv = torch.randn(T, S), torch.randn(T, S), torch.randn(S)
    d = (torch.rand(T, S) < 0.3).float()
    adv, _ = compute_gae(r, v, d, lv, 0.99, 0.95)
    for s in range(S):
        a = 0.0
        for t in reversed(range(T)):
            nv = lv[s] if t == T - 1 else v[t + 1, s]
            nt = 1 - d[t, s]
            delta = r[t, s] + 0.99 * nv * nt - v[t, s]
            a = delta + 0.99 * 0.95 * nt * a
            assert float(adv[t, s]) == pytest.approx(float(a), abs=1e-5)


def test_clipped_loss_hand_computed():
    old = torch.zeros(4)
    new = torch.log(torch.tensor([1.5, 0.5, 1.1, 0.9]))    # ratios
    adv = torch.tensor([1.0, 1.0, -1.0, -2.0])
    # per sample min(r A, clip(r) A): 1.2, 0.5, -1.1, -1.8
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    old_v = torch.tensor([0.0, 2.0, 2.0, 4.5])
    ret = torch.tensor([1.5, 2.0, 2.0, 4.0])
    ent = torch.full((4,), 2.0)
    loss, parts = ppo_loss(new, old, adv, values, old_v, ret, ent, clip_range=0.2, ent_coef=0.1, vf_coef=0.5)
    pg = -(1.2 + 0.5 - 1.1 - 1.8) / 4
    vl = (0.25 + 0 + 1.0 + 0) / 4
    assert float(parts["policy_gradient_loss"]) == pytest.approx(pg)
    assert float(parts["value_loss"]) == pytest.approx(vl)
    assert float(parts["entropy_loss"]) == pytest.approx(-2.0)
    assert float(loss) == pytest.approx(pg + 0.1 * -2.0 + 0.5 * vl)
    assert float(parts["clip_fraction"]) == pytest.approx(0.5)     # |r - 1| > 0.2 for 1.5 and 0.5
    r = torch.tensor([1.5, 0.5, 1.1, 0.9])
    assert float(parts["approx_kl"]) == pytest.approx(float(((r - 1) - torch.log(r)).mean()), rel=1e-5)
    # value clipping: old + clip(v - old, +-0.5)
    _, parts = ppo_loss(new, old, adv, values, old_v, ret, ent, clip_range=0.2, clip_range_vf=0.5)
    clipped = torch.tensor([0.5, 2.0, 2.5, 4.0])
    assert float(parts["value_loss"]) == pytest.approx(float(((ret - clipped) ** 2).mean()))


def test_gaussian_log_prob():
    a, m, ls = torch.tensor([[0.3, -0.2]]), torch.tensor([[0.1, 0.1]]), torch.tensor([0.0, math.log(0.5)])
    dist = torch.distributions.Normal(m, torch.exp(ls))
    assert float(gaussian_log_prob(a, m, ls)) == pytest.approx(float(dist.log_prob(a).sum()), rel=1e-6)


@pytest.mark.parametrize("shared", [True, False])
def test_lstm_state_resets_exactly_at_episode_starts(shared):
    """Outputs after an episode start must not depend on anything before it."""
    torch.manual_seed(0)
    model = ActorCritic(PolicySpec(36, 2, 8, shared, 16, 0))
    T, B = 10, 3
    obs = torch.randn(T, B, 36)
    starts = torch.zeros(T, B)
    starts[4, 0] = 1                     # row 0: a new episode at t = 4
    state = torch.randn(model.n_lstm, 2, B, 8)
    with torch.no_grad():
        mean, value = model.sequence(obs, state, starts)
        # change everything before the start (state and observations): outputs from t = 4 equal
        obs2 = obs.clone()
        obs2[:4, 0] = torch.randn(4, 36)
        mean2, value2 = model.sequence(obs2, torch.randn_like(state), starts)
        assert torch.allclose(mean[4:, 0], mean2[4:, 0], atol=1e-6)
        assert torch.allclose(value[4:, 0], value2[4:, 0], atol=1e-6)
        # and equal to a fresh sequence started from zeros at t = 4
        fresh, fresh_v = model.sequence(obs[4:, :1], model.initial_state(1), torch.zeros(T - 4, 1))
        assert torch.allclose(mean[4:, 0], fresh[:, 0], atol=1e-6)
        # step-by-step execution agrees with the sequence call (with resets)
        st = state
        for t in range(T):
            m, v, st = model.step(obs[t], st, starts[t])
            assert torch.allclose(m, mean[t], atol=1e-5) and torch.allclose(v, value[t], atol=1e-5)
        # without the start the state leaks into t >= 4 (the test above can fail)
        leak, _ = model.sequence(obs, state, torch.zeros(T, B))
        assert not torch.allclose(leak[4:, 0], mean[4:, 0], atol=1e-4)


def test_masked_loop_matches_fused_lstm():
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(5, 7)
    x, h, c = torch.randn(6, 4, 5), torch.randn(4, 7), torch.randn(4, 7)
    starts = torch.zeros(6, 4)
    starts[3, 2] = 1                      # forces the masked loop
    out = lstm_sequence(lstm, x, h, c, starts)
    ref, _ = lstm(x, (h[None], c[None]))
    keep = [0, 1, 3]
    assert torch.allclose(out[:, keep], ref[:, keep], atol=1e-6)
    ref2, _ = lstm(x[3:, 2:3], (torch.zeros(1, 1, 7), torch.zeros(1, 1, 7)))
    assert torch.allclose(out[3:, 2:3], ref2, atol=1e-6)


def test_sequences_split_at_episode_starts_and_replay_rollout():
    """Stored rollout -> padded sequences -> the network reproduces every stored log-prob/value."""
    torch.manual_seed(2)
    model = ActorCritic(PolicySpec(36, 2, 8, False, 16, 0))
    T, S, L = 12, 3, 4
    buf = RolloutBuffer(T, S, 36, 2, model.n_lstm, 8, L)
    state = model.initial_state(S)
    starts = torch.zeros(T, S)
    starts[0] = 1
    starts[6, 0] = starts[9, 1] = starts[1, 2] = starts[2, 2] = 1
    with torch.no_grad():
        for t in range(T):
            if t % L == 0:
                buf.states[t // L] = state
            obs = torch.randn(S, 36)
            mean, value, state = model.step(obs, state, starts[t])
            act = mean + torch.randn_like(mean)
            buf.obs[t], buf.starts[t], buf.actions[t], buf.values[t] = obs, starts[t], act, value
            buf.logp[t] = gaussian_log_prob(act, mean, model.log_std)
        d = buf.sequences()
        assert not (d["starts"][1:] > 0).any()          # no reset inside a sequence
        assert int(d["mask"].sum()) == T * S
        assert d["obs"].shape[1] == T // L * S + 4        # 4 extra sequences at interior starts
        mean, value = model.sequence(d["obs"], d["states"], d["starts"])
        logp = gaussian_log_prob(d["actions"], mean, model.log_std)
        m = d["mask"] > 0
        assert torch.allclose(logp[m], d["logp"][m], atol=1e-5)
        assert torch.allclose(value[m], d["values"][m], atol=1e-5)


def test_train_config_rejects_unknown_and_checks_seq_len():
    from entropy_engine.config import ConfigError

    with pytest.raises(ConfigError):
        build_config(TrainConfig, {"no_such_key": 1})
    with pytest.raises(ConfigError):
        build_config(TrainConfig, {"n_steps": 100, "seq_len": 32})


def test_bfloat16_update_reproduces_rollout_and_learns():
    """The bfloat16 autocast forward stays close to the float32 rollout (PPO ratios near 1 on the first
    minibatch) and an update with it moves the parameters and keeps every metric finite."""
    from types import SimpleNamespace

    from entropy_engine.training.native import resolve_update_dtype
    from entropy_engine.training.ppo import ppo_update

    model, d = _replay_data(seed=3)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mean, value = model.sequence(d["obs"], d["states"], d["starts"])
        logp = gaussian_log_prob(d["actions"], mean.float(), model.log_std)
        m = d["mask"] > 0
        ratio = torch.exp(logp[m] - d["logp"][m])
        assert (ratio - 1).abs().max() < 0.05          # far inside the clip range 0.2
        assert not torch.equal(logp[m], d["logp"][m])  # it did run in bfloat16
    before = [p.detach().clone() for p in model.parameters()]
    cfg = SimpleNamespace(n_epochs=2, batch_size=32, clip_range=0.2, clip_range_vf=0.0, ent_coef=0.0,
                          vf_coef=0.5, max_grad_norm=0.5, normalize_advantage=True, target_kl=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = ppo_update(model, opt, d, cfg, bf16=True)
    assert all(math.isfinite(v) for v in out.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    cpu = torch.device("cpu")
    assert resolve_update_dtype("float32", cpu) == "float32"
    assert resolve_update_dtype("bfloat16", cpu) == "bfloat16"
    assert resolve_update_dtype("auto", cpu) in ("float32", "bfloat16")


def _replay_data(seed: int = 4):
    """A small stored rollout with episode starts inside, as the update sees it."""
    torch.manual_seed(seed)
    model = ActorCritic(PolicySpec(36, 2, 16, False, 16, 8))
    T, S, L = 16, 12, 8
    buf = RolloutBuffer(T, S, 36, 2, model.n_lstm, 16, L)
    state = model.initial_state(S)
    with torch.no_grad():
        for t in range(T):
            if t % L == 0:
                buf.states[t // L] = state
            obs = torch.randn(S, 36)
            starts = (torch.rand(S) < 0.1).float() if t else torch.ones(S)
            mean, value, state = model.step(obs, state, starts)
            act = mean + torch.randn_like(mean)
            buf.obs[t], buf.starts[t], buf.actions[t], buf.values[t] = obs, starts, act, value
            buf.logp[t] = gaussian_log_prob(act, mean, model.log_std)
        buf.advantages.normal_()
        buf.returns.copy_(buf.values + buf.advantages)
    return model, buf.sequences()


def test_update_split_over_threads_matches_one_thread_and_is_deterministic():
    """Minibatches split over 2 threads: the same update as in one thread up to float rounding, and
    bit-identical from run to run."""
    import copy
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from entropy_engine.training.ppo import ppo_update

    cfg = SimpleNamespace(n_epochs=3, batch_size=64, clip_range=0.2, clip_range_vf=0.1, ent_coef=0.01,
                          vf_coef=0.5, max_grad_norm=1e6, normalize_advantage=True, target_kl=0.0)
    base, data = _replay_data()
    runs = []
    with ThreadPoolExecutor(1) as pool:
        for parts in (1, 2, 2):
            model = copy.deepcopy(base)
            opt = torch.optim.SGD(model.parameters(), lr=0.05)   # unlike Adam, sensitive to the gradient's scale
            gen = torch.Generator().manual_seed(0)
            metrics = ppo_update(model, opt, data, cfg, gen, bf16=False, pool=pool, parts=parts)
            runs.append(([p.detach().clone() for p in model.parameters()], metrics))
    (one, m1), (two, m2), (again, _) = runs
    assert any(not torch.equal(a, b) for a, b in zip(one, [p.detach() for p in base.parameters()]))
    for a, b, c in zip(one, two, again):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
        assert torch.equal(b, c)
    for k in ("train/loss", "train/approx_kl", "train/clip_fraction", "train/value_loss"):
        assert m1[k] == pytest.approx(m2[k], rel=1e-4, abs=1e-6), k


def test_robots_sitting_out_are_left_out_of_the_update():
    """``active_fraction`` < 1: the robots that sit out their world's episode keep their slots, but the
    trainer records them as inactive and nothing they hold reaches the PPO update."""
    import copy

    from entropy_engine.training.config import PRESETS
    from entropy_engine.training.native import NativeTrainer
    from entropy_engine.training.ppo import ppo_update

    cfg = build_config(TrainConfig, dict(PRESETS["default"], num_worlds=4, n_agents=6, n_steps=32, seq_len=8,
                                         batch_size=192, n_epochs=2, max_episode_steps=12, threads=1, torch_threads=1,
                                         env=dict(PRESETS["default"]["env"], active_fraction=0.5)))
    tr = NativeTrainer(cfg)
    last = tr.collect()
    buf = tr.buffer
    off = buf.active == 0
    assert 0.3 < float(off.float().mean()) < 0.7                 # half of every world's robots sit out
    assert (buf.rewards[off] == 0).all() and (buf.obs[off][:, -4:] == 0).all()   # no reward, no goal, no speed
    adv, ret = compute_gae(buf.rewards, buf.values, buf.dones, last, cfg.gamma, cfg.gae_lambda)
    buf.advantages.copy_(adv)
    buf.returns.copy_(ret)
    assert float(buf.sequences()["mask"].sum()) == float((~off).sum())

    counts = []

    def update():
        model = copy.deepcopy(tr.model)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        counts.append(ppo_update(model, opt, buf.sequences(), cfg, torch.Generator().manual_seed(0))["train/n_updates"])
        return [p.detach().clone() for p in model.parameters()]

    before = update()
    g = torch.Generator().manual_seed(1)
    for x in (buf.obs, buf.actions, buf.advantages, buf.returns, buf.values, buf.logp):
        x[off] = 10 * torch.randn(x[off].shape, generator=g)       # garbage in the sat-out slots
    assert all(torch.equal(a, b) for a, b in zip(before, update()))
    buf.active.fill_(1.0)                                        # without the mask the garbage would count
    assert not all(torch.equal(a, b) for a, b in zip(before, update()))
    # as many minibatches either way (processes averaging gradients must pair theirs): set by the rollout's size
    assert counts[0] == counts[-1] == cfg.n_epochs * round(32 * 24 / cfg.batch_size), counts


def test_a_process_with_fewer_sequences_than_minibatches_still_pairs_its_collectives():
    """``--ray-workers`` with robots sitting out: a process may hold fewer sequences than the rollout's
    size asks minibatches. It must still take part in every gradient average (with zero gradients for
    the empty ones) and stay finite, or the processes' all-reduces stop pairing (a hang) or NaN spreads."""
    import copy

    from entropy_engine.training.config import PRESETS
    from entropy_engine.training.native import NativeTrainer
    from entropy_engine.training.ppo import ppo_update

    cfg = build_config(TrainConfig, dict(PRESETS["default"], num_worlds=2, n_agents=2, n_steps=16, seq_len=8,
                                         batch_size=16, n_epochs=2, threads=1, torch_threads=1))
    tr = NativeTrainer(cfg)
    last = tr.collect()
    buf = tr.buffer
    adv, ret = compute_gae(buf.rewards, buf.values, buf.dones, last, cfg.gamma, cfg.gae_lambda)
    buf.advantages.copy_(adv)
    buf.returns.copy_(ret)
    data = buf.sequences()
    n_seq = data["starts"].shape[1]
    data["rollout_steps"] = torch.tensor(16 * (n_seq + 3))     # the others' rollouts ask n_seq + 3 minibatches

    class Recorder:
        def __init__(self):
            self.calls = []
            self.means = 0

        def gradients(self, params):
            params = list(params)
            self.calls.append(all(p.grad is None or not p.grad.any() for p in params))
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)

        def mean(self, value):
            self.means += 1
            return value

    sync = Recorder()
    model = copy.deepcopy(tr.model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = ppo_update(model, opt, data, cfg, torch.Generator().manual_seed(0), sync=sync)
    assert len(sync.calls) == cfg.n_epochs * (n_seq + 3) == out["train/n_updates"]
    assert sum(sync.calls) == cfg.n_epochs * 3               # the empty minibatches add zero gradients
    assert sync.means == len(sync.calls)                       # and join the KL average (target_kl 0 too)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(math.isfinite(v) for k, v in out.items() if k != "train/explained_variance")
