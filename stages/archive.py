"""Stage ``archive``: the class-optimised, labelled synthetic archive (Algorithm 1, Figures 7 and 8)."""

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from cxrsynth.cli import stage_main
from cxrsynth.config.archive import ArchiveParams
from cxrsynth.config.base import load_section
from cxrsynth.data.store import ImageStore
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.labels import LABELS
from cxrsynth.models.classifier import probabilities
from cxrsynth.plots import contact_sheet
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.sampling import load_generator, sample_images
from cxrsynth.synthesis.archive import write_archive
from cxrsynth.synthesis.build import (
    build_archive,
    label_counts,
    optimise_classes,
    per_class_summary,
)
from cxrsynth.synthesis.scorers import load_scorer, prevalence_thresholds
from cxrsynth.training.datamodule import StoreDataModule


def run(args: argparse.Namespace) -> None:
    params = load_section(ArchiveParams, args.params)
    use_all_cores()
    device = resolve_device(params.device)
    generator, gan = load_generator(args.gan, device)
    resolution = gan.resolutions[-1]
    scorers = {"densenet": load_scorer(args.classifier, device, "densenet"),
               "discriminator": load_scorer(args.d_classifier, device, "discriminator")}
    scorer, labeller = scorers[params.scorer], scorers["densenet"]
    source = ImageStore(args.store).table
    if params.label_thresholds == "prevalence":
        val = StoreDataModule(args.store, args.split, labeller.input_size, 256)
        val.setup()
        probs = probabilities(labeller.model, val.datasets["val"].all_images(), labeller.input_size).numpy()
        labeller = replace(labeller, thresholds=prevalence_thresholds(probs, source[list(LABELS)].mean().to_numpy()))

    build = build_archive(generator, resolution, scorer, labeller, source, params)
    with atomic_dir(args.out) as out:
        shards = write_archive(out, build.images, build.table, params.shard_images)

    comparison = {params.scorer: per_class_summary(build.optimisation)}
    other = "densenet" if params.scorer == "discriminator" else "discriminator"
    if params.compare_per_class:
        classes = np.repeat(np.arange(len(LABELS)), params.compare_per_class)
        start = time.perf_counter()
        probe = optimise_classes(generator, resolution, scorers[other], classes, params, params.seed + 7)
        comparison[other] = per_class_summary(probe)
        probe_seconds = time.perf_counter() - start

    result, table = build.optimisation, build.table
    accepted = int(result.success.sum())
    metrics = {
        "scorer": params.scorer,
        "images": len(table),
        "planned_images": int(build.targets.sum()),
        "patients": int(table["Patient ID"].nunique()),
        "planned_patients": len(result.classes),
        "success_rate": round(accepted / len(result.classes), 4),
        "batched_steps": result.batched_steps,
        "mean_occupied_slots": round(result.mean_occupied_slots, 2),
        "shards": shards,
        "label_thresholds": {"kind": params.label_thresholds,
                             **{n: round(float(t), 4) for n, t in zip(LABELS, labeller.thresholds)}},
        "per_class": per_class_summary(result),
        "scorers": comparison,
        "labels": label_counts(table, source),
    }
    write_json(args.metrics, metrics)

    # Figure 7: the optimised image G(z*) of up to eight patients per class; Figure 8: follow-up series
    z_star = result.z[result.success].to(device)
    centres = sample_images(generator, z_star, resolution)[:, 0].numpy()
    classes = result.classes[result.success]
    rows = [(name, centres[classes == c][:8]) for c, name in enumerate(LABELS) if (classes == c).any()]
    contact_sheet(rows, args.examples, scale=max(1, 96 // resolution))
    series = []
    for pid in table["Patient ID"].drop_duplicates().to_numpy()[:8]:
        chosen = (table["Patient ID"] == pid).to_numpy()
        series.append((f"{table.loc[chosen, 'Target Label'].iloc[0]} ({chosen.sum()})", build.images[chosen]))
    contact_sheet(series, args.series, label_width=160, scale=max(1, 96 // resolution))
    print(f"archive: {len(table)} images, {metrics['patients']} patients, success rate {metrics['success_rate']:.2f} "
          f"({params.scorer})")
    return {"build_seconds": round(build.seconds, 1), "accepted_latents_per_s": round(accepted / build.seconds, 2),
            **({f"{other}_comparison_seconds": round(probe_seconds, 1)} if params.compare_per_class else {})}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--gan", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True, help="the DenseNet (labeller and a scorer)")
    parser.add_argument("--d-classifier", type=Path, required=True, help="the re-purposed discriminator")
    parser.add_argument("--store", type=Path, required=True, help="source store (prevalence, real patient IDs)")
    parser.add_argument("--split", type=Path, required=True, help="split CSV (validation images for the labeller)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--examples", type=Path, required=True, help="Figure 7 PNG")
    parser.add_argument("--series", type=Path, required=True, help="Figure 8 PNG")
    stage_main(run, parser)
