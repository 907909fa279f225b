"""Paper 002's convolutional pair: the WGAN (section 4.3.3, Figs 4.9-4.10), WGAN-GP (4.3.4) and
DCGAN (4.3.6) share it.

Generator (the thesis: up-sampling then 3x3 convolutions, batch norm 0.8, tanh out; widths from
the Keras-GAN code it builds on): z → Linear to 2w x 4 x 4 → one block per doubling (nearest x2,
3x3 convolution, batch norm, ReLU; 2w channels, then w) → 3x3 convolution to one channel, tanh;
w = ``width`` (64: the code's 128, 64, 64, ...).
Critic (section 4.3.3): 3x3 convolutions of width/4, width/2, width and 2 x width channels
(the thesis: 16, 32, 64, 128), strides 2, 2, 2, 1, leaky ReLU 0.2 and dropout 0.25, batch norm on
all but the first (off for WGAN-GP, whose penalty is per sample), then one linear output: a
score for the Wasserstein losses, a logit for the DCGAN's BCE. The Keras code's asymmetric zero
padding and its 4x4 WGAN kernels are not kept: every convolution here pads 1 and is 3x3.
"""

from __future__ import annotations

import torch
from torch import nn

from cxrsynth.models.fc_gan import BN_MOMENTUM


class ConvGenerator(nn.Module):
    """z (N, z_dim) → image (N, 1, r, r) in [-1, 1]."""

    def __init__(self, z_dim: int = 100, resolution: int = 32, batch_norm: bool = True, width: int = 64):
        super().__init__()
        self.z_dim, self.resolutions, self.stem_channels = z_dim, [resolution], 2 * width
        self.stem = nn.Sequential(nn.Linear(z_dim, 2 * width * 16), nn.ReLU(True))
        blocks, cin = [], 2 * width
        for i in range(resolution.bit_length() - 3):  # 4 → resolution
            cout = 2 * width if i == 0 else width
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=not batch_norm)]
            blocks += ([nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)] if batch_norm else []) + [nn.ReLU(True)]
            cin = cout
        self.net = nn.Sequential(*blocks, nn.Conv2d(cin, 1, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        return self.net(self.stem(z).view(len(z), self.stem_channels, 4, 4))


class ConvCritic(nn.Module):
    """image (N, 1, r, r) → score (N,)."""

    def __init__(self, resolution: int = 32, width: int = 64, batch_norm: bool = True, dropout: float = 0.25):
        super().__init__()
        self.resolutions = [resolution]
        widths = [width // 4, width // 2, width, 2 * width]
        layers: list[nn.Module] = []
        for i, (cin, cout, stride) in enumerate(zip([1, *widths], widths, (2, 2, 2, 1))):
            layers.append(nn.Conv2d(cin, cout, 3, stride, 1))
            if batch_norm and i:
                layers.append(nn.BatchNorm2d(cout, momentum=BN_MOMENTUM))
            layers += [nn.LeakyReLU(0.2, True)] + ([nn.Dropout(dropout)] if dropout else [])
        side = resolution // 8
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(widths[-1] * side * side, 1))

    def forward(self, images: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        return self.net(images).flatten()
