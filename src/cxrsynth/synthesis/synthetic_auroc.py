"""Table 2: classifiers trained on synthetic sets, all tested on the real test split.

``train_columns`` trains the classifier recipe (``synthetic_recipe``) on each synthetic set;
``table2`` gathers the columns, beside the real-trained classifier's (``real_column``), into the
table that ``table2_metrics``, ``table2_document``, ``table2_bars`` and ``table2_figure`` write, with
the columns' paired, patient-level bootstrap intervals (``metrics.auroc_interval``) where given.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.data.patient_split import PatientSplit
from cxrsynth.data.split import stratify_patients
from cxrsynth.labels import LABELS
from cxrsynth.metrics.auroc import evaluate
from cxrsynth.paper import TABLE2_AUROC, TABLE2_AVERAGE, TABLE2_COLUMNS
from cxrsynth.plots import prevalence_by_split
from cxrsynth.resize import resize_uint8_as_classifier
from cxrsynth.training.classifier_fit import ClassifierResult, fit_on
from cxrsynth.training.datamodule import ArrayDataModule


#: The heading of ``synthetic_auroc.md`` (``table2_document``).
TABLE2_HEADING = "# Table 2: test AUROC on real images, by training data"


def synthetic_recipe(classifier: ClassifierParams, seed: int, max_epochs: int | None) -> ClassifierParams:
    """The classifier recipe Table 2 trains on each synthetic set: the real classifier's, with the
    ``synthetic_auroc`` section's ``seed`` and ``max_epochs`` (None: the classifier's own)."""
    return classifier.model_copy(update={"seed": seed, "max_epochs": max_epochs or classifier.max_epochs})


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
    images = resize_uint8_as_classifier(images, params.input_size)
    data = ArrayDataModule({"train": (images[~val], labels[~val]), "val": (images[val], labels[val]),
                            "test": test}, params.batch_size, params.num_workers)
    return fit_on(data, params, work_dir, weights_dir=weights_dir)


def train_columns(sets: dict[str, tuple[pd.DataFrame, np.ndarray]], test: tuple[np.ndarray, np.ndarray],
                  params: ClassifierParams, val_fraction: float, seed: int,
                  weights_dir: Path | None = None) -> tuple[dict[str, dict], dict[str, object], dict[str, np.ndarray]]:
    """``train_on_synthetic`` on each named synthetic set (table, images), in order, each in its own
    temporary work folder. Returns per column the test evaluation, the ImageNet weights the fit started
    from and the test films' scores (films, classes); all empty on every DDP process but global rank 0
    (which alone evaluates)."""
    results, weights, scores = {}, {}, {}
    test_images = torch.from_numpy(np.ascontiguousarray(test[0])).unsqueeze(1)  # (N, 1, r, r) uint8, as fit_on's
    for column, (table, images) in sets.items():
        with tempfile.TemporaryDirectory(prefix=f"synth-{column}-") as work:
            fit = train_on_synthetic(table, images, test, params, val_fraction, seed, Path(work), weights_dir)
        if fit is not None:  # None on every DDP process but global rank 0, which alone evaluates and writes
            results[column], weights[column] = fit.test, fit.module.weights
            scores[column] = fit.module.predict_probs(test_images).numpy()
    return results, weights, scores


def test_patients(store_table: pd.DataFrame, split: pd.DataFrame) -> np.ndarray:
    """The patient id of each real test film, in the order ``split_datasets`` gives the test films."""
    rows = PatientSplit(split).store_rows(store_table, ("test",))
    return rows["patient_id"].to_numpy()


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


def interval_lines(intervals: dict) -> str:
    """The bootstrap intervals under the table: each column's macro AUROC and each synthetic column's ratio
    to real, with how they were drawn."""

    def listed(by_column: dict) -> str:
        shown = {col: "n/a" if iv["lo"] is None else f"[{iv['lo']:.3f}, {iv['hi']:.3f}]"
                 for col, iv in by_column.items()}
        return "; ".join(f"{col.replace('_', ' ')} {text}" for col, text in shown.items())

    return (f"\n{intervals['level']:.0%} intervals, {intervals['resamples']:,} paired bootstrap resamples of the "
            f"{intervals['patients']:,} test patients ({intervals['films']:,} films); the test set's noise only, not "
            f"a second training seed's.\n\n- macro AUROC: {listed(intervals['macro'])}\n"
            f"- ratio to real: {listed(intervals['ratio_to_real'])}\n")


def table2_document(table: dict, intervals: dict | None = None) -> str:
    """``synthetic_auroc.md``: ``TABLE2_HEADING``, ``table2_markdown`` and, where given, ``interval_lines``."""
    return f"{TABLE2_HEADING}\n\n" + table2_markdown(table) + (interval_lines(intervals) if intervals else "")


def table2_metrics(table: dict, weights: dict, train_images: dict[str, int], test_images: int,
                   params: ClassifierParams, intervals: dict | None = None) -> dict:
    """``metrics/synthetic_auroc.json``: ``table`` (``table2``) per class, its macro AUROC and the classes
    each macro averages, each synthetic column's ratio to real with the bootstrap ``intervals``
    (``metrics.auroc_interval.macro_intervals``) where given, the images each synthetic set and the real
    test split hold, the recipe's input size and epochs, and the ImageNet weights each fit started from."""
    macro = table["macro"]
    ratio = {col: round(value / macro["real"], 4) for col, value in macro.items() if col != "real"}
    return {"per_class": {k: table[k] for k in LABELS}, "macro": macro,
            "macro_classes": table["macro_classes"],  # per column: classes with test positives and negatives
            "ratio_to_real": ratio, **({"bootstrap": intervals} if intervals else {}),
            "train_images": train_images, "test_images": test_images, "input_size": params.input_size,
            "max_epochs": params.max_epochs, "weights": weights}


def table2_bars(table: dict, columns: Iterable[str]) -> pd.DataFrame:
    """Table 2 long: one row per (class or ``macro``, training column) with its AUROC and a bar name."""
    columns = list(columns)
    return pd.DataFrame([{"bar": f"{name} | {col}", "class": name, "training": col, "auroc": table[name][col]}
                         for name in (*LABELS, "macro") for col in columns])


def table2_figure(table: dict, columns: Iterable[str], path: str | os.PathLike) -> None:
    """Table 2 as grouped horizontal bars: per class and ``macro``, one bar per training column."""
    wide = pd.DataFrame({col: [table[n][col] for n in (*LABELS, "macro")] for col in columns},
                        index=[*LABELS, "macro"])
    prevalence_by_split(wide, path, "Real test AUROC by training data", xlabel="AUROC", xlim=(0.4, 1.0))
