"""Paper 002's variational autoencoder (section 4.3.7, Figs 4.17-4.18).

The thesis takes its VAE from a public Keras example and shows the encoder and decoder only as
figures, which this text does not carry, so the layers are ours, in the usual convolutional
form: encoder 4x4 stride-2 convolutions (width/2, width, 2 x width; batch norm, leaky ReLU 0.2)
to the mean and log-variance of a ``z_dim`` Gaussian; decoder the mirror (linear to 2w x r/8 x
r/8, transposed convolutions, batch norm, ReLU) to one channel of Bernoulli logits. The loss is
the ELBO of the thesis' section 2.4: per-pixel binary cross-entropy summed per image plus the
KL divergence to N(0, I), averaged over the batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class VAEEncoder(nn.Module):
    """image (N, 1, r, r) in [-1, 1] → (mean, log-variance), each (N, z_dim)."""

    def __init__(self, z_dim: int = 100, resolution: int = 32, width: int = 64):
        super().__init__()
        self.resolutions = [resolution]
        widths, layers = [width // 2, width, 2 * width], []
        for cin, cout in zip([1, *widths], widths):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
        self.net = nn.Sequential(*layers, nn.Flatten())
        features = widths[-1] * (resolution // 8) ** 2
        self.mean, self.log_var = nn.Linear(features, z_dim), nn.Linear(features, z_dim)

    def forward(self, images: torch.Tensor, resolution: int | None = None, alpha: float = 1.0):
        h = self.net(images)
        return self.mean(h), self.log_var(h)


class VAEDecoder(nn.Module):
    """z (N, z_dim) → image (N, 1, r, r) in [-1, 1] (``logits`` gives the Bernoulli logits)."""

    def __init__(self, z_dim: int = 100, resolution: int = 32, width: int = 64):
        super().__init__()
        self.z_dim, self.resolutions, self.width = z_dim, [resolution], width
        self.side = resolution // 8
        self.stem = nn.Sequential(nn.Linear(z_dim, 2 * width * self.side**2), nn.ReLU(True))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True),
            nn.ConvTranspose2d(width // 2, 1, 4, 2, 1),
        )

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.stem(z).view(len(z), 2 * self.width, self.side, self.side))

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        return torch.tanh(self.logits(z) / 2)  # = 2 sigmoid(logits) - 1


def elbo_loss(encoder: VAEEncoder, decoder: VAEDecoder, real: torch.Tensor, eps: torch.Tensor) -> dict[str, torch.Tensor]:
    """Negative ELBO (batch mean) for ``real`` in [-1, 1], with reparameterisation noise ``eps``."""
    mean, log_var = encoder(real)
    z = mean + torch.exp(0.5 * log_var) * eps
    target = (real + 1) / 2
    reconstruction = F.binary_cross_entropy_with_logits(decoder.logits(z), target, reduction="none").flatten(1).sum(1)
    kl = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(1)
    return {"loss": (reconstruction + kl).mean(), "reconstruction": reconstruction.mean().detach(), "kl": kl.mean().detach()}
