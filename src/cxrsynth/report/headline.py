"""The few numbers a researcher compares across runs: what ``dvc metrics`` and ``dvc exp show`` list.

Every stage keeps its detailed JSON in ``metrics/`` (for the report, and for ``dvc metrics show
metrics/<file>.json`` by name); ``dvc.yaml`` declares only ``metrics/headline.json``, built here
from them, so a sweep's table holds about twenty columns instead of some 1,700. Each key says what
it is; a simulated reader's number says ``simulated`` in its name.
"""

from __future__ import annotations

import statistics

from cxrsynth.report.sources import Metrics


def rarer_in_generated(prevalence: dict) -> list[str]:
    """Labels significantly rarer in generated images (Figure 6): the generated interval lies wholly
    below the real one. Labels the stage left out (unreliable on real images) are not counted."""
    return [label for label, v in prevalence["per_label"].items()
            if not v.get("excluded") and v["generated"]["hi"] < v["real"]["lo"]]


def _table1(fid: dict) -> dict:
    """Table 1 per feature extractor (``table1.inception.*``, ``table1.classifier.*``): distances from
    different extractors never share a column."""
    out = {}
    for extractor, table in fid["table1"].items():
        findings = [v for k, v in table.items() if k not in ("stratified", "sex", "synthetic")]
        out[extractor] = {  # no findings: labels with too few images are left out (fid.json labels_left_out)
            "stratified_halves": table["stratified"],
            "no_finding_vs_findings_min": min(findings) if findings else None,
            "no_finding_vs_findings_median": round(statistics.median(findings), 4) if findings else None,
            "stratified_is_smallest": fid["stratified_is_smallest"][extractor],
            "real_vs_generated": table["synthetic"],
        }
    return out


def _archive(archive: dict) -> dict:
    labels = archive["labels"].values()
    return {
        "images": archive["images"],
        "delivered_fraction": archive["delivered_fraction"],
        "label_mix_max_deviation_pct": round(max(abs(v["archive_pct"] - v["source_pct"]) for v in labels), 2),
        "labels_within_tolerance": archive["labels_within_tolerance"],
    }


def _table2(table2: dict) -> dict:
    macro = table2["macro"]
    # no embedded column for a diffusion generator (it has no latent to embed into)
    out = {**{k: macro[k] for k in ("embedded", "class_generated", "real") if k in macro},
           "class_generated_to_real": round(macro["class_generated"] / macro["real"], 4)}
    interval = table2.get("bootstrap", {}).get("ratio_to_real", {}).get("class_generated")
    if interval and interval["lo"] is not None:  # the test set's paired bootstrap interval (metrics.auroc_interval)
        out |= {"class_generated_to_real_lo": interval["lo"], "class_generated_to_real_hi": interval["hi"]}
    return out


def _reader_study(study: dict) -> dict:
    out = {}
    if study["human"]["readers"]:
        out["hype_inf_human"] = study["human"]["pooled"]["hype_inf"]["rate"]
        out["human_readers"] = study["human"]["readers"]
    if study["simulated_readers"]["readers"]:
        out["hype_inf_simulated"] = study["simulated_readers"]["pooled"]["hype_inf"]["rate"]
    return out


def _privacy(privacy: dict) -> dict:
    verifier = privacy["verifier"]
    used = verifier.get("used", True)  # a privacy.json from before the verifier floor: always used
    return {"verifier_test_auc": verifier["test_auc"],  # null where no verifier could be tested
            "verifier_used": used,
            # why the audit flagged by the nearest-neighbour tests alone (no pairs, or below privacy.min_verifier_auc)
            **({} if used else {"verifier_not_used_because": verifier["not_used_because"]}),
            # before the filter replaced them: after it, the written archive's share is 0 by design
            "flagged_fraction_before_filter": round(
                privacy["archive_flagged_before_filter"] / privacy["archive"]["images"], 5),
            "flagged_fraction_written": privacy["archive"]["flagged_fraction"]}


def headline(metrics: Metrics) -> dict:
    """The headline metrics of a run, nested by what they measure (DVC flattens them to
    ``table1.stratified_halves`` and so on)."""
    prevalence = metrics.json("prevalence.json")
    privacy = metrics.json("privacy.json")
    return {
        "classifier": {"test_auroc_macro": metrics.json("classifier.json")["test_auroc_macro"]},
        "gan": {"images_shown": metrics.json("gan.json")["images_shown"]},
        "table1": _table1(metrics.json("fid.json")),
        "figure6": {"labels_rarer_in_generated": len(rarer_in_generated(prevalence)),
                    "labels_compared": sum(not v.get("excluded") for v in prevalence["per_label"].values())},
        "archive": _archive(metrics.json("archive.json")),
        "synthetic_auroc": _table2(metrics.json("synthetic_auroc.json")),
        "privacy": _privacy(privacy),
        "reader_study": _reader_study(metrics.json("reader_study.json")),
    }


def count_leaves(tree: dict) -> int:
    """How many columns ``dvc metrics show`` gives a nested dict."""
    return sum(count_leaves(v) if isinstance(v, dict) else 1 for v in tree.values())
