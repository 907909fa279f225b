"""Build a class-optimised archive end to end: plan, optimise, sample locally, label, summarise."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.labels import LABELS
from cxrsynth.synthesis.archive import (
    archive_table,
    class_image_targets,
    local_latents,
    plan_patients,
    render_patients,
)
from cxrsynth.synthesis.class_optimisation import LatentOptimiser, OptimisationResult
from cxrsynth.synthesis.scorers import Scorer, severity_thresholds


@dataclass
class ArchiveBuild:
    """Everything the archive stage writes or reports."""

    table: pd.DataFrame
    images: np.ndarray
    optimisation: OptimisationResult
    targets: np.ndarray  # planned images per class
    patient_counts: np.ndarray  # planned follow-ups per planned patient
    seconds: float


def optimise_classes(generator, resolution: int, scorer: Scorer, classes: np.ndarray, params: ArchiveParams,
                     seed: int) -> OptimisationResult:
    """Algorithm 1 for one latent per entry of ``classes`` with severity-raised thresholds."""
    rng = np.random.default_rng(seed)
    thresholds = severity_thresholds(scorer.logit_thresholds, classes, params.severity_mean, params.severity_std, rng)
    optimiser = LatentOptimiser(generator, resolution, scorer, params.step_size, params.optimiser)
    return optimiser.run(classes, thresholds, params.batch_size, params.max_steps, params.max_attempts,
                         params.truncation, seed, parallel_restarts=params.parallel_restarts)


def build_archive(generator: torch.nn.Module, resolution: int, scorer: Scorer, labeller: Scorer,
                  source: pd.DataFrame, params: ArchiveParams) -> ArchiveBuild:
    """Plan ``params.size`` images from the source prevalence, optimise one latent per synthetic
    patient, sample its follow-ups locally and label them. Patients whose optimisation failed
    are left out (and counted)."""
    start = time.perf_counter()
    rng = np.random.default_rng(params.seed)
    targets = class_image_targets(source[list(LABELS)].to_numpy(), params.size)
    patient_class, counts = plan_patients(targets, tuple(params.follow_ups), rng)
    result = optimise_classes(generator, resolution, scorer, patient_class, params, params.seed)
    ok = result.success
    device = next(generator.parameters()).device
    noise = torch.Generator(device=device).manual_seed(params.seed + 1)
    z = local_latents(result.z[ok].to(device), counts[ok], params.local_std, noise)
    target = np.repeat(patient_class[ok], counts[ok])
    images, labels, scores = render_patients(generator, resolution, z, target, labeller, scorer)
    table = archive_table(patient_class[ok], counts[ok], labels, scores, resolution,
                          source["patient_id"].to_numpy())
    return ArchiveBuild(table, images, result, targets, counts, time.perf_counter() - start)


def per_class_summary(result: OptimisationResult) -> dict[str, dict]:
    """Success rate (jobs converged / jobs), attempts and mean steps of the converged attempt, per class."""
    out = {}
    for c, name in enumerate(LABELS):
        jobs = result.classes == c
        if not jobs.any():
            continue
        ok = jobs & result.success
        out[name] = {
            "jobs": int(jobs.sum()),
            "success_rate": round(float(ok.sum() / jobs.sum()), 4),
            "attempt_success_rate": round(float(ok.sum() / result.attempts[jobs].sum()), 4),
            "mean_steps": round(float(result.steps[ok].mean()), 2) if ok.any() else None,
            "mean_total_steps": round(float(result.total_steps[jobs].mean()), 2),
        }
    return out


def label_counts(table: pd.DataFrame, source: pd.DataFrame) -> dict[str, dict]:
    """Images carrying each label in the archive versus the source, as counts and percentages."""
    labels = table["Finding Labels"].str.split("|")
    out = {}
    for name in LABELS:
        n = int(labels.map(lambda parts, name=name: name in parts).sum())
        s = int(source[name].sum())
        out[name] = {"archive": n, "archive_pct": round(100 * n / max(len(table), 1), 2),
                     "source": s, "source_pct": round(100 * s / max(len(source), 1), 2)}
    return out
