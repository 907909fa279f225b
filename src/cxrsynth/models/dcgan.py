"""DCGANs: paper 003's 64x64x1 baseline layer for layer, and paper 004's variants of it.

Defaults give paper 003 (Tables 1 and 2). Generator: z (100) → ConvTranspose 4x4 to 512x4x4
(the paper's "fully connected layer reshaped to 4x4x512"), then four stride-2 transposed
convolutions to 1x64x64; batch norm and ReLU on every layer but the last, which is tanh.
3,574,656 parameters. Discriminator: four stride-2 4x4 convolutions (64, 128, 256, 512), batch
norm on all but the first, leaky ReLU 0.2, dropout after layers 1, 3 and 4, and a 4x4
convolution to one score. 2,763,520 parameters. The paper ends with a sigmoid; we return the
logit and train with BCE-with-logits, the numerically stable form of the same loss. Weights
start N(0, 0.02). Dropout's rate is not given in the paper: 0.25 is our choice.

Paper 004 varies this network (its Table II and Figure 7): ``activation="elu"`` with
``batch_norm=False`` in G and no dropout in D is its best configuration; ``width`` is its
"feature map size" (channels width x 8, x 4, x 2, x 1; 64 gives the layers above) and
``resolution`` adds or drops one up/down-sampling block per factor of two.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _widths(resolution: int, width: int) -> list[int]:
    """Channels of the 4x4 .. resolution/2 feature maps: width * 2^k, largest first (64 px: 8w, 4w, 2w, w)."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"dcgan: resolution must be a power of two >= 8, not {resolution}")
    blocks = resolution.bit_length() - 3  # 8 px: 1 block, 64 px: 4 blocks
    return [width * 2 ** (blocks - 1 - i) for i in range(blocks)]


def _activation(name: str, generator: bool) -> nn.Module:
    if name == "elu":
        return nn.ELU(inplace=True)
    if name == "relu":  # DCGAN's pair: ReLU in G, leaky ReLU 0.2 in D
        return nn.ReLU(True) if generator else nn.LeakyReLU(0.2, True)
    raise ValueError(f"dcgan: activation must be relu or elu, not {name!r}")


class DCGANGenerator(nn.Module):
    """z (N, z_dim) → image (N, 1, r, r) in [-1, 1]. ``resolution``/``alpha`` of ``forward`` are accepted
    and ignored, so the generator fits the same sampling API as the PGGAN."""

    def __init__(self, z_dim: int = 100, resolution: int = 64, width: int = 64, activation: str = "relu",
                 batch_norm: bool = True):
        super().__init__()
        self.z_dim = z_dim
        self.resolutions = [resolution]
        widths = _widths(resolution, width)

        def up(cin, cout, stride=2, padding=1, last=False):
            layers = [nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=not batch_norm and not last)]
            if last:
                return layers + [nn.Tanh()]
            return layers + ([nn.BatchNorm2d(cout)] if batch_norm else []) + [_activation(activation, True)]

        layers = up(z_dim, widths[0], stride=1, padding=0)
        for cin, cout in pairwise(widths):
            layers += up(cin, cout)
        self.net = nn.Sequential(*layers, *up(widths[-1], 1, last=True))
        self.apply(_init)

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image (N, 1, r, r) → logit (N,). Batch norm (when on) sits on every layer but the first;
    dropout follows every layer but the second, as paper 003's Table 2 (``dropout=0`` removes it)."""

    def __init__(self, dropout: float = 0.25, resolution: int = 64, width: int = 64, activation: str = "relu",
                 batch_norm: bool = True):
        super().__init__()
        self.resolutions = [resolution]
        widths = _widths(resolution, width)[::-1]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip([1, *widths], widths)):
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=not batch_norm))
            if batch_norm and i:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(_activation(activation, False))
            if dropout and i != 1:
                layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers, nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False))
        self.apply(_init)

    def forward(self, images: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        return self.net(images).flatten()
