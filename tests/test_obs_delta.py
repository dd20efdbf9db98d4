"""``obs_delta`` policies: the network also sees how each agent's observation changed since its
previous step. Checked against a plain re-computation of that input, across episode starts, through
the stored rollout and through the numpy inference API."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from entropy_engine.training.policy import ActorCritic, PolicySpec, RecurrentPolicy, gaussian_log_prob
from entropy_engine.training.rollout import RolloutBuffer

K = 10.0


def _model(shared: bool = True, encoder: int = 16, seed: int = 0) -> ActorCritic:
    torch.manual_seed(seed)
    return ActorCritic(PolicySpec(36, 2, 8, shared, 16, encoder, 0.0, K))


def _prev_of(obs: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """Each step's previous observation: obs[t - 1], and ``first`` before t = 0."""
    return torch.cat([first[None], obs[:-1]])


def test_input_is_obs_and_scaled_change_zero_at_starts():
    model = _model()
    assert model.spec.input_dim == 72 and model.encoder[0].in_features == 72
    obs, prev = torch.randn(4, 36), torch.randn(4, 36)
    starts = torch.tensor([0.0, 1.0, 0.0, 1.0])
    x = model.features(obs, prev, starts)
    expected = torch.cat([obs, K * (obs - prev) * (1 - starts)[:, None]], -1)   # written out by hand
    assert torch.equal(x, expected)
    assert torch.equal(model.features(obs, None, None)[:, 36:], torch.zeros(4, 36))
    plain = ActorCritic(PolicySpec(36, 2, 8, True, 16, 16))
    assert torch.equal(plain.features(obs, prev, starts), obs)      # obs_delta 0: unchanged input


@pytest.mark.parametrize("shared", [True, False])
def test_nothing_before_an_episode_start_reaches_it(shared):
    """The change at an episode's first step is zero: the observation before it (previous episode)
    must not reach the outputs; step-by-step agrees with the sequence call."""
    model = _model(shared)
    T, B = 10, 3
    obs = torch.randn(T, B, 36)
    first = torch.randn(B, 36)
    starts = torch.zeros(T, B)
    starts[4, 0] = 1
    state = torch.randn(model.n_lstm, 2, B, 8)
    with torch.no_grad():
        mean, value = model.sequence(obs, state, starts, _prev_of(obs, first))
        obs2 = obs.clone()
        obs2[:4, 0] = torch.randn(4, 36)                # obs[3] is the "previous" observation of t = 4
        mean2, value2 = model.sequence(obs2, torch.randn_like(state), starts, _prev_of(obs2, first))
        assert torch.allclose(mean[4:, 0], mean2[4:, 0], atol=1e-6)
        assert torch.allclose(value[4:, 0], value2[4:, 0], atol=1e-6)
        st = state
        for t in range(T):
            m, v, st = model.step(obs[t], st, starts[t], first if t == 0 else obs[t - 1])
            assert torch.allclose(m, mean[t], atol=1e-5) and torch.allclose(v, value[t], atol=1e-5)
        # the change is an input: another previous observation (no start) changes the output
        other, _ = model.sequence(obs, state, starts, _prev_of(obs, torch.randn(B, 36)))
        assert not torch.allclose(other[0], mean[0], atol=1e-4)


def test_stored_rollout_replays_with_previous_observations():
    """The buffer keeps each step's previous observation, and sequences cut at chunk boundaries
    and episode starts reproduce every stored log-prob and value."""
    model = _model(False, 0, seed=2)
    T, S, L = 12, 3, 4
    buf = RolloutBuffer(T, S, 36, 2, model.n_lstm, 8, L, prev_obs=True)
    state = model.initial_state(S)
    starts = torch.zeros(T, S)
    starts[0] = 1
    starts[6, 0] = starts[9, 1] = starts[1, 2] = 1
    prev = torch.zeros(S, 36)
    with torch.no_grad():
        for t in range(T):
            if t % L == 0:
                buf.states[t // L] = state
            obs = torch.randn(S, 36)
            mean, value, state = model.step(obs, state, starts[t], prev)
            act = mean + torch.randn_like(mean)
            buf.obs[t], buf.prev_obs[t], buf.starts[t], buf.actions[t], buf.values[t] = obs, prev, starts[t], act, value
            buf.logp[t] = gaussian_log_prob(act, mean, model.log_std)
            prev = obs
        d = buf.sequences()
        assert "prev_obs" in d
        mean, value = model.sequence(d["obs"], d["states"], d["starts"], d["prev_obs"])
        m = d["mask"] > 0
        assert torch.allclose(gaussian_log_prob(d["actions"], mean, model.log_std)[m], d["logp"][m], atol=1e-5)
        assert torch.allclose(value[m], d["values"][m], atol=1e-5)
        # a sequence that starts at a chunk boundary mid-episode needs the stored previous observation
        wrong, _ = model.sequence(d["obs"], d["states"], d["starts"], None)
        assert not torch.allclose(wrong[m], mean[m], atol=1e-4)
    assert "prev_obs" not in RolloutBuffer(T, S, 36, 2, 1, 8, L).sequences()


def test_inference_state_carries_the_previous_observation():
    model = _model()
    policy = RecurrentPolicy(model)
    n = 3
    state = policy.initial_state(n)
    assert state.shape == (2, n, 8 + 36) and not state.any()
    rng = np.random.default_rng(0)
    obs_seq = rng.standard_normal((5, n, 36)).astype(np.float32)
    ref_state = model.initial_state(n)
    for t in range(5):
        start = np.array([t == 0, False, t == 3])
        actions, state = policy.act(obs_seq[t], state, episode_start=start)
        prev = torch.as_tensor(obs_seq[t - 1]) if t else None
        st = torch.as_tensor(start, dtype=torch.float32)
        with torch.no_grad():
            mean, _, ref_state = model.step(torch.as_tensor(obs_seq[t]), ref_state, st if t else None, prev)
        assert np.allclose(actions, mean.clamp(-1, 1).numpy(), atol=1e-5)
        assert np.array_equal(state[0, :, 8:], obs_seq[t]) and (state[1, :, 8:] == 1).all()
    with pytest.raises(ValueError, match=r"state must have shape \[2, 3, 44\]"):
        policy.act(obs_seq[0], np.zeros((2, n, 8), np.float32))


def test_native_rollout_stores_each_slots_previous_observation():
    """In the trainer's own rollout, prev_obs[t] is obs[t - 1] of the same slot, and the stored
    rollout replays to the stored log-probs (the update sees what the rollout saw)."""
    from entropy_engine.training.config import resolve_config
    from entropy_engine.training.native import NativeTrainer

    cfg = resolve_config("default", overrides=dict(num_worlds=2, n_agents=4, n_steps=32, seq_len=8, batch_size=64,
                                                  n_epochs=1, lstm_hidden_size=8, net_arch=8, obs_delta=K,
                                                  max_episode_steps=12, total_steps=256))
    tr = NativeTrainer(cfg)
    tr.collect()
    buf = tr.buffer
    assert buf.prev_obs is not None and buf.starts[1:].sum() > 0       # episodes restarted inside
    assert torch.equal(buf.prev_obs[1:], buf.obs[:-1])
    with torch.no_grad():
        d = buf.sequences()
        mean, value = tr.model.sequence(d["obs"], d["states"], d["starts"], d["prev_obs"])
    m = d["mask"] > 0
    assert torch.allclose(gaussian_log_prob(d["actions"], mean, tr.model.log_std)[m], d["logp"][m], atol=1e-4)
    assert torch.allclose(value[m], d["values"][m], atol=1e-4)
    tr.close()
