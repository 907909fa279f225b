"""The baselines table: one row per system (the main pipeline's PGGAN first), its markdown, and
paper 004's D-loss claim tested on the configurations of its Table I; the rows' samples and this
run's measured timings, read back for the table's figures and its measured copy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

#: the main pipeline's generators (``gan.arch``), each with two rows written by the ``pggan`` stage of
#: baselines/dvc.yaml (``rows.main_row_names``): ``<arch>`` (its samples) and ``<arch>_archive``. The rows
#: of the run's own generator are outputs; another generator's, committed from its run, are read beside them
#: (gan.arch dcgan is left out: its rows would be the dcgan system's; judge paper 003's DCGAN as that system)
MAIN_ARCHS = ("pggan", "ddpm", "ldm")
#: where the main rows' samples are, under the samples folder (data/baselines)
MAIN_SAMPLES = "main"


def main_rows(folder: Path) -> list[str]:
    """The main generators' row names present in ``folder``, PGGAN first."""
    names = [n for arch in MAIN_ARCHS for n in (arch, f"{arch}_archive")]
    return [n for n in names if (Path(folder) / f"{n}.json").exists()]
#: "highly inversely correlated" (paper 004, section III.D): Pearson r of FID and mean D loss at most this
CLAIM_R = -0.7


def read_rows(folder: Path, systems: list[str]) -> list[dict]:
    """The row metrics of the main generators' rows (``main_rows``: at least one) and of ``systems`` (in that
    order) from ``folder/<name>.json``."""
    rows, main = [], main_rows(folder)
    if not main:
        raise FileNotFoundError(f"{folder}: no row of the main pipeline's generator (run the pggan stage of "
                                "baselines/dvc.yaml)")
    for name in (*main, *systems):
        path = Path(folder) / f"{name}.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no row for {name} (run its stage in baselines/dvc.yaml)")
        rows.append(json.loads(path.read_text()))
    return rows


#: the precision/recall columns, ``<measure>_<extractor>`` as ``fid_<extractor>``
PRDC = ("precision", "recall", "density", "coverage")


def table(rows: list[dict]) -> pd.DataFrame:
    """One line per row: what it is, FID, precision, recall, density, coverage and memorisation (share) per
    extractor (``fid_<extractor>``, ``precision_<extractor>``, ..., ``memorisation_<extractor>``), label-mix
    TV, GAN-train AUROC, D-loss statistics, computed training memory and images shown. A row written
    before precision/recall and memorisation were measured has none of their columns (NaN)."""
    out = []
    for row in rows:
        d = row.get("d_loss") or {}
        line = {"system": row["system"], "paper": row["paper"], "model": row.get("model", ""),
                "loss": row.get("loss", ""), "optimiser": row.get("optimiser", ""),
                "activation": row.get("activation", ""), "ttur": row.get("ttur", False)}
        line |= {f"fid_{name}": value for name, value in row["fid"].items()}
        for name, values in (row.get("prdc") or {}).items():
            line |= {f"{measure}_{name}": values[measure] for measure in PRDC}
        line |= {f"memorisation_{name}": m["share"] for name, m in (row.get("memorisation") or {}).items()}
        line |= {"label_mix_tv": row["label_mix_tv"], "gan_train_auroc": row["gan_train_auroc"]["macro"],
                 "gan_train_labels": row["gan_train_labels"],
                 "d_loss_mean": d.get("mean"), "d_loss_variance": d.get("variance"), "d_loss_std": d.get("std"),
                 "training_memory_mib": (row.get("training_memory_mib") or {}).get("total"),
                 "images_shown": row.get("images_shown")}
        out.append(line)
    return pd.DataFrame(out)


