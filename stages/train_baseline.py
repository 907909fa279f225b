"""Stage ``train@<system>`` of baselines/dvc.yaml: train one baseline system, sample it, judge it.

Writes the exported generator(s) and ``samples.npz`` to ``--out``, the row's measurements to
``--metrics`` and a grid of the samples to ``--grid``; images/s and peak memory go to the
timings file (they differ run to run, so DVC does not hash them).
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from cxrsynth.baselines.evaluate import load_judge
from cxrsynth.baselines.figures import save_sample_grid
from cxrsynth.baselines.memory import training_step_bytes
from cxrsynth.baselines.systems import config_from_params
from cxrsynth.baselines.train import (
    export_system,
    load_generators,
    peak_memory_mib,
    sample_system,
    train_system,
)
from cxrsynth.cli import stage_main
from cxrsynth.config.baselines import CommonParams, SystemParams
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.data.store import ImageStore
from cxrsynth.errors import MissingInputError
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.labels import LABELS
from cxrsynth.runtime import resolve_device, use_all_cores


def validated(model, path: Path):
    """A section the baselines ``params`` stage validated and wrote."""
    if not path.exists():
        raise MissingInputError(f"{path}: not found (run `dvc repro baselines/dvc.yaml`; is the system in "
                                "baselines.systems?)")
    return model.model_validate(json.loads(path.read_text()))


def run(args: argparse.Namespace) -> dict:
    common = validated(CommonParams, args.common)
    system = validated(SystemParams, args.system_params)
    classifier = validated(ClassifierParams, args.classifier_params)
    use_all_cores(common.threads)
    device = resolve_device(common.device)
    config = config_from_params(args.system, system, common)
    trainer_kwargs = {"accelerator": "gpu" if device.type == "cuda" else "cpu", "devices": 1, "deterministic": True}
    run = train_system(args.store, config, system.per_class, args.checkpoints, common.checkpoint_every,
                       trainer_kwargs, args.live, classifier.memory_limit_gib)
    peak = peak_memory_mib(device)
    memory = training_step_bytes(next(iter(run.modules.values())), config.batch_size)

    table = ImageStore(args.store).table.sort_values("row")
    source_labels = table[list(LABELS)].to_numpy(dtype=np.uint8)
    with atomic_dir(args.out) as out:
        export_system(run, out / "model", args.checkpoints)
        generators, saved, counts = load_generators(out / "model", device)
        images, conditions = sample_system(generators, saved, counts, common.n_samples, source_labels, common.seed)
        np.savez_compressed(out / "samples.npz", images=images,
                            **({} if conditions is None else {"conditions": conditions}))
    save_sample_grid(images[:64], args.grid)

    gan_train = classifier.model_copy(update={"arch": common.gan_train.arch, "max_epochs": common.gan_train.max_epochs,
                                              "seed": common.gan_train.seed})
    judge = load_judge(args.store, args.split, args.classifier, args.real, gan_train, common.gan_train.val_fraction,
                       args.weights, device)
    with tempfile.TemporaryDirectory(prefix=f"baseline-{args.system}-") as work:
        row = judge(images, conditions, Path(work))
    stats = run.d_loss_stats()
    metrics = {
        "system": args.system, "paper": system.paper, "model": system.model, "loss": system.loss,
        "optimiser": system.optimiser, "ttur": system.lr_g != system.lr_d, "activation": system.activation,
        "resolution": common.resolution, "images_shown": int(sum(m.images_seen for m in run.modules.values())),
        "generators": len(run.modules), "train_images": run.train_images, "skipped_labels": run.skipped,
        **row,
        "d_loss": None if stats is None else {k: round(v, 6) if isinstance(v, float) else v for k, v in stats.items()},
        "training_memory_mib": {k: round(v / 2**20, 2) for k, v in memory.items()},
    }
    write_json(args.metrics, metrics)
    print(f"train_baseline {args.system}: FID {row['fid']}, label-mix TV {row['label_mix_tv']}, "
          f"GAN-train AUROC {row['gan_train_auroc']['macro']}")
    return {"checkpoint": run.actions, "img_per_s": run.images_per_s, "peak_memory": peak}


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
    stage_main(run, parser)
