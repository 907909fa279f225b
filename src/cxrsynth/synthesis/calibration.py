"""The archive's labeller, calibrated: its cut-offs set on the real validation films, checked on the test films.

``calibrate_labeller`` scores the real held-out films once (``synthesis.labeller``), sets the
cut-offs ``archive.label_thresholds`` names, and says how often the labeller then gives each
label on the real test films beside how often those films truly carry it, and its test macro
AUROC (which the build's forecast quotes when the plan cannot be met).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxrsynth.data.store_splits import StoreDataset
from cxrsynth.labels import LABELS
from cxrsynth.metrics.auroc import macro, per_class_auroc
from cxrsynth.metrics.extractors import Extractor, classifier_extractor
from cxrsynth.synthesis.labeller import archive_labeller, held_out_predictions
from cxrsynth.synthesis.scorers import Scorer


@dataclass
class CalibratedLabeller:
    """The labeller with the archive's cut-offs, and how it does on the real test films."""

    scorer: Scorer
    on_real_test: dict[str, dict[str, float]]  # per label: true_pct and labelled_pct (``labelled_vs_true``)
    test_macro_auroc: float | None  # None where no class has test positives and negatives

    def extractor(self) -> Extractor:
        """The labeller's penultimate features (what ``synthesis.view`` predicts View Position from)."""
        return classifier_extractor(self.scorer.model, self.scorer.input_size)


def labelled_vs_true(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> dict[str, dict[str, float]]:
    """Per label (LABELS order): the percentage of films carrying it (``true_pct``, from the 0/1
    ``labels``) and the percentage the labeller gives it (``labelled_pct``: ``probs`` at or above the
    label's threshold), rounded to 2 places."""
    return {name: {"true_pct": round(100 * float(labels[:, c].mean()), 2),
                   "labelled_pct": round(100 * float((probs[:, c] >= thresholds[c]).mean()), 2)}
            for c, name in enumerate(LABELS)}


def calibrate_labeller(labeller: Scorer, kind: str, real: dict[str, StoreDataset]) -> CalibratedLabeller:
    """``labeller`` with the cut-offs ``kind`` names (``synthesis.labeller.archive_labeller``, on the
    ``val`` films of ``real``), its ``labelled_vs_true`` on the ``test`` films and its test macro AUROC.
    ``real`` is ``data.store_splits.split_datasets`` at the labeller's input size."""
    held_out = held_out_predictions(labeller, real)
    labeller = archive_labeller(labeller, kind, held_out["val"])
    test_probs, test_labels = held_out["test"]
    on_real_test = labelled_vs_true(test_probs, test_labels, labeller.thresholds)
    auroc = macro(per_class_auroc(test_probs, test_labels, LABELS))
    return CalibratedLabeller(labeller, on_real_test, None if np.isnan(auroc) else auroc)
