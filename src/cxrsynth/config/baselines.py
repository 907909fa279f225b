"""The ``baselines`` section: the generators of papers 002-004, run by ``baselines/dvc.yaml``.

``common`` holds what every system shares (image side, how many samples each is judged on, the
GAN-train classifier recipe); ``systems`` one entry per system. A system is a model
(``fc_gan``, ``cgan``, ``conv_gan``, ``dcgan``, ``vae``) trained under a loss (``bce``,
``wgan_clip``, ``wgan_gp``, ``elbo``) with an optimiser (``adam``, ``rmsprop``, ``adas``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cxrsynth.config.base import Section


class GANTrainParams(Section):
    """The classifier trained on each system's samples and tested on the real test split (one recipe for
    every row; the rest of the recipe is the ``classifier`` section's)."""

    arch: Literal["densenet121", "resnet18"] = "resnet18"
    max_epochs: int = Field(4, ge=1)
    val_fraction: float = Field(0.125, gt=0, lt=1, description="samples held out for validation")
    seed: int = 0


class CommonParams(Section):
    """What every system shares."""

    resolution: int = Field(32, description="side every system generates (the papers: 64)")
    n_samples: int = Field(2000, ge=16, description="samples each system is judged on (FID, label mix, GAN-train)")
    checkpoint_every: int = Field(8000, ge=1, description="images between complete checkpoints")
    log_every: int = Field(20, ge=1)
    gan_train: GANTrainParams = GANTrainParams()
    memory_widths: list[int] = Field(default_factory=lambda: [32, 64, 128, 192, 256, 320],
                                     description="paper 004 Fig 7: feature-map sizes measured")
    memory_resolutions: list[int] = Field(default_factory=lambda: [64, 128])
    seed: int = 0
    device: str = "auto"
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 = all cores")

    @model_validator(mode="after")
    def _sides(self):
        for side in (self.resolution, *self.memory_resolutions):
            if side < 8 or side & (side - 1):
                raise ValueError(f"resolution: {side} is not a power of two >= 8")
        return self


class SystemParams(Section):
    """One generator: model, loss, optimiser and training length."""

    paper: Literal["002", "003", "004"]
    model: Literal["fc_gan", "cgan", "conv_gan", "dcgan", "vae"]
    loss: Literal["bce", "wgan_clip", "wgan_gp", "elbo"]
    optimiser: Literal["adam", "rmsprop", "adas"] = "adam"
    lr_g: float = Field(2e-4, gt=0, description="generator (VAE: whole model) learning rate")
    lr_d: float = Field(2e-4, gt=0, description="discriminator learning rate (TTUR: differs from lr_g)")
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = Field(1, ge=1, description="D steps per G step")
    clip: float = Field(0.01, gt=0, description="wgan_clip: critic weights clipped to [-clip, clip]")
    gp_lambda: float = Field(10.0, ge=0)
    z_dim: int = Field(100, ge=1)
    width: int = Field(64, ge=1, description="feature-map size (channels of the widest-resolution layer)")
    activation: Literal["relu", "elu"] = "relu"
    batch_norm_g: bool = True
    batch_norm_d: bool = True
    dropout: float = Field(0.0, ge=0, lt=1)
    per_class: bool = Field(False, description="one generator per label, each on the images carrying it (paper 003)")
    images: int = Field(20000, ge=1, description="images shown to the generator (per class when per_class)")
    batch_size: int = Field(32, ge=2)

    @model_validator(mode="after")
    def _consistent(self):
        if (self.model == "vae") != (self.loss == "elbo"):
            raise ValueError("loss: elbo goes with model vae, and only with it")
        if self.loss == "wgan_gp" and self.batch_norm_d:
            raise ValueError("batch_norm_d: WGAN-GP's penalty is per sample; batch norm in the critic breaks it")
        return self


class BaselinesParams(Section):
    """Papers 002-004's generators, compared with the PGGAN on one table."""

    section: ClassVar[str] = "baselines"

    common: CommonParams = CommonParams()
    systems: dict[str, SystemParams]

    @model_validator(mode="after")
    def _names(self):
        bad = [name for name in self.systems if not name.replace("_", "").isalnum() or name.startswith("pggan")]
        if bad:
            raise ValueError(f"systems: names must be letters, digits and _ and not start with pggan: {bad}")
        return self
