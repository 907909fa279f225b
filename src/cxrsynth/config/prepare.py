"""The ``prepare`` section: the greyscale image store."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from cxrsynth.config.base import Section


class PrepareParams(Section):
    """The greyscale pyramid store."""

    section: ClassVar[str] = "prepare"

    size: int = Field(64, description="largest side stored; a power of two")
    min_size: int = Field(4, description="smallest pyramid level; a power of two")
    workers: int = Field(0, ge=0, description="decode processes; 0 = all cores")
    max_reject_fraction: float = Field(
        0.01, ge=0.0, le=1.0, description="share of films that may be rejected (unreadable, or no usable metadata row)")
    max_pixels: int = Field(
        4096 * 4096, ge=1, le=1 << 30,
        description="films with more pixels (by their header) are rejected undecoded; NIH's are 1024x1024")
    chunk: int = Field(64, ge=1, description="images per worker task")

    @field_validator("size", "min_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value < 4 or value & (value - 1):
            raise ValueError("must be a power of two >= 4")
        return value

    @model_validator(mode="after")
    def _order(self):
        if self.min_size > self.size:
            raise ValueError(f"min_size ({self.min_size}) exceeds size ({self.size})")
        return self
