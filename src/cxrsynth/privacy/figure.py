"""``privacy.png``: where the archive sits between new patients and the training set, and the closest pairs.

``audit_figure`` draws it for the privacy stage from the audit (``privacy.summaries.audit_populations``):
the pairs are the archive images closest to a training film by the verifier, or by pixels when the
verifier is not used.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np

from cxrsynth.plots import _save, plt
from cxrsynth.privacy.audit import CRITERIA, Nearest, Thresholds
from cxrsynth.privacy.summaries import PopulationAudit, closest_pairs
from cxrsynth.privacy.audit_inputs import AuditSetup

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


def audit_title(flagged: int, images: int, pairs: int, verifier_auc: float | None, not_used_because: str | None) -> str:
    """The figure's title: the archive's flagged images, the verifier's test AUC (or why it is not
    used) and what the ``pairs`` at the bottom are."""
    used = not_used_because is None
    verifier = f"verifier test AUC {verifier_auc}; " if used else f"verifier not used: {not_used_because};\n"
    return ("Privacy audit (on the embedded demo: phantoms, not clinical data): archive flagged "
            f"{flagged} of {images}; {verifier}bottom: the {pairs} archive images "
            f"{'the verifier finds closest to' if used else 'nearest in pixels to'} a training film")


def audit_figure(setup: AuditSetup, audit: PopulationAudit, archive_images: np.ndarray, pairs: int,
                 path: str | os.PathLike) -> None:
    """``privacy_figure`` of the audit: every population's histograms and the ``pairs`` archive images
    closest to a training film (``privacy.summaries.closest_pairs``), titled by ``audit_title``."""
    by = "verifier" if setup.verifier_used else "pixel"
    shown = closest_pairs(setup.auditor, archive_images, audit.nearest["archive"], pairs, by)
    title = audit_title(audit.reports["archive"]["flagged_images"], len(archive_images), len(shown),
                        setup.verifier["test_auc"] if setup.verifier_used else None,
                        setup.thresholds.verifier_not_used_because)
    privacy_figure(audit.nearest, setup.thresholds, shown, path, title)
