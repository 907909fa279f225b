"""The two scorers side by side: how readily each one's class optimisation converges, per class.

The archive is optimised with one scorer (``archive.scorer``: the DenseNet or the re-purposed
discriminator). ``compare_scorers`` runs a small probe of ``archive.compare_per_class`` jobs per
class with the other scorer, so ``metrics/archive.json`` can show both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.errors import InputError
from cxrsynth.labels import LABELS
from cxrsynth.models.diffusion import ConditionalDiffusion
from cxrsynth.skipped import skip_reason
from cxrsynth.synthesis.archive_builder import optimise_classes, per_class_summary
from cxrsynth.synthesis.class_optimisation import OptimisationResult
from cxrsynth.synthesis.scorers import Scorer, load_scorer


def is_diffusion_model(generator: torch.nn.Module) -> bool:
    """Whether ``generator`` is the diffusion generator (it samples; it has no latent to optimise)."""
    return isinstance(generator, ConditionalDiffusion)

#: Added to ``archive.seed`` for the other scorer's probe.
PROBE_SEED = 7


@dataclass
class ScorerComparison:
    """Per scorer name, ``per_class_summary`` of its jobs (the archive's scorer first), the other
    scorer's name and the probe's seconds (None when no probe ran)."""

    per_class: dict[str, dict]
    other: str
    seconds: float | None = None

    def timings(self) -> dict:
        """The probe's seconds, for the stage's timings file (empty when no probe ran)."""
        return {} if self.seconds is None else {f"{self.other}_comparison_seconds": round(self.seconds, 1)}


def load_scorers(classifier_dir: str | Path, d_classifier_dir: str | Path, device: str | torch.device = "cpu",
                 wanted: str = "densenet") -> dict[str, Scorer]:
    """Both scorers by name: ``densenet`` (the classifier, also the labeller) and ``discriminator``
    (the re-purposed discriminator), as ``compare_scorers`` takes them. When the d_classifier stage was
    skipped (a diffusion generator has no discriminator) only ``densenet``; ``wanted`` (``archive.scorer``)
    must then be ``densenet`` (InputError)."""
    scorers = {"densenet": load_scorer(classifier_dir, device, "densenet")}
    if reason := skip_reason(d_classifier_dir):
        if wanted != "densenet":
            raise InputError(f"archive.scorer: {wanted} is not available ({reason}); use densenet")
        return scorers
    return scorers | {"discriminator": load_scorer(d_classifier_dir, device, "discriminator")}


def other_scorer(name: str) -> str:
    """The scorer the archive was not optimised with."""
    return "densenet" if name == "discriminator" else "discriminator"


def compare_scorers(generator: torch.nn.Module, resolution: int, scorers: Mapping[str, Scorer],
                    optimisation: OptimisationResult, params: ArchiveParams,
                    clock: Callable[[], float] = time.perf_counter) -> ScorerComparison:
    """The archive's own jobs (``optimisation``, by ``params.scorer``) summarised per class, and, with
    ``params.compare_per_class`` jobs per class, the other scorer's probe (``optimise_classes`` at
    ``params.seed + PROBE_SEED``) beside them, timed by ``clock``. No probe runs for a diffusion generator
    (no latent to optimise) or without the other scorer."""
    comparison = ScorerComparison({params.scorer: per_class_summary(optimisation)}, other_scorer(params.scorer))
    if params.compare_per_class and comparison.other in scorers and not is_diffusion_model(generator):
        classes = np.repeat(np.arange(len(LABELS)), params.compare_per_class)
        start = clock()
        probe = optimise_classes(generator, resolution, scorers[comparison.other], classes, params,
                                 params.seed + PROBE_SEED)
        comparison.per_class[comparison.other] = per_class_summary(probe)
        comparison.seconds = clock() - start
    return comparison
