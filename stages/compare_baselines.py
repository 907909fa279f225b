"""Stage ``compare`` of baselines/dvc.yaml: the baselines table, its markdown and figures.

``--json``/``--markdown`` hold what every rerun gives bit for bit; the measured images/s and peak
memory (timings, which differ run to run) are added in the copy written to ``--measured``.
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from cxrsynth.baselines.compare import (
    d_loss_claim,
    markdown,
    read_rows,
    read_samples,
    read_timings,
    summary,
    table,
)
from cxrsynth.baselines.figures import columns_figure, d_loss_figure, samples_sheet
from cxrsynth.cli import stage_main
from cxrsynth.io import write_json, write_text


def run(args: argparse.Namespace) -> None:
    frame = table(read_rows(args.rows, json.loads(args.systems.read_text())))
    claim = d_loss_claim(frame)
    write_json(args.json, summary(frame, claim, pd.read_csv(args.memory)))
    write_text(args.markdown, "# Baselines against the PGGAN (demo data: not clinical numbers)\n\n" + markdown(frame, claim))
    timings = read_timings(args.timings_dir, frame["system"], args.gan_timings)
    write_text(args.measured, "# Baselines with this run's measured images/s and peak memory\n\n"
               + markdown(frame, claim, timings))
    columns_figure(frame, args.figure, "Baselines against the PGGAN (demo phantoms)")
    if claim.get("held") is not None:
        d_loss_figure(frame[frame["paper"] == "004"], claim["pearson_r_fid"], args.d_loss_figure)
    samples_sheet(read_samples(args.samples, frame["system"]), args.samples_figure)
    print(markdown(frame, claim))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--systems", type=Path, required=True, help="the systems' names in table order (JSON)")
    parser.add_argument("--rows", type=Path, required=True, help="folder of the rows' JSON files")
    parser.add_argument("--samples", type=Path, required=True, help="data/baselines: every row's samples")
    parser.add_argument("--memory", type=Path, required=True, help="the memory stage's CSV")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--markdown", type=Path, required=True)
    parser.add_argument("--figure", type=Path, required=True)
    parser.add_argument("--d-loss-figure", type=Path, required=True)
    parser.add_argument("--samples-figure", type=Path, required=True)
    parser.add_argument("--timings-dir", type=Path, required=True, help="the stages' timings (not DVC outputs)")
    parser.add_argument("--measured", type=Path, required=True, help="the table with images/s and peak memory")
    parser.add_argument("--gan-timings", type=Path, required=True, help="the main train_gan stage's timings (optional)")
    stage_main(run, parser, name="baselines/compare")  # records under metrics/*/baselines/
