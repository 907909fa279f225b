"""Paper 002's fully connected GAN (its section 4.3.2, Figs 4.7-4.8).

Generator: z → [Linear 256, 512, 1024, each leaky ReLU then batch norm] → Linear(r²), tanh.
Discriminator: flattened image → Linear 512 → Linear 256 (leaky ReLU 0.2) → one logit. The
thesis gives the generator's widths and Keras' batch-norm momentum 0.8 (PyTorch's 0.2), but not
the discriminator's widths or slopes; those follow the Keras-GAN code the thesis builds on.
"""

from __future__ import annotations

import torch
from torch import nn

BN_MOMENTUM = 0.2  # Keras' momentum=0.8 (the weight of the old running statistics)


def mlp_generator_body(z_dim: int, pixels: int, batch_norm: bool = True) -> nn.Sequential:
    """z_dim → 256 → 512 → 1024 → pixels (tanh), leaky ReLU 0.2 then batch norm on the hidden layers."""
    layers: list[nn.Module] = []
    for cin, cout in zip((z_dim, 256, 512), (256, 512, 1024)):
        layers += [nn.Linear(cin, cout), nn.LeakyReLU(0.2, True)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(cout, momentum=BN_MOMENTUM))
    return nn.Sequential(*layers, nn.Linear(1024, pixels), nn.Tanh())


class FCGenerator(nn.Module):
    """z (N, z_dim) → image (N, 1, r, r) in [-1, 1]."""

    def __init__(self, z_dim: int = 100, resolution: int = 32, batch_norm: bool = True):
        super().__init__()
        self.z_dim, self.resolutions = z_dim, [resolution]
        self.net = mlp_generator_body(z_dim, resolution * resolution, batch_norm)

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        r = self.resolutions[0]
        return self.net(z).view(len(z), 1, r, r)


class FCDiscriminator(nn.Module):
    """image (N, 1, r, r) → logit (N,)."""

    def __init__(self, resolution: int = 32):
        super().__init__()
        self.resolutions = [resolution]
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(resolution * resolution, 512), nn.LeakyReLU(0.2, True),
                                 nn.Linear(512, 256), nn.LeakyReLU(0.2, True), nn.Linear(256, 1))

    def forward(self, images: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        return self.net(images).flatten()
