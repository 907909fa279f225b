"""The ``archive`` section: the class-optimised synthetic archive (Algorithm 1)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from cxrsynth.config.base import Section


class ArchiveParams(Section):
    """Class-optimised synthetic archive (Algorithm 1, sections 3.4 and 4.3)."""

    section: ClassVar[str] = "archive"

    size: int = Field(4000, ge=1, description="images in the archive (full scale: as many as NIH)")
    pilot_patients: int = Field(3, ge=1, description="patients per class in the pilot pass that measures which "
                                "labels each target class brings")
    top_up_fraction: float = Field(0.2, ge=0, lt=1, description="share of the images after the pilot planned "
                                   "last, from every label made so far, to fill what is still short")
    oversample: float = Field(1.5, ge=1, description="patients generated per planned patient in the main and "
                              "top-up passes; each class keeps those whose labels fit the source's mix best")
    retries: int = Field(3, ge=0, description="times a patient whose optimisation failed is queued again "
                         "with fresh latents")
    max_shortfall: float = Field(0.01, ge=0, le=1, description="largest share of archive.size that may be "
                                 "missing; beyond it the stage fails and writes no archive")
    max_minutes: float | None = Field(120.0, gt=0, description="longest the build may take: after the pilot "
                                      "pass the stage forecasts the main and top-up passes and stops, writing "
                                      "nothing, if the pilot's minutes plus the forecast exceed this (null: no limit)")
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
    label_thresholds: Literal["calibrated", "youden"] = Field(
        "calibrated", description="labeller cut-offs: per class, the score above which the classifier labels "
        "the real validation images exactly as often as they carry the label (calibrated), or its Youden "
        "thresholds (the optimisation's T_c either way)")
    privacy_filter: bool = Field(True, description="replace archive patients the privacy audit flags (any "
                                 "image too close to a training patient) with newly generated ones; settings "
                                 "in the privacy section")
    shard_images: int = Field(10_000, ge=1, description="PNGs per images_NNN.tar shard")
    seed: int = 0
    device: str = "auto"

    @field_validator("follow_ups")
    @classmethod
    def _range(cls, value):
        if not 1 <= value[0] <= value[1]:
            raise ValueError("follow_ups must be [min, max] with 1 <= min <= max")
        return value
