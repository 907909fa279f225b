"""The ``fid`` section: Fréchet distances (Table 1, Figure 5)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cxrsynth.config.base import Section


class FIDParams(Section):
    """FID split validation (paper 001, section 4.1: Table 1 and Figure 5)."""

    section: ClassVar[str] = "fid"

    extractor: Literal["inception", "classifier", "both", "auto"] = Field(
        "auto", description="inception and both need the Inception file; auto uses it when it is there"
    )
    inception_weights: str | None = Field(None, description="pt_inception-2015-12-05-6726825d.pth; default: weights/inception/")
    n_generated: int = Field(2000, ge=2, description="generated images (the paper: 100,000)")
    truncation: float | None = Field(None, gt=0, description="None: plain N(0, 1) latents, as the paper")
    batch_size: int = Field(256, ge=1)
    seed: int = 0
    device: str = Field("auto", description="auto | cpu | cuda")
