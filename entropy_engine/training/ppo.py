"""PPO pieces: GAE, the clipped losses, and the update over stored sequences (truncated BPTT).

The update is vectorised over sequences: a minibatch is ``batch_size // seq_len`` sequences
processed together as [seq_len, B, ...] through the LSTM, with the state zeroed exactly at episode
starts (``policy.lstm_sequence``). There is no Python loop over agents or environment steps.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch import nn

from .network import ActorCritic, action_entropy, action_log_prob, gaussian_entropy, gaussian_log_prob


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor,
                gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over [T, S] tensors.

    ``dones[t]`` = 1 when the episode ended at step t (the value of the next stored observation,
    which belongs to a new episode, is then not used). ``last_value`` [S] is V of the observation
    after the last step. Returns (advantages, returns = advantages + values).
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(last_value)
    for t in range(T - 1, -1, -1):
        next_value = last_value if t == T - 1 else values[t + 1]
        nonterminal = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * nonterminal - values[t]
        last = delta + gamma * lam * nonterminal * last
        adv[t] = last
    return adv, adv + values


def ppo_loss(new_logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
             values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, entropy: torch.Tensor,
             clip_range: float, clip_range_vf: float = 0.0, ent_coef: float = 0.0, vf_coef: float = 0.5
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped PPO objective (to minimise) and its parts, SB3's definitions and names."""
    log_ratio = new_logp - old_logp
    ratio = torch.exp(log_ratio)
    pg1 = advantages * ratio
    pg2 = advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    policy_loss = -torch.min(pg1, pg2).mean()
    if clip_range_vf > 0:
        values = old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)
    value_loss = ((returns - values) ** 2).mean()
    entropy_loss = -entropy.mean()
    loss = policy_loss + ent_coef * entropy_loss + vf_coef * value_loss
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > clip_range).float().mean()
    return loss, {"loss": loss.detach(), "policy_gradient_loss": policy_loss.detach(),
                  "value_loss": value_loss.detach(), "entropy_loss": entropy_loss.detach(),
                  "approx_kl": approx_kl, "clip_fraction": clip_fraction}


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    var = target.var()
    return float("nan") if var == 0 else float(1.0 - (target - pred).var() / var)


def _minibatch_part(model: ActorCritic, mb: dict[str, torch.Tensor], state: torch.Tensor, cfg: Any, amp: bool,
                    weight: float) -> dict[str, torch.Tensor]:
    """Forward and backward of one part of a minibatch (a subset of its sequences, advantages already
    normalised over the whole minibatch). The loss is scaled by ``weight`` = this part's share of
    the minibatch's samples, so the gradients of all parts add up to the minibatch's gradient."""
    with torch.autocast(mb["inputs"].device.type, dtype=torch.bfloat16, enabled=amp):
        mean, values = model.sequence_from_input(mb["inputs"], state, mb["starts"])
    mean, values = mean.float(), values.float()
    if model.spec.comm_vocab:   # discrete messages: mean holds the Gaussian means and the token logits
        new_logp = action_log_prob(mb["actions"], mean, model.log_std, model.spec)
        entropy = action_entropy(mean, model.log_std, model.spec)
    else:
        new_logp = gaussian_log_prob(mb["actions"], mean, model.log_std)
        entropy = None
    if "mask" in mb:
        valid = mb["mask"] > 0
        new_logp, values = new_logp[valid], values[valid]
        entropy = None if entropy is None else entropy[valid]
        mb = {k: v[valid] for k, v in mb.items() if k in ("logp", "values", "advantages", "returns")}
    if entropy is None:
        entropy = gaussian_entropy(model.log_std).expand_as(new_logp)
    loss, parts = ppo_loss(new_logp, mb["logp"], mb["advantages"], values, mb["values"], mb["returns"], entropy,
                           cfg.clip_range, cfg.clip_range_vf, cfg.ent_coef, cfg.vf_coef)
    (loss * weight).backward()
    return {k: v * weight for k, v in parts.items()}


def _normalised(mb: dict[str, torch.Tensor]) -> torch.Tensor:
    """The minibatch's advantages normalised over its real (unpadded) samples."""
    adv = mb["advantages"]
    real = adv[mb["mask"] > 0] if "mask" in mb else adv
    if real.numel() <= 1:
        return adv
    return (adv - real.mean()) / (real.std() + 1e-8)


def _samples(mb: dict[str, torch.Tensor]) -> float:
    return float(mb["mask"].sum()) if "mask" in mb else float(mb["inputs"].shape[0] * mb["inputs"].shape[1])


def _parallel_parts(model: ActorCritic, mb: dict[str, torch.Tensor], state: torch.Tensor, cfg: Any, amp: bool,
                    pool: ThreadPoolExecutor, parts: int) -> list[dict[str, torch.Tensor]]:
    """``_minibatch_part`` over ``parts`` interleaved subsets of the minibatch's sequences, the first
    in this thread and the others on ``pool``."""
    n_seq = mb["inputs"].shape[1]
    total = _samples(mb)
    jobs = []
    for k in range(min(parts, n_seq)):
        sel = torch.arange(k, n_seq, parts, device=mb["inputs"].device)
        part = {key: v.index_select(1, sel) for key, v in mb.items()}
        args = (model, part, state.index_select(2, sel), cfg, amp, _samples(part) / total)
        jobs.append(args if k == 0 else pool.submit(_minibatch_part, *args))
    first = _minibatch_part(*jobs[0])
    return [first] + [job.result() for job in jobs[1:]]


