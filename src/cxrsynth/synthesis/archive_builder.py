"""Build a class-optimised archive end to end: plan, optimise (with retries), sample locally, label, summarise."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.errors import CxrsynthError
from cxrsynth.labels import LABELS
from cxrsynth.synthesis.archive_writer import (
    archive_table,
    local_latents,
    plan_patients,
    render_patients,
)
from cxrsynth.synthesis.class_optimisation import LatentOptimiser, OptimisationResult
from cxrsynth.synthesis.forecast import Forecast, Pilot, check_forecast, forecast_build
from cxrsynth.synthesis.planning import (
    label_rates,
    largest_remainder,
    select_patients,
    solve_images_per_class,
    tolerance_pct,
    tolerance_weights,
)
from cxrsynth.synthesis.scorers import Scorer, severity_thresholds


class ShortfallError(CxrsynthError):
    """The archive fell short of its plan by more than ``archive.max_shortfall``; no archive is written."""


@dataclass
class ArchiveBuild:
    """Everything the archive stage writes or reports."""

    table: pd.DataFrame
    images: np.ndarray
    optimisation: OptimisationResult  # every job of every pass and retry, in order
    planned: pd.DataFrame  # per class (LABELS order): planned and delivered patients and images
    z_star: torch.Tensor  # the optimised latent of every delivered patient, in table order
    passes: list[dict]  # per pass: name, planned and delivered images
    seconds: float
    forecast: Forecast | None = None  # made after the pilot pass (None when the pilot made every image)
    after_pilot: dict = field(default_factory=dict)  # what the main and top-up passes actually did
    labeller_auroc: float | None = None  # the labeller's test macro AUROC, quoted by the forecast

    def forecast_record(self) -> dict | None:
        """The forecast beside what happened, for metrics/archive.json (counts and shares; no clock time)."""
        if self.forecast is None:
            return None
        auroc = None if self.labeller_auroc is None else round(self.labeller_auroc, 4)
        return ({"labeller_test_macro_auroc": auroc} | self.forecast.record()
                | {"actual": {k: v for k, v in self.after_pilot.items() if k != "seconds"}})

    def forecast_timings(self) -> dict:
        """Forecast and actual seconds of the main and top-up passes (for the stage's timings file)."""
        if self.forecast is None:
            return {}
        return {"pilot_seconds": round(self.forecast.pilot.seconds, 1),
                "forecast_seconds": round(self.forecast.seconds, 1),
                "main_and_top_up_seconds": round(self.after_pilot["seconds"], 1)}

    @property
    def targets(self) -> np.ndarray:
        """Planned images per class."""
        return self.planned["planned_images"].to_numpy()


@dataclass
class Delivered:
    """Generated patients: their images (in patient order) and labels, and per patient its class,
    image count and optimised latent."""

    images: np.ndarray  # (N, r, r) uint8
    target: np.ndarray  # (N,) target class of each image
    labels: np.ndarray  # (N, 15) 0/1, NIH convention
    scores: np.ndarray  # (N,) the scorer's probability of the target class
    patient_class: np.ndarray  # (P,) per patient
    counts: np.ndarray  # (P,) images per patient
    z_star: torch.Tensor  # (P, z_dim) optimised latents


def optimise_classes(generator, resolution: int, scorer: Scorer, classes: np.ndarray, params: ArchiveParams,
                     seed: int) -> OptimisationResult:
    """Algorithm 1 for one latent per entry of ``classes`` with severity-raised thresholds."""
    rng = np.random.default_rng(seed)
    thresholds = severity_thresholds(scorer.logit_thresholds, classes, params.severity_mean, params.severity_std, rng)
    optimiser = LatentOptimiser(generator, resolution, scorer, params.step_size, params.optimiser)
    return optimiser.run(classes, thresholds, params.batch_size, params.max_steps, params.max_attempts,
                         params.truncation, seed, parallel_restarts=params.parallel_restarts)


def generate_patients(generator, resolution: int, scorer: Scorer, labeller: Scorer, patient_class: np.ndarray,
                      counts: np.ndarray, params: ArchiveParams, seed: int,
                      noise: torch.Generator) -> tuple[OptimisationResult, Delivered]:
    """One class-optimised latent per patient (``optimise_with_retries``), ``counts[p]`` follow-ups
    sampled around it, each labelled by ``labeller``. The Delivered part holds only the patients
    whose optimisation converged, in order; the result holds every job."""
    device = next(generator.parameters()).device
    result = optimise_with_retries(generator, resolution, scorer, patient_class, params, seed)
    ok = result.success
    z = local_latents(result.z[ok].to(device), counts[ok], params.local_std, noise)
    target = np.repeat(patient_class[ok], counts[ok])
    images, labels, scores = render_patients(generator, resolution, z, target, labeller, scorer)
    labels[:, 0] = ~labels[:, 1:].any(axis=1)  # NIH's convention: No Finding exactly when no finding
    return result, Delivered(images, target, labels, scores, patient_class[ok], counts[ok], result.z[ok])


def optimise_with_retries(generator, resolution: int, scorer: Scorer, classes: np.ndarray, params: ArchiveParams,
                          seed: int) -> OptimisationResult:
    """``optimise_classes``, then the jobs that failed (all ``max_attempts`` attempts) queued again
    with fresh latents, up to ``params.retries`` more times. Returns one result per job: its
    successful latent, or its last failure."""
    result = optimise_classes(generator, resolution, scorer, classes, params, seed)
    for round_ in range(1, params.retries + 1):
        failed = np.flatnonzero(~result.success)
        if not len(failed):
            break
        again = optimise_classes(generator, resolution, scorer, classes[failed], params, seed + 7919 * round_)
        result = merge_results(result, failed, again)
    return result


def merge_results(result: OptimisationResult, jobs: np.ndarray, again: OptimisationResult) -> OptimisationResult:
    """``result`` with the retried ``jobs`` taken from ``again`` (attempts and steps add up)."""
    merged = replace(result, success=result.success.copy(), z=result.z.clone(), score=result.score.copy(),
                     steps=result.steps.copy(), thresholds=result.thresholds.copy(),
                     total_steps=result.total_steps.copy(), attempts=result.attempts.copy())
    merged.success[jobs], merged.z[torch.as_tensor(jobs)] = again.success, again.z
    merged.score[jobs], merged.steps[jobs], merged.thresholds[jobs] = again.score, again.steps, again.thresholds
    merged.total_steps[jobs] += again.total_steps
    merged.attempts[jobs] += again.attempts
    merged.batched_steps += again.batched_steps
    merged.latents_scored += again.latents_scored
    return merged


def concatenate(results: list[OptimisationResult]) -> OptimisationResult:
    """The jobs of several runs as one result."""
    first = results[0]
    return OptimisationResult(
        *(np.concatenate([getattr(r, f) for r in results]) for f in ("classes", "thresholds", "success")),
        torch.cat([r.z for r in results]),
        *(np.concatenate([getattr(r, f) for r in results]) for f in ("score", "steps", "total_steps", "attempts")),
        batched_steps=sum(r.batched_steps for r in results), latents_scored=sum(r.latents_scored for r in results),
    ) if len(results) > 1 else first


#: (target class per patient, images per patient, params, seed, follow-up noise) -> (per job record, delivered)
MakePatients = Callable[[np.ndarray, np.ndarray, ArchiveParams, int, torch.Generator],
                        tuple[OptimisationResult, Delivered]]


def build_archive(generator: torch.nn.Module, resolution: int, scorer: Scorer, labeller: Scorer,
                  source: pd.DataFrame, params: ArchiveParams, labeller_auroc: float | None = None,
                  clock: Callable[[], float] = time.perf_counter,
                  make_patients: MakePatients | None = None) -> ArchiveBuild:
    """Build ``params.size`` images whose labels are as frequent as the source's.

    Three passes: a **pilot** (``params.pilot_patients`` patients per class) measures what labels
    each target class brings; the **main** pass plans the images per target class by non-negative
    least squares so the expected label counts match the source's (``planning``); a **top-up** of
    the last ``params.top_up_fraction`` re-solves with every image made so far and fills what is
    still short. A class none of whose patients has been delivered so far is left out of a pass's plan,
    and each class's candidates are divided by the share of its patients delivered so far
    (``patient_success``). Each patient is one class-optimised latent (failed jobs retried with fresh
    latents, ``params.retries``), its follow-ups sampled locally and labelled by ``labeller``. The
    main and top-up passes make ``params.oversample`` times their plan per class and keep, from the
    whole pool, the patients whose labels bring the mix closest to the source's (``select_patients``):
    a class may deliver more or fewer images than planned, the pass its planned total.
    After the pilot, the rest of the build is forecast (``synthesis.forecast``) and printed; the
    build raises PlanError before the main pass when the pilot shows the plan cannot be met
    within ``params.max_shortfall`` or ``params.max_minutes`` (the message quotes
    ``labeller_auroc``, the labeller's test macro AUROC, as the likely cause; ``clock`` times the
    passes). Raises ShortfallError, naming the classes, when the archive misses ``params.size``
    by more than ``params.max_shortfall``. ``make_patients`` makes the patients of each pass (default:
    ``generate_patients`` with ``generator``; the diffusion generator's is
    ``synthesis.conditional_sampling.patient_maker``)."""
    if make_patients is None:
        def make_patients(patient_class, counts, params, seed, noise):
            return generate_patients(generator, resolution, scorer, labeller, patient_class, counts, params, seed,
                                     noise)
    start = clock()
    rng = np.random.default_rng(params.seed)
    n_classes = len(LABELS)
    source_fraction = source[list(LABELS)].to_numpy(dtype=np.float64).mean(axis=0)
    wanted = params.size * source_fraction
    weights = tolerance_weights(source_fraction)  # label errors counted in tolerances (label_counts' check)
    device = next(generator.parameters()).device
    noise = torch.Generator(device=device).manual_seed(params.seed + 1)
    mean_follow_ups = (params.follow_ups[0] + params.follow_ups[1]) / 2
    pilot = np.full(n_classes, round(params.pilot_patients * mean_follow_ups), dtype=np.int64)
    pilot = largest_remainder(pilot, min(int(pilot.sum()), params.size))

    results, parts, passes = [], [], []
    quota_total = np.zeros(n_classes, dtype=np.int64)
    made = 0
    forecast, pilot_end = None, 0.0

    def forecast_rest(quotas, images, patient_class, counts):
        """After the pilot: forecast the main and top-up passes, print it, stop if the plan cannot be met."""
        nonlocal forecast, pilot_end
        pilot_end = clock()
        pilot_result = Pilot.measure(results[0], params.max_attempts, pilot_end - start, n_classes)
        forecast = forecast_build(pilot_result, made, params.size, quotas, patient_class, counts,
                                  params.size - made - images, params.oversample, tuple(params.follow_ups))
        auroc = f"{labeller_auroc:.3f}" if labeller_auroc is not None else "unknown"
        about = f"labeller ({labeller.name}) test macro AUROC {auroc}" + (
            f", scorer {scorer.name}" if scorer.name != labeller.name else "")
        print(forecast.describe(params.max_shortfall, params.max_minutes, about), flush=True)
        check_forecast(forecast, params.max_shortfall, params.max_minutes, params.oversample, about)

    for number, name in enumerate(("pilot", "main", "top_up")):
        remaining = params.size - made
        if name == "pilot":
            quotas, still_wanted, surplus = pilot, wanted * pilot.sum() / params.size, 1.0
        else:
            done = np.concatenate([p.labels for p in parts])
            rates, seen = label_rates(np.concatenate([p.target for p in parts]), done, n_classes)
            images = remaining if name == "top_up" else round(remaining * (1 - params.top_up_fraction))
            still_wanted = (wanted - done.sum(axis=0)) * images / max(remaining, 1)  # this pass's share
            success = patient_success(results, n_classes)
            usable = (seen > 0) & (success > 0) if seen.any() else None
            quotas = solve_images_per_class(rates, still_wanted, images, usable=usable, weights=weights)
            # a class whose patients are confirmed less often gets more candidates: the GAN's optimised
            # latents converge (rate 1: unchanged), a diffusion model's conditional draws may not; at most
            # 10 times as many, since a class confirmed that rarely costs more draws than it is worth
            surplus = params.oversample / np.maximum(success, 0.1)
        quota_total += quotas
        if quotas.sum() == 0:
            if name == "main" and remaining > 0:
                forecast_rest(quotas, images, np.zeros(0, np.int64), np.zeros(0, np.int64))
            passes.append({"pass": name, "planned_images": 0, "candidate_images": 0, "delivered_images": 0})
            continue
        candidates = np.where(quotas > 0, np.ceil(quotas * surplus), 0).astype(np.int64)
        patient_class, counts = plan_patients(candidates, tuple(params.follow_ups), rng)
        if name == "main":
            forecast_rest(quotas, images, patient_class, counts)
        result, made_now = make_patients(patient_class, counts, params, params.seed + 1000 * number, noise)
        patient = np.repeat(np.arange(len(made_now.counts)), made_now.counts)
        per_patient = np.zeros((len(made_now.counts), n_classes))
        np.add.at(per_patient, patient, made_now.labels)
        kept = select_patients(per_patient, made_now.counts, int(quotas.sum()), still_wanted, weights)
        keep = np.arange(len(patient)) - np.repeat(np.cumsum(made_now.counts) - made_now.counts, made_now.counts) < kept[patient]
        chosen = kept > 0
        parts.append(Delivered(made_now.images[keep], made_now.target[keep], made_now.labels[keep],
                               made_now.scores[keep], made_now.patient_class[chosen], kept[chosen],
                               made_now.z_star[torch.as_tensor(chosen)]))
        results.append(result)
        made += int(kept.sum())
        passes.append({"pass": name, "planned_images": int(quotas.sum()), "candidate_images": int(made_now.counts.sum()),
                       "delivered_images": int(kept.sum())})

    optimisation = concatenate(results)
    outcome = {}  # what the main and top-up passes did, beside the forecast
    if forecast is not None:
        rest = results[1:]
        outcome = {"patients": sum(len(r.classes) for r in rest),
                   "latents": int(sum(np.ceil(r.attempts / params.max_attempts).sum() for r in rest)),
                   "latent_steps": sum(r.latents_scored for r in rest),
                   "delivered_fraction": round(made / params.size, 4), "seconds": clock() - pilot_end}
    delivered_class = np.concatenate([p.patient_class for p in parts])
    delivered_count = np.concatenate([p.counts for p in parts])
    planned = per_class_plan(quota_total, delivered_class, delivered_count, optimisation)
    check_shortfall(planned, params.size, params.max_shortfall)
    labels, scores = np.concatenate([p.labels for p in parts]), np.concatenate([p.scores for p in parts])
    table = archive_table(delivered_class, delivered_count, labels, scores, resolution, source["patient_id"].to_numpy())
    return ArchiveBuild(table, np.concatenate([p.images for p in parts]), optimisation, planned,
                        torch.cat([p.z_star for p in parts]), passes, clock() - start, forecast, outcome,
                        labeller_auroc)


def patient_success(results: list[OptimisationResult], n_classes: int) -> np.ndarray:
    """Per target class, the share of the patients made so far that were delivered (a converged latent or a
    confirmed draw); 1 for a class not tried yet."""
    tried, delivered = np.zeros(n_classes), np.zeros(n_classes)
    for result in results:
        tried += np.bincount(result.classes, minlength=n_classes)
        delivered += np.bincount(result.classes, weights=result.success.astype(float), minlength=n_classes)
    return np.where(tried > 0, delivered / np.maximum(tried, 1), 1.0)


def per_class_plan(quotas: np.ndarray, delivered_class: np.ndarray, delivered_count: np.ndarray,
                   optimisation: OptimisationResult) -> pd.DataFrame:
    """Per target class (LABELS order): images planned and delivered, patients delivered, and the
    class-optimisation jobs run and converged (candidates include the surplus left out)."""
    rows = []
    for c, name in enumerate(LABELS):
        mine = delivered_class == c
        jobs = optimisation.classes == c
        rows.append({"class": name, "planned_images": int(quotas[c]), "delivered_images": int(delivered_count[mine].sum()),
                     "delivered_patients": int(mine.sum()), "jobs": int(jobs.sum()),
                     "converged_jobs": int((jobs & optimisation.success).sum())})
    return pd.DataFrame(rows)


def check_shortfall(planned: pd.DataFrame, size: int, max_shortfall: float) -> None:
    """Raise ShortfallError when fewer than ``size * (1 - max_shortfall)`` images were delivered."""
    delivered = int(planned["delivered_images"].sum())
    short = 1 - delivered / size
    if short > max_shortfall:
        lacking = planned[planned["delivered_images"] < planned["planned_images"]]
        named = ", ".join(f"{r['class']} {r['delivered_images']} of {r['planned_images']}" for _, r in lacking.iterrows())
        raise ShortfallError(f"archive: {delivered} of {size} images delivered ({short:.1%} short > "
                             f"archive.max_shortfall {max_shortfall:.1%}); short: {named}; no archive written "
                             "(raise archive.retries or archive.max_attempts)")


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
    """Per label, images carrying it in the archive versus the source (counts, percentages, their ratio)
    and whether the archive's prevalence is within max(2 points, 25% of the source's) of the source's."""
    labels = table["Finding Labels"].astype(str).str.split("|")  # an empty table reads as floats
    out = {}
    for name in LABELS:
        n = int(labels.map(lambda parts, name=name: name in parts).sum())
        s = int(source[name].sum())
        archive_pct, source_pct = 100 * n / max(len(table), 1), 100 * s / max(len(source), 1)
        out[name] = {"archive": n, "archive_pct": round(archive_pct, 2), "source": s, "source_pct": round(source_pct, 2),
                     "ratio": round(archive_pct / source_pct, 3) if source_pct else None,
                     "within_tolerance": bool(abs(archive_pct - source_pct) <= tolerance_pct(source_pct))}
    return out
