"""The ``gan.diffusion`` sub-section: the class-conditional diffusion generator (``gan.arch`` ddpm | ldm).

It sits under ``gan`` so that one param swaps the generator behind the archive
(``dvc exp run -S gan.arch=ddpm``); the PGGAN's keys are not read by a diffusion run and these not by a GAN run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DiffusionParams(BaseModel):
    """A MONAI ``DiffusionModelUNet`` conditioned on the 15-label multi-hot vector (cross-attention over one
    token per label), trained with classifier-free guidance; ``ldm`` puts a MONAI ``AutoencoderKL`` in front."""

    model_config = ConfigDict(extra="forbid")

    images: int = Field(32_000, ge=1, description="images shown to the UNet (the diffusion phase)")
    batch_size: int = Field(32, ge=1, description="global: images per step over all devices")
    lr: float = Field(4e-4, gt=0)
    channels: list[int] = Field(default_factory=lambda: [16, 32, 64], description="UNet channels per level")
    attention_levels: list[bool] = Field(default_factory=lambda: [False, False, True])
    num_res_blocks: int = Field(1, ge=1)
    norm_groups: int = Field(8, ge=1)
    head_channels: int = Field(32, ge=1)
    label_dim: int = Field(64, ge=1, description="width of the label tokens the UNet cross-attends to")
    train_timesteps: int = Field(1000, ge=2)
    beta_schedule: str = Field("linear_beta", description="MONAI schedule: linear_beta | scaled_linear_beta | cosine")
    p_uncond: float = Field(0.1, ge=0, lt=1, description="share of training steps with the labels dropped (CFG)")
    sample_steps: int = Field(10, ge=1, description="DDIM steps per image; must divide train_timesteps")
    guidance: float = Field(2.0, ge=0, description="classifier-free guidance scale (0: conditional only, no guidance)")
    sample_dtype: Literal["bfloat16", "float32"] = Field(
        "bfloat16", description="the UNet's arithmetic when sampling (autocast; the DDIM update stays float32): "
        "bfloat16 draws 2.2x as many films per second on the demo's CPU (AMX) and is what GPUs sample in")
    archive_oversample: float = Field(1.25, ge=1, description="candidate patients drawn per planned one in the "
                                      "archive, in place of archive.oversample (conditional draws need fewer)")
    archive_extra_findings: int = Field(1, ge=0, le=14, description="the archive keeps a draw when the labeller "
                                        "confirms its target class and reads at most this many findings its "
                                        "condition does not carry (sampling only)")
    ema_decay: float = Field(0.999, ge=0, lt=1)
    # the latent model (arch ldm): a MONAI AutoencoderKL trained first, then the UNet on its scaled latents
    ae_images: int = Field(20_000, ge=0, description="images shown to the autoencoder before the UNet (ldm)")
    ae_channels: list[int] = Field(default_factory=lambda: [32, 64, 64], description="one entry per level: "
                                   "the latent side is the image side / 2^(levels - 1)")
    ae_latent_channels: int = Field(4, ge=1)
    ae_lr: float = Field(2e-4, gt=0)
    ae_kl_weight: float = Field(1e-6, ge=0)

    @model_validator(mode="after")
    def _levels(self):
        if len(self.attention_levels) != len(self.channels):
            raise ValueError("attention_levels: one entry per entry of channels")
        if self.train_timesteps % self.sample_steps:
            raise ValueError(f"sample_steps: {self.sample_steps} must divide train_timesteps ({self.train_timesteps}): "
                             "each DDIM step moves train_timesteps / sample_steps back")
        for key in ("channels", "ae_channels"):
            if any(c % self.norm_groups for c in getattr(self, key)):
                raise ValueError(f"{key}: every entry must be a multiple of norm_groups ({self.norm_groups})")
        return self