def ppo_update(model: ActorCritic, optimizer: torch.optim.Optimizer, data: dict[str, torch.Tensor], cfg: Any,
               generator: torch.Generator | None = None, bf16: bool | None = None,
               pool: ThreadPoolExecutor | None = None, parts: int = 1, sync: Any = None) -> dict[str, float]:
    """``cfg.n_epochs`` passes of minibatch PPO over sequences ``data`` (from RolloutBuffer.sequences).

    ``bf16``: run the forward pass under bfloat16 autocast (None: ``cfg.update_dtype == "bfloat16"``).
    ``parts`` > 1 splits every minibatch's sequences into that many parts whose forward and backward
    run concurrently (``parts - 1`` of them on ``pool``'s threads; torch ops release the GIL), their
    gradients adding up in the shared parameters: data parallelism over the cores of one machine.
    With 2 parts the result is deterministic (float addition of two terms commutes) and equals the
    1-part update up to float rounding.

    ``sync`` (data parallelism over processes, ``ray_workers``): every minibatch's gradients are
    averaged over the processes (``sync.gradients``) before the clip and the optimizer step, and
    target_kl decides on the processes' mean KL (``sync.mean``). Each epoch then has exactly
    ``round(samples / batch_size)`` minibatches in every process (the sequence count, cut at episode
    starts, differs between processes; ``samples`` is the rollout's size ``data["rollout_steps"]``,
    robots that sat out included, where given), so that the processes' collective calls pair up; a
    process left with fewer sequences than minibatches (many robots sat out) adds zero gradients for
    the empty ones and still steps with the others.
    """
    # the network's input (observations, and their change for obs_delta models), built once rather than
    # in every minibatch of every epoch
    inputs = model.features(data["obs"], data.get("prev_obs"), data["starts"])
    total = data.get("rollout_steps")      # the rollout's size, sat-out robots included (RolloutBuffer)
    data = {k: v for k, v in data.items() if k not in ("obs", "prev_obs", "rollout_steps")}
    data["inputs"] = inputs
    n_seq = data["inputs"].shape[1]
    n_samples = int(_samples(data)) if total is None else int(total)
    n_batches = max(1, round(n_samples / cfg.batch_size))
    per_batch = -(-n_seq // n_batches)
    amp = getattr(cfg, "update_dtype", "float32") == "bfloat16" if bf16 is None else bf16
    parts = max(1, parts if pool is not None else 1)
    sums: dict[str, float] = {}
    count = empty = 0     # minibatch steps; those without a sequence here (sync only)
    stop = False
    for _ in range(cfg.n_epochs):
        perm = torch.randperm(n_seq, generator=generator, device=generator.device if generator is not None
                              else "cpu").to(data["inputs"].device)
        batches = (torch.tensor_split(perm, n_batches) if sync is not None
                   else [perm[i:i + per_batch] for i in range(0, n_seq, per_batch)])
        for idx in batches:
            if len(idx) == 0:          # with sync: this process has fewer sequences than minibatches (robots
                optimizer.zero_grad(set_to_none=True)   # sat out): it adds zero gradients to the average and
                sync.gradients(model.parameters())     # steps with the others, so that the collectives pair
                nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                count += 1
                empty += 1
                kl = sync.mean(0.0)    # every process joins every collective, as the others do below
                if cfg.target_kl > 0 and kl > 1.5 * cfg.target_kl:
                    stop = True
                    break
                continue
            mb = {k: v.index_select(1, idx) for k, v in data.items() if k != "states"}
            state = data["states"].index_select(2, idx)
            if cfg.normalize_advantage:
                mb["advantages"] = _normalised(mb)
            optimizer.zero_grad(set_to_none=True)
            if parts == 1 or len(idx) < 2:
                results = [_minibatch_part(model, mb, state, cfg, amp, 1.0)]
            else:
                results = _parallel_parts(model, mb, state, cfg, amp, pool, parts)
            if sync is not None:
                sync.gradients(model.parameters())
            nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            step = {k: sum(r[k] for r in results) for k in results[0]}
            for k, v in step.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
            kl = float(step["approx_kl"]) if sync is None else sync.mean(float(step["approx_kl"]))
            if cfg.target_kl > 0 and kl > 1.5 * cfg.target_kl:
                stop = True
                break
        if stop:
            break
    if "mask" in data:
        valid = data["mask"] > 0
        v_pred, v_ret = data["values"][valid], data["returns"][valid]
    else:
        v_pred, v_ret = data["values"].flatten(), data["returns"].flatten()
    used = count - empty
    out = {f"train/{k}": v / max(used, 1) for k, v in sums.items()}
    out["train/explained_variance"] = explained_variance(v_pred, v_ret)
    out["train/std"] = float(torch.exp(model.log_std.detach()).mean())
    out["train/n_updates"] = float(count)
    return out
