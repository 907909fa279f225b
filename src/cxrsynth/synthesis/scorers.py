"""Class scorers for class optimisation: a saved classifier used on generator output."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cxrsynth.models.classifier import normalise, resize_to
from cxrsynth.models.d_classifier import load_d_classifier
from cxrsynth.models.saved_classifier import load_classifier, threshold_vector


@dataclass
class Scorer:
    """A frozen classifier scoring generator output (images around [-1, 1]) with per-class logits."""

    name: str
    model: torch.nn.Module
    input_size: int
    thresholds: np.ndarray  # Youden thresholds on the probability scale, LABELS order

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1, r, r) generator output → (N, 15) logits; differentiable with respect to the images."""
        x01 = ((images.float() + 1.0) * 0.5).clamp(0.0, 1.0)
        return self.model(normalise(resize_to(x01, self.input_size)))

    @property
    def logit_thresholds(self) -> np.ndarray:
        p = np.clip(self.thresholds.astype(np.float64), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))


def load_scorer(folder: str | Path, device: str | torch.device = "cpu", name: str | None = None) -> Scorer:
    """A saved classifier (DenseNet or re-purposed discriminator) as a frozen scorer."""
    saved = json.loads((Path(folder) / "config.json").read_text()) if (Path(folder) / "config.json").exists() else {}
    load = load_d_classifier if saved.get("architecture") == "discriminator" else load_classifier
    model, thresholds, config = load(folder, device)
    model.requires_grad_(False)
    return Scorer(name or config["architecture"], model, int(config["input_size"]), threshold_vector(thresholds))


def severity_thresholds(base_logits: np.ndarray, classes: np.ndarray, mean: float, std: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Per latent, T_c = the class's Youden logit + |N(mean, std)| (section 4.3's severity)."""
    return base_logits[classes] + np.abs(rng.normal(mean, std, size=len(classes)))


def prevalence_thresholds(probs: np.ndarray, prevalence: np.ndarray) -> np.ndarray:
    """Per class, the score above which a fraction ``prevalence`` of these (real, held-out) images falls,
    so the classifier labels that class about as often as the source does."""
    return np.array([np.quantile(probs[:, c], 1.0 - p) if 0 < p < 1 else 0.5
                     for c, p in enumerate(np.asarray(prevalence, dtype=np.float64))], dtype=np.float32)


def calibrated_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per class, the cut-off at which the classifier labels these held-out images exactly as often as
    they carry the label (``labels`` (N, 15) 0/1, true): calibration to the observed prevalence."""
    return prevalence_thresholds(probs, np.asarray(labels, dtype=np.float64).mean(axis=0))
