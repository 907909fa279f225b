"""The ``gan`` section: the progressive growing GAN, the DCGAN baseline or a diffusion generator."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cxrsynth.config.base import Section
from cxrsynth.config.diffusion import DiffusionParams

#: the ``arch`` values that train a diffusion model (``gan.diffusion``) rather than a GAN
DIFFUSION_ARCHS = ("ddpm", "ldm")


class GANParams(Section):
    """Progressive growing GAN (paper 001, section 3.2), the DCGAN baseline (paper 003), or a class-conditional
    diffusion model in pixel space (``ddpm``) or on an autoencoder's latents (``ldm``), set in ``diffusion``."""

    section: ClassVar[str] = "gan"

    arch: Literal["pggan", "dcgan", "ddpm", "ldm"] = "pggan"
    dcgan_images: int = Field(6000, ge=32, description="images the DCGAN baseline trains on (64x64, batch 32)")
    seed: int = 0
    resolution: int = Field(32, description="final side; the schedule lists one entry per resolution 4..this")
    z_dim: int = Field(512, ge=1)
    channels: list[int] = Field(default_factory=lambda: [512, 512, 512, 512, 256, 128, 64, 32, 16][:4])
    fade_images: list[int] = Field(default_factory=lambda: [0, 800_000, 800_000, 800_000])
    stable_images: list[int] = Field(default_factory=lambda: [800_000] * 4)
    batch_sizes: list[int] = Field(default_factory=lambda: [16] * 4, description="global: images per step over all devices")
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.0, 0.99)
    gp_lambda: float = Field(10.0, ge=0)
    drift: float = Field(0.001, ge=0)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    group_size: int = Field(4, ge=1)
    checkpoint_every: int = Field(10_000, ge=1, description="images between complete checkpoints")
    keep_checkpoints: int = Field(3, ge=1, description="checkpoints of other runs kept in checkpoints/kept/: the "
                                  "newest this many (one moved aside just now is never removed)")
    resume_from: str | None = Field(None, description="a checkpoint to continue under these params when this run has "
                                    "none of its own: a .ckpt file, a folder holding last.ckpt, or a kept run's name")
    log_every: int = Field(20, ge=1, description="steps between loss reads (the only host syncs)")
    n_samples: int = Field(64, ge=4)
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = Field(1, ge=1)
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: bool = True
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 = all cores")
    memory_limit_gib: float = Field(4.0, ge=0, description="a pyramid level larger than this stays memory-mapped")
    diffusion: DiffusionParams = Field(default_factory=DiffusionParams)

    @property
    def is_diffusion(self) -> bool:
        """Whether ``arch`` trains a diffusion model (no discriminator, no latent to optimise)."""
        return self.arch in DIFFUSION_ARCHS

    @property
    def final_resolution(self) -> int:
        """Side of the generated images (the DCGAN baseline is always 64x64)."""
        return 64 if self.arch == "dcgan" else self.resolution

    @model_validator(mode="after")
    def _per_resolution(self):
        if self.arch == "dcgan" or self.is_diffusion:  # the PGGAN lists are not used
            return self
        if self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise ValueError("resolution: must be a power of two >= 4")
        n = self.resolution.bit_length() - 2  # 4 → 1, 8 → 2, ...
        for key in ("channels", "fade_images", "stable_images", "batch_sizes"):
            if len(getattr(self, key)) != n:
                raise ValueError(f"{key}: needs {n} entries (one per resolution 4..{self.resolution})")
        return self

    @model_validator(mode="after")
    def _global_batches(self):
        """Batch sizes are global (the total over every device, as the paper states them): each must
        split evenly over the processes when their number is given."""
        if isinstance(self.devices, int) and self.devices > 0:
            processes = self.devices * self.num_nodes
            batches = ([32] if self.arch == "dcgan" else [self.diffusion.batch_size] if self.is_diffusion
                       else self.batch_sizes)
            uneven = [b for b in batches if b % processes]
            if uneven:
                raise ValueError(f"batch_sizes: {uneven} do not split evenly over {processes} processes "
                                 "(devices x num_nodes); batch sizes are global")
        return self
