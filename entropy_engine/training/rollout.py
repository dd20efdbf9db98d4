"""Preallocated rollout storage for recurrent PPO, laid out [time, slot, ...] as torch tensors.

Step ``t`` of slot ``s`` holds: the observation the policy saw, ``starts`` (1 if that observation
is the first of an episode, so the LSTM state was zeroed before it), the sampled (unclipped)
action, its log-probability, the value estimate, the reward (plus gamma * V(terminal obs) for
truncated episodes), ``dones`` (1 if the episode ended at this step) and ``active`` (1 if the slot's
robot took part: a robot that sits out its world's episode, ``active_fraction`` < 1, is left out
of the update); with ``prev_obs`` also
the slot's previous observation (the input of ``obs_delta`` policies). The LSTM state at the
start of every ``seq_len`` chunk is stored so that the update can replay each chunk exactly
(truncated BPTT).
"""
from __future__ import annotations

import torch


class RolloutBuffer:
    def __init__(self, n_steps: int, n_slots: int, obs_dim: int, act_dim: int, n_lstm: int, hidden: int,
                 seq_len: int, device: torch.device | str = "cpu", prev_obs: bool = False):
        if n_steps % seq_len:
            raise ValueError("seq_len must divide n_steps")
        T, S = n_steps, n_slots
        self.n_steps, self.n_slots, self.seq_len = T, S, seq_len
        self.n_chunks = T // seq_len
        kw = dict(dtype=torch.float32, device=device)
        self.obs = torch.zeros(T, S, obs_dim, **kw)
        self.prev_obs = torch.zeros(T, S, obs_dim, **kw) if prev_obs else None
        self.actions = torch.zeros(T, S, act_dim, **kw)
        self.logp = torch.zeros(T, S, **kw)
        self.values = torch.zeros(T, S, **kw)
        self.rewards = torch.zeros(T, S, **kw)
        self.starts = torch.zeros(T, S, **kw)
        self.dones = torch.zeros(T, S, **kw)
        self.active = torch.ones(T, S, **kw)
        self.advantages = torch.zeros(T, S, **kw)
        self.returns = torch.zeros(T, S, **kw)
        self.states = torch.zeros(self.n_chunks, n_lstm, 2, S, hidden, **kw)  # state before each chunk

    def sequences(self, steps: int | None = None) -> dict[str, torch.Tensor]:
        """The rollout cut into sequences that never cross an episode boundary, padded to seq_len.

        A sequence starts at every ``seq_len`` chunk start and at every episode start, so inside a
        sequence no LSTM state ever needs resetting and the update can use one fused LSTM call
        (the state is zeroed at step 0 of sequences that begin an episode). Returns tensors
        [seq_len, B, ...] for B sequences, ``mask`` [seq_len, B] (1 = real step of an active robot,
        0 = padding or a robot sitting out) and ``states`` [L, 2, B, H] (the state before step 0);
        sequences with no active step are left out; ``rollout_steps`` (a 0-d tensor) is ``steps * S``.
        ``steps`` < n_steps uses only the first ``steps`` steps (a shorter last rollout).
        """
        T, S, L = self.n_steps if steps is None else steps, self.n_slots, self.seq_len
        dev = self.obs.device
        begin = self.starts[:T].bool().clone()
        begin[::L] = True
        begin_flat = begin.t().reshape(-1)                           # slot-major order [S*T]
        seg_id = torch.cumsum(begin_flat.long(), 0) - 1
        n_seg = int(seg_id[-1]) + 1
        idx = torch.arange(T * S, device=dev)
        first = idx[begin_flat]                                      # [B] flat index of step 0
        pos = idx - first[seg_id]

        def pad(x: torch.Tensor) -> torch.Tensor:                    # [T, S, ...] -> [L, B, ...]
            flat = x[:T].transpose(0, 1).reshape(T * S, *x.shape[2:])
            out = torch.zeros(L, n_seg, *x.shape[2:], dtype=x.dtype, device=dev)
            out[pos, seg_id] = flat
            return out

        keys = ("obs", "actions", "logp", "values", "starts", "advantages", "returns")
        out = {k: pad(getattr(self, k)) for k in keys + (("prev_obs",) if self.prev_obs is not None else ())}
        out["mask"] = pad(self.active)
        t0, s0 = first % T, first // T
        st = self.states[t0 // L, :, :, s0]                          # [B, L_lstm, 2, H]
        out["states"] = st.permute(1, 2, 0, 3).contiguous()
        keep = out["mask"].sum(0) > 0                                # [B] sequences with an active step
        if not bool(keep.all()):
            out = {k: (v[:, :, keep] if k == "states" else v[:, keep]) for k, v in out.items()}
        # the rollout's size (every slot, sitting out or not): sets the number of minibatches, which must
        # not depend on how many robots sat out (processes that average gradients pair their minibatches)
        out["rollout_steps"] = torch.tensor(T * S)
        return out
