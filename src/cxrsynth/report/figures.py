"""Figures the report draws from DVCLive's series: training curves and the GAN's phase samples."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from cxrsynth.report.sources import Metrics


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def classifier_curves(m: Metrics) -> bytes:
    """Train and validation loss, and validation macro AUROC, per epoch."""
    root = "classifier_train/plots/metrics"
    train, val = m.tsv(f"{root}/train/loss.tsv"), m.tsv(f"{root}/val/loss.tsv")
    auroc, lr = m.tsv(f"{root}/val/auroc_macro.tsv"), m.tsv(f"{root}/lr-Adam.tsv")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    left.plot(np.arange(1, len(train) + 1), train["loss"], "o-", label="train")
    left.plot(np.arange(1, len(val) + 1), val["loss"], "o-", label="validation")
    left.set(xlabel="epoch", ylabel="weighted BCE", title="loss")
    left.legend()
    right.plot(np.arange(1, len(auroc) + 1), auroc["auroc_macro"], "o-", color="tab:green")
    right.set(xlabel="epoch", ylabel="macro AUROC", title="validation AUROC")
    for epoch, (a, b) in enumerate(zip(lr["lr-Adam"][:-1], lr["lr-Adam"][1:], strict=True), start=2):
        if b < a:
            right.axvline(epoch, color="grey", ls=":", lw=1)
    fig.tight_layout()
    return _png(fig)


def gan_curves(m: Metrics) -> bytes:
    """Critic and generator loss against images shown, with the resolution phases shaded."""
    root = "gan_train/plots/metrics"
    d, g = m.tsv(f"{root}/loss/d.tsv"), m.tsv(f"{root}/loss/g.tsv")
    res, alpha = m.tsv(f"{root}/schedule/resolution.tsv"), m.tsv(f"{root}/schedule/alpha.tsv")
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(d["step"], d["d"], label="critic (D)")
    ax.plot(g["step"], g["g"], label="generator (G)")
    fading = alpha["alpha"].to_numpy() < 1.0
    ax.fill_between(alpha["step"], 0, 1, where=fading, transform=ax.get_xaxis_transform(), color="grey", alpha=0.15,
                    label="fade-in")
    changes = np.flatnonzero(np.diff(res["resolution"].to_numpy())) + 1
    for i in changes:
        ax.axvline(res["step"].iloc[i], color="grey", lw=0.8)
        ax.text(res["step"].iloc[i], 1.0, f" {int(res['resolution'].iloc[i])} px", transform=ax.get_xaxis_transform(),
                va="top", fontsize=8)
    ax.set(xlabel="images shown", ylabel="loss")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def phase_strip(m: Metrics, phases: list[str], height: int = 160) -> bytes:
    """The sample grid DVCLive saved at the end of each phase, side by side at one height."""
    tiles = []
    for phase in phases:
        image = Image.open(io.BytesIO(m.png(f"gan_train/plots/images/samples/{phase}.png"))).convert("L")
        tiles.append(image.resize((round(image.width * height / image.height), height), Image.Resampling.NEAREST))
    gap = 6
    strip = Image.new("L", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), height), 255)
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + gap
    fig, ax = plt.subplots(figsize=(strip.width / 100, height / 100 + 0.4))
    ax.imshow(np.asarray(strip), cmap="gray", vmin=0, vmax=255)
    centres = np.cumsum([0] + [t.width + gap for t in tiles[:-1]]) + np.array([t.width for t in tiles]) / 2
    ax.set_xticks(centres, phases, fontsize=8)
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _png(fig)
