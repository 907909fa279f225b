"""Stage ``split``: patient-level iterative-stratified train/val/test split and FID halves."""

import argparse
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.split import SplitParams
from cxrsynth.data.split_assignment import make_split
from cxrsynth.data.store import ImageStore
from cxrsynth.io import atomic_path, write_json
from cxrsynth.plots import prevalence_by_split


def run(args: argparse.Namespace) -> None:
    params = load_validated(SplitParams, args.params / "split.json")
    store = ImageStore(args.store)
    split, metrics, prevalence = make_split(store.table, params, args.store)
    with atomic_path(args.out) as tmp:
        split.to_csv(tmp, index=False)
    write_json(args.metrics, metrics)
    with atomic_path(args.plot) as tmp:
        prevalence.to_csv(tmp, index=False)
    wide = prevalence.pivot(index="label", columns="split", values="prevalence_pct")
    wide = wide.loc[list(dict.fromkeys(prevalence["label"])), list(dict.fromkeys(prevalence["split"]))]
    prevalence_by_split(wide, args.figure, f"Label prevalence per split ({params.method}, {params.weighting})")
    print(f"split: {metrics['images']} images; max deviation {metrics['max_prevalence_deviation_pp']:.3f} pp")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="split CSV")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plot", type=Path, required=True, help="prevalence-per-split plot table")
    parser.add_argument("--figure", type=Path, required=True, help="prevalence-per-split PNG")
    stage_main(run, parser)
