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


def prevalence_by_split(table: pd.DataFrame, path: str | os.PathLike, title: str,
                        xlabel: str = "image-level prevalence (%)", xlim: tuple[float, float] | None = None) -> None:
    """Grouped horizontal bars: rows are labels, one bar per set (columns of ``table``)."""
    labels = list(table.index)[::-1]
    sets = list(table.columns)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1))
    height = 0.8 / len(sets)
    y = np.arange(len(labels))
    for i, name in enumerate(sets):
        ax.barh(y + (i - (len(sets) - 1) / 2) * height, table.loc[labels, name], height, label=name)
    ax.set_yticks(y, labels)
    ax.set_xlabel(xlabel)
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the axes: never over a bar
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def contact_sheet(rows: list[tuple[str, np.ndarray]], path: str | os.PathLike, label_width: int = 120,
                  scale: int = 1) -> None:
    """A labelled grid of grey images, one row per (name, (n, h, w) uint8 stack), as an 8-bit PNG;
    ``scale`` enlarges small images (nearest neighbour, so pixels stay honest)."""
    from PIL import ImageDraw

    if scale > 1:
        rows = [(name, np.repeat(np.repeat(stack, scale, axis=1), scale, axis=2)) for name, stack in rows]
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


def class_distances(distances: dict[str, pd.DataFrame], mds: dict[str, pd.DataFrame], path: str | os.PathLike) -> None:
    """Figure 5: per extractor, the MDS map of the class distance matrix and its average-linkage dendrogram."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    fig, axes = plt.subplots(len(distances), 2, figsize=(13, 5.2 * len(distances)), squeeze=False)
    for (name, matrix), (ax_map, ax_tree) in zip(distances.items(), axes):
        xy = mds[name]
        ax_map.scatter(xy["x"], xy["y"], s=18, color="tab:blue")
        for _, row in xy.iterrows():
            ax_map.annotate(row["label"], (row["x"], row["y"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax_map.set_title(f"MDS of class Fréchet distances ({name} features)")
        ax_map.grid(alpha=0.3)
        tree = linkage(squareform(matrix.to_numpy(), checks=False), method="average")
        dendrogram(tree, labels=list(matrix.index), orientation="right", ax=ax_tree, color_threshold=None)
        ax_tree.set_title(f"Average-linkage clustering ({name} features)")
        ax_tree.set_xlabel("Fréchet distance")
    _save(fig, path)


def prevalence_intervals(table: pd.DataFrame, path: str | os.PathLike, title: str) -> None:
    """Figure 6: grouped bars of label prevalence (%) per set with 95% interval whiskers.

    ``table``: rows = labels; columns ``<set>_mean``, ``<set>_lo``, ``<set>_hi`` (fractions), and
    optionally ``excluded`` (bool) to star labels whose intervals do not overlap.
    """
    sets = [c.removesuffix("_mean") for c in table.columns if c.endswith("_mean")]
    labels = list(table.index)
    x = np.arange(len(labels))
    width = 0.8 / len(sets)
    fig, ax = plt.subplots(figsize=(max(8, 0.7 * len(labels)), 4.8))
    for i, name in enumerate(sets):
        mean = 100 * table[f"{name}_mean"].to_numpy()
        err = 100 * np.abs(np.stack([table[f"{name}_mean"] - table[f"{name}_lo"],
                                     table[f"{name}_hi"] - table[f"{name}_mean"]]))
        ax.bar(x + (i - (len(sets) - 1) / 2) * width, mean, width, yerr=err, capsize=2, label=name)
    if "excluded" in table:
        top = 100 * table[[f"{s}_hi" for s in sets]].max(axis=1).to_numpy()
        for xi, flag, t in zip(x, table["excluded"], top):
            if flag:
                ax.annotate("*", (xi, t), ha="center", va="bottom", fontsize=12)
    ax.set_xticks(x, labels, rotation=45, ha="right")
    ax.set_ylabel("prevalence (%) with 95% bootstrap interval")
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
