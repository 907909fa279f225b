"""Stage ``synthetic_auroc``: Table 2, classifiers trained on synthetic sets and tested on real images."""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_section
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.config.synth import SynthParams
from cxrsynth.data.store import ImageStore
from cxrsynth.data.store_splits import split_datasets
from cxrsynth.io import atomic_path, write_json, write_text
from cxrsynth.labels import LABELS
from cxrsynth.models.classifier import probabilities
from cxrsynth.models.saved_classifier import load_classifier
from cxrsynth.plots import prevalence_by_split
from cxrsynth.synthesis.archive import read_archive
from cxrsynth.synthesis.evaluation import (
    real_column,
    table2,
    table2_markdown,
    train_on_synthetic,
)


def run(args: argparse.Namespace) -> None:
    synth = load_section(SynthParams, args.params)
    base = load_section(ClassifierParams, args.params)
    params = base.model_copy(update={"seed": synth.seed, "max_epochs": synth.max_epochs or base.max_epochs})
    test = split_datasets(ImageStore(args.store), pd.read_csv(args.split), params.input_size)["test"]
    test_images, test_labels = test.all_images()[:, 0].numpy(), test.labels.numpy()

    archive_table, archive_images = read_archive(args.archive, params.input_size)
    embedded_table = pd.read_csv(args.embedded / "table.csv")
    embedded_images = np.load(args.embedded / "images.npy")
    results, weights = {}, {}
    for column, (table, images) in {"embedded": (embedded_table, embedded_images),
                                    "class_generated": (archive_table, archive_images)}.items():
        with tempfile.TemporaryDirectory(prefix=f"synth-{column}-") as work:
            fit = train_on_synthetic(table, images, (test_images, test_labels), params, synth.val_fraction,
                                     synth.seed, Path(work), args.weights and args.weights / params.arch)
        if fit is not None:  # None on every DDP process but global rank 0, which alone evaluates and writes
            results[column], weights[column] = fit.test, fit.module.weights
    if not results:
        return
    model, _, config = load_classifier(args.classifier)
    real_probs = probabilities(model, test.all_images(), config["input_size"]).numpy()
    results["real"] = real_column(real_probs, test_labels)

    table = table2(results)
    metrics = {"per_class": {k: table[k] for k in LABELS}, "macro": table["macro"],
               "macro_classes": table["macro_classes"],  # per column: classes with test positives and negatives
               "train_images": {"embedded": len(embedded_table), "class_generated": len(archive_table)},
               "test_images": len(test_labels), "input_size": params.input_size, "max_epochs": params.max_epochs,
               "weights": weights}
    write_json(args.metrics, metrics)
    write_text(args.markdown, "# Table 2: test AUROC on real images, by training data\n\n" + table2_markdown(table))
    long = pd.DataFrame([{"bar": f"{name} | {col}", "class": name, "training": col, "auroc": table[name][col]}
                         for name in (*LABELS, "macro") for col in results])
    with atomic_path(args.plot) as tmp:
        long.to_csv(tmp, index=False)
    wide = pd.DataFrame({col: [table[n][col] for n in (*LABELS, "macro")] for col in results},
                        index=[*LABELS, "macro"])
    prevalence_by_split(wide, args.figure, "Real test AUROC by training data", xlabel="AUROC", xlim=(0.4, 1.0))
    print("synthetic_auroc: macro " + ", ".join(f"{k} {v:.3f}" for k, v in table["macro"].items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--embedded", type=Path, required=True)
    parser.add_argument("--classifier", type=Path, required=True, help="the real-trained classifier")
    parser.add_argument("--weights", type=Path, default=None, help="folder holding weights/<classifier.arch>/ (the ImageNet file)")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--markdown", type=Path, required=True)
    parser.add_argument("--plot", type=Path, required=True)
    parser.add_argument("--figure", type=Path, required=True)
    stage_main(run, parser)