def d_loss_claim(frame: pd.DataFrame, paper: str = "004") -> dict:
    """Pearson r between FID (classifier features) and the D loss's mean, variance and standard deviation
    over the rows of ``paper``; the claim holds when r(FID, mean) <= ``CLAIM_R``."""
    rows = frame[(frame["paper"] == paper) & frame["d_loss_mean"].notna()]
    if len(rows) < 3:
        return {"configurations": len(rows), "held": None, "why": "fewer than 3 configurations"}
    r = {stat: float(np.corrcoef(rows["fid_classifier"], rows[f"d_loss_{stat}"])[0, 1])
         for stat in ("mean", "variance", "std")}
    held = r["mean"] <= CLAIM_R
    return {"configurations": len(rows), "pearson_r_fid": {k: round(v, 4) for k, v in r.items()},
            "held": bool(held), "criterion": f"r(FID, mean D loss) <= {CLAIM_R}",
            "best_fid": rows.loc[rows["fid_classifier"].idxmin(), "system"],
            "highest_mean_d_loss": rows.loc[rows["d_loss_mean"].idxmax(), "system"]}


def batch_norm_saving(memory: pd.DataFrame) -> dict:
    """The smallest and largest share (%) of a training step's memory that dropping batch norm saves, over
    the configurations of the memory stage's table (``memory``), beside paper 004's range."""
    with_bn = memory[memory["batch_norm"]].set_index(["network", "resolution", "width"])["total"]
    without = memory[~memory["batch_norm"]].set_index(["network", "resolution", "width"])["total"]
    saving = 100 * (1 - without / with_bn)
    return {"min": round(float(saving.min()), 2), "max": round(float(saving.max()), 2), "paper_004": [1.2, 7.0]}


def summary(frame: pd.DataFrame, claim: dict, memory: pd.DataFrame) -> dict:
    """What the table says, as ``metrics/baselines.json`` holds it: the rows, the D-loss claim and the
    batch-norm memory saving (``memory``: the memory stage's table)."""
    return {
        "rows": json.loads(frame.to_json(orient="records")),
        "d_loss_claim": claim,
        "batch_norm_memory_saving_pct": batch_norm_saving(memory),
        "note": "demo numbers come from rendered phantoms, not clinical images",
    }


def read_timings(timings_dir: Path, systems, gan_timings: Path) -> dict[str, dict]:
    """This run's measured timings by row: each system's stage timings in ``timings_dir/<name>.json`` where
    present, and the main pipeline's PGGAN's images/s of its last (final-resolution) phase from
    ``gan_timings`` (the train_gan stage's timings) when that file exists."""
    timings = {}
    for name in systems:
        path = Path(timings_dir) / f"{name}.json"
        if path.exists():
            timings[name] = json.loads(path.read_text())
    if Path(gan_timings).exists():
        rates = json.loads(Path(gan_timings).read_text()).get("img_per_s") or {}
        if rates:
            timings["pggan"] = {"img_per_s": list(rates.values())[-1]}
    return timings


def samples_path(folder: Path, name: str) -> Path:
    """Where row ``name``'s samples are under ``folder`` (data/baselines): ``main/<name>.npz`` for the main
    generator's rows, ``<name>/samples.npz`` for a system."""
    if name.removesuffix("_archive") in MAIN_ARCHS:
        return Path(folder) / MAIN_SAMPLES / f"{name}.npz"
    return Path(folder) / name / "samples.npz"


def read_samples(folder: Path, systems) -> dict[str, np.ndarray]:
    """Every row's samples (uint8 (N, r, r)), by row name, in the order of ``systems``; a main generator's
    row committed from another run (its samples are in that run's data) is left out."""
    paths = {name: samples_path(folder, name) for name in systems}
    return {name: np.load(path)["images"] for name, path in paths.items()
            if path.exists() or name.removesuffix("_archive") not in MAIN_ARCHS}


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and abs(value) >= 1000:
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


