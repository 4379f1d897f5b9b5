"""Learning-rate schedules: the paper's step drops per epoch, or a per-step cosine."""

from __future__ import annotations

import math

import torch

from handpose_lib.training.config import TrainConfig


def cosine_factor(step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base lr for optimizer step `step` (0-based) of `total_steps`: linear
    from 0 over the warm-up, then half a cosine from 1 down to 0 at `total_steps`."""
    if step < warmup_steps:
        return step / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, tc: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule of `tc`, where `steps_per_epoch` optimizer steps make one epoch. "step"
    advances once per epoch, "cosine" after every optimizer step (`per_step`)."""
    if tc.lr_schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(tc.lr_milestones), gamma=tc.lr_gamma
        )
    total = tc.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_factor(step, total, tc.warmup_steps)
    )


def per_step(tc: TrainConfig) -> bool:
    """Whether the schedule advances after every optimizer step (else after every epoch)."""
    return tc.lr_schedule == "cosine"
