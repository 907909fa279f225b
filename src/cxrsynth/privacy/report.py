"""What the privacy stage reports: per-population summaries, the controls, the closest pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from cxrsynth.privacy.audit import (
    CRITERIA,
    Auditor,
    Nearest,
    Thresholds,
    distribution,
    flagged_patients,
    resize_uint8,
)


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
    query = resize_uint8(torch.as_tensor(images[closest]), shown.shape[-1]).numpy()
    distance = np.sqrt(((query / 255.0 - shown / 255.0) ** 2).reshape(len(closest), -1).sum(1))
    score = lambda i: f"score {nearest.verifier[i]:.3f}\n" if by == "verifier" else ""
    return [(images[i], shown[k], f"{score(i)}px {distance[k]:.2f}") for k, i in enumerate(closest)]
