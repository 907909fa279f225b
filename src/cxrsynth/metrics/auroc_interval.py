"""Paired, patient-level bootstrap intervals for macro AUROC and its ratio to a reference (Table 2).

Table 2 scores every classifier on one real test set, so each number carries that set's sampling
noise: on the demo's 997 test films a rare class has about 40 positives. Resampling the test
*patients* with replacement (a patient's films are correlated, so films are not the unit) gives each
film a weight, the number of times its patient was drawn. Every classifier is scored on the same
resamples (paired), so the interval of a ratio such as synthetic / real leaves out the noise the two
share: a hard resample is hard for both. Percentile intervals, as ``metrics/bootstrap.py`` and the
reader study use.

These intervals are the test set's noise only. A second training seed, or an archive differing in a
few dozen replaced patients, moves the demo's synthetic columns by more (docs/results.md).

Why our own code: scikit-learn's ``roc_auc_score`` takes sample weights but scores one resample at a
time (resamples x classes x classifiers calls). ``weighted_auroc`` scores every resample of a class in
one pass: the weighted Mann-Whitney statistic from cumulative sums over the sorted scores, ties
counted as a half (scikit-learn's convention; ``tests/test_auroc_interval.py`` checks they agree).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from tqdm import tqdm

from cxrsynth.errors import InputError

#: resamples scored at once: ``CHUNK`` x films float64 weights (100 x 25,000 films is 20 MB)
CHUNK = 100


def patient_weights(patients: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, films) weights: how often each film's patient is drawn when the ``patients`` (one id
    per film) are resampled with replacement, as many draws as there are patients."""
    codes = np.unique(np.asarray(patients), return_inverse=True)[1].ravel()
    if len(codes) == 0:
        raise InputError("bootstrap: no test films")
    n_patients = int(codes.max()) + 1
    draws = rng.integers(0, n_patients, size=(n_resamples, n_patients))
    flat = draws + n_patients * np.arange(n_resamples)[:, None]  # one bincount for every resample
    counts = np.bincount(flat.ravel(), minlength=n_resamples * n_patients).reshape(n_resamples, n_patients)
    return counts[:, codes].astype(np.float64)


def weighted_auroc(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` (films,) against 0/1 ``targets`` under each row of ``weights`` (resamples, films):
    the weighted share of (positive, negative) pairs ranked the right way, ties a half. NaN for a row
    with no positive or no negative weight."""
    order = np.argsort(scores, kind="stable")
    ranked, positive = np.asarray(scores)[order], np.asarray(targets)[order].astype(bool)
    w = weights[:, order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # groups of tied scores
    pos = np.add.reduceat(np.where(positive, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(positive, 0.0, w), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight scored strictly lower than each group
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    right = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, right / pairs, np.nan)


def macro_resamples(probs: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(resamples,) macro AUROC: per resample, the mean over the classes that have positives and negatives
    in the whole test set (those ``metrics.auroc.evaluate`` averages) and in that resample."""
    counts = targets.sum(axis=0)
    classes = [c for c in range(targets.shape[1]) if 0 < counts[c] < len(targets)]
    if not classes:  # no macro AUROC at all (``evaluate`` gives NaN too)
        return np.full(len(weights), np.nan)
    per_class = np.stack([weighted_auroc(probs[:, c], targets[:, c], weights) for c in classes])
    with warnings.catch_warnings():  # a resample of a tiny test set may hold no class's positives: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(per_class, axis=0)


def _interval(values: np.ndarray, level: float) -> dict[str, float | None]:
    """Percentile interval of the finite ``values``; None ends when there are none."""
    values = values[np.isfinite(values)]
    if not len(values):
        return {"lo": None, "hi": None}
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return {"lo": round(float(lo), 4), "hi": round(float(hi), 4)}


def _ratio(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return values / reference


def macro_intervals(probs: Mapping[str, np.ndarray], targets: np.ndarray, patients: np.ndarray,
                    reference: str = "real", n_resamples: int = 1000, level: float = 0.95,
                    seed: int = 0) -> dict:
    """Per column of ``probs`` ({column: (films, classes) scores}, every column on the same test films): the
    macro AUROC's paired, patient-level bootstrap interval; per column but ``reference``, the interval of
    its macro AUROC over the reference's (the ratio to real of Table 2). Returns the intervals and how
    they were drawn (resamples, level, patients, films)."""
    targets = np.asarray(targets)
    if reference not in probs:
        raise InputError(f"bootstrap: no {reference!r} column to take ratios to")
    if any(len(p) != len(targets) for p in probs.values()) or len(patients) != len(targets):
        raise InputError("bootstrap: scores, labels and patient ids must cover the same test films")
    rng = np.random.default_rng(seed)
    macro = {column: [] for column in probs}
    for start in tqdm(range(0, n_resamples, CHUNK), desc="Table 2 bootstrap", unit="chunk", leave=False):
        weights = patient_weights(patients, min(CHUNK, n_resamples - start), rng)
        for column, p in probs.items():
            macro[column].append(macro_resamples(np.asarray(p), targets, weights))
    macro = {column: np.concatenate(parts) for column, parts in macro.items()}
    return {
        "resamples": n_resamples, "level": level, "unit": "patient",
        "patients": int(len(np.unique(patients))), "films": int(len(targets)),
        "macro": {column: _interval(values, level) for column, values in macro.items()},
        f"ratio_to_{reference}": {column: _interval(_ratio(values, macro[reference]), level)
                                  for column, values in macro.items() if column != reference},
    }
