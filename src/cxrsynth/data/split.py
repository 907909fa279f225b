"""Patient-level, multi-label iterative stratification into train/val/test.

Two ways, chosen by ``split.weighting``:

- ``patients`` (the paper): each patient's labels averaged over their images, then the
  iterative-stratification package's ``MultilabelStratifiedShuffleSplit``. That package
  binarises the labels and counts every patient once, so a patient with 100 images weighs
  as much as one with one image, and image-level prevalences drift (0.85 pp on Effusion
  for an 80/20 split of the real table).
- ``images`` (default): the same Sechidis et al. (2011) algorithm written here with
  weights, because the package cannot take them: a patient contributes its number of
  positive images per label and its number of images to the subsets' desired counts, and
  large patients are placed first so small ones can even out the remainder. A local
  search then moves single patients while that lowers the squared image-level deviation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxrsynth.errors import InputError
from cxrsynth.labels import LABELS

SPLITS = ("train", "val", "test")


def patient_label_counts(table: pd.DataFrame, labels=LABELS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per patient: (patient ids, (P, L) positive-image counts, (P,) image counts)."""
    grouped = table.groupby("patient_id", sort=True)
    counts = grouped[list(labels)].sum().to_numpy(dtype=np.float64)
    sizes = grouped.size().to_numpy(dtype=np.float64)
    return grouped.size().index.to_numpy(), counts, sizes


def weighted_iterative_stratification(
    counts: np.ndarray, weights: np.ndarray, fractions, rng: np.random.Generator
) -> np.ndarray:
    """Assign each row (patient) to one of ``len(fractions)`` subsets; returns (P,) subset ids.

    ``counts[p, l]`` is how many of patient p's images carry label l and ``weights[p]`` how
    many images p has. Labels are processed rarest first; each patient holding the current
    label goes to the subset that still wants most of it (ties: most wanted images overall,
    then random), largest patients first.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    n_patients = counts.shape[0]
    want_label = np.outer(fractions, counts.sum(axis=0))
    want_total = fractions * weights.sum()
    assignment = np.full(n_patients, -1, dtype=np.int64)
    remaining = np.ones(n_patients, dtype=bool)
    jitter = rng.random(n_patients)  # random order among equal weights
    positive = counts > 0
    while remaining.any():
        left = counts[remaining].sum(axis=0)
        if not left.any():
            members = np.flatnonzero(remaining)
            label = None
        else:
            candidates = np.flatnonzero(left == left[left > 0].min())
            label = candidates[rng.integers(len(candidates))]
            members = np.flatnonzero(remaining & positive[:, label])
        members = members[np.lexsort((jitter[members], -weights[members]))]
        for p in members:
            score = want_label[:, label] if label is not None else want_total
            best = np.flatnonzero(score == score.max())
            if len(best) > 1:
                best = best[want_total[best] == want_total[best].max()]
            k = best[rng.integers(len(best))] if len(best) > 1 else best[0]
            assignment[p] = k
            want_label[k] -= counts[p]
            want_total[k] -= weights[p]
        remaining[members] = False
    return assignment


def refine_assignment(
    counts: np.ndarray,
    weights: np.ndarray,
    assignment: np.ndarray,
    fractions,
    max_rounds: int = 200,
    batch: int = 64,
) -> np.ndarray:
    """Move single patients between subsets while that lowers the image-level prevalence error.

    The error is the sum over subsets and labels of squared deviations (percentage points)
    from the whole set's prevalence, plus the squared deviation of each subset's share of
    images from its fraction. Each round scores every possible single move at once
    (vectorised), then applies the ``batch`` best in turn, re-checking each exactly.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    k_sets = len(fractions)
    total = weights.sum()
    target = counts.sum(axis=0) / total
    assignment = assignment.copy()
    C = np.zeros((k_sets, counts.shape[1]))
    n = np.zeros(k_sets)
    np.add.at(C, assignment, counts)
    np.add.at(n, assignment, weights)

    def error(c, m, k):  # c: (..., L), m: (...,), k: subset id(s)
        prev = c / np.maximum(m, 1e-9)[..., None]
        return (((prev - target) * 100) ** 2).sum(axis=-1) + ((m / total - fractions[k]) * 100) ** 2

    for _ in range(max_rounds):
        current = error(C, n, np.arange(k_sets))
        src = assignment
        best_delta = np.zeros(len(weights))
        best_dest = np.full(len(weights), -1)
        for dest in range(k_sets):
            movable = src != dest
            delta = (
                error(C[src] - counts, n[src] - weights, src)
                + error(C[dest] + counts, n[dest] + weights, dest)
                - current[src]
                - current[dest]
            )
            better = movable & (delta < best_delta)
            best_delta[better], best_dest[better] = delta[better], dest
        order = np.argsort(best_delta)[:batch]
        moved = 0
        for p in order:
            if best_delta[p] >= -1e-9:
                break
            a, b = assignment[p], best_dest[p]
            new_a, new_b = C[a] - counts[p], C[b] + counts[p]
            change = (error(new_a, n[a] - weights[p], a) + error(new_b, n[b] + weights[p], b)
                      - error(C[a], n[a], a) - error(C[b], n[b], b))
            if change < -1e-9:
                C[a], C[b] = new_a, new_b
                n[a] -= weights[p]
                n[b] += weights[p]
                assignment[p] = b
                moved += 1
        if not moved:
            break
    return assignment


