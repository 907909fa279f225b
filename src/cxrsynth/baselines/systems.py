"""What defines one baseline run (``BaselineConfig``), and the networks and optimisers it builds."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cxrsynth.baselines.adas import Adas
from cxrsynth.labels import LABELS
from cxrsynth.models.cgan import CGANDiscriminator, CGANGenerator
from cxrsynth.models.conv_gan import ConvCritic, ConvGenerator
from cxrsynth.models.dcgan import DCGANDiscriminator, DCGANGenerator
from cxrsynth.models.fc_gan import FCDiscriminator, FCGenerator
from cxrsynth.models.vae import VAEDecoder, VAEEncoder


@dataclass
class BaselineConfig:
    """Everything that defines a baseline run (saved with every checkpoint and beside the generator)."""

    system: str = "dcgan"
    paper: str = "003"
    model: str = "dcgan"  # fc_gan | cgan | conv_gan | dcgan | vae
    loss: str = "bce"  # bce | wgan_clip | wgan_gp | elbo
    optimiser: str = "adam"  # adam | rmsprop | adas
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1
    clip: float = 0.01
    gp_lambda: float = 10.0
    z_dim: int = 100
    width: int = 64
    activation: str = "relu"
    batch_norm_g: bool = True
    batch_norm_d: bool = True
    dropout: float = 0.0
    conditions: int = 0  # label-vector length the networks are conditioned on (0: unconditional)
    resolution: int = 32
    images: int = 20000
    batch_size: int = 32
    seed: int = 0
    log_every: int = 20
    n_samples: int = 64  # fixed latents of the sample grids

    def schedule_lists(self) -> dict[str, list[int]]:
        """The training schedule (``training.gan_schedule.ProgressiveSchedule``'s keyword arguments):
        one phase at one resolution, no growing, no fade-in."""
        return {"resolutions": [self.resolution], "fade_images": [0], "stable_images": [self.images],
                "batch_sizes": [self.batch_size]}

    @property
    def resolutions(self) -> list[int]:
        return [self.resolution]


def config_from_params(name: str, system, common, seed_offset: int = 0) -> BaselineConfig:
    """The run configuration of ``baselines.systems.<name>`` (validated ``SystemParams``) under ``common``."""
    keep = ("paper", "model", "loss", "optimiser", "lr_g", "lr_d", "n_critic", "clip", "gp_lambda", "z_dim", "width",
            "activation", "batch_norm_g", "batch_norm_d", "dropout", "images", "batch_size")
    return BaselineConfig(system=name, betas=tuple(system.betas), conditions=len(LABELS) if system.model == "cgan" else 0,
                          resolution=common.resolution, seed=common.seed + seed_offset, log_every=common.log_every,
                          **{k: getattr(system, k) for k in keep})


def build_networks(c: BaselineConfig) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) of ``c.model``; for the VAE (decoder, encoder)."""
    r = c.resolution
    if c.model == "fc_gan":
        return FCGenerator(c.z_dim, r, c.batch_norm_g), FCDiscriminator(r)
    if c.model == "cgan":
        return CGANGenerator(c.z_dim, r, c.conditions), CGANDiscriminator(r, c.conditions)
    if c.model == "conv_gan":
        return ConvGenerator(c.z_dim, r, c.batch_norm_g, c.width), ConvCritic(r, c.width, c.batch_norm_d, c.dropout)
    if c.model == "dcgan":
        return (DCGANGenerator(c.z_dim, r, c.width, c.activation, c.batch_norm_g),
                DCGANDiscriminator(c.dropout, r, c.width, c.activation, c.batch_norm_d))
    if c.model == "vae":
        return VAEDecoder(c.z_dim, r, c.width), VAEEncoder(c.z_dim, r, c.width)
    raise ValueError(f"baselines: unknown model {c.model!r}")


def build_optimiser(name: str, params, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    """Adam (with ``betas``), RMSprop (the WGAN paper's) or AdaS at learning rate ``lr``."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(float(b) for b in betas))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "adas":
        return Adas(params, lr=lr)
    raise ValueError(f"baselines: unknown optimiser {name!r}")
