"""Figures of the baselines comparison: sample grids, FID and the other columns, D loss against FID
(paper 004's Table I and Fig 5) and memory per configuration (its Figs 7-8)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from PIL import Image

from cxrsynth.io import atomic_path
from cxrsynth.plots import _save, contact_sheet, plt


def save_sample_grid(images: np.ndarray, path: str | os.PathLike, columns: int = 8, scale: int = 2) -> None:
    """(N, r, r) uint8 samples as one grey grid PNG, 2-pixel white gaps, enlarged ``scale`` times (nearest)."""
    n, r = len(images), images.shape[-1]
    rows = (n + columns - 1) // columns
    grid = np.full((rows * (r + 2), columns * (r + 2)), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        y, x = divmod(i, columns)
        grid[y * (r + 2) : y * (r + 2) + r, x * (r + 2) : x * (r + 2) + r] = image
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    with atomic_path(path) as tmp:
        Image.fromarray(grid, "L").save(tmp, format="PNG", optimize=True)


def samples_sheet(samples: dict[str, np.ndarray], path: str | os.PathLike, per_row: int = 12) -> None:
    """One row of samples per system (the first ``per_row``), labelled."""
    contact_sheet([(name, images[:per_row]) for name, images in samples.items()], path, label_width=170, scale=2)


def columns_figure(table: pd.DataFrame, path: str | os.PathLike, title: str) -> None:
    """Three panels of horizontal bars, one bar per system: FID (classifier features), label-mix total
    variation and GAN-train AUROC on the real test split."""
    panels = [("fid_classifier", "FID vs real (classifier features), lower is better"),
              ("label_mix_tv", "label-mix distance from the source (TV), lower is better"),
              ("gan_train_auroc", "GAN-train AUROC on real test images, higher is better")]
    names = list(table["system"])[::-1]
    fig, axes = plt.subplots(1, 3, figsize=(14, 0.38 * len(names) + 1.4), sharey=True)
    colours = ["tab:red" if s.startswith("pggan") else "tab:blue" for s in names]
    for ax, (column, label) in zip(axes, panels):
        values = table.set_index("system").loc[names, column].astype(float)
        ax.barh(np.arange(len(names)), values, color=colours)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.3g}", va="center", fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(np.arange(len(names)), names)
    axes[0].set_xscale("log")  # untrained rows sit an order of magnitude above the rest
    axes[2].set_xlim(0.4, 1.0)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def d_loss_figure(rows: pd.DataFrame, correlations: dict[str, float], path: str | os.PathLike) -> None:
    """Paper 004's Table I as three scatter plots: FID against the mean, variance and standard deviation
    of the D loss, one point per configuration, with Pearson's r in each title."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, stat in zip(axes, ("mean", "variance", "std")):
        ax.scatter(rows[f"d_loss_{stat}"], rows["fid_classifier"], color="tab:blue")
        for _, row in rows.iterrows():
            ax.annotate(row["system"], (row[f"d_loss_{stat}"], row["fid_classifier"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(f"D loss {stat}")
        ax.set_title(f"Pearson r = {correlations[stat]:+.2f}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("FID vs real (classifier features)")
    fig.suptitle("Paper 004 configurations: does the D loss track quality? (demo data, few points)", fontsize=10)
    _save(fig, path)


def memory_figure(memory: pd.DataFrame, path: str | os.PathLike) -> None:
    """Paper 004's Figs 7-8: memory of one training pass against feature-map width, per network and
    resolution, with batch norm (solid) and without (dashed), and the share removing batch norm saves."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, network in zip(axes, ("G", "D")):
        part = memory[memory["network"] == network]
        for (resolution, batch_norm), group in part.groupby(["resolution", "batch_norm"]):
            group = group.sort_values("width")
            ax.plot(group["width"], group["total"] / 2**20, marker="o", linestyle="-" if batch_norm else "--",
                    label=f"{resolution} px, {'with' if batch_norm else 'without'} batch norm")
        ax.set_xlabel("feature-map width")
        ax.set_ylabel("MiB, one batch")
        ax.set_yscale("log")
        ax.set_title({"G": "generator", "D": "discriminator"}[network] + ": weights, gradients, saved activations",
                     fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    keys = ["network", "resolution", "width"]
    saving = (100 * (1 - memory[~memory["batch_norm"]].set_index(keys)["total"]
                     / memory[memory["batch_norm"]].set_index(keys)["total"])).reset_index()
    for (network, resolution), group in saving.groupby(["network", "resolution"]):
        axes[2].plot(group["width"], group["total"], marker="o", label=f"{network}, {resolution} px")
    axes[2].axhspan(1.2, 7.0, color="grey", alpha=0.15, label="paper 004: 1.2-7%")
    axes[2].set_xlabel("feature-map width")
    axes[2].set_ylabel("% saved without batch norm")
    axes[2].set_title("removing batch norm (paper 004 Fig 8)", fontsize=9)
    axes[2].grid(alpha=0.3)
    axes[2].legend(fontsize=7)
    batch = int(memory["batch"].iloc[0])
    fig.suptitle(f"DCGAN memory per configuration, batch {batch} (paper 004 Figs 7-8)", fontsize=10, y=1.02)
    _save(fig, path)
