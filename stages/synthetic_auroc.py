"""Stage ``synthetic_auroc``: Table 2, classifiers trained on synthetic sets and tested on real images."""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.config.synthetic_auroc import SyntheticAurocParams
from cxrsynth.data.store import ImageStore
from cxrsynth.data.store_splits import split_datasets
from cxrsynth.io import atomic_path, write_json, write_text
from cxrsynth.metrics.auroc_interval import macro_intervals
from cxrsynth.models.classifier import probabilities
from cxrsynth.models.saved_classifier import load_classifier
from cxrsynth.skipped import skip_reason
from cxrsynth.synthesis.archive_writer import read_archive
from cxrsynth.synthesis.synthetic_auroc import (
    real_column,
    synthetic_recipe,
    table2,
    table2_bars,
    table2_document,
    table2_figure,
    table2_metrics,
    test_patients,
    train_columns,
)


def run(args: argparse.Namespace) -> None:
    synth = load_validated(SyntheticAurocParams, args.params / "synthetic_auroc.json")
    classifier = load_validated(ClassifierParams, args.params / "classifier.json")
    params = synthetic_recipe(classifier, synth.seed, synth.max_epochs)
    store, split = ImageStore(args.store), pd.read_csv(args.split)
    test = split_datasets(store, split, params.input_size)["test"]
    test_images, test_labels = test.all_images()[:, 0].numpy(), test.labels.numpy()

    archive_table, archive_images = read_archive(args.archive, params.input_size)
    sets = {"class_generated": (archive_table, archive_images)}
    if not skip_reason(args.embedded):  # a diffusion generator has no embedding baseline (stage embed)
        sets = {"embedded": (pd.read_csv(args.embedded / "table.csv"), np.load(args.embedded / "images.npy"))} | sets
    results, weights, scores = train_columns(sets, (test_images, test_labels), params, synth.val_fraction,
                                             synth.seed, args.weights and args.weights / params.arch)
    if not results:  # every DDP process but global rank 0
        return
    model, _, config = load_classifier(args.classifier)
    scores["real"] = probabilities(model, test.all_images(), config["input_size"]).numpy()
    results["real"] = real_column(scores["real"], test_labels)
    intervals = macro_intervals(scores, test_labels, test_patients(store.table, split), "real", synth.n_bootstrap,
                                synth.level, synth.seed)

    table = table2(results)
    write_json(args.metrics, table2_metrics(table, weights, {column: len(t) for column, (t, _) in sets.items()},
                                            len(test_labels), params, intervals))
    write_text(args.markdown, table2_document(table, intervals))
    with atomic_path(args.plot) as tmp:
        table2_bars(table, results).to_csv(tmp, index=False)
    table2_figure(table, results, args.figure)
    print("synthetic_auroc: macro " + ", ".join(f"{k} {v:.3f}" for k, v in table["macro"].items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
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