def _library_split(binary: np.ndarray, fractions, seed: int) -> np.ndarray:
    """The paper's way: MultilabelStratifiedShuffleSplit on binarised patient labels, peeling subsets off."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    n = binary.shape[0]
    assignment = np.zeros(n, dtype=np.int64)
    pool = np.arange(n)
    left = 1.0
    for k in range(len(fractions) - 1, 0, -1):
        share = fractions[k] / left
        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=share, random_state=seed + k)
        keep, take = next(splitter.split(np.zeros(len(pool)), binary[pool]))
        assignment[pool[take]] = k
        pool = pool[keep]
        left -= fractions[k]
    return assignment


def stratify_patients(table: pd.DataFrame, fractions, seed: int, weighting: str = "images") -> pd.Series:
    """Subset id per image (index aligned with ``table``), every patient's images in one subset."""
    patients, counts, sizes = patient_label_counts(table)
    if weighting == "images":
        assignment = weighted_iterative_stratification(counts, sizes, fractions, np.random.default_rng(seed))
        assignment = refine_assignment(counts, sizes, assignment, fractions)
    elif weighting == "patients":
        averaged = counts / sizes[:, None]
        assignment = _library_split(averaged > 0, list(fractions), seed)
    else:
        raise ValueError(f"split.weighting: unknown value {weighting!r} (images | patients)")
    by_patient = pd.Series(assignment, index=patients)
    return table["patient_id"].map(by_patient).astype(np.int64)


def official_split(table: pd.DataFrame, test_images: set[str], fractions, seed: int, weighting: str) -> pd.Series:
    """NIH's ``test_list.txt`` as test; val stratified out of the remaining patients."""
    is_test = table["image"].isin(test_images)
    test_patients = set(table.loc[is_test, "patient_id"])
    mixed = set(table.loc[~is_test, "patient_id"]) & test_patients
    if mixed:
        raise InputError(f"official lists put {len(mixed)} patients in both train_val and test (e.g. {min(mixed)})")
    subset = pd.Series(2, index=table.index, dtype=np.int64)
    rest = table.loc[~is_test]
    train_val = np.asarray(fractions[:2], dtype=np.float64)
    subset.loc[rest.index] = stratify_patients(rest, train_val / train_val.sum(), seed, weighting)
    return subset


def prevalence_table(labels: pd.DataFrame, assignment: pd.Series, names=SPLITS) -> pd.DataFrame:
    """Image-level prevalence (%) per label for the whole set and each subset: rows labels, columns sets."""
    out = {"all": labels.mean(axis=0) * 100}
    for k, name in enumerate(names):
        out[name] = labels[assignment.to_numpy() == k].mean(axis=0) * 100
    return pd.DataFrame(out)


def max_deviation_pp(labels: pd.DataFrame, assignment: pd.Series, names=SPLITS) -> float:
    """Largest |subset prevalence - whole-set prevalence| in percentage points, at image level."""
    table = prevalence_table(labels, assignment, names)
    return float((table[list(names)].sub(table["all"], axis=0)).abs().to_numpy().max())


def patient_overlap(table: pd.DataFrame, assignment: pd.Series) -> int:
    """Number of patients whose images fall in more than one subset."""
    per_patient = pd.DataFrame({"p": table["patient_id"].to_numpy(), "s": assignment.to_numpy()})
    return int((per_patient.groupby("p")["s"].nunique() > 1).sum())
