"""Stage ``generator``: the portable generator bundle that ``cxrsynth generate`` loads (``data/generator``).

The EMA generator, the labeller with the cut-offs the archive stage labels its films with
(``archive.label_thresholds``, calibrated on the real validation split by the same calls), the
re-purposed discriminator when ``archive.scorer`` is "discriminator", the archive's
class-optimisation settings and a model card. No real film goes in.
"""

import argparse
from pathlib import Path

import pandas as pd

from cxrsynth.cli import stage_main
from cxrsynth.config.archive import ArchiveParams
from cxrsynth.config.base import load_validated
from cxrsynth.config.data import DataParams
from cxrsynth.data.store import ImageStore
from cxrsynth.data.store_splits import split_datasets
from cxrsynth.generate.bundle import write_bundle
from cxrsynth.labels import LABELS
from cxrsynth.metrics.auroc import per_class_auroc
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.sampling import gan_only
from cxrsynth.skipped import write_skipped
from cxrsynth.synthesis.labeller import archive_labeller, held_out_predictions
from cxrsynth.synthesis.scorers import load_scorer


def run(args: argparse.Namespace) -> None:
    if reason := gan_only("generator (the class-optimising bundle)", args.gan):
        write_skipped("generator", reason, folders=[args.out])
        return
    params = load_validated(ArchiveParams, args.params / "archive.json")
    source = load_validated(DataParams, args.params / "data.json").source
    use_all_cores()
    labeller = load_scorer(args.classifier, resolve_device(params.device), "densenet")
    real = split_datasets(ImageStore(args.store), pd.read_csv(args.split), labeller.input_size)
    held_out = held_out_predictions(labeller, real)
    labeller = archive_labeller(labeller, params.label_thresholds, held_out["val"])
    bundle = write_bundle(args.out, args.gan, args.classifier, args.d_classifier, params, labeller.thresholds,
                          source, per_class_auroc(*held_out["test"], LABELS))
    print(f"generator: bundle -> {args.out} ({bundle.manifest['generator']['arch']} at "
          f"{bundle.manifest['generator']['resolution']} px, scorer {params.scorer}, {params.label_thresholds} cut-offs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--gan", type=Path, required=True, help="the exported generator (data/gan/model)")
    parser.add_argument("--classifier", type=Path, required=True, help="the DenseNet labeller")
    parser.add_argument("--d-classifier", type=Path, required=True, help="the re-purposed discriminator")
    parser.add_argument("--store", type=Path, required=True, help="source store (the real validation/test films)")
    parser.add_argument("--split", type=Path, required=True, help="split CSV")
    parser.add_argument("--out", type=Path, required=True, help="the bundle folder")
    stage_main(run, parser)
