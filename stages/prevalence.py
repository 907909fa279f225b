"""Stage ``prevalence``: labels of real and generated images with bootstrap intervals (Figure 6)."""

import argparse
import time
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.prevalence import PrevalenceParams
from cxrsynth.io import atomic_path, write_json
from cxrsynth.metrics.prevalence import (
    figure6_table,
    label_generated,
    prevalence_metrics,
    prevalence_report,
    real_labels,
)
from cxrsynth.models.saved_classifier import load_classifier, threshold_vector
from cxrsynth.plots import prevalence_intervals
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.sampling import latents, load_generator


def run(args: argparse.Namespace) -> dict:
    params = load_validated(PrevalenceParams, args.params / "prevalence.json")
    use_all_cores()
    device = resolve_device(params.device)
    classifier, thresholds, config = load_classifier(args.classifier, device)
    cut = threshold_vector(thresholds)
    real, truth = real_labels(args.real, params.real_subset, cut)
    generator, gan = load_generator(args.gan, device)
    z = latents(params.n_generated, gan.z_dim, params.seed, params.truncation, device)
    generated = label_generated(generator, gan.resolutions[-1], z, classifier, config["input_size"], cut,
                                params.batch_size)
    start = time.perf_counter()
    per_label, wide = prevalence_report(real, generated, truth, params.n_bootstrap, params.seed, params.level)
    bootstrap_s = time.perf_counter() - start
    metrics = prevalence_metrics(per_label, params.real_subset, len(real), len(generated), params.n_bootstrap,
                                 params.level)
    write_json(args.metrics, metrics)
    with atomic_path(args.plot) as tmp:
        figure6_table(wide).to_csv(tmp, index=False)
    prevalence_intervals(wide, args.figure, f"Label prevalence, {params.real_subset} real vs "
                                            f"{len(generated)} generated ({100 * params.level:.0f}% bootstrap)")
    print(f"prevalence: {len(metrics['labels_excluded'])} of 15 labels differ; bootstrap {bootstrap_s:.2f} s")
    return {"bootstrap_seconds": round(bootstrap_s, 3)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--real", type=Path, required=True, help="real_features output folder")
    parser.add_argument("--gan", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plot", type=Path, required=True, help="plot table (CSV)")
    parser.add_argument("--figure", type=Path, required=True, help="Figure 6 PNG")
    stage_main(run, parser)
