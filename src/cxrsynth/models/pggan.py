"""Progressive growing GAN (Karras et al. 2018) for single-channel x-rays.

Every resolution's block exists from the start and is named by its resolution (``b4``,
``b8``, ...). The current resolution and the fade-in ``alpha`` are plain arguments of
``forward`` (the training schedule derives both from the images shown), so a state dict
describes the model fully and nothing is added or reset when a phase starts.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cxrsynth.models.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    downsample2,
    pixel_norm,
    upsample2,
)


def resolutions(channels: list[int]) -> list[int]:
    """Resolutions 4, 8, ... one per entry of ``channels``."""
    return [4 * 2**i for i in range(len(channels))]


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


class PGGANGenerator(nn.Module):
    """z (N, z_dim) → image (N, 1, r, r), linear output around [-1, 1]."""

    def __init__(self, z_dim: int = 512, channels: list[int] = (512, 512, 512, 512, 256, 128, 64, 32, 16),
                 image_channels: int = 1):
        super().__init__()
        self.z_dim, self.channels = z_dim, list(channels)
        self.resolutions = resolutions(self.channels)
        c4 = self.channels[0]
        self.blocks = nn.ModuleDict()
        self.to_image = nn.ModuleDict()
        self.blocks["b4"] = nn.Sequential(
            EqualizedLinear(z_dim, c4 * 16, gain=math.sqrt(2) / 4),  # the reference code's gain for this layer
            nn.Unflatten(1, (c4, 4, 4)), _lrelu(), PixelNorm(),
            EqualizedConv2d(c4, c4, 3, padding=1), _lrelu(), PixelNorm(),
        )
        for prev, (res, c) in zip(self.channels, zip(self.resolutions[1:], self.channels[1:])):
            self.blocks[f"b{res}"] = nn.Sequential(
                nn.Upsample(scale_factor=2.0, mode="nearest"),
                EqualizedConv2d(prev, c, 3, padding=1), _lrelu(), PixelNorm(),
                EqualizedConv2d(c, c, 3, padding=1), _lrelu(), PixelNorm(),
            )
        for res, c in zip(self.resolutions, self.channels):
            self.to_image[f"b{res}"] = EqualizedConv2d(c, image_channels, 1, gain=1.0)

    def forward(self, z: torch.Tensor, resolution: int, alpha: float = 1.0) -> torch.Tensor:
        x = self.blocks["b4"](pixel_norm(z))
        if resolution == 4:
            return self.to_image["b4"](x)
        for res in self.resolutions[1:]:
            if res == resolution:
                new = self.to_image[f"b{res}"](self.blocks[f"b{res}"](x))
                if alpha >= 1.0:
                    return new
                return torch.lerp(upsample2(self.to_image[f"b{res // 2}"](x)), new, alpha)
            x = self.blocks[f"b{res}"](x)
        raise ValueError(f"resolution {resolution} not in {self.resolutions}")


class PGGANDiscriminator(nn.Module):
    """image (N, 1, r, r) → critic score (N,); WGAN-GP, so no sigmoid."""

    def __init__(self, channels: list[int] = (512, 512, 512, 512, 256, 128, 64, 32, 16), image_channels: int = 1,
                 group_size: int = 4):
        super().__init__()
        self.channels = list(channels)
        self.resolutions = resolutions(self.channels)
        c4 = self.channels[0]
        self.from_image = nn.ModuleDict(
            {f"b{res}": nn.Sequential(EqualizedConv2d(image_channels, c, 1), _lrelu())
             for res, c in zip(self.resolutions, self.channels)}
        )
        self.blocks = nn.ModuleDict()
        for res, c, lower in zip(self.resolutions[1:], self.channels[1:], self.channels):
            self.blocks[f"b{res}"] = nn.Sequential(
                EqualizedConv2d(c, c, 3, padding=1), _lrelu(),
                EqualizedConv2d(c, lower, 3, padding=1), _lrelu(),
                nn.AvgPool2d(2),
            )
        self.blocks["b4"] = nn.Sequential(
            MinibatchStdDev(group_size),
            EqualizedConv2d(c4 + 1, c4, 3, padding=1), _lrelu(),
            nn.Flatten(), EqualizedLinear(c4 * 16, c4), _lrelu(),
            EqualizedLinear(c4, 1, gain=1.0),
        )

    def trunk(self, images: torch.Tensor, resolution: int, alpha: float = 1.0) -> torch.Tensor:
        """Features at 4x4 (N, C4, 4, 4), before the minibatch-stddev head."""
        h = self.from_image[f"b{resolution}"](images)
        if resolution > 4:
            h = self.blocks[f"b{resolution}"](h)
            if alpha < 1.0:
                h = torch.lerp(self.from_image[f"b{resolution // 2}"](downsample2(images)), h, alpha)
            res = resolution // 2
            while res > 4:
                h = self.blocks[f"b{res}"](h)
                res //= 2
        return h

    def forward(self, images: torch.Tensor, resolution: int, alpha: float = 1.0) -> torch.Tensor:
        return self.blocks["b4"](self.trunk(images, resolution, alpha)).squeeze(1)
