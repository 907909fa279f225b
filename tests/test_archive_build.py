"""The archive build: failed jobs are retried until the plan is met, a shortfall fails in one line,
the labeller's cut-offs are calibrated on held-out images, the label mix follows the plan, and after
the pilot pass the rest is forecast and a plan out of reach stops the build in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.labels import LABELS
from cxrsynth.models.d_classifier import discriminator_head
from cxrsynth.synthesis import build as build_module
from cxrsynth.synthesis.build import (
    ShortfallError,
    build_archive,
    generate_patients,
    optimise_classes,
    optimise_with_retries,
)
from cxrsynth.synthesis.forecast import PlanError
from cxrsynth.synthesis.scorers import Scorer, calibrated_thresholds
from cxrsynth.training.gan_config import GANConfig, build_networks

CONFIG = GANConfig(arch="pggan", z_dim=16, channels=[16, 16, 8], fade_images=[0, 0, 0], stable_images=[1, 1, 1],
                   batch_sizes=[4, 4, 4])


@pytest.fixture(scope="module")
def parts():
    """A tiny generator and a scorer whose Youden-like thresholds sit at the median score of random
    latents, so about half of the single-step attempts fail."""
    torch.manual_seed(0)
    generator, _ = build_networks(CONFIG)
    generator.eval()
    net = discriminator_head(CONFIG, len(LABELS)).eval().requires_grad_(False)
    probe = Scorer("probe", net, 16, np.full(len(LABELS), 0.5, np.float32))
    with torch.no_grad():
        z = torch.randn(256, 16, generator=torch.Generator().manual_seed(5)).clamp(-0.7, 0.7)
        logits = probe.logits(generator(z, 16, 1.0))
    median = torch.sigmoid(logits.median(dim=0).values).numpy().astype(np.float32)
    return generator, Scorer("test", net, 16, median)


def hard(**kw) -> ArchiveParams:
    """Params under which one attempt succeeds about half the time: no steps, threshold at the median."""
    return ArchiveParams(**{"max_steps": 1, "max_attempts": 1, "step_size": 1e-6, "severity_mean": 0.0,
                            "severity_std": 0.0, "batch_size": 16, "compare_per_class": 0} | kw)


def test_a_failed_job_is_retried_with_fresh_latents_until_the_plan_is_met(parts):
    generator, scorer = parts
    classes = np.arange(40) % len(LABELS)
    first = optimise_classes(generator, 16, scorer, classes, hard(), seed=3)
    assert 0 < first.success.sum() < len(classes)  # some jobs fail on their own
    retried = optimise_with_retries(generator, 16, scorer, classes, hard(retries=8), seed=3)
    assert retried.success.all()
    assert (retried.attempts[~first.success] > 1).all() and (retried.attempts[first.success] == 1).all()
    assert torch.equal(retried.z[torch.as_tensor(first.success)], first.z[torch.as_tensor(first.success)])


def source_table(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    labels = (rng.random((n, len(LABELS))) < 0.1).astype(np.uint8)
    labels[:, 0] = ~labels[:, 1:].any(axis=1)
    return pd.DataFrame(labels, columns=list(LABELS)).assign(patient_id=np.arange(n))


def test_a_shortfall_past_the_limit_fails_in_one_line_naming_the_classes(parts):
    generator, scorer = parts
    never = Scorer("never", scorer.model, 16, np.full(len(LABELS), 1 - 1e-6, np.float32))
    with pytest.raises(ShortfallError) as err:
        build_archive(generator, 16, never, scorer, source_table(), hard(size=60, retries=1, pilot_patients=1))
    message = str(err.value)
    assert "\n" not in message and "archive.max_shortfall" in message and "No Finding 0 of" in message


def test_the_build_delivers_the_planned_size_with_retries(parts):
    generator, scorer = parts
    build = build_archive(generator, 16, scorer, scorer, source_table(), hard(size=90, retries=10, pilot_patients=1))
    assert len(build.table) == 90 == len(build.images)
    assert build.planned["delivered_images"].sum() == 90
    assert [p["pass"] for p in build.passes] == ["pilot", "main", "top_up"]
    assert sum(p["delivered_images"] for p in build.passes) == 90


def test_calibrated_cut_offs_reach_their_target_prevalence_on_held_out_data():
    """Cut-offs calibrated on one held-out set label a second one (same distribution) as often as it
    carries each label, whatever the classifier's own scale."""
    rng = np.random.default_rng(1)
    prevalence = np.array([0.4, 0.05, 0.2, 0.01])

    def held_out(n):
        labels = (rng.random((n, 4)) < prevalence).astype(np.uint8)
        scores = 1 / (1 + np.exp(-(rng.normal(0, 1, (n, 4)) + 2.0 * labels - 1.5)))  # overconfident on positives
        return scores, labels

    val, test = held_out(20_000), held_out(20_000)
    cut = calibrated_thresholds(*val)
    labelled = (test[0] >= cut).mean(axis=0)
    assert np.allclose(labelled, test[1].mean(axis=0), atol=0.01), (labelled, test[1].mean(axis=0))
    youden_like = np.full(4, 0.5)
    assert not np.allclose((test[0] >= youden_like).mean(axis=0), test[1].mean(axis=0), atol=0.01)


