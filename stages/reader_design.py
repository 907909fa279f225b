"""Stage ``reader_design``: the reader study's films and screens (paper 001 section 4.4).

Real films come from the test split, generated ones from the class-optimised archive (or fresh
samples), both at one stored side; they are written at the display size as identically encoded
PNGs named by random IDs, with ``design.sqlite`` holding the screens and, apart, the truth. It
reads only the design's keys of ``reader_study`` (``ReaderDesignParams``), the keys dvc.yaml lists.
"""

import argparse
from pathlib import Path

import numpy as np

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.reader_study import ReaderStudyParams
from cxrsynth.io import atomic_dir
from cxrsynth.reader_study.design import plan_truth, write_study
from cxrsynth.reader_study.films import archive_films, real_films, sampled_films


def run(args: argparse.Namespace) -> None:
    params = load_validated(ReaderStudyParams, args.params / "reader_study.json").design()
    rng = np.random.default_rng(params.seed)
    screens = plan_truth(params.grids, params.grid_size, params.pairs, params.real_probability, rng)
    needed = sum(len(truth) - sum(truth) for _, truth in screens)
    if params.generated_from == "archive":
        generated = archive_films(args.archive, params.resolution)
    else:
        generated = sampled_films(args.gan, needed, params.resolution, params.seed)
    side = generated.images.shape[-1]
    real = real_films(args.store, args.split, side)
    settings = params.model_dump(mode="json", exclude={"resolution"})  # the side actually taken is recorded
    with atomic_dir(args.out) as out:
        summary = write_study(out, screens, real, generated, params.display_size, rng, {**settings, "side": side})
    print(f"reader_design: study {summary['study_id']}: {summary['screens']} screens, "
          f"{summary['real_films']} real and {summary['generated_films']} generated films at {side} px "
          f"shown at {params.display_size} px")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--gan", type=Path, required=True, help="exported generator (generated_from: samples)")
    parser.add_argument("--out", type=Path, required=True)
    stage_main(run, parser)
