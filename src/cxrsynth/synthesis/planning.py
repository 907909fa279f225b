"""How many images to class-optimise for each target class so the archive's label mix matches the source.

Optimising a latent for one class brings other labels with it (the paper's Cardiomegaly →
Effusion), so per-class targets proportional to the source labels overshoot co-occurring
findings and undershoot No Finding. Instead, measure for each target class ``c`` the rate
``R[c, l]`` at which its images carry label ``l`` (from the patients generated so far), and
choose images per target class ``n >= 0`` so the expected label counts ``R.T @ n`` meet the
counts still wanted, with ``sum(n)`` the images still to make: a non-negative least-squares
problem (``scipy.optimize.nnls``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls


def label_rates(target: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per target class, the fraction of its images carrying each label, and its image count.

    ``target``: (N,) target class of each image; ``labels``: (N, L) 0/1. Returns ((C, L) rates, (C,) counts);
    a class with no image yet has rates of zero."""
    target = np.asarray(target, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.float64)
    counts = np.bincount(target, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, labels.shape[1]))
    np.add.at(sums, target, labels)
    return sums / np.maximum(counts, 1)[:, None], counts


def largest_remainder(values: np.ndarray, total: int) -> np.ndarray:
    """Non-negative integers summing to ``total``, each within one of ``values`` scaled to that total."""
    values = np.clip(np.asarray(values, dtype=np.float64), 0, None)
    if total <= 0:
        return np.zeros(len(values), dtype=np.int64)
    exact = values * (total / values.sum()) if values.sum() > 0 else np.full(len(values), total / len(values))
    out = np.floor(exact).astype(np.int64)
    out[np.argsort(-(exact - out), kind="stable")[: total - out.sum()]] += 1
    return out


def solve_images_per_class(rates: np.ndarray, wanted: np.ndarray, images: int, total_weight: float = 10.0,
                           usable: np.ndarray | None = None) -> np.ndarray:
    """Images per target class (integers summing to ``images``) whose expected label counts
    ``rates.T @ n`` come closest, in least squares, to ``wanted`` (label counts still missing).

    The sum constraint enters as one more equation weighted ``total_weight`` (relative to a label's);
    ``usable`` (C,) bool excludes classes that cannot be generated (e.g. never converged)."""
    rates = np.asarray(rates, dtype=np.float64)
    wanted = np.clip(np.asarray(wanted, dtype=np.float64), 0, None)
    if images <= 0:
        return np.zeros(len(rates), dtype=np.int64)
    keep = np.ones(len(rates), bool) if usable is None else np.asarray(usable, bool)
    a = np.vstack([rates[keep].T, np.full((1, keep.sum()), total_weight)])
    b = np.concatenate([wanted, [total_weight * images]])
    solution, _ = nnls(a, b)
    full = np.zeros(len(rates))
    full[keep] = solution
    return largest_remainder(full, images)
