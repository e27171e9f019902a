"""Optimiser and learning-rate schedule: AdamW, linear warmup, cosine decay, per step.

Two learning rates: the backbone gets ``lr``, the freshly initialised head (attention
pooling, projection, classifier) ``head_lr``. Biases and normalisation weights (1-D
parameters) get no weight decay, as usual for AdamW. A loss with parameters of its own
(class proxies) is passed as ``extra``: its parameters form a ``loss`` group at ``head_lr``
without weight decay (decay would shrink proxies that are normalised anyway).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["WarmupCosine", "build_optimizer", "build_scheduler"]


class WarmupCosine:
    """Learning-rate factor at a step: linear warmup to 1, then cosine decay to 0.

    A class rather than a lambda so the scheduler's state is plain data.

    Examples
    --------
    >>> f = WarmupCosine(warmup_steps=2, total_steps=6)
    >>> [round(f(s), 3) for s in range(7)]
    [0.333, 0.667, 1.0, 0.854, 0.5, 0.146, 0.0]
    """

    def __init__(self, warmup_steps: int, total_steps: int) -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    head_lr: float,
    weight_decay: float,
    extra: nn.Module | None = None,
) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameters in (backbone | head) x (decay | none).

    Examples
    --------
    >>> from cxrembed.models import EmbeddingNet
    >>> opt = build_optimizer(EmbeddingNet("resnet18", 8), lr=1e-4, head_lr=1e-3,
    ...                       weight_decay=0.01)
    >>> [(g["name"], g["lr"]) for g in opt.param_groups]
    [('backbone', 0.0001), ('backbone-no-decay', 0.0001), ('head', 0.001), ('head-no-decay', 0.001)]
    """
    groups: dict[str, list[nn.Parameter]] = {
        "backbone": [],
        "backbone-no-decay": [],
        "head": [],
        "head-no-decay": [],
    }
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "backbone" if name.startswith("backbone.") else "head"
        groups[part if param.ndim > 1 else f"{part}-no-decay"].append(param)
    param_groups = [
        {
            "name": key,
            "params": params,
            "lr": head_lr if key.startswith("head") else lr,
            "weight_decay": weight_decay if not key.endswith("no-decay") else 0.0,
        }
        for key, params in groups.items()
        if params
    ]
    own = [p for p in extra.parameters() if p.requires_grad] if extra is not None else []
    if own:
        param_groups.append({"name": "loss", "params": own, "lr": head_lr, "weight_decay": 0.0})
    return torch.optim.AdamW(param_groups)


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step :class:`WarmupCosine` on every parameter group."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps))
