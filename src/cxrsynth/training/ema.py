"""Exponential moving average of the generator's weights (used for every sample)."""

from __future__ import annotations

import torch
from torch import nn


def warmup_decay(decay: float, updates: int) -> float:
    """min(decay, (1 + n) / (10 + n)) after n updates: the average follows closely while the
    model is young (a short run never samples from weights that are mostly initialisation),
    and settles at ``decay`` (the paper's 0.999) for long runs."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema ← decay * ema + (1 - decay) * model for parameters (one fused foreach call);
    buffers (batch-norm statistics) are copied."""
    ema_params = [p for p in ema.parameters()]
    params = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)
