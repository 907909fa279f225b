"""Table 2: classifiers trained on synthetic sets, all tested on the real test split."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.data.split import stratify_patients
from cxrsynth.labels import LABELS
from cxrsynth.metrics.auroc import evaluate
from cxrsynth.models.classifier import resize_uint8
from cxrsynth.reference import TABLE2_AUROC, TABLE2_AVERAGE, TABLE2_COLUMNS
from cxrsynth.training.classifier_fit import ClassifierResult, fit_on
from cxrsynth.training.datamodule import ArrayDataModule


def patient_split(table: pd.DataFrame, val_fraction: float, seed: int) -> np.ndarray:
    """True for validation images: synthetic patients stratified (iteratively, image-weighted) into train/val."""
    return stratify_patients(table, (1.0 - val_fraction, val_fraction), seed).to_numpy() == 1


def train_on_synthetic(table: pd.DataFrame, images: np.ndarray, test: tuple[np.ndarray, np.ndarray],
                       params: ClassifierParams, val_fraction: float, seed: int, work_dir: Path,
                       weights_dir: Path | None = None) -> ClassifierResult:
    """Train the classifier recipe on a synthetic set (train/val by patient) and test on real images
    (the same ImageNet start as the real classifier: ``weights_dir`` as in ``fit_classifier``)."""
    val = patient_split(table, val_fraction, seed)
    labels = table[list(LABELS)].to_numpy(dtype=np.float32)
    images = resize_uint8(images, params.input_size)
    data = ArrayDataModule({"train": (images[~val], labels[~val]), "val": (images[val], labels[val]),
                            "test": test}, params.batch_size, params.num_workers)
    return fit_on(data, params, work_dir, weights_dir=weights_dir)


def real_column(probs: np.ndarray, targets: np.ndarray) -> dict:
    """The real-trained classifier evaluated with the same code on the same test images."""
    return evaluate(probs, targets, LABELS)


def table2(columns: dict[str, dict]) -> dict:
    """{class: {column: auroc}} plus ``macro`` per column, from ``evaluate`` results keyed by column.
    ``macro_classes`` says how many classes each macro averages (those with test positives and negatives)."""
    out = {name: {col: round(res["auroc"][name], 4) for col, res in columns.items()} for name in LABELS}
    out["macro"] = {col: round(res["auroc_macro"], 4) for col, res in columns.items()}
    out["macro_classes"] = {col: res["auroc_macro_classes"] for col, res in columns.items()}
    return out


def table2_markdown(table: dict) -> str:
    """Markdown table: this run's three columns next to the paper's."""
    head = ("| class | embedded | class generated | real | paper: embedded | paper: class generated | paper: real |\n"
            "|---|---|---|---|---|---|---|\n")
    rows = []

    def fmt(v):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    for name in (*LABELS, "macro"):
        ours = [table[name].get(col) for col in TABLE2_COLUMNS]
        paper = TABLE2_AVERAGE if name == "macro" else TABLE2_AUROC[name]
        rows.append(f"| {name} | " + " | ".join(fmt(v) for v in ours) + " | " + " | ".join(fmt(v) for v in paper) + " |")
    classes = table.get("macro_classes", {})
    foot = ("\nmacro: the mean over the classes with test positives and negatives ("
            + ", ".join(f"{col.replace('_', ' ')} {classes[col]}" for col in TABLE2_COLUMNS if col in classes)
            + f" of {len(LABELS)}).\n") if classes else ""
    return head + "\n".join(rows) + "\n" + foot
