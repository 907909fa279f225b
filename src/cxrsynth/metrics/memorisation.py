"""Memorisation: how many generated images lie closer to a training image than new patients' films do.

This is the privacy audit's distance criterion (``privacy/audit.py``), in the feature space FID
uses: each image's Euclidean distance to its nearest training feature vector; the threshold is the
``percentile``-th percentile of those distances over real films of patients the reference does not
hold (the lower order statistic, ``np.percentile(..., method="lower")``, as ``audit.calibrate``);
an image is flagged when its distance is strictly below it (``<``, as ``audit.Thresholds.flags``).
With strict ``<`` and the lower order statistic, at most ``percentile`` % of the reference films
themselves are flagged, so a generator whose samples are as novel as new patients' films scores
about ``percentile / 100`` (``expected_if_novel``); a copier scores near 1.

When the "new" films are themselves in the training set (the PGGAN and the baselines train on every
stored film, test split included), pass the patients: each such film is then compared with every
*other* patient's training films, the audit's ``exclude="patient"``, so it stands for a patient the
generator never saw.
"""

from __future__ import annotations

import numpy as np
import torch

from cxrsynth.metrics.prdc import CHUNK, as_float64


def nearest_distances(query: np.ndarray, reference: np.ndarray, chunk: int = CHUNK,
                      query_groups: np.ndarray | None = None, reference_groups: np.ndarray | None = None,
                      device: str | torch.device | None = None) -> np.ndarray:
    """Each query vector's Euclidean distance (float64) to its nearest ``reference`` vector, ``chunk`` query
    rows at a time; with groups (e.g. patient ids), reference vectors of the query's own group are
    skipped (inf when every reference vector is)."""
    q, ref = as_float64(query, device), as_float64(reference, device)
    if q.shape[1] != ref.shape[1]:
        raise ValueError(f"query vectors have {q.shape[1]} features, reference {ref.shape[1]}")
    if (query_groups is None) != (reference_groups is None):
        raise ValueError("give groups for both the query and the reference, or for neither")
    if query_groups is not None:
        query_groups = torch.as_tensor(np.asarray(query_groups), device=q.device)
        reference_groups = torch.as_tensor(np.asarray(reference_groups), device=q.device)
    out = torch.empty(len(q), dtype=torch.float64, device=q.device)
    for start in range(0, len(q), chunk):
        stop = min(start + chunk, len(q))
        d = torch.cdist(q[start:stop], ref)
        if query_groups is not None:
            d.masked_fill_(query_groups[start:stop, None] == reference_groups[None, :], torch.inf)
        out[start:stop] = d.min(1).values
    return out.cpu().numpy()


def memorisation(generated: np.ndarray, train: np.ndarray, test: np.ndarray, percentile: float = 1.0,
                 chunk: int = CHUNK, train_patients: np.ndarray | None = None,
                 test_patients: np.ndarray | None = None, device: str | torch.device | None = None) -> dict:
    """The share of ``generated`` vectors nearer to a ``train`` vector than the ``percentile``-th percentile
    of the ``test`` vectors' nearest-train distances (strict ``<``, the audit's convention).

    ``train_patients`` / ``test_patients``: each test vector skips the train vectors of its own patient
    (needed when the test films are among the training films). Returns ``share``, ``threshold``,
    ``percentile``, ``expected_if_novel`` (``percentile / 100``), ``median_distance_ratio`` (median
    nearest-train distance of the generated vectors over that of the test vectors: below 1 means
    nearer to the training set than new patients are; None when that median is 0), ``n_generated`` and ``n_test``."""
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be in (0, 100), got {percentile}")
    if not len(test) or not len(generated):
        raise ValueError(f"memorisation needs generated and test vectors (got {len(generated)} and {len(test)})")
    generated_nearest = nearest_distances(generated, train, chunk, device=device)
    test_nearest = nearest_distances(test, train, chunk, test_patients, train_patients, device)
    threshold = float(np.percentile(test_nearest, percentile, method="lower"))
    test_median = float(np.median(test_nearest))
    return {
        "share": float(np.mean(generated_nearest < threshold)),
        "threshold": threshold,
        "percentile": float(percentile),
        "expected_if_novel": percentile / 100,
        "median_distance_ratio": float(np.median(generated_nearest)) / test_median if test_median > 0 else None,
        "n_generated": len(generated),
        "n_test": len(test),
    }
