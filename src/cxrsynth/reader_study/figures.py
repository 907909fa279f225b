"""The reader study's figure: each quantity beside the paper's, with intervals and every reader's own rate."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cxrsynth.io import atomic_path
from cxrsynth.reader_study.analysis import QUANTITIES

_NAMES = {"real_called_real": "real films\ncalled real", "generated_called_real": "generated films\ncalled real",
          "hype_inf": "HYPE$_\\infty$\n(films called wrongly)", "pair_accuracy": "pairs: real film\nchosen"}
_STYLE = {"paper": ("#8c8c8c", "paper 001 (8 radiologists)"), "human": ("#2f6fd0", "this study: radiologists"),
          "simulated": ("#e07b39", "SIMULATED readers (discriminator)")}


def reader_study_figure(paper: dict, populations: dict[str, dict], path: str | Path) -> None:
    """Horizontal bars per quantity: the paper's rate and ours per population ('human', 'simulated'),
    95% intervals as whiskers, each reader's rate as a dot, chance (50%) dashed. The title says
    when every answer shown is simulated."""
    rows = [("paper", {q: paper.get(q) for q in QUANTITIES}, {})]
    for name in ("human", "simulated"):
        population = populations.get(name) or {}
        if population.get("readers"):
            rows.append((name, population["pooled"], population["per_reader"]))
    height = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    for r, (name, pooled, per_reader) in enumerate(rows):
        colour, label = _STYLE[name]
        for q, quantity in enumerate(QUANTITIES):
            y = q + (r - (len(rows) - 1) / 2) * height
            value = pooled.get(quantity)
            if not value:
                continue
            low, high = value["ci"]
            ax.barh(y, value["rate"], height=height * 0.9, color=colour, alpha=0.85, label=label if q == 0 else None,
                    hatch="//" if name == "simulated" else None, edgecolor="white" if name == "simulated" else None)
            ax.errorbar(value["rate"], y, xerr=[[value["rate"] - low], [high - value["rate"]]], fmt="none",
                        ecolor="black", capsize=3, lw=1)
            dots = [reader[quantity]["rate"] for reader in per_reader.values() if reader.get(quantity)]
            ax.text(max([high, *dots]) + 0.015, y, f"{value['rate']:.0%}", va="center", fontsize=8)
            ax.scatter(dots, [y] * len(dots), s=10, color="black", zorder=3, alpha=0.6,
                       label="one reader" if q == 0 and r == len(rows) - 1 and dots else None)
    ax.axvline(0.5, color="black", ls="--", lw=0.8)
    ax.set_yticks(range(len(QUANTITIES)), [_NAMES[q] for q in QUANTITIES])
    ax.invert_yaxis()
    ax.set_xlabel("share of answers (95% interval; dashed: chance)")
    simulated_only = [name for name, _, _ in rows[1:]] == ["simulated"]
    ax.set_title("Reader study: real or generated?" + (
        "\nSIMULATED readers (the trained discriminator), not radiologists: demo numbers" if simulated_only else ""),
        fontsize=11)
    ax.set_xlim(0, 1.1)
    fig.legend(loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
