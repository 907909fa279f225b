"""Which generator? This run's archive beside the other generators' runs, on the same measures.

Every run's report writes ``metrics/generators/<gan.arch>.json``: the few numbers that decide between
generators, taken from this run's metrics files. A run of another generator (``dvc exp run -S
gan.arch=ddpm``) writes its own file; committing that file beside this run's puts both on one page, each
column saying which run wrote it. Nothing here is recomputed: a column is what its run measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cxrsynth.paper import PACKHAUSER_2023_AUROC_GAP, SEGAL_2021_AUROC_GAP
from cxrsynth.report.blocks import Note, Section, Table, Text
from cxrsynth.report.headline import rarer_in_generated
from cxrsynth.report.sources import Metrics

FOLDER = "generators"
NAMES = {"pggan": "PGGAN, class-optimised (Algorithm 1)", "dcgan": "DCGAN, class-optimised",
         "ddpm": "diffusion (pixel), conditionally sampled", "ldm": "latent diffusion, conditionally sampled"}
DASH = "–"


def generator_summary(m: Metrics, arch: str, source: str, revision: str | None) -> dict:
    """This run's numbers for the comparison, from its metrics files."""
    gan, fid, privacy = m.json("gan.json"), m.json("fid.json"), m.json("privacy.json")
    table2, archive, prevalence = m.json("synthetic_auroc.json"), m.json("archive.json"), m.json("prevalence.json")
    macro = table2["macro"]
    filt = archive["privacy_filter"]
    labels = archive["labels"].values()
    return {
        "arch": arch, "data_source": source, "revision": revision, "resolution": gan["resolution"],
        "images_shown": gan["images_shown"],
        "table2": {"class_generated": macro["class_generated"], "real": macro["real"],
                   "ratio_to_real": round(macro["class_generated"] / macro["real"], 4),
                   "ratio_interval": ratio_interval(table2)},
        "table1": {ex: {"real_vs_generated": t["synthetic"], "stratified_halves": t["stratified"]}
                   for ex, t in fid["table1"].items()},
        "figure6": {"labels_rarer_in_generated": len(rarer_in_generated(prevalence)),
                    "labels_compared": sum(not v.get("excluded") for v in prevalence["per_label"].values())},
        "archive": {"images": archive["images"], "delivered_fraction": archive["delivered_fraction"],
                    "labels_within_tolerance": archive["labels_within_tolerance"],
                    "label_mix_max_deviation_pct": round(max(abs(v["archive_pct"] - v["source_pct"]) for v in labels), 2)},
        "fidelity_diversity": fid.get("prdc"),
        "memorisation": memorisation(archive, privacy),
        "privacy": {"flagged_before_filter": privacy["archive_flagged_before_filter"],
                    "flagged_after_filter": privacy["archive_flagged_after_filter"],
                    "patients_replaced": filt.get("replaced_patients", 0),
                    "flagged_fraction_written": privacy["archive"]["flagged_fraction"]},
        "cost": gan.get("film_cost"),
    }


def ratio_interval(table2: dict) -> dict | None:
    """The class-generated / real ratio's paired bootstrap interval over the test patients, with its level;
    None for a run made before the synthetic_auroc stage drew one."""
    bootstrap = table2.get("bootstrap")
    if not bootstrap:
        return None
    return {**bootstrap["ratio_to_real"]["class_generated"], "level": bootstrap["level"]}


def memorisation(archive: dict, privacy: dict) -> dict:
    """Shares of the archive's films nearer a training film than ``privacy.distance_percentile``% of new
    patients' films are, in the classifier's features (FID's) and in pixels: before the privacy filter
    (the archive stage's record) and after it (the privacy stage's audit of the written archive). A
    generator whose films are as new as new patients' would score about the percentile itself."""
    before = archive["privacy_filter"].get("flagged_by_before")
    after = privacy["archive"]["flagged_fraction_by"]
    n = archive["images"]
    return {"before_filter": None if before is None else round(before["feature"] / n, 5),
            "after_filter": after["feature"],
            "pixels_before_filter": None if before is None else round(before["pixel"] / n, 5),
            "pixels_after_filter": after["pixel"],
            "expected_if_novel": privacy["thresholds"]["distance_percentile"] / 100}


def read_summaries(folder: Path) -> dict[str, dict]:
    """Every ``<arch>.json`` in ``folder``, by arch (PGGAN first, then in name order)."""
    found = {p.stem: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != "pggan", kv[0])))


