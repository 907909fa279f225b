"""The ``prevalence`` section: the label-prevalence bootstrap (Figure 6)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cxrsynth.config.base import Section


class PrevalenceParams(Section):
    """Label prevalence of real and generated images with bootstrap intervals (section 4.2, Figure 6)."""

    section: ClassVar[str] = "prevalence"

    n_generated: int = Field(2000, ge=1, description="generated images labelled (the paper: 130,000)")
    n_bootstrap: int = Field(10_000, ge=100, description="bootstrap resamples (the paper: 10,000)")
    real_subset: Literal["all", "test"] = Field(
        "test", description="real images labelled: all (the paper) or the test split the classifier never saw"
    )
    level: float = Field(0.95, gt=0, lt=1)
    truncation: float | None = Field(None, gt=0)
    batch_size: int = Field(256, ge=1)
    seed: int = 0
    device: str = "auto"