NOTES = """FID: Fréchet distance of the row's samples to all real images, on the real-trained classifier's
features (and on Inception's, as a second column, when its weights are in weights/inception/).
P, R, D, C: precision, recall, density and coverage (Kynkäänniemi et al. 2019, Naeem et al. 2020; k = 5) on
the same features, against a seeded subset of the real images as large as the sample: precision and density
measure fidelity (samples that look real), recall and coverage diversity (real images the samples reach).
Memorised: share of samples nearer (in the same features) to a training image than 1% of the real test
split's films are to the other patients' training films (the privacy audit's distance criterion); a
generator whose samples are as novel as new patients' films scores about 0.01.
Label-mix TV: total variation between the shares of label occurrences in the samples and in the real
images, both labelled by the real-trained classifier. GAN-train AUROC: macro test AUROC on the real test
split of one classifier recipe trained on the row's samples, labelled by the labeller, by the condition
the system generated them for, or (class-optimised archive) by the archive's labels. D loss: mean,
variance and standard deviation of the per-step discriminator loss over the whole run (BCE for the BCE
systems, the critic's Wasserstein loss for the WGANs and the PGGAN: comparable within a loss only).
Train memory: computed for one training step (both networks' weights and gradients, optimiser state,
saved activations); the PGGAN is trained by the main pipeline and not computed here."""


def markdown(frame: pd.DataFrame, claim: dict, timings: dict[str, dict] | None = None) -> str:
    """The table as markdown, its notes and the D-loss verdict; with ``timings`` (name → {img_per_s,
    peak_memory}) two measured columns."""
    fids = [c for c in frame.columns if c.startswith("fid_")]
    extractors = [c[4:] for c in fids]
    quality = [f"{m}_{name}" for name in extractors for m in (*PRDC, "memorisation") if f"{m}_{name}" in frame.columns]
    short = {"precision": "P", "recall": "R", "density": "D", "coverage": "C", "memorisation": "memorised"}
    head = ["system", "paper", "loss", "optimiser", *[f"FID ({c[4:]})" for c in fids],
            *[f"{short[c.split('_', 1)[0]]} ({c.split('_', 1)[1]})" for c in quality], "label-mix TV",
            "GAN-train AUROC", "labels from", "D loss mean", "D loss var", "D loss std", "train memory (MiB)"]
    if timings is not None:
        head += ["images/s", "peak memory (MiB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in frame.iterrows():
        cells = [row["system"], row["paper"], row["loss"], row["optimiser"], *[_fmt(row[c], 2) for c in fids],
                 *[_fmt(row[c]) for c in quality],
                 _fmt(row["label_mix_tv"]), _fmt(row["gan_train_auroc"]), row["gan_train_labels"],
                 _fmt(row["d_loss_mean"]), _fmt(row["d_loss_variance"]), _fmt(row["d_loss_std"]),
                 _fmt(row["training_memory_mib"], 1)]
        if timings is not None:
            t = timings.get(row["system"], {})
            peak = (t.get("peak_memory") or {}).get("mib")
            cells += [_fmt(t.get("img_per_s"), 1), _fmt(peak, 0)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if claim.get("held") is None:
        verdict = f"Paper 004's D-loss claim: not tested ({claim.get('why')})."
    else:
        r = claim["pearson_r_fid"]
        verdict = (f"Paper 004's D-loss claim (FID and mean D loss highly inversely correlated, {claim['criterion']}) "
                   f"over its {claim['configurations']} configurations: **{'held' if claim['held'] else 'did not hold'}** "
                   f"(Pearson r with FID: mean {r['mean']:+.2f}, variance {r['variance']:+.2f}, std {r['std']:+.2f}; "
                   f"best FID: {claim['best_fid']}, highest mean D loss: {claim['highest_mean_d_loss']}).")
    measured = ("\n\nimages/s: training throughput measured in this run (PGGAN: its final-resolution phase); peak "
                "memory: CUDA's allocator peak on a GPU, the process's peak RSS on a CPU." if timings is not None else "")
    return "\n".join(lines) + "\n\n" + NOTES + measured + "\n\n" + verdict + "\n"