def _f(value, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def _pct(value, digits: int = 1) -> str:
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def _interval(interval: dict | None) -> str:
    if not interval or interval["lo"] is None:
        return DASH
    return f"{interval['lo']:.3f} to {interval['hi']:.3f} ({interval['level']:.0%})"


def comparison_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """One column per generator run and the two papers' Table 2 gaps, one row per measure."""
    rows: dict[str, dict[str, str]] = {}
    for arch, s in summaries.items():
        column = NAMES.get(arch, arch)
        extractor = "inception" if "inception" in s["table1"] else "classifier"
        prdc = (s.get("fidelity_diversity") or {}).get(extractor) or {}
        memo = s.get("memorisation") or {}
        cost = s.get("cost") or {}
        cells = {
            "Table 2: class-generated / real macro AUROC": _f(s["table2"]["ratio_to_real"]),
            "Table 2: that ratio's bootstrap interval (test patients)": _interval(s["table2"].get("ratio_interval")),
            "Table 2: gap to real": _pct(1 - s["table2"]["ratio_to_real"]),
            f"Table 1: FID real vs generated ({extractor} features)": _f(s["table1"][extractor]["real_vs_generated"], 2),
            f"Table 1: FID stratified halves (the floor, {extractor})": _f(s["table1"][extractor]["stratified_halves"], 2),
            "Figure 6: labels significantly rarer in generated": f"{s['figure6']['labels_rarer_in_generated']} of "
                                                                f"{s['figure6']['labels_compared']}",
            "archive: labels within tolerance of the source": f"{s['archive']['labels_within_tolerance']} of 15",
            "archive: delivered / planned": _pct(s["archive"]["delivered_fraction"]),
            "precision (fidelity)": _f(prdc.get("precision")), "recall (diversity)": _f(prdc.get("recall")),
            "density": _f(prdc.get("density")), "coverage": _f(prdc.get("coverage")),
            "memorised before the filter": _pct(memo.get("before_filter")),
            "memorised after the filter": _pct(memo.get("after_filter")),
            "privacy: archive films flagged before / after the filter": f"{s['privacy']['flagged_before_filter']} / "
                                                                         f"{s['privacy']['flagged_after_filter']}",
            "cost: GFLOP per film (network evaluations)": f"{_f(cost.get('gflop_per_film'), 3)} "
                                                          f"({cost.get('evaluations_per_film', DASH)})",
            "side (px), images shown": f"{s['resolution']}, {s['images_shown']:,}",
            "run": f"{s['data_source']} at {(s.get('revision') or 'uncommitted')[:10]}",
        }
        for key, value in cells.items():
            rows.setdefault(key, {})[column] = value
    for name, gap in (("Packhäuser et al. 2023 (LDM, NIH)", PACKHAUSER_2023_AUROC_GAP),
                      ("Segal et al. 2021 (PGGAN, NIH)", SEGAL_2021_AUROC_GAP)):
        for key in rows:
            rows[key][name] = _pct(gap) if key == "Table 2: gap to real" else (
                _f(1 - gap) if key.startswith("Table 2: class-generated") else DASH)
    return pd.DataFrame(rows).T.rename_axis("measure")


def which_generator_section(m: Metrics, summaries: dict[str, dict], demo: bool) -> Section:
    """The page that answers "which generator?" (module docstring)."""
    table = comparison_table(summaries)
    runs = ", ".join(f"`metrics/{FOLDER}/{arch}.json`" for arch in summaries)
    blocks = [Text("The same split, labeller, Table 2 recipe and privacy audit applied to each generator's archive. "
                   f"Each column is what that generator's run measured ({runs}); a generator without a column has "
                   "not been run on this commit's data: `dvc exp run -S gan.arch=ddpm`, then commit its "
                   f"`metrics/{FOLDER}/ddpm.json` beside this run's. Precision and density measure fidelity, recall "
                   "and coverage diversity (Kynkäänniemi et al. 2019; Naeem et al. 2020), on the same features as "
                   "FID; memorised: archive films nearer a training film than 1% of new patients' films are.")]
    if len(summaries) < 2:
        blocks.append(Text("Only one generator has been run on this commit, so the comparison has one column."))
    if demo:
        blocks.append(Note("Embedded demo: 32 px phantoms, generators trained for minutes on a CPU. The papers' gaps "
                           "are on NIH films at full resolution (Packhäuser et al. at 256 px with a real-data AUROC "
                           "of their own); they stand beside ours as a direction, not a comparable number."))
    blocks.append(Table(table, "Which generator? (metrics/generators/*.json)"))
    return Section("which_generator", "Which generator? The PGGAN and the diffusion model on the same measures",
                   "not in the paper (papers 001 and Packhäuser et al. 2023)", blocks)
