"""Classifier evaluation: per-class and macro AUROC, ROC curves, Youden thresholds.

Reusable for any classifier and any labelled set, so the synthetic-data classifier is
measured on the real test split with exactly the same code.

Every macro AUROC of the project (the logged ``val/auroc_macro``, test metrics, Table 2, the
re-purposed discriminator, the baselines' GAN-train) is ``macro_auroc``'s: the mean over the
classes that have both positives and negatives, reported with how many those are. A class
without positives has no AUROC; torchmetrics' ``MultilabelAUROC`` would count it as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve


def per_class_auroc(probs: np.ndarray, targets: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """AUROC per class; NaN for a class with only one outcome in ``targets``."""
    out = {}
    for i, name in enumerate(names):
        y = targets[:, i]
        out[name] = float(roc_auc_score(y, probs[:, i])) if 0 < y.sum() < len(y) else math.nan
    return out


def macro(values: dict[str, float]) -> float:
    """Mean over the classes that have a value."""
    return macro_with_count(values)[0]


def macro_with_count(values: dict[str, float]) -> tuple[float, int]:
    """(mean over the classes that have a value, how many those are); NaN and 0 when none has."""
    finite = [v for v in values.values() if not math.isnan(v)]
    return (float(np.mean(finite)) if finite else math.nan), len(finite)


def macro_auroc(probs: np.ndarray, targets: np.ndarray, names: Sequence[str] | None = None) -> tuple[float, int]:
    """(macro AUROC, classes averaged): the mean AUROC over the classes of ``targets`` (N, C) that
    have both positives and negatives, and how many classes that is."""
    names = names if names is not None else [str(i) for i in range(targets.shape[1])]
    return macro_with_count(per_class_auroc(probs, targets, names))


def youden_thresholds(probs: np.ndarray, targets: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Per class, the score threshold maximising Youden's J = TPR - FPR on this ROC (0.5 if undefined)."""
    out = {}
    for i, name in enumerate(names):
        y = targets[:, i]
        if not 0 < y.sum() < len(y):
            out[name] = 0.5
            continue
        fpr, tpr, thresholds = roc_curve(y, probs[:, i])
        best = int(np.argmax(tpr - fpr))
        out[name] = float(min(thresholds[best], 1.0))
    return out


def roc_table(probs: np.ndarray, targets: np.ndarray, names: Sequence[str], max_points: int = 200) -> pd.DataFrame:
    """Long table (class, fpr, tpr) of every class's ROC curve, thinned to about ``max_points`` each."""
    frames = []
    for i, name in enumerate(names):
        y = targets[:, i]
        if not 0 < y.sum() < len(y):
            continue
        fpr, tpr, _ = roc_curve(y, probs[:, i], drop_intermediate=True)
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), max_points)).round().astype(int))
        frames.append(pd.DataFrame({"class": name, "fpr": fpr[keep].round(5), "tpr": tpr[keep].round(5)}))
    return pd.concat(frames, ignore_index=True)


def evaluate(probs: np.ndarray, targets: np.ndarray, names: Sequence[str]) -> dict:
    """Per-class AUROC, macro AUROC (``macro_auroc``) with the number of classes it averages, and
    positive counts of one labelled set."""
    auroc = per_class_auroc(probs, targets, names)
    value, classes = macro_with_count(auroc)
    return {
        "auroc": auroc,
        "auroc_macro": value,
        "auroc_macro_classes": classes,
        "positives": {name: int(targets[:, i].sum()) for i, name in enumerate(names)},
    }
