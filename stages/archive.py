"""Stage ``archive``: the class-optimised (a diffusion generator's: conditionally sampled), labelled
synthetic archive (Algorithm 1, Figures 7 and 8). Labelled by the calibrated DenseNet, planned per class
to match the source's label mix, then privacy-filtered, given a View Position and a card."""

import argparse
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.archive import ArchiveParams
from cxrsynth.config.base import load_validated
from cxrsynth.config.data import DataParams
from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.data.patient_split import PatientSplit
from cxrsynth.data.store import ImageStore
from cxrsynth.data.store_splits import split_datasets
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.privacy.audit_inputs import audit_setup
from cxrsynth.privacy.filter import audited_filter, regenerator
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.sampling import is_diffusion, load_generator
from cxrsynth.synthesis.archive_builder import build_archive, label_counts
from cxrsynth.synthesis.archive_metrics import archive_metrics, archive_summary, archive_timings
from cxrsynth.synthesis.archive_writer import write_archive
from cxrsynth.synthesis.calibration import calibrate_labeller
from cxrsynth.synthesis.card import archive_facts, write_card
from cxrsynth.synthesis.comparison import compare_scorers, load_scorers
from cxrsynth.synthesis.conditional_sampling import diffusion_archive_params, patient_maker
from cxrsynth.synthesis.figures import archive_figures, real_beside_generated, real_vs_generated, write_prevalence
from cxrsynth.synthesis.view import assign_views, split_films


def run(args: argparse.Namespace) -> dict:
    params = load_validated(ArchiveParams, args.params / "archive.json")
    privacy = load_validated(PrivacyParams, args.params / "privacy.json")
    data = load_validated(DataParams, args.params / "data.json")
    use_all_cores()
    device = resolve_device(params.device)
    generator, gan = load_generator(args.gan, device)
    params = diffusion_archive_params(params, gan) if is_diffusion(gan) else params
    resolution = gan.resolutions[-1]
    scorers = load_scorers(args.classifier, args.d_classifier, device, params.scorer)
    scorer, store = scorers[params.scorer], ImageStore(args.store)
    source = store.table
    real = split_datasets(store, PatientSplit.read(args.split), scorers["densenet"].input_size)
    calibrated = calibrate_labeller(scorers["densenet"], params.label_thresholds, real)
    make = patient_maker(generator, calibrated.scorer, scorer, source) if is_diffusion(gan) else None
    build = build_archive(generator, resolution, scorer, calibrated.scorer, source, params, calibrated.test_macro_auroc,
                          make_patients=make)
    record = None
    if params.privacy_filter:
        setup = audit_setup(args.store, args.split, args.classifier, args.verifier, privacy, device)
        regenerate = regenerator(generator, resolution, scorer, calibrated.scorer, params, device, make)
        build, record = audited_filter(build, setup, regenerate, params, privacy)
    films = split_films(real, source)  # View Position: predicted from the labeller's features (synthesis.view)
    build.table["View Position"], view = assign_views(calibrated.extractor(), films["train"], films["test"],
                                                      build.images, source["view"], params.seed)
    labels = label_counts(build.table, source)
    with atomic_dir(args.out) as out:
        shards = write_archive(out, build.images, build.table, params.shard_images, privacy_record=record)
        write_card(out, archive_facts(build.table, shards, resolution, labels, source, args.gan, data.source,
                                      (params, privacy), view, record or {"applied": False}, __file__))
    comparison = compare_scorers(generator, resolution, scorers, build.optimisation, params)
    metrics = archive_metrics(build, params, shards, labels, calibrated, comparison, record, view)
    write_json(args.metrics, metrics)
    write_prevalence(labels, args.prevalence, args.prevalence_figure, params.label_thresholds)
    archive_figures(generator, build, resolution, device, args.examples, args.series)  # Figures 7 and 8
    if args.real_vs_generated is not None:
        real_vs_generated(*real_beside_generated(store, real["test"].rows, build.table, build.images,
                                                 resolution, params.seed), args.real_vs_generated)
    print("\n".join(archive_summary(metrics, params.size)))
    return archive_timings(build, comparison)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
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
    parser.add_argument("--real-vs-generated", type=Path, default=None, help="real test beside archive films (PNG)")
    stage_main(run, parser)
