"""Label prevalence of real and generated images under one classifier (paper 001, section 4.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from cxrsynth.labels import LABELS
from cxrsynth.metrics.bootstrap import bootstrap_prevalence, compare_prevalence
from cxrsynth.models.classifier import probabilities
from cxrsynth.sampling import sample_images


def label_generated(generator: torch.nn.Module, resolution: int, z: torch.Tensor, classifier: torch.nn.Module,
                    input_size: int, thresholds: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Generate one image per latent and label it: (N, 15) uint8 thresholded classifier predictions."""
    out = []
    for start in tqdm(range(0, len(z), batch_size), desc="label generated", unit="batch"):
        images = sample_images(generator, z[start : start + batch_size], resolution, batch_size)
        out.append((probabilities(classifier, images, input_size, batch_size).numpy() >= thresholds).astype(np.uint8))
    return np.concatenate(out)


def prevalence_report(real: np.ndarray, generated: np.ndarray, truth: np.ndarray, n_resamples: int,
                      seed: int, level: float = 0.95) -> tuple[dict, pd.DataFrame]:
    """Bootstrap both label matrices; return (per-label metrics, wide table for Figure 6)."""
    r = bootstrap_prevalence(real, n_resamples, seed, level)
    g = bootstrap_prevalence(generated, n_resamples, seed + 1, level)
    per_label = compare_prevalence(r, g, LABELS)
    for i, name in enumerate(LABELS):
        per_label[name]["truth"] = float(truth[:, i].mean())
    wide = pd.DataFrame({f"{k}_{s}": [per_label[n][k][s] for n in LABELS]
                         for k in ("real", "generated") for s in ("mean", "lo", "hi")}, index=list(LABELS))
    wide["excluded"] = [per_label[n]["excluded"] for n in LABELS]
    return per_label, wide
