"""Stage ``train@<system>`` of baselines/dvc.yaml: train one baseline system, sample it, judge it.

Writes the exported generator(s) and ``samples.npz`` to ``--out``, the row's measurements to
``--metrics`` and a grid of the samples to ``--grid``; images/s and peak memory go to the
timings file (they differ run to run, so DVC does not hash them).
"""

import argparse
from pathlib import Path

import torch

from cxrsynth.baselines.evaluate import gan_train_params, load_judge
from cxrsynth.baselines.figures import save_sample_grid
from cxrsynth.baselines.memory import training_step_bytes
from cxrsynth.baselines.rows import save_samples, system_row
from cxrsynth.baselines.systems import config_from_params
from cxrsynth.baselines.train import (
    export_system,
    load_generators,
    peak_memory_mib,
    sample_system,
    single_device_trainer,
    store_labels,
    train_system,
)
from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.baselines import CommonParams, SystemParams
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.runtime import resolve_device, use_all_cores


def run(args: argparse.Namespace) -> dict:
    made_by = "run `dvc repro baselines/dvc.yaml`; is the system in baselines.systems?"
    common = load_validated(CommonParams, args.common, made_by)
    system = load_validated(SystemParams, args.system_params, made_by)
    classifier = load_validated(ClassifierParams, args.classifier_params, made_by)
    use_all_cores(common.threads)
    device = resolve_device(common.device)
    config = config_from_params(args.system, system, common)
    trained = train_system(args.store, config, system.per_class, args.checkpoints, common.checkpoint_every,
                           single_device_trainer(device), args.live, classifier.memory_limit_gib)
    peak = peak_memory_mib(device)
    memory = training_step_bytes(next(iter(trained.modules.values())), config.batch_size)
    with atomic_dir(args.out) as out:
        export_system(trained, out / "model", args.checkpoints)
        generators, saved, counts = load_generators(out / "model", device)
        images, conditions = sample_system(generators, saved, counts, common.n_samples, store_labels(args.store),
                                           common.seed)
        save_samples(out / "samples.npz", images, conditions)
    save_sample_grid(images[:64], args.grid)
    judge = load_judge(args.store, args.split, args.classifier, args.real, gan_train_params(classifier, common),
                       common.gan_train.val_fraction, args.weights, device)
    row = judge.measure(images, conditions, args.system)
    write_json(args.metrics, system_row(args.system, system, common, trained, row, memory))
    print(f"train_baseline {args.system}: FID {row['fid']}, label-mix TV {row['label_mix_tv']}, "
          f"GAN-train AUROC {row['gan_train_auroc']['macro']}")
    return {"checkpoint": trained.actions, "img_per_s": trained.images_per_s, "peak_memory": peak}


if __name__ == "__main__":
    torch.backends.cudnn.benchmark = False
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--system", required=True, help="a key of baselines.systems")
    parser.add_argument("--common", type=Path, required=True, help="validated baselines.common (JSON)")
    parser.add_argument("--system-params", type=Path, required=True, help="validated baselines.systems.<system> (JSON)")
    parser.add_argument("--classifier-params", type=Path, required=True, help="validated classifier section (JSON)")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True, help="the real-trained classifier (the labeller)")
    parser.add_argument("--real", type=Path, required=True, help="real_features output folder")
    parser.add_argument("--weights", type=Path, default=None, help="weights/ (inception/, resnet18/, densenet121/)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoints", type=Path, required=True, help="persistent checkpoint folder")
    parser.add_argument("--live", type=Path, default=None, help="DVCLive folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--grid", type=Path, required=True, help="sample grid PNG")
    stage_main(run, parser, name=lambda args: f"baselines/{args.system}")  # records under metrics/*/baselines/
