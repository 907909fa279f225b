"""The ``reader_study`` section: the real-or-generated review of paper 001 section 4.4 and its analysis."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cxrsynth.config.base import Section

GRADES = ("consultant", "registrar", "other")


class ReaderDesignParams(Section):
    """The keys of the ``reader_study`` section that make the study's films and screens: the only ones
    the ``reader_design`` stage reads, and the only ones dvc.yaml lists for it (so changing an
    analysis value never rebuilds, and never deletes, the study a server may be serving)."""

    grids: int = Field(6, ge=0, description="grid screens (the paper: 6)")
    grid_size: int = Field(6, ge=1, le=16, description="films per grid (the paper: 6)")
    real_probability: float = Field(0.5, ge=0, le=1, description="chance that a grid film is real (the paper: 0.5)")
    pairs: int = Field(20, ge=0, description="pair screens, one real and one generated film (the paper: 20)")
    display_size: int = Field(260, ge=32, le=2048, description="side of every film shown, in pixels (the paper: 260)")
    resolution: int | None = Field(None, ge=4, description="stored side both kinds of film are taken at before "
                                   "resizing to display_size; null: the generator's side")
    generated_from: Literal["archive", "samples"] = Field(
        "archive", description="archive: films of the class-optimised archive; samples: fresh N(0, 1) samples")
    seed: int = Field(0, description="draws the design (truth, films, IDs, fresh samples) and the analysis "
                      "(simulated readers' noise, bootstrap)")

    @model_validator(mode="after")
    def _some_screens(self) -> ReaderDesignParams:
        if self.grids + self.pairs == 0:
            raise ValueError("grids and pairs are both 0: the study has no screens")
        return self

    def screens(self) -> int:
        """Screens a reader answers: the grids, then the pairs."""
        return self.grids + self.pairs


class ReaderStudyParams(ReaderDesignParams):
    """The whole ``reader_study`` section: the design's keys (``ReaderDesignParams``), then the
    analysis's: the human answers' file, the simulated readers that stand in for radiologists on
    the demo, and the intervals."""

    section: ClassVar[str] = "reader_study"

    answers: str = Field("answers.sqlite", pattern=r"^[\w.-]+$", description="file name, in reader_answers/, "
                         "of the human answers database the app writes (absent: no human readers yet)")
    simulated_readers: list[Literal["consultant", "registrar", "other"]] = Field(
        ["consultant"] * 3 + ["registrar"] * 5, description="grades of the simulated readers (the paper's 3 + 5 "
        "readers); [] for none")
    simulated_noise: float = Field(0.5, ge=0, description="spread of each simulated reader's judgement noise, in "
                                   "standard deviations of the discriminator's scores on the study's films")
    level: float = Field(0.95, gt=0, lt=1, description="confidence level of the intervals")
    n_bootstrap: int = Field(10000, ge=100, description="bootstrap resamples for HYPE-infinity's interval")

    def design(self) -> ReaderDesignParams:
        """The design's keys alone."""
        return ReaderDesignParams(**self.model_dump(include=set(ReaderDesignParams.model_fields)))
