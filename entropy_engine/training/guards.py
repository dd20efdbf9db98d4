"""NaN guards: a run whose update produced non-finite losses or parameters stops before saving.

``check_update`` is called by both trainers after every update, before anything (checkpoint, final
model) is written; the savers refuse non-finite values as a second line (``model_file.save_model``,
``checkpoint.save_torch_checkpoint``, ``sb3_files.write_sb3_file``). Settings that can only produce
NaN are refused earlier, when the config is built (``TrainConfig``).
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch

# the update's losses (explained_variance is legitimately NaN when the returns have no variance)
LOSS_KEYS = ("train/loss", "train/policy_gradient_loss", "train/value_loss", "train/entropy_loss",
             "train/approx_kl")


class TrainingDiverged(RuntimeError):
    """An update produced non-finite losses or parameters; nothing from it was saved."""


def check_update(step: int, metrics: Mapping[str, float], named_params: Iterable[tuple[str, torch.Tensor]],
                 learning_rate: float | None = None) -> None:
    """Raise ``TrainingDiverged`` if any of the update's losses or the parameters are NaN or inf."""
    losses = [f"{k}={metrics[k]}" for k in LOSS_KEYS if k in metrics and not math.isfinite(float(metrics[k]))]
    params = [name for name, p in named_params if not bool(torch.isfinite(p.detach()).all())]
    if not losses and not params:
        return
    what = []
    if losses:
        what.append("non-finite loss " + ", ".join(losses))
    if params:
        what.append("non-finite parameters " + ", ".join(params[:4]) + (f" and {len(params) - 4} more"
                                                                         if len(params) > 4 else ""))
    lr = f" (now {learning_rate:g})" if learning_rate is not None else ""
    raise TrainingDiverged(
        f"training diverged at step {step}: {'; '.join(what)}. The run stopped before saving anything from this "
        f"update: the last checkpoint, if any, is kept. Lower --learning-rate{lr} or --max-grad-norm, or check "
        "the reward settings, then run the command again")
