"""Stage ``train_classifier``: DenseNet-121 on the prepared images, Youden thresholds, test AUROC."""

import argparse
import tempfile
import time
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.io import atomic_dir, atomic_path, write_json
from cxrsynth.plots import roc_curves
from cxrsynth.training.classifier_fit import fit_classifier, save_classifier


def run(args: argparse.Namespace) -> None:
    params = load_validated(ClassifierParams, args.params / "classifier.json")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="classifier-") as work:
        result = fit_classifier(args.store, args.split, params, Path(work), args.live, weights_dir=args.weights and args.weights / params.arch)
    if result is None:  # under DDP, global rank 0 alone evaluates and writes
        return
    with atomic_dir(args.out) as out:
        save_classifier(out, result, params)
    metrics = {
        "test_auroc": {k: round(v, 4) for k, v in result.test["auroc"].items()},
        "test_auroc_macro": round(result.test["auroc_macro"], 4),
        "test_auroc_macro_classes": result.test["auroc_macro_classes"],  # classes with positives and negatives
        "val_auroc_macro": round(result.val["auroc_macro"], 4),
        "val_auroc_macro_classes": result.val["auroc_macro_classes"],
        "thresholds": {k: round(v, 4) for k, v in result.thresholds.items()},
        "test_positives": result.test["positives"],
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "processes": result.processes,
        "input_size": params.input_size,
        "pretrained": result.module.hparams.pretrained,
        "weights": result.module.weights,  # the ImageNet file loaded (name, SHA-256), or "none"
    }
    write_json(args.metrics, metrics)
    with atomic_path(args.roc) as tmp:
        result.roc.to_csv(tmp, index=False)
    roc_curves(result.roc, result.test["auroc"], args.roc_figure)
    print(f"train_classifier: test macro AUROC {metrics['test_auroc_macro']:.3f} "
          f"(val {metrics['val_auroc_macro']:.3f}), {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True, help="split CSV")
    parser.add_argument("--out", type=Path, required=True, help="model folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--roc", type=Path, required=True, help="test ROC curves plot table")
    parser.add_argument("--roc-figure", type=Path, required=True)
    parser.add_argument("--live", type=Path, default=None, help="DVCLive folder for the training curves")
    parser.add_argument("--weights", type=Path, default=None, help="folder holding weights/<classifier.arch>/ (the ImageNet file)")
    stage_main(run, parser)
