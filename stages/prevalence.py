"""Stage ``prevalence``: labels of real and generated images with bootstrap intervals (Figure 6)."""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_section
from cxrsynth.config.prevalence import PrevalenceParams
from cxrsynth.io import atomic_path, write_json
from cxrsynth.labels import LABELS
from cxrsynth.metrics.prevalence import label_generated, prevalence_report
from cxrsynth.models.saved_classifier import load_classifier, threshold_vector
from cxrsynth.plots import prevalence_intervals
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.sampling import latents, load_generator


def _rounded(value):
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 5) if isinstance(value, float) else value


def run(args: argparse.Namespace) -> None:
    params = load_section(PrevalenceParams, args.params)
    use_all_cores()
    device = resolve_device(params.device)
    classifier, thresholds, config = load_classifier(args.classifier, device)
    cut = threshold_vector(thresholds)
    probs_file = args.real / "classifier_probs.csv"
    if not probs_file.exists():
        raise FileNotFoundError(f"{probs_file}: not found (fid.extractor must include the classifier)")
    real = pd.read_csv(probs_file)
    if params.real_subset == "test":
        real = real[real["split"] == "test"]
    real_labels = (real[[f"p_{n}" for n in LABELS]].to_numpy() >= cut).astype(np.uint8)
    generator, gan = load_generator(args.gan, device)
    z = latents(params.n_generated, gan.z_dim, params.seed, params.truncation, device)
    generated = label_generated(generator, gan.resolutions[-1], z, classifier, config["input_size"], cut,
                                params.batch_size)
    start = time.perf_counter()
    per_label, wide = prevalence_report(real_labels, generated, real[list(LABELS)].to_numpy(),
                                        params.n_bootstrap, params.seed, params.level)
    bootstrap_s = time.perf_counter() - start

    metrics = {
        "real_subset": params.real_subset,
        "n_real": len(real_labels),
        "n_generated": len(generated),
        "n_bootstrap": params.n_bootstrap,
        "level": params.level,
        "labels_excluded": [n for n in LABELS if per_label[n]["excluded"]],
        "per_label": _rounded(per_label),
    }
    write_json(args.metrics, metrics)
    long = pd.concat([pd.DataFrame({"bar": [f"{n} | {s}" for n in LABELS], "set": s,
                                    "prevalence_pct": (100 * wide[f"{s}_mean"]).round(3).to_numpy(),
                                    "lo_pct": (100 * wide[f"{s}_lo"]).round(3).to_numpy(),
                                    "hi_pct": (100 * wide[f"{s}_hi"]).round(3).to_numpy()})
                      for s in ("real", "generated")]).sort_values("bar", kind="stable")
    with atomic_path(args.plot) as tmp:
        long.to_csv(tmp, index=False)
    prevalence_intervals(wide, args.figure, f"Label prevalence, {params.real_subset} real vs "
                                            f"{len(generated)} generated ({100 * params.level:.0f}% bootstrap)")
    print(f"prevalence: {len(metrics['labels_excluded'])} of 15 labels differ; bootstrap {bootstrap_s:.2f} s")
    return {"bootstrap_seconds": round(bootstrap_s, 3)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--real", type=Path, required=True, help="real_features output folder")
    parser.add_argument("--gan", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plot", type=Path, required=True, help="plot table (CSV)")
    parser.add_argument("--figure", type=Path, required=True, help="Figure 6 PNG")
    stage_main(run, parser)
