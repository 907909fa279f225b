"""``privacy.png``: where the archive sits between new patients and the training set, and the closest pairs."""

from __future__ import annotations

import os
import textwrap

import numpy as np

from cxrsynth.plots import _save, plt
from cxrsynth.privacy.audit import CRITERIA, Nearest, Thresholds

_TITLES = {"verifier": "verifier score (higher: same patient)", "pixel": "pixel distance to nearest",
           "feature": "classifier-feature distance to nearest"}
_COLOURS = {"archive": "tab:orange", "real test (new patients)": "tab:blue",
            "real training (vs rest)": "tab:green"}


def privacy_figure(populations: dict[str, Nearest], thresholds: Thresholds, pairs: list[tuple[np.ndarray, np.ndarray, str]],
                   path: str | os.PathLike, title: str) -> None:
    """Top: per criterion, histograms of each population's best match, the threshold dashed (a criterion
    not used says so and why instead). Bottom: synthetic/training pairs side by side (synthetic above,
    training below)."""
    cols = max(len(pairs), 3)
    fig = plt.figure(figsize=(max(12, 1.6 * cols), 7.5))
    grid = fig.add_gridspec(3, 3 * cols, height_ratios=[2.2, 1, 1], hspace=0.45)
    limits = dict(zip(CRITERIA, (thresholds.verifier, thresholds.pixel, thresholds.feature), strict=True))
    for k, criterion in enumerate(CRITERIA):
        ax = fig.add_subplot(grid[0, k * cols : (k + 1) * cols])
        if criterion not in thresholds.criteria:
            ax.text(0.5, 0.5, textwrap.fill(f"not used: {thresholds.verifier_not_used_because}", 40),
                    ha="center", va="center", fontsize=8, transform=ax.transAxes)
            ax.set_title(_TITLES[criterion], fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        values = [getattr(p, criterion) for p in populations.values() if len(p)]
        bins = np.linspace(min(v.min() for v in values), max(v.max() for v in values), 40)
        for name, nearest in populations.items():
            if len(nearest):
                ax.hist(getattr(nearest, criterion), bins=bins, density=True, alpha=0.45,
                        color=_COLOURS.get(name), label=f"{name} ({len(nearest)})")
        ax.axvline(limits[criterion], color="k", linestyle="--", linewidth=1, label="flag threshold")
        ax.set_title(_TITLES[criterion], fontsize=9)
        ax.set_yticks([])
        if criterion == thresholds.criteria[0]:
            ax.legend(fontsize=7, loc="upper left")
    for k, (synthetic, training, caption) in enumerate(pairs):
        for row, (image, who) in enumerate(((synthetic, "synthetic"), (training, "training"))):
            ax = fig.add_subplot(grid[1 + row, 3 * k : 3 * k + 3])
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(who, fontsize=8)
            if row == 0:
                ax.set_title(caption, fontsize=7)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
