"""What the archive stage reports: ``metrics/archive.json``, the lines it prints, and its timings.

``archive_metrics`` assembles the record from plain results: the build (``synthesis.archive_builder``),
the label counts, the calibrated labeller (``synthesis.calibration``), the scorer comparison
(``synthesis.comparison``), the privacy filter's record and the View Position record. Keys,
their order and the rounding are the record's format: change them and every archive's metrics
change.
"""

from __future__ import annotations

from collections.abc import Mapping

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.labels import LABELS
from cxrsynth.synthesis.archive_builder import ArchiveBuild
from cxrsynth.synthesis.calibration import CalibratedLabeller
from cxrsynth.synthesis.comparison import ScorerComparison


def archive_metrics(build: ArchiveBuild, params: ArchiveParams, shards: list[str], labels: Mapping[str, dict],
                    labeller: CalibratedLabeller, comparison: ScorerComparison, privacy: dict | None,
                    view: dict) -> dict:
    """``metrics/archive.json``: the archive's size against its plan, the optimisation's yield, per
    label the archive's prevalence beside the source's (``labels``: ``synthesis.archive_builder.label_counts``),
    per class the plan and the scorers' summaries, the labeller's cut-offs and its record on the real
    test films, the privacy filter's record (``privacy``; None: not applied), the View Position
    record and the forecast beside what happened."""
    result, table, planned = build.optimisation, build.table, build.planned
    return {
        "scorer": params.scorer,
        "images": len(table),
        "planned_images": params.size,
        "delivered_fraction": round(len(table) / params.size, 4),
        "patients": int(table["Patient ID"].nunique()),
        "jobs": len(result.classes),
        "success_rate": round(float(result.success.mean()), 4),
        "batched_steps": result.batched_steps,
        "mean_occupied_slots": round(result.mean_occupied_slots, 2),
        "shards": shards,
        "passes": build.passes,
        "labels_within_tolerance": sum(v["within_tolerance"] for v in labels.values()),
        "labels": labels,
        "per_class": {row["class"]: {k: int(v) for k, v in row.items() if k != "class"}
                      | comparison.per_class[params.scorer].get(row["class"], {})
                      for row in planned.to_dict("records")},
        "label_thresholds": {"kind": params.label_thresholds,
                             **{n: round(float(t), 4) for n, t in zip(LABELS, labeller.scorer.thresholds)}},
        "labeller_on_real_test": labeller.on_real_test,
        "scorers": comparison.per_class,
        "privacy_filter": privacy or {"applied": False},
        "view": view,
        "forecast": build.forecast_record(),
    }


def archive_summary(metrics: dict, planned_images: int) -> list[str]:
    """The lines the stage prints: images and patients made, labels within tolerance, how View Position
    was set and, when the privacy filter ran, what it flagged, replaced and dropped."""
    lines = [f"archive: {metrics['images']} of {planned_images} images, {metrics['patients']} patients, "
             f"{metrics['labels_within_tolerance']} of 15 labels within tolerance of the source"]
    view = metrics["view"]
    test = view["test"]
    lines.append(f"archive: View Position {view['method']}: " + (
        f"on the real test split accuracy {test['accuracy']}, AUROC {test['auroc']}; archive PA share "
        f"{view['archive_pa_share']}" if test else view["reason"]))
    record = metrics["privacy_filter"]
    if record["applied"]:
        lines.append(
            f"archive: privacy filter: {record['patients_flagged_before']} patients ({record['images_flagged_before']} "
            f"images) flagged, {record['replaced_patients']} replaced in {record['rounds']} rounds, "
            f"{record['dropped_patients']} dropped"
            + (f"; by pixel and feature nearest neighbours only: {reason}"
               if (reason := record["thresholds"]["verifier_not_used_because"]) else ""))
    return lines


def archive_timings(build: ArchiveBuild, comparison: ScorerComparison) -> dict:
    """The stage's timings: the build's seconds and accepted latents per second, the forecast's and
    the scorer comparison's seconds."""
    return {"build_seconds": round(build.seconds, 1),
            "accepted_latents_per_s": round(int(build.optimisation.success.sum()) / build.seconds, 2),
            **build.forecast_timings(), **comparison.timings()}
