"""The archive build: failed jobs are retried until the plan is met, a shortfall fails in one line,
the labeller's cut-offs are calibrated on held-out images, the label mix follows the plan, and after
the pilot pass the rest is forecast and a plan out of reach stops the build in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.data.store_splits import StoreDataset
from cxrsynth.labels import LABELS
from cxrsynth.models.classifier import probabilities
from cxrsynth.models.d_classifier import discriminator_head
from cxrsynth.models.gan import GANConfig, build_networks
from cxrsynth.synthesis import archive_metrics, calibration, comparison
from cxrsynth.synthesis import archive_builder as build_module
from cxrsynth.synthesis.archive_builder import (
    ShortfallError,
    build_archive,
    generate_patients,
    label_counts,
    optimise_classes,
    optimise_with_retries,
    per_class_summary,
)
from cxrsynth.synthesis.forecast import PlanError
from cxrsynth.synthesis.scorers import Scorer, calibrated_thresholds

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


# --------------------------------------------------------------------------- what the archive stage reports
def test_labelled_vs_true_gives_each_labels_true_and_labelled_percentages():
    labels = np.zeros((8, len(LABELS)), np.uint8)
    labels[:2, 0] = 1  # 25% carry No Finding
    probs = np.zeros((8, len(LABELS)))
    probs[:3, 0] = 0.6  # three films at the cut-off or above
    probs[3, 0] = 0.59
    record = calibration.labelled_vs_true(probs, labels, np.full(len(LABELS), 0.6))
    assert list(record) == list(LABELS)
    assert record[LABELS[0]] == {"true_pct": 25.0, "labelled_pct": 37.5}
    assert record[LABELS[1]] == {"true_pct": 0.0, "labelled_pct": 0.0}


def held_out_films(n: int, seed: int, positives: bool = True) -> StoreDataset:
    """``n`` random 16 px films with random labels (no positives at all unless ``positives``)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(LABELS))) < 0.3) if positives else np.zeros((n, len(LABELS)))
    return StoreDataset(rng.integers(0, 256, (n, 16, 16), dtype=np.uint8), np.arange(n), labels.astype(np.uint8))


def test_the_labeller_is_calibrated_on_val_and_checked_on_test(parts):
    _, scorer = parts
    real = {"val": held_out_films(300, 0), "test": held_out_films(200, 1)}
    youden = calibration.calibrate_labeller(scorer, "youden", real)
    assert youden.scorer is scorer and isinstance(youden.test_macro_auroc, float)
    calibrated = calibration.calibrate_labeller(scorer, "calibrated", real)
    assert not np.allclose(calibrated.scorer.thresholds, scorer.thresholds)
    assert calibrated.scorer.model is scorer.model and calibrated.test_macro_auroc == youden.test_macro_auroc
    test = real["test"]
    probs = probabilities(scorer.model, test.all_images(), 16).numpy()
    assert calibrated.on_real_test == calibration.labelled_vs_true(probs, test.labels.numpy(), calibrated.scorer.thresholds)
    val_share = {n: v["labelled_pct"] for n, v in calibration.calibrate_labeller(
        scorer, "calibrated", {"val": real["val"], "test": real["val"]}).on_real_test.items()}
    true_share = {n: round(100 * float(real["val"].labels[:, c].mean()), 2) for c, n in enumerate(LABELS)}
    assert all(abs(val_share[n] - true_share[n]) <= 1.0 for n in LABELS)  # on val: as often as the films carry it
    no_positives = {"val": real["val"], "test": held_out_films(50, 2, positives=False)}
    assert calibration.calibrate_labeller(scorer, "calibrated", no_positives).test_macro_auroc is None


