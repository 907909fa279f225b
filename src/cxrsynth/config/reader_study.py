"""The ``reader_study`` section: the real-or-generated review of paper 001 section 4.4 and its analysis."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cxrsynth.config.base import Section

GRADES = ("consultant", "registrar", "other")


class ReaderStudyParams(Section):
    """Study design (grids of films, pairs), display, and the simulated readers that stand in for
    radiologists on the demo."""

    section: ClassVar[str] = "reader_study"

    grids: int = Field(6, ge=0, description="grid screens (the paper: 6)")
    grid_size: int = Field(6, ge=1, le=16, description="films per grid (the paper: 6)")
    real_probability: float = Field(0.5, ge=0, le=1, description="chance that a grid film is real (the paper: 0.5)")
    pairs: int = Field(20, ge=0, description="pair screens, one real and one generated film (the paper: 20)")
    display_size: int = Field(260, ge=32, le=2048, description="side of every film shown, in pixels (the paper: 260)")
    resolution: int | None = Field(None, ge=4, description="stored side both kinds of film are taken at before "
                                   "resizing to display_size; null: the generator's side")
    generated_from: Literal["archive", "samples"] = Field(
        "archive", description="archive: films of the class-optimised archive; samples: fresh N(0, 1) samples")
    answers: str = Field("answers.sqlite", pattern=r"^[\w.-]+$", description="file name, in reader_answers/, "
                         "of the human answers database the app writes (absent: no human readers yet)")
    simulated_readers: list[Literal["consultant", "registrar", "other"]] = Field(
        ["consultant"] * 3 + ["registrar"] * 5, description="grades of the simulated readers (the paper's 3 + 5 "
        "readers); [] for none")
    simulated_noise: float = Field(0.5, ge=0, description="spread of each simulated reader's judgement noise, in "
                                   "standard deviations of the discriminator's scores on the study's films")
    level: float = Field(0.95, gt=0, lt=1, description="confidence level of the intervals")
    n_bootstrap: int = Field(10000, ge=100, description="bootstrap resamples for HYPE-infinity's interval")
    seed: int = 0

    @model_validator(mode="after")
    def _some_screens(self) -> ReaderStudyParams:
        if self.grids + self.pairs == 0:
            raise ValueError("grids and pairs are both 0: the study has no screens")
        return self

    def screens(self) -> int:
        """Screens a reader answers: the grids, then the pairs."""
        return self.grids + self.pairs
