"""What defines a GAN (``GANConfig``) and the networks it builds (``build_networks``).

Beside the networks rather than the Lightning module, so that sampling, FID and the archive
build the trained generator without importing Lightning. The defaults are the ``gan`` params
section's (``config.gan.GANParams``), read from it rather than repeated; the pipeline passes
every field from the validated section (``gan_config``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cxrsynth.config.gan import GANParams
from cxrsynth.models.dcgan import DCGANDiscriminator, DCGANGenerator
from cxrsynth.models.pggan import PGGANDiscriminator, PGGANGenerator


def _params_default(name: str):
    """A dataclass field whose default is ``GANParams``'s for ``name`` (a fresh list each time)."""
    info = GANParams.model_fields[name]
    if info.default_factory is not None:
        return field(default_factory=info.default_factory)
    return field(default=info.default)


@dataclass
class GANConfig:
    """Everything that defines a GAN run (saved with every checkpoint and beside the generator)."""

    arch: str = _params_default("arch")  # pggan | dcgan
    z_dim: int = _params_default("z_dim")
    channels: list[int] = _params_default("channels")
    fade_images: list[int] = _params_default("fade_images")
    stable_images: list[int] = _params_default("stable_images")
    batch_sizes: list[int] = _params_default("batch_sizes")
    lr: float = _params_default("lr")
    betas: tuple[float, float] = _params_default("betas")
    gp_lambda: float = _params_default("gp_lambda")
    drift: float = _params_default("drift")
    ema_decay: float = _params_default("ema_decay")
    group_size: int = _params_default("group_size")
    seed: int = _params_default("seed")
    log_every: int = _params_default("log_every")
    n_samples: int = _params_default("n_samples")  # fixed latents for the sample grids
    dcgan_images: int = _params_default("dcgan_images")

    def schedule_lists(self) -> dict[str, list[int]]:
        """The per-resolution lists of the training schedule: the keyword arguments of
        ``training.gan_schedule.ProgressiveSchedule`` (resolutions, fade_images, stable_images, batch_sizes)."""
        if self.arch == "dcgan":  # one resolution, no fade-in, paper 003's batch of 32
            return {"resolutions": [64], "fade_images": [0], "stable_images": [self.dcgan_images], "batch_sizes": [32]}
        return {"resolutions": self.resolutions, "fade_images": self.fade_images, "stable_images": self.stable_images,
                "batch_sizes": self.batch_sizes}

    @property
    def resolutions(self) -> list[int]:
        return [64] if self.arch == "dcgan" else [4 * 2**i for i in range(len(self.channels))]


def gan_config(params: GANParams) -> GANConfig:
    """The run configuration from the validated ``gan`` params section."""
    keep = ("arch", "z_dim", "channels", "fade_images", "stable_images", "batch_sizes", "lr", "gp_lambda", "drift",
            "ema_decay", "group_size", "seed", "log_every", "n_samples", "dcgan_images")
    values = {k: getattr(params, k) for k in keep} | {"betas": tuple(params.betas)}
    if params.arch == "dcgan":
        values["z_dim"] = 100
    return GANConfig(**values)


def build_networks(config: GANConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(generator, discriminator) for ``config.arch``."""
    if config.arch == "pggan":
        return (PGGANGenerator(config.z_dim, config.channels),
                PGGANDiscriminator(config.channels, group_size=config.group_size))
    if config.arch == "dcgan":
        return DCGANGenerator(config.z_dim), DCGANDiscriminator()
    raise ValueError(f"gan.arch: unknown architecture {config.arch!r} (pggan | dcgan)")
