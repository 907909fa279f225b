"""The ``split`` section: the patient-level train/val/test split."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from cxrsynth.config.base import Section


class SplitParams(Section):
    """Patient-level train/val/test split."""

    section: ClassVar[str] = "split"

    method: Literal["iterative", "official"] = "iterative"
    weighting: Literal["images", "patients"] = Field(
        "images", description="images: weigh patients by image counts; patients: the paper's averaged labels"
    )
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 0

    @field_validator("fractions")
    @classmethod
    def _sum_to_one(cls, value):
        if any(f <= 0 for f in value) or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError("train/val/test fractions must be positive and sum to 1")
        return value
