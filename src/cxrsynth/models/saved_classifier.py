"""Read a classifier folder written by ``training.classifier_fit.save_classifier``.

Kept apart from the training code so that the stages that only score images (FID, prevalence,
archive, privacy) load the network without importing Lightning.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.labels import LABELS
from cxrsynth.models.classifier import ARCHITECTURES, build_classifier


def read_saved_classifier(folder: str | Path, device: str | torch.device = "cpu") -> tuple[dict, dict[str, float], dict]:
    """(state dict, thresholds, config) of a classifier folder written by ``save_classifier``."""
    folder = Path(folder)
    for name in ("config.json", "model.pt", "thresholds.json"):
        if not (folder / name).exists():
            raise MissingInputError(f"{folder / name}: not found (not a saved classifier)")
    config = json.loads((folder / "config.json").read_text())
    state = torch.load(folder / "model.pt", map_location=device, weights_only=True)
    return state, json.loads((folder / "thresholds.json").read_text()), config


def load_classifier(folder: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, float], dict]:
    """Load the classifier saved by ``train_classifier`` (DenseNet-121 or ResNet-18): (network in eval
    mode taking normalised input, thresholds, config). The re-purposed discriminator loads with
    ``models.d_classifier.load_d_classifier``."""
    state, thresholds, config = read_saved_classifier(folder, device)
    if config["architecture"] not in ARCHITECTURES:
        raise InputError(f"{folder}: holds a {config['architecture']} classifier, not one of {ARCHITECTURES} "
                         "(load it with cxrsynth.models.d_classifier.load_d_classifier)")
    model = build_classifier(len(config["labels"]), pretrained="none", arch=config["architecture"])
    model.load_state_dict(state)
    return model.to(device).eval(), thresholds, config


def threshold_vector(thresholds: dict[str, float], labels=LABELS) -> np.ndarray:
    """Thresholds as an array in label order."""
    return np.array([thresholds[name] for name in labels], dtype=np.float32)
