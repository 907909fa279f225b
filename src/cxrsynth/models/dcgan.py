"""The 64x64x1 DCGAN baseline of paper 003 (Tables 1 and 2, layer for layer).

Generator: z (100) → ConvTranspose 4x4 to 512x4x4 (the paper's "fully connected layer reshaped
to 4x4x512"), then four stride-2 transposed convolutions to 1x64x64; batch norm and ReLU on
every layer but the last, which is tanh. 3,574,656 parameters.
Discriminator: four stride-2 4x4 convolutions (64, 128, 256, 512), batch norm on all but the
first, leaky ReLU 0.2, dropout after layers 1, 3 and 4, and a 4x4 convolution to one score.
2,763,520 parameters. The paper ends with a sigmoid; we return the logit and train with
BCE-with-logits, the numerically stable form of the same loss. Weights start N(0, 0.02).
Dropout's rate is not given in the paper: 0.25 is our choice.
"""

from __future__ import annotations

import torch
from torch import nn


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z (N, 100) → image (N, 1, 64, 64) in [-1, 1]. ``resolution``/``alpha`` are accepted and ignored,
    so the generator fits the same sampling API as the PGGAN."""

    resolutions = [64]

    def __init__(self, z_dim: int = 100):
        super().__init__()
        self.z_dim = z_dim

        def up(cin, cout, stride=2, padding=1, last=False):
            layers = [nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False)]
            return layers + ([nn.Tanh()] if last else [nn.BatchNorm2d(cout), nn.ReLU(True)])

        self.net = nn.Sequential(
            *up(z_dim, 512, stride=1, padding=0), *up(512, 256), *up(256, 128), *up(128, 64), *up(64, 1, last=True)
        )
        self.apply(_init)

    def forward(self, z: torch.Tensor, resolution: int = 64, alpha: float = 1.0) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image (N, 1, 64, 64) → logit (N,)."""

    resolutions = [64]

    def __init__(self, dropout: float = 0.25):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True), nn.Dropout(dropout),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, True),
            nn.Conv2d(128, 256, 4, 2, 1, bias=False), nn.BatchNorm2d(256), nn.LeakyReLU(0.2, True), nn.Dropout(dropout),
            nn.Conv2d(256, 512, 4, 2, 1, bias=False), nn.BatchNorm2d(512), nn.LeakyReLU(0.2, True), nn.Dropout(dropout),
            nn.Conv2d(512, 1, 4, 1, 0, bias=False),
        )
        self.apply(_init)

    def forward(self, images: torch.Tensor, resolution: int = 64, alpha: float = 1.0) -> torch.Tensor:
        return self.net(images).flatten()