def test_the_other_scorer_is_probed_only_when_asked_and_timed(parts):
    generator, scorer = parts
    scorers = {"densenet": scorer, "discriminator": Scorer("d", scorer.model, 16, scorer.thresholds * 0.9)}
    own = optimise_classes(generator, 16, scorer, np.arange(len(LABELS)), hard(), seed=0)
    alone = comparison.compare_scorers(generator, 16, scorers, own, hard(compare_per_class=0, scorer="densenet"))
    assert list(alone.per_class) == ["densenet"] and alone.other == "discriminator"
    assert alone.seconds is None and alone.timings() == {}
    params = hard(compare_per_class=2, scorer="discriminator", seed=3)
    both = comparison.compare_scorers(generator, 16, scorers, own, params, clock=Clock(2.5))
    assert list(both.per_class) == ["discriminator", "densenet"] and both.other == "densenet"
    assert both.per_class["discriminator"] == per_class_summary(own)
    probe = optimise_classes(generator, 16, scorer, np.repeat(np.arange(len(LABELS)), 2), params, seed=3 + 7)
    assert both.per_class["densenet"] == per_class_summary(probe)  # the densenet probe, at seed + 7
    assert both.timings() == {"densenet_comparison_seconds": 2.5}


ARCHIVE_KEYS = ["scorer", "images", "planned_images", "delivered_fraction", "patients", "jobs", "success_rate",
                "batched_steps", "mean_occupied_slots", "shards", "passes", "labels_within_tolerance", "labels",
                "per_class", "label_thresholds", "labeller_on_real_test", "scorers", "privacy_filter", "view",
                "forecast"]


def test_the_archive_metrics_hold_the_build_in_their_fixed_order(parts):
    generator, scorer = parts
    params = hard(size=60, retries=8, pilot_patients=1, scorer="densenet")
    build = build_archive(generator, 16, scorer, scorer, source_table(), params, clock=Clock(1.0))
    labels = label_counts(build.table, source_table())
    labeller = calibration.CalibratedLabeller(scorer, {"Atelectasis": {"true_pct": 1.0, "labelled_pct": 2.0}}, 0.8)
    compared = comparison.ScorerComparison({"densenet": per_class_summary(build.optimisation)}, "discriminator")
    view = {"method": "", "test": None, "reason": "no PA and AP films to learn from"}
    metrics = archive_metrics.archive_metrics(build, params, ["images_001.tar"], labels, labeller, compared, None, view)
    assert list(metrics) == ARCHIVE_KEYS
    assert metrics["images"] == len(build.table) and metrics["planned_images"] == 60
    assert metrics["delivered_fraction"] == round(len(build.table) / 60, 4)
    assert metrics["privacy_filter"] == {"applied": False} and metrics["view"] is view
    assert metrics["label_thresholds"] == {"kind": "calibrated", **{n: round(float(t), 4)
                                                                    for n, t in zip(LABELS, scorer.thresholds)}}
    planned = build.planned.set_index("class")
    for name, row in metrics["per_class"].items():  # the plan, then the scorer's own summary of the class
        assert list(row)[:5] == ["planned_images", "delivered_images", "delivered_patients", "jobs", "converged_jobs"]
        assert row["delivered_images"] == planned.loc[name, "delivered_images"]
        assert {k: row[k] for k in list(row)[5:]} == {k: v for k, v in compared.per_class["densenet"].get(name, {}).items()
                                                     if k != "jobs"}
    lines = archive_metrics.archive_summary(metrics, 60)
    assert len(lines) == 2 and lines[0].startswith(f"archive: {len(build.table)} of 60 images")
    assert lines[1] == "archive: View Position : no PA and AP films to learn from"
    record = {"applied": True, "patients_flagged_before": 2, "images_flagged_before": 5, "replaced_patients": 2,
              "rounds": 1, "dropped_patients": 0, "thresholds": {"verifier_not_used_because": "verifier untested"}}
    filtered = archive_metrics.archive_metrics(build, params, [], labels, labeller, compared, record, view)
    assert filtered["privacy_filter"] is record
    assert archive_metrics.archive_summary(filtered, 60)[2] == (
        "archive: privacy filter: 2 patients (5 images) flagged, 2 replaced in 1 rounds, 0 dropped; "
        "by pixel and feature nearest neighbours only: verifier untested")
    timings = archive_metrics.archive_timings(build, comparison.ScorerComparison({}, "discriminator", 1.26))
    assert list(timings) == ["build_seconds", "accepted_latents_per_s", *build.forecast_timings(),
                             "discriminator_comparison_seconds"]
    assert timings["accepted_latents_per_s"] == round(int(build.optimisation.success.sum()) / build.seconds, 2)
    assert timings["discriminator_comparison_seconds"] == 1.3
