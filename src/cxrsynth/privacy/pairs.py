"""Films paired by patient, for training and testing the patient verifier.

Pairs are drawn within one set of rows (one split), so a pair never puts one patient on both
sides of the train/test line.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler


def patient_rows(patient_ids: np.ndarray) -> list[np.ndarray]:
    """Row indices of each patient's films, one array per patient (patients in first-seen order)."""
    patient_ids = np.asarray(patient_ids)
    _, first, inverse = np.unique(patient_ids, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep first-seen order so results do not depend on ID values
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    groups = [[] for _ in order]
    for row, g in enumerate(rank[inverse]):
        groups[g].append(row)
    return [np.asarray(g, dtype=np.int64) for g in groups]


def patients_with_pairs(patient_ids: np.ndarray) -> int:
    """How many patients have two or more films: the patients a same-patient pair can come from."""
    _, counts = np.unique(np.asarray(patient_ids), return_counts=True)
    return int((counts >= 2).sum())


class PatientPairBatches(Sampler[list[tuple[int, int, int]]]):
    """``steps`` batches of ``batch_patients`` distinct patients, two different films each.

    Each item is (row a, row b, patient index); within a batch every other patient is a negative,
    so a batch holds ``batch_patients`` positive and ``2 * batch_patients * (batch_patients - 1)``
    negative pairs."""

    def __init__(self, patient_ids: np.ndarray, batch_patients: int, steps: int, seed: int):
        self.groups = [g for g in patient_rows(patient_ids) if len(g) >= 2]
        if len(self.groups) < 2:
            raise ValueError(f"need at least two patients with two films each, found {len(self.groups)}")
        self.batch_patients = min(batch_patients, len(self.groups))
        self.steps, self.seed = steps, seed

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        for _ in range(self.steps):
            chosen = rng.choice(len(self.groups), size=self.batch_patients, replace=False)
            batch = []
            for p in chosen:
                a, b = rng.choice(self.groups[p], size=2, replace=False)
                batch.append((int(a), int(b), int(p)))
            yield batch


class PairImages(torch.utils.data.Dataset):
    """Serves (film a, film b, patient) for the (row a, row b, patient) items of ``PatientPairBatches``."""

    def __init__(self, images: torch.Tensor):
        self.images = images  # (N, 1, r, r) uint8

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: tuple[int, int, int]):
        a, b, patient = item
        return self.images[a], self.images[b], patient


def evaluation_pairs(patient_ids: np.ndarray, negatives_per_positive: int, seed: int,
                     max_positive: int = 20_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every same-patient pair of films (up to ``max_positive``, sampled) and
    ``negatives_per_positive`` times as many random different-patient pairs.

    Returns rows a, rows b and whether each pair is one patient."""
    rng = np.random.default_rng(seed)
    patient_ids = np.asarray(patient_ids)
    positive = [(a, b) for g in patient_rows(patient_ids) for i, a in enumerate(g) for b in g[i + 1:]]
    positive = np.asarray(positive, dtype=np.int64).reshape(-1, 2)
    if len(positive) > max_positive:
        positive = positive[np.sort(rng.choice(len(positive), max_positive, replace=False))]
    wanted = negatives_per_positive * len(positive)
    negative = np.zeros((0, 2), dtype=np.int64)
    while len(negative) < wanted and len(np.unique(patient_ids)) > 1:
        draw = rng.integers(0, len(patient_ids), size=(2 * (wanted - len(negative)), 2))
        draw = draw[patient_ids[draw[:, 0]] != patient_ids[draw[:, 1]]]
        negative = np.concatenate([negative, draw])[:wanted]
    rows = np.concatenate([positive, negative])
    same = np.r_[np.ones(len(positive), bool), np.zeros(len(negative), bool)]
    return rows[:, 0], rows[:, 1], same
