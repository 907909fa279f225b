"""Stage ``pggan`` of baselines/dvc.yaml: the main pipeline's generator's rows of the baselines table.

``<gan.arch>`` (``pggan``): the trained generator's samples: a GAN's plain samples, labelled by the
labeller, as every unconditional baseline; the diffusion model's drawn conditioned on the source's label
mix, without the privacy filter. ``<gan.arch>_archive``: films of the archive (the PGGAN's class-optimised
by Algorithm 1; the diffusion model's conditionally sampled, with privacy-enhancing sampling), with the
labels the archive carries. Both are judged exactly as the baselines are.
"""

import argparse
import json
from pathlib import Path

from cxrsynth.baselines.evaluate import gan_train_params, load_judge
from cxrsynth.baselines.figures import save_sample_grid
from cxrsynth.baselines.rows import archive_sample, main_row_names, pggan_row, pggan_samples, save_samples
from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.baselines import CommonParams
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.data.store import ImageStore
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.runtime import resolve_device, use_all_cores


def run(args: argparse.Namespace) -> None:
    common = load_validated(CommonParams, args.common, "run `dvc repro baselines/dvc.yaml`")
    classifier = load_validated(ClassifierParams, args.classifier_params, "run `dvc repro baselines/dvc.yaml`")
    use_all_cores(common.threads)
    device = resolve_device(common.device)
    gan_metrics = json.loads(args.gan_metrics.read_text())
    plain, conditions = pggan_samples(args.gan, common.n_samples, common.seed, device, ImageStore(args.store).table)
    resolution = plain.shape[-1]
    optimised, optimised_labels = archive_sample(args.archive, resolution, common.n_samples, common.seed)
    judge = load_judge(args.store, args.split, args.classifier, args.real, gan_train_params(classifier, common),
                       common.gan_train.val_fraction, args.weights, device)
    with atomic_dir(args.out) as out:
        samples, archive = main_row_names(gan_metrics.get("arch", "pggan"))
        for name, images, labels in ((samples, plain, conditions), (archive, optimised, optimised_labels)):
            row = pggan_row(name, gan_metrics, resolution, judge.measure(images, labels, name), name == archive)
            write_json(args.rows / f"{name}.json", row)
            save_samples(out / f"{name}.npz", images, labels)
            save_sample_grid(images[:64], args.rows / f"{name}.png")
            print(f"main generator row {name}: FID {row['fid']}, TV {row['label_mix_tv']}, "
                  f"GAN-train AUROC {row['gan_train_auroc']['macro']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--common", type=Path, required=True, help="validated baselines.common (JSON)")
    parser.add_argument("--classifier-params", type=Path, required=True)
    parser.add_argument("--gan", type=Path, required=True, help="the main pipeline's exported generator")
    parser.add_argument("--gan-metrics", type=Path, required=True, help="metrics/gan.json (D-loss statistics)")
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--real", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True, help="folder for the rows' samples")
    parser.add_argument("--rows", type=Path, required=True, help="folder for <gan.arch>.json, <gan.arch>_archive.json")
    stage_main(run, parser, name="baselines/pggan")  # records under metrics/*/baselines/
