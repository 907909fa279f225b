"""What the privacy stage reports: per-population summaries, the controls, the closest pairs.

``audit_populations`` searches the archive, the real test films (new patients) and the real
training films (the positive control) against the reference and summarises each, with the
own-patient controls; ``privacy_metrics`` assembles ``metrics/privacy.json`` from that and the
archive's filter record; ``privacy_summary`` gives the lines the stage prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.privacy.audit import (
    CRITERIA,
    Auditor,
    Nearest,
    Thresholds,
    distribution,
    flagged_patients,
)
from cxrsynth.privacy.audit_inputs import AuditSetup
from cxrsynth.resize import resize_uint8_half_up

#: The populations searched, by their name in the figure, with their key in the metrics.
POPULATIONS = {"archive": "archive", "real test (new patients)": "real_test",
               "real training (vs rest)": "real_training"}


def summary(nearest: Nearest, flags: dict[str, np.ndarray], patients: np.ndarray) -> dict:
    """Images, flagged share per criterion and overall, flagged patients, and the distributions. A
    criterion not used (no entry in ``flags``) has share None and no distribution."""
    return {
        "images": len(nearest),
        "patients": len(np.unique(patients)),
        "flagged_images": int(flags["any"].sum()),
        "flagged_fraction": round(float(flags["any"].mean()), 5) if len(nearest) else None,
        "flagged_fraction_by": {c: round(float(flags[c].mean()), 5) if c in flags else None for c in CRITERIA}
                               if len(nearest) else {},
        "flagged_patients": len(flagged_patients(flags["any"], patients)),
        "distributions": {c: distribution(getattr(nearest, c)) if c in flags else {} for c in CRITERIA},
    }


def own_patient_control(auditor: Auditor, table: pd.DataFrame, rows: np.ndarray, thresholds: Thresholds,
                        desc: str | None = None) -> dict:
    """Reference films ``rows`` searched against everything but themselves, their own patient's other
    films included: among films whose patient has another film, the share flagged (per criterion
    and overall) and the share whose best verifier match is their own patient."""
    nearest = auditor.nearest_of_reference(rows, "self", desc=desc)
    patients = table["patient_id"].to_numpy()
    has_follow_up = table.groupby("patient_id")["patient_id"].transform("size").to_numpy()[rows] > 1
    flags = thresholds.flags(nearest)
    mean = lambda v: round(float(v[has_follow_up].mean()), 5) if has_follow_up.any() else None
    return {
        "images_with_a_follow_up": int(has_follow_up.sum()),
        "flagged_fraction": mean(flags["any"]),
        "flagged_fraction_by": {c: mean(flags[c]) if c in flags else None for c in CRITERIA},
        # the verifier's best match; None without a verifier in use
        "best_match_is_own_patient": mean(patients[nearest.verifier_index] == patients[rows])
                                     if "verifier" in flags else None,
    }


def closest_pairs(auditor: Auditor, images: np.ndarray, nearest: Nearest, n: int,
                  by: str = "verifier") -> list[tuple[np.ndarray, np.ndarray, str]]:
    """The ``n`` images closest to a training film ``by`` the verifier (highest score) or ``"pixel"``
    (smallest distance), each with that match and a caption (the score, if any, and the pixel
    distance between the two images shown)."""
    if by not in ("verifier", "pixel"):
        raise ValueError(f"by must be 'verifier' or 'pixel', not {by!r}")
    order = -nearest.verifier if by == "verifier" else nearest.pixel
    closest = np.argsort(order, kind="stable")[:n]
    shown = auditor.reference_images[getattr(nearest, f"{by}_index")[closest]].numpy()
    query = resize_uint8_half_up(torch.as_tensor(images[closest]), shown.shape[-1]).numpy()
    distance = np.sqrt(((query / 255.0 - shown / 255.0) ** 2).reshape(len(closest), -1).sum(1))
    score = lambda i: f"score {nearest.verifier[i]:.3f}\n" if by == "verifier" else ""
    return [(images[i], shown[k], f"{score(i)}px {distance[k]:.2f}") for k, i in enumerate(closest)]


@dataclass
class PopulationAudit:
    """Per population (``POPULATIONS``' figure names, in order) its images' best matches, and the
    reports by metrics key: ``summary`` of each population (the training one with its
    ``with_a_follow_up`` control) and ``real_test_own_patient_included``."""

    nearest: dict[str, Nearest]
    reports: dict[str, dict]


def audit_populations(setup: AuditSetup, archive_images: np.ndarray, archive_patients: np.ndarray) -> PopulationAudit:
    """Search the archive (against everything), the real test films (against other patients) and the
    real training films (against the rest), summarise each with ``setup.thresholds``' flags, then
    run the own-patient controls on the training and the test films (``own_patient_control``)."""
    auditor, table, thresholds = setup.auditor, setup.table, setup.thresholds
    test = np.flatnonzero((table["split"] == "test").to_numpy())
    train = np.flatnonzero((table["split"] == "train").to_numpy())
    ids = table["patient_id"].to_numpy()
    populations = {
        "archive": (auditor.nearest(archive_images, desc="archive"), archive_patients),
        "real test (new patients)": (auditor.nearest_of_reference(test, "patient", desc="test"), ids[test]),
        "real training (vs rest)": (auditor.nearest_of_reference(train, "self", desc="training"), ids[train]),
    }
    reports = {POPULATIONS[name]: summary(nearest, thresholds.flags(nearest), who)
               for name, (nearest, who) in populations.items()}
    reports["real_training"]["with_a_follow_up"] = own_patient_control(auditor, table, train, thresholds)
    reports["real_test_own_patient_included"] = own_patient_control(auditor, table, test, thresholds,
                                                                    desc="test, own patient included")
    return PopulationAudit({name: nearest for name, (nearest, _) in populations.items()}, reports)


def privacy_metrics(setup: AuditSetup, params: PrivacyParams, reports: dict[str, dict], record: dict | None) -> dict:
    """``metrics/privacy.json``: the reference, the verifier and whether it is used, the thresholds and
    their calibration, the archive's filter ``record`` (None: the filter did not run), the archive's
    flagged images before the filter (the record's count, else as audited here) and after it, then
    ``reports`` (``audit_populations``)."""
    table, thresholds, archive = setup.table, setup.thresholds, reports["archive"]
    return {
        "reference": {"images": len(table), "patients": int(table["patient_id"].nunique()),
                      "what": "every stored image: the GAN trains on the whole store"},
        "verifier": {**{k: setup.verifier.get(k) for k in ("test_auc", "test_pairs", "resolution")},
                     "used": setup.verifier_used, "not_used_because": thresholds.verifier_not_used_because,
                     "min_test_auc": params.min_verifier_auc},
        "thresholds": thresholds.as_dict(),
        "calibration": {"split": "val", "images": len(setup.calibration),
                        "distributions": {c: distribution(getattr(setup.calibration, c)) if c in thresholds.criteria
                                          else {} for c in CRITERIA}},
        "filter": record or {"applied": False},
        "archive_flagged_before_filter": record["images_flagged_before"] if record else archive["flagged_images"],
        "archive_flagged_after_filter": archive["flagged_images"],
        **reports,
    }


def privacy_summary(metrics: dict, false_match_rate: float) -> list[str]:
    """The lines the stage prints (``metrics``: ``privacy_metrics``): why the verifier is not used (when
    not), then the archive's flagged images before and after the filter, the new patients' flagged
    share against the target rate per criterion, and the own-patient control's."""
    archive, control = metrics["archive"], metrics["real_test_own_patient_included"]
    lines = [] if metrics["verifier"]["used"] else [
        f"privacy: {metrics['verifier']['not_used_because']}: images flagged by pixel and feature nearest neighbours only"]
    lines.append(
        f"privacy: archive {archive['flagged_images']} of {archive['images']} images flagged "
        f"({metrics['archive_flagged_before_filter']} before the filter); new patients (test) flagged "
        f"{metrics['real_test']['flagged_fraction']:.2%} (rate per criterion {false_match_rate:.0%}); "
        + (f"test films with their own patient's other films left in: {control['flagged_fraction']:.1%} flagged"
           if control["flagged_fraction"] is not None else "no test patient has a second film (no own-patient control)"))
    return lines
