"""Stage ``d_classifier``: the trained discriminator re-purposed as a 15-label classifier.

Its last layer is replaced by 15 outputs and the whole network is fine-tuned on the real
training split exactly as ``train_classifier`` trains the DenseNet (same loss, augmentation,
schedule, early stopping, Youden thresholds on val), at the generator's resolution.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.models.d_classifier import discriminator_head
from cxrsynth.sampling import gan_only, load_discriminator_state, load_generator
from cxrsynth.skipped import write_skipped
from cxrsynth.training.classifier_fit import fit_classifier, save_classifier


def run(args: argparse.Namespace) -> None:
    if reason := gan_only("d_classifier", args.gan):
        write_skipped("d_classifier", reason, folders=[args.out], metrics=[args.metrics])
        return
    params = load_validated(ClassifierParams, args.params / "classifier.json")
    if params.strategy in ("auto", "ddp") and (params.devices != 1 or params.num_nodes > 1):
        # the head runs only the final resolution's layers: DDP must expect parameters without gradients
        params = params.model_copy(update={"strategy": "ddp_find_unused_parameters_true"})
    _, gan = load_generator(args.gan)
    torch.manual_seed(params.seed)  # the new head's initial weights
    model = discriminator_head(gan, 15, load_discriminator_state(args.gan))
    resolution = gan.resolutions[-1]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="d-classifier-") as work:
        result = fit_classifier(args.store, args.split, params, Path(work), model=model, input_size=resolution)
    if result is None:  # under DDP, global rank 0 alone evaluates and writes
        return
    with atomic_dir(args.out) as out:
        save_classifier(out, result, params, input_size=resolution,
                        gan_config=json.loads((args.gan / "config.json").read_text()))
    metrics = {
        "test_auroc": {k: round(v, 4) for k, v in result.test["auroc"].items()},
        "test_auroc_macro": round(result.test["auroc_macro"], 4),
        "test_auroc_macro_classes": result.test["auroc_macro_classes"],  # classes with positives and negatives
        "val_auroc_macro": round(result.val["auroc_macro"], 4),
        "val_auroc_macro_classes": result.val["auroc_macro_classes"],
        "thresholds": {k: round(v, 4) for k, v in result.thresholds.items()},
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "processes": result.processes,
        "input_size": resolution,
    }
    write_json(args.metrics, metrics)
    print(f"d_classifier: test macro AUROC {metrics['test_auroc_macro']:.3f} at {resolution}px, "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--gan", type=Path, required=True, help="exported GAN folder (generator + discriminator)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    stage_main(run, parser)
