"""Stage ``archive``: the class-optimised, labelled synthetic archive (Algorithm 1, Figures 7 and 8).

The archive's labels come from the DenseNet with cut-offs calibrated on the real validation
images (``archive.label_thresholds``); the images per target class are planned so those labels
are as frequent as the source's (``synthesis.planning``); a shortfall past
``archive.max_shortfall`` fails the stage and writes no archive. After the pilot pass the rest of
the build is forecast and printed (``synthesis.forecast``); a plan the pilot shows cannot be met
within ``archive.max_shortfall`` or ``archive.max_minutes`` stops the stage there, in one line.
Each film's View Position is predicted from the labeller's features (``synthesis.view``); the
archive's card (``README.md``, ``synthesis.card``) is written with the shards, and
``--real-vs-generated`` shows real test films beside archive films.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cxrsynth.cli import stage_main
from cxrsynth.config.archive import ArchiveParams
from cxrsynth.config.base import load_section
from cxrsynth.config.data import DataParams
from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.data.store import ImageStore
from cxrsynth.data.store_splits import split_datasets
from cxrsynth.io import atomic_dir, atomic_path, write_json
from cxrsynth.labels import LABELS
from cxrsynth.metrics.auroc import macro, per_class_auroc
from cxrsynth.metrics.extractors import classifier_extractor
from cxrsynth.plots import contact_sheet, prevalence_by_split
from cxrsynth.privacy.filter import filter_archive
from cxrsynth.privacy.setup import audit_setup
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.sampling import load_generator, sample_images
from cxrsynth.synthesis.archive import PRIVACY_RECORD, write_archive
from cxrsynth.synthesis.build import (
    build_archive,
    check_shortfall,
    generate_patients,
    label_counts,
    optimise_classes,
    per_class_summary,
)
from cxrsynth.synthesis.card import archive_facts, one_per_patient, real_vs_generated, write_card
from cxrsynth.synthesis.labeller import archive_labeller, held_out_predictions
from cxrsynth.synthesis.scorers import load_scorer
from cxrsynth.synthesis.view import assign_views, split_films


def run(args: argparse.Namespace) -> dict:
    params = load_section(ArchiveParams, args.params)
    use_all_cores()
    device = resolve_device(params.device)
    generator, gan = load_generator(args.gan, device)
    resolution = gan.resolutions[-1]
    scorers = {"densenet": load_scorer(args.classifier, device, "densenet"),
               "discriminator": load_scorer(args.d_classifier, device, "discriminator")}
    scorer, labeller = scorers[params.scorer], scorers["densenet"]
    store = ImageStore(args.store)
    source = store.table

    real = split_datasets(store, pd.read_csv(args.split), labeller.input_size)
    held_out = held_out_predictions(labeller, real)
    labeller = archive_labeller(labeller, params.label_thresholds, held_out["val"])
    test_probs, test_labels = held_out["test"]
    on_real_test = {name: {"true_pct": round(100 * float(test_labels[:, c].mean()), 2),
                           "labelled_pct": round(100 * float((test_probs[:, c] >= labeller.thresholds[c]).mean()), 2)}
                    for c, name in enumerate(LABELS)}

    auroc = macro(per_class_auroc(test_probs, test_labels, LABELS))  # named when the pilot stops the build
    build = build_archive(generator, resolution, scorer, labeller, source, params,
                          labeller_auroc=None if np.isnan(auroc) else auroc)
    record = None
    privacy = load_section(PrivacyParams, args.params)
    if params.privacy_filter:
        setup = audit_setup(args.store, args.split, args.classifier, args.verifier, privacy, device)

        def check(images):
            flags = setup.thresholds.flags(setup.auditor.nearest(images, desc="privacy audit"))
            return flags["any"], {k: v for k, v in flags.items() if k != "any"}

        noise = torch.Generator(device=device).manual_seed(params.seed + 2)

        def regenerate(classes, counts, seed):
            result, made = generate_patients(generator, resolution, scorer, labeller, classes, counts, params,
                                             seed, noise)
            return result.success, made

        build, record = filter_archive(build, check, regenerate, privacy.filter_rounds,
                                       privacy.max_replaced_fraction, params.seed + 50_000)
        check_shortfall(build.planned, params.size, params.max_shortfall)
        record = {"applied": True, **record.as_dict(), "thresholds": setup.thresholds.as_dict()}
    films = split_films(real, source)  # View Position: predicted from the labeller's features (synthesis.view)
    views, view_record = assign_views(classifier_extractor(labeller.model, labeller.input_size), films["train"],
                                      films["test"], build.images, source["view"], params.seed)
    build.table["View Position"] = views
    labels = label_counts(build.table, source)
    with atomic_dir(args.out) as out:
        shards = write_archive(out, build.images, build.table, params.shard_images)
        if record is not None:
            write_json(out / PRIVACY_RECORD, record)
        write_card(out, archive_facts(build.table, shards, resolution, labels, source, args.gan,
                                      load_section(DataParams, args.params).source, (params, privacy), view_record,
                                      record or {"applied": False}))

    comparison = {params.scorer: per_class_summary(build.optimisation)}
    other = "densenet" if params.scorer == "discriminator" else "discriminator"
    if params.compare_per_class:
        classes = np.repeat(np.arange(len(LABELS)), params.compare_per_class)
        start = time.perf_counter()
        probe = optimise_classes(generator, resolution, scorers[other], classes, params, params.seed + 7)
        comparison[other] = per_class_summary(probe)
        probe_seconds = time.perf_counter() - start

    result, table, planned = build.optimisation, build.table, build.planned
    metrics = {
        "scorer": params.scorer,
        "images": len(table),
        "planned_images": params.size,
        "delivered_fraction": round(len(table) / params.size, 4),
        "patients": int(table["Patient ID"].nunique()),
        "jobs": len(result.classes),
        "success_rate": round(float(result.success.mean()), 4),
        "batched_steps": result.batched_steps,
        "mean_occupied_slots": round(result.mean_occupied_slots, 2),
        "shards": shards,
        "passes": build.passes,
        "labels_within_tolerance": sum(v["within_tolerance"] for v in labels.values()),
        "labels": labels,
        "per_class": {row["class"]: {k: int(v) for k, v in row.items() if k != "class"} | comparison[params.scorer].get(row["class"], {})
                      for row in planned.to_dict("records")},
        "label_thresholds": {"kind": params.label_thresholds,
                             **{n: round(float(t), 4) for n, t in zip(LABELS, labeller.thresholds)}},
        "labeller_on_real_test": on_real_test,
        "scorers": comparison,
        "privacy_filter": record or {"applied": False},
        "view": view_record,
        "forecast": build.forecast_record(),
    }
    write_json(args.metrics, metrics)
    wide = pd.DataFrame({"source": [labels[n]["source_pct"] for n in LABELS],
                         "archive": [labels[n]["archive_pct"] for n in LABELS]}, index=list(LABELS))
    with atomic_path(args.prevalence) as tmp:
        wide.rename_axis("label").reset_index().melt(id_vars="label", var_name="set", value_name="prevalence_pct").to_csv(tmp, index=False)
    prevalence_by_split(wide, args.prevalence_figure, f"Label prevalence: source (true labels) vs archive "
                                                      f"({params.label_thresholds} labeller)")

    # Figure 7: the optimised image G(z*) of up to eight archive patients per class; Figure 8: follow-up series
    centres = sample_images(generator, build.z_star.to(device), resolution)[:, 0].numpy()
    classes = np.asarray([LABELS.index(t) for t in table.drop_duplicates("Patient ID")["Target Label"]])
    rows = [(name, centres[classes == c][:8]) for c, name in enumerate(LABELS) if (classes == c).any()]
    contact_sheet(rows, args.examples, scale=max(1, 96 // resolution))
    series = []
    for pid in table["Patient ID"].drop_duplicates().to_numpy()[:8]:
        chosen = (table["Patient ID"] == pid).to_numpy()
        series.append((f"{table.loc[chosen, 'Target Label'].iloc[0]} ({chosen.sum()})", build.images[chosen]))
    contact_sheet(series, args.series, label_width=160, scale=max(1, 96 // resolution))
    if args.real_vs_generated is not None:
        test_patients = source.set_index("row").loc[real["test"].rows, "patient_id"].to_numpy()
        shown = real["test"].rows[one_per_patient(test_patients, 16, params.seed)]
        made = one_per_patient(table["Patient ID"].to_numpy(), 16, params.seed)
        real_vs_generated(store.read(resolution, shown), build.images[made], args.real_vs_generated)
    print(f"archive: {len(table)} of {params.size} images, {metrics['patients']} patients, "
          f"{metrics['labels_within_tolerance']} of 15 labels within tolerance of the source")
    test = view_record["test"]
    print(f"archive: View Position {view_record['method']}: " + (
        f"on the real test split accuracy {test['accuracy']}, AUROC {test['auroc']}; archive PA share "
        f"{view_record['archive_pa_share']}" if test else view_record["reason"]))
    if record is not None:
        print(f"archive: privacy filter: {record['patients_flagged_before']} patients ({record['images_flagged_before']} "
              f"images) flagged, {record['replaced_patients']} replaced in {record['rounds']} rounds, "
              f"{record['dropped_patients']} dropped"
              + (f"; by pixel and feature nearest neighbours only: {reason}"
                 if (reason := record["thresholds"]["verifier_not_used_because"]) else ""))
    return {"build_seconds": round(build.seconds, 1),
            "accepted_latents_per_s": round(int(result.success.sum()) / build.seconds, 2),
            **build.forecast_timings(),
            **({f"{other}_comparison_seconds": round(probe_seconds, 1)} if params.compare_per_class else {})}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--gan", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True, help="the DenseNet (labeller and a scorer)")
    parser.add_argument("--d-classifier", type=Path, required=True, help="the re-purposed discriminator")
    parser.add_argument("--store", type=Path, required=True, help="source store (prevalence, real patient IDs)")
    parser.add_argument("--split", type=Path, required=True, help="split CSV (held-out images for the labeller)")
    parser.add_argument("--verifier", type=Path, required=True, help="the patient verifier (privacy filter)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--prevalence", type=Path, required=True, help="label prevalence table, source vs archive (CSV)")
    parser.add_argument("--prevalence-figure", type=Path, required=True, help="label prevalence PNG")
    parser.add_argument("--examples", type=Path, required=True, help="Figure 7 PNG")
    parser.add_argument("--series", type=Path, required=True, help="Figure 8 PNG")
    parser.add_argument("--real-vs-generated", type=Path, default=None,
                        help="real test films beside archive films (PNG; dvc.yaml gives it, the README shows it)")
    stage_main(run, parser)
