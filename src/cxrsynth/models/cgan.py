"""Paper 002's conditional GAN (its section 4.3.5, Figs 4.13-4.14), conditioned on a label set.

The thesis conditions on two labels (COVID positive or negative); here the condition is the
multi-hot vector of the 15 NIH labels (No Finding plus the 14 findings), so one generator makes
every label mix the source has. As in the Keras-GAN code the thesis builds on, the condition is
embedded and multiplied into the inputs: z ⊙ E_g(y) for the generator, flat image ⊙ E_d(y) for the
discriminator (for a multi-hot y, E(y) sums the labels' embeddings: a bias-free linear layer).
The discriminator has three 512-wide leaky-ReLU layers with dropout 0.4 instead of batch norm.
"""

from __future__ import annotations

import torch
from torch import nn

from cxrsynth.models.fc_gan import mlp_generator_body


def grid_conditions(n: int, conditions: int, device) -> torch.Tensor:
    """Latent i conditioned on label i mod ``conditions`` alone: what the fixed sample grids show."""
    return nn.functional.one_hot(torch.arange(n, device=device) % conditions, conditions).float()


class CGANGenerator(nn.Module):
    """(z (N, z_dim), labels (N, C) multi-hot) → image (N, 1, r, r) in [-1, 1]."""

    conditional = True

    def __init__(self, z_dim: int = 100, resolution: int = 32, conditions: int = 15):
        super().__init__()
        self.z_dim, self.resolutions, self.conditions = z_dim, [resolution], conditions
        self.embed = nn.Linear(conditions, z_dim, bias=False)
        self.net = mlp_generator_body(z_dim, resolution * resolution)

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = grid_conditions(len(z), self.conditions, z.device)
        r = self.resolutions[0]
        return self.net(z * self.embed(labels.float())).view(len(z), 1, r, r)


class CGANDiscriminator(nn.Module):
    """(image (N, 1, r, r), labels (N, C)) → logit (N,)."""

    conditional = True

    def __init__(self, resolution: int = 32, conditions: int = 15, dropout: float = 0.4):
        super().__init__()
        self.resolutions = [resolution]
        pixels = resolution * resolution
        self.embed = nn.Linear(conditions, pixels, bias=False)
        self.net = nn.Sequential(
            nn.Linear(pixels, 512), nn.LeakyReLU(0.2, True),
            nn.Linear(512, 512), nn.LeakyReLU(0.2, True), nn.Dropout(dropout),
            nn.Linear(512, 512), nn.LeakyReLU(0.2, True), nn.Dropout(dropout),
            nn.Linear(512, 1),
        )

    def forward(self, images: torch.Tensor, resolution: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images.flatten(1) * self.embed(labels.float())).flatten()
