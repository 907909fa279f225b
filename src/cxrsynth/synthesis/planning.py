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


def tolerance_pct(source_pct: np.ndarray | float) -> np.ndarray | float:
    """How far (percentage points) an archive label's prevalence may sit from the source's:
    max(2 points, 25% of the source's)."""
    return np.maximum(2.0, 0.25 * np.asarray(source_pct, dtype=np.float64))


def tolerance_weights(source_fraction: np.ndarray) -> np.ndarray:
    """Per label, 1 / its tolerance, scaled to mean 1: errors measured in tolerances, so the plan and
    the selection spend their slack where the check is loosest (No Finding's 9.5 points) rather than
    where it is tight (Atelectasis' 3.5)."""
    inverse = 1.0 / tolerance_pct(100 * np.asarray(source_fraction, dtype=np.float64))
    return inverse / inverse.mean()


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
                           usable: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
    """Images per target class (integers summing to ``images``) whose expected label counts
    ``rates.T @ n`` come closest, in least squares, to ``wanted`` (label counts still missing).

    The sum constraint enters as one more equation weighted ``total_weight`` (relative to a label's);
    ``usable`` (C,) bool excludes classes that cannot be generated (e.g. never converged);
    ``weights`` (L,) weigh each label's equation (``tolerance_weights``; default 1)."""
    rates = np.asarray(rates, dtype=np.float64)
    wanted = np.clip(np.asarray(wanted, dtype=np.float64), 0, None)
    if images <= 0:
        return np.zeros(len(rates), dtype=np.int64)
    keep = np.ones(len(rates), bool) if usable is None else np.asarray(usable, bool)
    w = np.ones(len(wanted)) if weights is None else np.asarray(weights, dtype=np.float64)
    a = np.vstack([rates[keep].T * w[:, None], np.full((1, keep.sum()), total_weight)])
    b = np.concatenate([wanted * w, [total_weight * images]])
    solution, _ = nnls(a, b)
    full = np.zeros(len(rates))
    full[keep] = solution
    return largest_remainder(full, images)


def select_patients(label_counts: np.ndarray, sizes: np.ndarray, images: int, wanted: np.ndarray,
                    weights: np.ndarray | None = None) -> np.ndarray:
    """Choose which generated patients (and how many of their follow-ups) make a pass's ``images``.

    The pass made its plan's patients with a surplus (``archive.oversample``); now every candidate's
    labels are known, so patients are taken greedily, from any target class, so the running label mix
    of the chosen images stays closest to ``wanted / images`` (squared error weighted by ``weights``,
    squared: ``tolerance_weights``; default the inverse wanted share, so rare labels count). The plan's
    per-class quotas only set how many candidates each class made: filling each quota exactly kept
    what the plan got wrong. On the demo's diffusion archive a class whose draws carry its finding
    more often than the pilot measured (Fibrosis) overshot its label by 2 points, and a class whose
    draws were rarely confirmed left its quota short; taken from the whole pool, the surplus of one
    class makes up for the other and the mix decides which.

    ``label_counts``: (P, L) labels summed over each candidate's follow-ups; ``sizes``: (P,) images.
    Returns (P,) images kept per candidate (0: left out); the last patient taken keeps only the
    follow-ups the pass still needs."""
    label_counts = np.asarray(label_counts, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.int64)
    left = max(int(images), 0)
    total = max(left, 1)
    target = np.clip(np.asarray(wanted, dtype=np.float64), 0, None) / total
    weight = 1.0 / np.maximum(target, 0.5 / total) if weights is None else np.asarray(weights, dtype=np.float64) ** 2
    kept = np.zeros(len(sizes), dtype=np.int64)
    counts, n = np.zeros(label_counts.shape[1]), 0
    open_ = sizes > 0
    while left > 0 and open_.any():
        mix = (counts + label_counts) / (n + sizes)[:, None]
        error = ((mix - target) ** 2 * weight).sum(axis=1)
        p = int(np.argmin(np.where(open_, error, np.inf)))
        take = int(min(sizes[p], left))
        kept[p], open_[p] = take, False
        left -= take
        counts += label_counts[p] * (take / sizes[p])  # a trimmed patient: its labels pro rata (an estimate)
        n += take
    return kept
