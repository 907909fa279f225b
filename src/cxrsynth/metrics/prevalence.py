"""Label prevalence of real and generated images under one classifier (paper 001, section 4.2), and
the prevalence stage's results: its metrics and Figure 6's plot table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from cxrsynth.errors import MissingInputError
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


def round_floats(value, digits: int = 5):
    """``value`` with every float rounded to ``digits`` places, through nested dicts; other values as they are."""
    if isinstance(value, dict):
        return {k: round_floats(v, digits) for k, v in value.items()}
    return round(value, digits) if isinstance(value, float) else value


def real_labels(real_dir: Path, subset: str, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The real images' labels from the classifier (its probabilities from ``real_features`` at
    ``thresholds``) and their ground truth, both (N, 15) for the images of ``subset`` ("test", or every
    split): (predicted uint8, truth)."""
    probs_file = Path(real_dir) / "classifier_probs.csv"
    if not probs_file.exists():
        raise MissingInputError(f"{probs_file}: not found (fid.extractor must include the classifier)")
    real = pd.read_csv(probs_file)
    if subset == "test":
        real = real[real["split"] == "test"]
    predicted = (real[[f"p_{n}" for n in LABELS]].to_numpy() >= thresholds).astype(np.uint8)
    return predicted, real[list(LABELS)].to_numpy()


def prevalence_metrics(per_label: dict, subset: str, n_real: int, n_generated: int, n_bootstrap: int,
                       level: float) -> dict:
    """The prevalence stage's metrics: the settings, the labels whose intervals do not overlap and
    ``per_label`` (as ``prevalence_report`` gives it) with floats rounded to 5 places."""
    return {
        "real_subset": subset,
        "n_real": n_real,
        "n_generated": n_generated,
        "n_bootstrap": n_bootstrap,
        "level": level,
        "labels_excluded": [n for n in LABELS if per_label[n]["excluded"]],
        "per_label": round_floats(per_label),
    }


def figure6_table(wide: pd.DataFrame) -> pd.DataFrame:
    """Figure 6 as a plot table: one bar per label and set (real, generated), prevalence and interval in %."""
    return pd.concat([pd.DataFrame({"bar": [f"{n} | {s}" for n in LABELS], "set": s,
                                    "prevalence_pct": (100 * wide[f"{s}_mean"]).round(3).to_numpy(),
                                    "lo_pct": (100 * wide[f"{s}_lo"]).round(3).to_numpy(),
                                    "hi_pct": (100 * wide[f"{s}_hi"]).round(3).to_numpy()})
                      for s in ("real", "generated")]).sort_values("bar", kind="stable")
