"""Stage ``prepare``: repair the metadata, convert every image to grey, store an area pyramid."""

import argparse
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.store_writer import label_examples, prepare_dataset
from cxrsynth.data.store import ImageStore
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.plots import contact_sheet


def run(args: argparse.Namespace) -> None:
    params = load_validated(PrepareParams, args.params / "prepare.json")
    with atomic_dir(args.out) as store:
        metrics = prepare_dataset(args.raw, store, params)
    write_json(args.metrics, metrics)
    store = ImageStore(args.out)
    contact_sheet(label_examples(args.out, store.table, min(64, max(store.sizes))), args.samples)
    print(f"prepare: {metrics['images']} images, {metrics['patients']} patients, {metrics['rejected']} rejected")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="image store folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True, help="PNG contact sheet, a row per label")
    stage_main(run, parser)
