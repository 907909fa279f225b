"""Stage ``pggan`` of baselines/dvc.yaml: the main pipeline's rows of the baselines table.

``pggan``: the trained PGGAN's plain samples, labelled by the labeller, as every unconditional
baseline. ``pggan_class_optimised``: images of the class-optimised archive (Algorithm 1), with
the labels the archive carries. Both are judged exactly as the baselines are.
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from cxrsynth.baselines.evaluate import load_judge
from cxrsynth.baselines.figures import save_sample_grid
from cxrsynth.cli import stage_main
from cxrsynth.config.baselines import CommonParams
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.errors import MissingInputError
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.labels import LABELS
from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.sampling import latents, load_generator, sample_images
from cxrsynth.synthesis.archive import read_archive


def validated(model, path: Path):
    if not path.exists():
        raise MissingInputError(f"{path}: not found (run `dvc repro baselines/dvc.yaml`)")
    return model.model_validate(json.loads(path.read_text()))


def run(args: argparse.Namespace) -> None:
    common = validated(CommonParams, args.common)
    classifier = validated(ClassifierParams, args.classifier_params)
    use_all_cores(common.threads)
    device = resolve_device(common.device)
    gan_metrics = json.loads(args.gan_metrics.read_text())
    generator, gan = load_generator(args.gan, device)
    z = latents(common.n_samples, gan.z_dim, common.seed, device=device)
    plain = sample_images(generator, z, gan.resolutions[-1], progress=True)[:, 0].numpy()
    archive_table, archive_images = read_archive(args.archive, gan.resolutions[-1])
    pick = np.sort(np.random.default_rng(common.seed).permutation(len(archive_table))[: common.n_samples])
    optimised, optimised_labels = archive_images[pick], archive_table[list(LABELS)].to_numpy(dtype=np.uint8)[pick]

    gan_train = classifier.model_copy(update={"arch": common.gan_train.arch, "max_epochs": common.gan_train.max_epochs,
                                              "seed": common.gan_train.seed})
    judge = load_judge(args.store, args.split, args.classifier, args.real, gan_train, common.gan_train.val_fraction,
                       args.weights, device)
    shared = {"paper": "001", "model": "pggan", "loss": "wgan_gp", "optimiser": "adam", "ttur": False,
              "activation": "leaky_relu", "resolution": gan.resolutions[-1], "images_shown": gan_metrics["images_shown"],
              "generators": 1, "d_loss": gan_metrics["d_loss"], "training_memory_mib": None}
    with atomic_dir(args.out) as out:
        for name, images, labels in (("pggan", plain, None), ("pggan_class_optimised", optimised, optimised_labels)):
            with tempfile.TemporaryDirectory(prefix=f"baseline-{name}-") as work:
                row = judge(images, labels, Path(work))
            if labels is not None:
                row["gan_train_labels"] = "archive"
            write_json(args.rows / f"{name}.json", {"system": name, **shared, **row})
            np.savez_compressed(out / f"{name}.npz", images=images, **({} if labels is None else {"conditions": labels}))
            save_sample_grid(images[:64], args.rows / f"{name}.png")
            print(f"pggan row {name}: FID {row['fid']}, TV {row['label_mix_tv']}, "
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
    parser.add_argument("--rows", type=Path, required=True, help="folder for pggan.json, pggan_class_optimised.json")
    stage_main(run, parser)
