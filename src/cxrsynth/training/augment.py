"""Batched augmentation on the device (paper 001, section 3.3).

Rotation up to ``max_rotation_deg``, horizontal flip with probability ``flip_p``, brightness
and contrast jitter; all drawn per image but applied to the whole batch tensor at once (one
affine grid sample), never per image in Python. The paper's saturation and hue jitter mean
nothing on a single grey channel, so they are left out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment_batch(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    max_rotation_deg: float = 10.0,
    flip_p: float = 0.5,
    brightness: float = 0.1,
    contrast: float = 0.1,
) -> torch.Tensor:
    """Augment a (N, 1, H, W) float batch with values in [0, 1]; returns a batch of the same shape, in [0, 1]."""
    n = images.shape[0]
    device = images.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator, device=device) * (high - low) + low

    angle = uniform(-max_rotation_deg, max_rotation_deg) * (math.pi / 180)
    flip = torch.where(torch.rand(n, generator=generator, device=device) < flip_p, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, torch.zeros_like(cos)], 1), torch.stack([sin * flip, cos, torch.zeros_like(cos)], 1)],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    gain = uniform(1 - brightness, 1 + brightness).view(n, 1, 1, 1)
    stretch = uniform(1 - contrast, 1 + contrast).view(n, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out * gain - mean) * stretch + mean
    return out.clamp_(0.0, 1.0)
