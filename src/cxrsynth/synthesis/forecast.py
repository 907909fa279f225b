"""What the rest of an archive build will cost and deliver, forecast from its pilot pass, and when to stop.

After the pilot pass the build knows, per target class, how many pilot patients converged within
the retries, how many optimisation runs (a retry is a run with fresh latents) and latent-steps
(scorer evaluations, the unit of cost) a patient took, and how many latent-steps per second the
pilot managed; it also knows the main pass's plan (patients and images per class). From these:

- **latents**: per class, the patients planned times the pilot's mean runs per patient. The
  top-up pass asks for what the main pass leaves short plus its own share
  (``archive.top_up_fraction``), spread over the classes like the main plan.
- **time**: the expected latent-steps at the pilot's latent-steps per second. It errs both ways,
  within about a factor of two: the pilot runs emptier batches than a large main pass (long),
  while each later pass ends in its own tail of a few slow latents (short, on small plans).
- **delivered images**: a pass keeps ``min(planned images, images of its converged candidates)``,
  the candidates of every class pooled (``planning.select_patients`` takes from the whole pool);
  each candidate converges at its class's pilot rate (Bernoulli), so the expectation is taken
  under a normal approximation of the pool's converged images.

**Stop rule** (``check_forecast``): the build stops before the main pass, writing nothing, when

1. even at the most favourable convergence rates the pilot allows (per class, the one-sided
   ``CONFIDENCE`` Clopper-Pearson upper bound on converged / patients), the expected delivered
   share stays below ``1 - archive.max_shortfall``; with 3 pilot patients per class a class that
   converged once has a bound of 0.94, so a demo pilot cannot stop the build by bad luck, and
   ``max_shortfall: 1.0`` (any shortfall accepted) never stops it; or
2. the pilot's time plus the forecast exceeds ``archive.max_minutes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta, norm

from cxrsynth.errors import CxrsynthError
from cxrsynth.labels import LABELS
from cxrsynth.synthesis.class_optimisation import OptimisationResult

CONFIDENCE = 0.99  # of the upper bounds on the convergence rates that the stop rule trusts


class PlanError(CxrsynthError):
    """The pilot pass shows the plan cannot be met within ``archive.max_shortfall`` or
    ``archive.max_minutes``; the build stops before the main pass and writes no archive."""


@dataclass(frozen=True)
class Pilot:
    """What the pilot pass measured, per target class (LABELS order), and how long it took."""

    patients: np.ndarray  # (C,) patients (jobs) optimised
    converged: np.ndarray  # (C,) of them, converged within the retries
    runs: np.ndarray  # (C,) optimisation runs, retries included
    latent_steps: np.ndarray  # (C,) scorer evaluations of latents
    seconds: float

    @classmethod
    def measure(cls, result: OptimisationResult, max_attempts: int, seconds: float,
                n_classes: int = len(LABELS)) -> Pilot:
        """Count ``result``'s jobs per class. A run gives up after ``max_attempts`` attempts, so a job
        ran ceil(attempts / max_attempts) times; an attempt of s steps evaluates its latent s + 1 times."""
        def per_class(values):
            return np.bincount(result.classes, weights=values, minlength=n_classes)

        runs = np.ceil(result.attempts / max_attempts)
        return cls(per_class(None).astype(np.int64), per_class(result.success.astype(float)).astype(np.int64),
                   per_class(runs), per_class((result.total_steps + result.attempts).astype(float)), float(seconds))

    def rates(self) -> np.ndarray:
        """Per class, converged / patients (the pooled rate for a class the pilot did not try)."""
        pooled = self.converged.sum() / max(self.patients.sum(), 1)
        return np.where(self.patients > 0, self.converged / np.maximum(self.patients, 1), pooled)

    def upper_bounds(self, confidence: float = CONFIDENCE) -> np.ndarray:
        """Per class, the one-sided Clopper-Pearson upper bound on the convergence rate (1 when untried
        or all converged)."""
        k, n = self.converged, self.patients
        bound = beta.ppf(confidence, k + 1, np.maximum(n - k, 1))
        return np.where(k < n, bound, 1.0)

    def per_patient(self, values: np.ndarray) -> np.ndarray:
        """``values`` per class divided by its patients (the pilot's mean for a class it did not try)."""
        pooled = values.sum() / max(self.patients.sum(), 1)
        return np.where(self.patients > 0, values / np.maximum(self.patients, 1), pooled)


def expected_kept(quota: np.ndarray, images: np.ndarray, images_sq: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """E[min(quota, X)], X the images of the converged candidates: per group (a class, or with
    ``pooled_kept`` a pass), ``images`` candidate images in patients whose squared sizes sum to
    ``images_sq``, each converging with probability ``rate`` (X normal with mean rate * images and
    variance rate (1 - rate) images_sq)."""
    mean = np.asarray(rate * images, float)
    return _expected_min(np.asarray(quota, float), mean, np.sqrt(rate * (1 - rate) * images_sq))


def pooled_kept(quota: float, images: np.ndarray, images_sq: np.ndarray, rate: np.ndarray) -> float:
    """E[min(quota, X)], X the converged images of every class's candidates together (``images``,
    ``images_sq`` and ``rate`` per class, as ``expected_kept``'s): what a pass delivers."""
    mean = float((rate * images).sum())
    return float(_expected_min(np.array([quota], float), np.array([mean]),
                               np.array([np.sqrt((rate * (1 - rate) * images_sq).sum())]))[0])


def _expected_min(quota: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[min(quota, X)] for X normal with ``mean`` and ``sd`` (0: X = mean)."""
    d = (mean - quota) / np.where(sd > 0, sd, 1)
    over = np.where(sd > 0, sd * norm.pdf(d) + (mean - quota) * norm.cdf(d), np.maximum(mean - quota, 0))
    return np.clip(mean - over, 0, quota)


@dataclass(frozen=True)
class Forecast:
    """The main and top-up passes, forecast after the pilot; ``best_*`` at the upper bounds on the rates."""

    size: int
    pilot: Pilot
    pilot_images: int  # delivered by the pilot
    planned_images: int  # main + top-up
    patients: float
    latents: float  # optimisation runs, retries included
    latent_steps: float
    seconds: float
    delivered_fraction: float
    best_delivered_fraction: float
    quotas: np.ndarray  # (C,) main-pass images per class
    upper: np.ndarray  # (C,) upper bounds on the convergence rates

    @property
    def minutes(self) -> float:
        """The whole build's forecast minutes: the pilot's time plus the forecast."""
        return (self.pilot.seconds + self.seconds) / 60

    def record(self) -> dict:
        """The forecast for metrics/archive.json: counts and shares only (no clock time, which differs
        run to run and is kept out of hashed outputs)."""
        pilot = self.pilot
        return {
            "pilot": {"patients": int(pilot.patients.sum()), "converged": int(pilot.converged.sum()),
                      "runs": int(pilot.runs.sum()), "latent_steps": int(pilot.latent_steps.sum()),
                      "per_class": {name: {"patients": int(pilot.patients[c]), "converged": int(pilot.converged[c]),
                                           "upper_bound": round(float(self.upper[c]), 4)}
                                    for c, name in enumerate(LABELS) if pilot.patients[c]}},
            "rule": f"stop if the delivered share at the {CONFIDENCE:.0%} upper bounds on the pilot's convergence "
                    "rates is below 1 - archive.max_shortfall, or the forecast minutes exceed archive.max_minutes",
            "expected": {"planned_images": self.planned_images, "patients": round(self.patients, 1),
                         "latents": round(self.latents, 1), "latent_steps": round(self.latent_steps),
                         "delivered_fraction": round(self.delivered_fraction, 4),
                         "best_delivered_fraction": round(self.best_delivered_fraction, 4)},
        }

    def describe(self, max_shortfall: float, max_minutes: float | None, labeller: str) -> str:
        """The readable block the stage prints after the pilot pass."""
        pilot, rates = self.pilot, self.pilot.rates()
        tried = np.flatnonzero(pilot.patients > 0)
        lowest = tried[np.argsort(rates[tried], kind="stable")][:3]
        pilot_rate = pilot.runs.sum() / max(pilot.seconds, 1e-9)
        limit = f"archive.max_minutes {max_minutes:g}" if max_minutes is not None else "no archive.max_minutes"
        lines = [
            f"archive forecast, from the pilot pass: {pilot.converged.sum()} of {pilot.patients.sum()} patients "
            f"converged ({pilot.runs.sum():.0f} latents, {pilot_rate:.1f} latents/s)",
            f"  to optimise: about {self.latents:,.0f} latents ({self.patients:,.0f} patients, retries included) "
            f"for the main and top-up passes' {self.planned_images:,} images",
            f"  expected time: {self.seconds / 60:.1f} min more, {self.minutes:.1f} min with the pilot ({limit}; "
            "the privacy filter and the scorer comparison come after)",
            f"  expected delivered: {self.delivered_fraction:.1%} of archive.size {self.size:,}, at best "
            f"{self.best_delivered_fraction:.1%} ({CONFIDENCE:.0%} upper bounds on the rates); archive.max_shortfall "
            f"{max_shortfall:.0%} needs {1 - max_shortfall:.0%}",
            f"  {labeller}; lowest pilot convergence: "
            + ", ".join(f"{LABELS[c]} {pilot.converged[c]} of {pilot.patients[c]}" for c in lowest),
        ]
        if self.delivered_fraction < 1 - max_shortfall <= self.best_delivered_fraction:
            lines.append("  likely short: the stage fails after the build unless the pilot's rates were unlucky")
        return "\n".join(lines)


def forecast_build(pilot: Pilot, pilot_images: int, size: int, quotas: np.ndarray, patient_class: np.ndarray,
                   counts: np.ndarray, top_up_images: int, oversample: float,
                   follow_ups: tuple[int, int]) -> Forecast:
    """Forecast the main pass (``quotas`` images per class, candidates ``counts[p]`` images of class
    ``patient_class[p]``) and the top-up (``top_up_images`` planned, plus what the main pass leaves
    short) from ``pilot``, which delivered ``pilot_images`` of ``size``."""
    n_classes = len(pilot.patients)
    quotas = np.asarray(quotas, float)
    main_images = np.bincount(patient_class, weights=counts, minlength=n_classes)
    main_sq = np.bincount(patient_class, weights=np.asarray(counts, float) ** 2, minlength=n_classes)
    main_patients = np.bincount(patient_class, minlength=n_classes).astype(float)
    share = quotas / quotas.sum() if quotas.sum() else pilot.patients / max(pilot.patients.sum(), 1)
    sizes = np.arange(follow_ups[0], follow_ups[1] + 1, dtype=float)
    mean_size, mean_sq = sizes.mean(), (sizes ** 2).mean()

    def passes(rate: np.ndarray) -> tuple[float, np.ndarray]:
        """Expected images delivered after both passes, and the top-up's candidate patients per class."""
        main = pooled_kept(quotas.sum(), main_images, main_sq, rate)
        wanted = max(size - pilot_images - main, 0.0) * share  # the top-up's plan and the main pass's shortfall
        candidates = wanted * oversample
        top_up = pooled_kept(wanted.sum(), candidates, candidates / mean_size * mean_sq, rate)
        return pilot_images + main + top_up, candidates / mean_size

    delivered, top_up_patients = passes(pilot.rates())
    best, _ = passes(pilot.upper_bounds())
    patients = main_patients + top_up_patients
    latent_steps = float(patients @ pilot.per_patient(pilot.latent_steps))
    per_step = pilot.seconds / max(pilot.latent_steps.sum(), 1)
    return Forecast(size, pilot, int(pilot_images), int(quotas.sum()) + int(top_up_images), float(patients.sum()),
                    float(patients @ pilot.per_patient(pilot.runs)), latent_steps, latent_steps * per_step,
                    float(delivered / size), float(best / size), quotas, pilot.upper_bounds())


def check_forecast(forecast: Forecast, max_shortfall: float, max_minutes: float | None, oversample: float,
                   labeller: str) -> None:
    """Raise PlanError, in one line naming the likely cause (``labeller`` describes the labeller, e.g.
    its test macro AUROC) and the params to change, when the stop rule (module docstring) holds."""
    pilot = forecast.pilot
    converged = (f"{pilot.converged.sum()} of {pilot.patients.sum()} pilot patients converged "
                 f"({pilot.converged.sum() / max(pilot.patients.sum(), 1):.0%})")
    if max_shortfall < 1 and forecast.best_delivered_fraction < 1 - max_shortfall:
        planned = np.flatnonzero(forecast.quotas > 0)
        worst = planned[np.argsort(forecast.upper[planned], kind="stable")][:3]
        named = ", ".join(f"{LABELS[c]} {pilot.converged[c]} of {pilot.patients[c]} (at most "
                          f"{forecast.upper[c]:.0%})" for c in worst)
        pooled = float(forecast.upper @ forecast.quotas) / max(float(forecast.quotas.sum()), 1e-9)
        needed = 1 / max(pooled, 1e-3) if len(worst) else math.inf  # the pass fills from every class's candidates
        raise PlanError(
            f"archive: the plan cannot be met: {converged}, so even at the {CONFIDENCE:.0%} upper bounds on the "
            f"convergence rates ({named}) about {forecast.best_delivered_fraction:.0%} of archive.size "
            f"{forecast.size} would be delivered, below the {1 - max_shortfall:.0%} archive.max_shortfall "
            f"{max_shortfall:g} needs; likely cause: the scorer's scores rarely reach the thresholds ({labeller}); "
            f"train a better classifier, or raise archive.oversample (now {oversample:g}; at least {needed:.1f} "
            "needed), archive.retries, archive.max_attempts or archive.max_steps, or archive.max_shortfall; "
            "no archive written")
    if max_minutes is not None and forecast.minutes > max_minutes:
        retried = pilot.runs.sum() > pilot.patients.sum()  # some pilot patients needed a retry
        cause = (f"slow convergence ({converged}, {pilot.runs.sum() / max(pilot.patients.sum(), 1):.1f} runs "
                 f"and {pilot.latent_steps.sum() / max(pilot.patients.sum(), 1):.0f} latent-steps per patient; "
                 f"{labeller})" if retried else f"the plan's size at this device's speed ({labeller})")
        raise PlanError(
            f"archive: forecast {forecast.minutes:.0f} min ({forecast.latents:,.0f} latents to optimise at the "
            f"pilot's {pilot.runs.sum() / max(pilot.seconds, 1e-9):.2f} latents/s) exceeds archive.max_minutes "
            f"{max_minutes:g}; likely cause: {cause}; raise archive.max_minutes, or lower archive.size, "
            "archive.oversample, archive.retries or archive.max_attempts; no archive written")
