"""The ``synthetic_auroc`` section: classifiers trained on synthetic data, tested on real films (Table 2)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from cxrsynth.config.base import Section


class SyntheticAurocParams(Section):
    """Classifiers trained on synthetic data and tested on the real test split (section 4.5, Table 2)."""

    section: ClassVar[str] = "synthetic_auroc"

    val_fraction: float = Field(0.125, gt=0, lt=1, description="synthetic patients held out for validation")
    max_epochs: int | None = Field(None, ge=1, description="None: classifier.max_epochs")
    seed: int = 0
    n_bootstrap: int = Field(1000, ge=100, description="paired resamples of the real test patients for the "
                                                         "intervals of each column's macro AUROC and ratio to real")
    level: float = Field(0.95, gt=0, lt=1, description="the bootstrap intervals' coverage")
