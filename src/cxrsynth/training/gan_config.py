"""What defines a GAN run (``GANConfig``) and the networks it builds.

Apart from the Lightning module so that sampling, FID and the archive build the trained
generator without importing Lightning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cxrsynth.models.dcgan import DCGANDiscriminator, DCGANGenerator
from cxrsynth.models.pggan import PGGANDiscriminator, PGGANGenerator
from cxrsynth.training.gan_schedule import ProgressiveSchedule


@dataclass
class GANConfig:
    """Everything that defines a GAN run (saved with every checkpoint)."""

    arch: str = "pggan"  # pggan | dcgan
    z_dim: int = 512
    channels: list[int] = field(default_factory=lambda: [512, 512, 512, 512, 256, 128, 64, 32, 16])
    fade_images: list[int] = field(default_factory=lambda: [0] + [800_000] * 8)
    stable_images: list[int] = field(default_factory=lambda: [800_000] * 9)
    batch_sizes: list[int] = field(default_factory=lambda: [16] * 9)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.0, 0.99)
    gp_lambda: float = 10.0
    drift: float = 0.001
    ema_decay: float = 0.999
    group_size: int = 4
    seed: int = 0
    log_every: int = 50
    n_samples: int = 64  # fixed latents for the sample grids
    dcgan_images: int = 6000

    def schedule(self) -> ProgressiveSchedule:
        if self.arch == "dcgan":  # one resolution, no fade-in, paper 003's batch of 32
            return ProgressiveSchedule([64], [0], [self.dcgan_images], [32])
        return ProgressiveSchedule(self.resolutions, self.fade_images, self.stable_images, self.batch_sizes)

    @property
    def resolutions(self) -> list[int]:
        return [64] if self.arch == "dcgan" else [4 * 2**i for i in range(len(self.channels))]


def build_networks(config: GANConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(generator, discriminator) for ``config.arch``."""
    if config.arch == "pggan":
        return (PGGANGenerator(config.z_dim, config.channels),
                PGGANDiscriminator(config.channels, group_size=config.group_size))
    if config.arch == "dcgan":
        return DCGANGenerator(config.z_dim), DCGANDiscriminator()
    raise ValueError(f"gan.arch: unknown architecture {config.arch!r} (pggan | dcgan)")
