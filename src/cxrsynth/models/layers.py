"""Building blocks of the progressive GAN (Karras et al. 2018), written to the paper."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class EqualizedConv2d(nn.Module):
    """Convolution with the equalised learning rate: weights drawn N(0, 1) and scaled at run time
    by the He constant ``gain / sqrt(fan_in)``; the bias starts at 0 and is not scaled."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                 gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """Fully connected layer with the equalised learning rate (see EqualizedConv2d)."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit mean square: a / sqrt(mean_c(a^2) + eps)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x)


class MinibatchStdDev(nn.Module):
    """Append one channel: the standard deviation of each feature over a group of samples,
    averaged over features and pixels. Groups of G = the largest divisor of the batch not above
    ``group_size`` (4 for a batch of 16, 2 for the authors' 14 per GPU at 256 px, 3 for 3);
    sample n belongs to group n mod (N / G), as in the reference code."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = next(d for d in range(min(self.group_size, n), 0, -1) if n % d == 0)
        y = x.float().reshape(g, -1, c, h, w)
        y = (y - y.mean(dim=0)).pow(2).mean(dim=0).add(1e-8).sqrt()  # (N/G, C, H, W)
        y = y.mean(dim=(1, 2, 3)).to(x.dtype)  # (N/G,)
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # sample n gets group n mod (N/G)
        return torch.cat([x, y], dim=1)


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour doubling."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def downsample2(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling."""
    return F.avg_pool2d(x, 2)


def fade_real(images: torch.Tensor, alpha: float) -> torch.Tensor:
    """Blend real images with their down-then-up-sampled version during a fade-in, so that D
    never sees reals sharper than what G can produce yet (alpha 0: the previous resolution)."""
    if alpha >= 1.0:
        return images
    return torch.lerp(upsample2(downsample2(images)), images, alpha)
