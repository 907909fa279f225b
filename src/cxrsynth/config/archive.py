"""The ``archive`` section: the class-optimised synthetic archive (Algorithm 1)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from cxrsynth.config.base import Section


class ArchiveParams(Section):
    """Class-optimised synthetic archive (Algorithm 1, sections 3.4 and 4.3)."""

    section: ClassVar[str] = "archive"

    size: int = Field(1500, ge=1, description="images in the archive (full scale: as many as NIH)")
    scorer: Literal["discriminator", "densenet"] = Field(
        "discriminator", description="classifier whose class score is raised: the re-purposed D or the DenseNet"
    )
    compare_per_class: int = Field(8, ge=0, description="latents per class optimised with the other scorer, "
                                   "to report both scorers' success rates (0: off)")
    truncation: float = Field(0.7, gt=0, description="initial z from a normal truncated at this value")
    optimiser: Literal["adam", "sgd"] = "adam"
    step_size: float = Field(0.05, gt=0, description="learning rate of the latent updates")
    max_steps: int = Field(60, ge=1, description="steps before an attempt gives up and restarts from a fresh z")
    max_attempts: int = Field(4, ge=1, description="fresh latents tried per optimisation before it counts as failed")
    batch_size: int = Field(64, ge=1, description="latents optimised together")
    parallel_restarts: bool = Field(False, description="once the queue is empty, idle slots run slow jobs' "
                                    "remaining attempts at the same time (fewer steps; pays on a GPU, not a CPU)")
    severity_mean: float = Field(1.0, description="T_c = Youden logit + |N(mean, std)|")
    severity_std: float = Field(1.0, ge=0)
    local_std: float = Field(0.2, ge=0, description="local sampling: follow-ups at z* + N(0, std^2)")
    follow_ups: tuple[int, int] = Field((3, 6), description="images per synthetic patient, drawn uniformly")
    label_thresholds: Literal["youden", "prevalence"] = Field(
        "youden", description="labeller cut-offs: the classifier's Youden thresholds, or per-class cut-offs "
        "at which it labels the real validation images as often as the source holds each label")
    shard_images: int = Field(10_000, ge=1, description="PNGs per images_NNN.tar shard")
    seed: int = 0
    device: str = "auto"

    @field_validator("follow_ups")
    @classmethod
    def _range(cls, value):
        if not 1 <= value[0] <= value[1]:
            raise ValueError("follow_ups must be [min, max] with 1 <= min <= max")
        return value
