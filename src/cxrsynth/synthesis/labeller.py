"""The archive's labeller: the DenseNet's scores on the real held-out films and its label cut-offs.

Shared by the ``archive`` stage (which labels its films) and the ``generator`` stage (which
saves the same cut-offs in the generator bundle), so both label a film the same way.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cxrsynth.data.store_splits import StoreDataset
from cxrsynth.models.classifier import probabilities
from cxrsynth.synthesis.scorers import Scorer, calibrated_thresholds


def held_out_predictions(labeller: Scorer, real: dict[str, StoreDataset],
                         splits: tuple[str, ...] = ("val", "test")) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per split name: the labeller's probabilities (N, 15) on that split's real films and their true
    0/1 labels (N, 15), LABELS order. ``real`` is ``data.store_splits.split_datasets`` at the
    labeller's input size."""
    return {name: (probabilities(labeller.model, real[name].all_images(), labeller.input_size).numpy(),
                   real[name].labels.numpy()) for name in splits}


def archive_labeller(labeller: Scorer, kind: str, val: tuple[np.ndarray, np.ndarray]) -> Scorer:
    """The labeller with the archive's cut-offs (``archive.label_thresholds``): ``"calibrated"`` on the
    real validation films ``val`` (probabilities, labels), so each label is given as often as they
    carry it; ``"youden"``: the classifier's own thresholds, unchanged."""
    if kind == "calibrated":
        return replace(labeller, thresholds=calibrated_thresholds(*val))
    return labeller
