"""The ``embed`` section: the encoder behind Table 2's Embedded column."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cxrsynth.config.base import Section


class EmbedParams(Section):
    """Encoder G^-1 (the discriminator's body with a z head) for the 'Embedded' column of Table 2."""

    section: ClassVar[str] = "embed"

    init: Literal["random", "discriminator"] = Field(
        "random", description="encoder start: fresh weights, or the trained discriminator's (the paper's wording)")
    train_images: int = Field(30_000, ge=64, description="generator samples the encoder trains on")
    n_images: int | None = Field(None, ge=2, description="real train/val images to embed, whole patients "
                                 "drawn at random; None: all of them")
    batch_size: int = Field(64, ge=2)
    lr: float = Field(1e-3, gt=0)
    seed: int = 0
    device: str = "auto"