class Clock:
    """A clock that advances ``step`` seconds per reading, so the forecast never depends on this machine's speed."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_the_forecast_after_the_pilot_is_printed_and_recorded_beside_what_happened(parts, capsys):
    generator, scorer = parts
    build = build_archive(generator, 16, scorer, scorer, source_table(), hard(size=80, retries=4, pilot_patients=1),
                          labeller_auroc=0.7012, clock=Clock(1.0))
    printed = capsys.readouterr().out
    block = printed[printed.index("archive forecast"):].splitlines()[:5]
    assert "latents" in block[1] and "expected time" in block[2] and "archive.max_minutes 120" in block[2]
    assert "expected delivered" in block[3] and "test macro AUROC 0.701" in block[4]

    forecast, pilot = build.forecast, build.forecast.pilot
    assert pilot.seconds == 1.0  # one clock step: start to the end of the pilot
    per_step = pilot.seconds / pilot.latent_steps.sum()
    assert forecast.seconds == pytest.approx(forecast.latent_steps * per_step)  # at the pilot's measured rate
    record = build.forecast_record()
    expected, actual = record["expected"], record["actual"]
    assert record["labeller_test_macro_auroc"] == 0.7012 and "seconds" not in expected and "seconds" not in actual
    assert expected["planned_images"] == 80 - build.passes[0]["delivered_images"]
    assert actual["patients"] == len(build.optimisation.classes) - pilot.patients.sum()
    assert abs(expected["patients"] - actual["patients"]) <= 0.25 * actual["patients"]
    assert abs(expected["latents"] - actual["latents"]) <= 0.5 * actual["latents"]
    assert actual["delivered_fraction"] == 1.0 and expected["delivered_fraction"] > 0.9
    assert set(build.forecast_timings()) == {"pilot_seconds", "forecast_seconds", "main_and_top_up_seconds"}


def test_a_labeller_that_cannot_reach_the_plan_stops_the_build_after_the_pilot_in_one_line(parts, monkeypatch):
    """No latent converges: with 6 pilot patients per class, each class's rate is at most 54% (99%), too low
    for the plan, so the build stops before the main pass instead of failing after it."""
    generator, scorer = parts
    never = Scorer("never", scorer.model, 16, np.full(len(LABELS), 1 - 1e-6, np.float32))
    passes = []
    monkeypatch.setattr(build_module, "generate_patients",
                        lambda *a, **k: passes.append(1) or generate_patients(*a, **k))
    with pytest.raises(PlanError) as err:
        build_archive(generator, 16, never, scorer, source_table(), hard(size=600, retries=0, pilot_patients=6),
                      labeller_auroc=0.58, clock=Clock(1.0))
    message = str(err.value)
    assert "\n" not in message and "test macro AUROC 0.580" in message and "no archive written" in message
    assert "archive.max_shortfall" in message and "archive.oversample" in message and "0 of 6" in message
    assert len(passes) == 1  # the pilot only


def test_a_build_forecast_to_exceed_max_minutes_stops_after_the_pilot(parts):
    generator, scorer = parts
    with pytest.raises(PlanError) as err:  # every clock reading a day later: the pilot took a day
        build_archive(generator, 16, scorer, scorer, source_table(), hard(size=80, retries=4, pilot_patients=1),
                      labeller_auroc=0.93, clock=Clock(86_400.0))
    message = str(err.value)
    assert "\n" not in message and "exceeds archive.max_minutes 120" in message and "0.930" in message
    unlimited = hard(size=80, retries=4, pilot_patients=1, max_minutes=None)
    assert len(build_archive(generator, 16, scorer, scorer, source_table(), unlimited, clock=Clock(86_400.0)).table) == 80
