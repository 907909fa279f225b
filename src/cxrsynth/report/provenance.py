"""What a run was: data, labels, sizes, params, revision, devices, weights, warnings."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from cxrsynth.report.sources import Metrics


def validated_sections(folder: str | Path) -> dict[str, dict]:
    """The validated params sections the ``params`` stage wrote, by section (it leaves no other file there)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}


def git_revision(cwd: str | Path = ".") -> str:
    """``git describe`` of the checkout (``-dirty`` when it has uncommitted changes), or a note."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=cwd, capture_output=True,
                             text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown (not a git checkout)"


def _weights(record, missing: str = "none found: trained from random initialisation") -> str:
    if isinstance(record, dict):
        return f"{record.get('file')} (SHA-256 {str(record.get('sha256'))[:12]}…)"
    return missing if record in (None, "none") else str(record)


def provenance(metrics: Metrics, params: dict[str, dict], stages: list[str], params_file: str,
               revision: str) -> dict:
    """The report's first section, as plain values. ``stages``: the main pipeline's stage names,
    whose ``metrics/provenance/<stage>.json`` records give devices, versions and warnings."""
    prepare = metrics.json("prepare.json")
    split = metrics.json("split.json")
    classifier = metrics.json("classifier.json")
    fid = metrics.json("fid.json")
    synth = metrics.json("synthetic_auroc.json")
    gan = metrics.json("gan.json")
    data = params["data"]
    records = {s: metrics.json(f"provenance/{s}.json") for s in stages}
    devices: dict[str, list[str]] = {}
    for stage, record in records.items():
        device = record["device"] if "torch" in record else "CPU (no torch)"
        devices.setdefault(device, []).append(stage)
    versions = sorted({f"Python {r['python']}" for r in records.values()}
                      | {f"torch {r['torch']}" for r in records.values() if "torch" in r})
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    source = {"demo": "embedded demo: real NIH metadata rows with rendered chest phantoms (not clinical images)",
              "nih": "NIH ChestX-ray14", "local": f"local copy ({data['local'].get('images_dir')})"}[data["source"]]
    return {
        "data": {"source": source, "demo": data["source"] == "demo", "images": prepare["images"],
                 "patients": prepare["patients"], "rejected": prepare["rejected"],
                 "split": {k: split[k] for k in ("train", "val", "test")}},
        "labels": "NIH NLP labels" if prepare["labels"]["labels"] == "nih" else "CheXNeXt relabelled (the paper's)",
        "sizes": {"stored": prepare["levels"], "classifier": classifier["input_size"], "gan": gan["resolution"],
                  "fid": fid["resolution"], "synthetic_auroc": synth["input_size"]},
        "params": {"file": params_file, "sections": len(params), "digest": digest},
        "revision": revision,
        "devices": devices,
        "versions": versions,
        "weights": {"DenseNet-121 (ImageNet)": _weights(classifier.get("weights")),
                    "FID Inception-v3": _weights(fid.get("inception_weights"),
                                                 "none found: Inception distances skipped"),
                    "Table 2 classifiers (ImageNet)": ", ".join(f"{k}: {_weights(v)}" for k, v in synth["weights"].items())},
        "warnings": {s: r["warnings"] for s, r in records.items() if r["warnings"]},
    }
