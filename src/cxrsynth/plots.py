"""Figures written as PNG next to the metrics (matplotlib, headless)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from cxrsynth.io import atomic_path  # noqa: E402


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def prevalence_by_split(table: pd.DataFrame, path: str | os.PathLike, title: str) -> None:
    """Grouped horizontal bars: rows are labels, one bar per set (columns of ``table``)."""
    labels = list(table.index)[::-1]
    sets = list(table.columns)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1))
    height = 0.8 / len(sets)
    y = np.arange(len(labels))
    for i, name in enumerate(sets):
        ax.barh(y + (i - (len(sets) - 1) / 2) * height, table.loc[labels, name], height, label=name)
    ax.set_yticks(y, labels)
    ax.set_xlabel("image-level prevalence (%)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def contact_sheet(rows: list[tuple[str, np.ndarray]], path: str | os.PathLike, label_width: int = 120) -> None:
    """A labelled grid of grey images, one row per (name, (n, h, w) uint8 stack), as an 8-bit PNG."""
    from PIL import ImageDraw

    n = max(len(stack) for _, stack in rows)
    h, w = rows[0][1].shape[1:]
    sheet = Image.new("L", (label_width + n * (w + 2), len(rows) * (h + 2)), color=255)
    draw = ImageDraw.Draw(sheet)
    for r, (name, stack) in enumerate(rows):
        top = r * (h + 2)
        draw.text((4, top + h // 2 - 5), name, fill=0)
        for i, image in enumerate(stack):
            sheet.paste(Image.fromarray(np.ascontiguousarray(image)), (label_width + i * (w + 2), top))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)


def roc_curves(roc: pd.DataFrame, auroc: dict[str, float], path: str | os.PathLike, title: str = "Test ROC") -> None:
    """One ROC curve per class (long table class, fpr, tpr), AUROC in the legend."""
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    cmap = plt.get_cmap("tab20")
    for i, (name, curve) in enumerate(roc.groupby("class", sort=False)):
        ax.plot(curve["fpr"], curve["tpr"], color=cmap(i % 20), lw=1.3, label=f"{name} ({auroc[name]:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    _save(fig, path)
