"""Stage ``compare`` of baselines/dvc.yaml: the baselines table, its markdown and figures.

``--json``/``--markdown`` hold what every rerun gives bit for bit; the measured images/s and peak
memory (timings, which differ run to run) are added in the copy written to ``--measured``.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.baselines.compare import (
    PGGAN_ROWS,
    d_loss_claim,
    markdown,
    read_rows,
    table,
)
from cxrsynth.baselines.figures import columns_figure, d_loss_figure, samples_sheet
from cxrsynth.cli import stage_main
from cxrsynth.io import write_json, write_text


def run(args: argparse.Namespace) -> None:
    systems = json.loads(args.systems.read_text())
    frame = table(read_rows(args.rows, systems))
    claim = d_loss_claim(frame)
    memory = pd.read_csv(args.memory)
    with_bn = memory[memory["batch_norm"]].set_index(["network", "resolution", "width"])["total"]
    without = memory[~memory["batch_norm"]].set_index(["network", "resolution", "width"])["total"]
    saving = 100 * (1 - without / with_bn)
    write_json(args.json, {
        "rows": json.loads(frame.to_json(orient="records")),
        "d_loss_claim": claim,
        "batch_norm_memory_saving_pct": {"min": round(float(saving.min()), 2), "max": round(float(saving.max()), 2),
                                         "paper_004": [1.2, 7.0]},
        "note": "demo numbers come from rendered phantoms, not clinical images",
    })
    write_text(args.markdown, "# Baselines against the PGGAN (demo data: not clinical numbers)\n\n" + markdown(frame, claim))
    timings = {}
    for name in frame["system"]:
        path = args.timings_dir / f"{name}.json"
        if path.exists():
            timings[name] = json.loads(path.read_text())
    if args.gan_timings.exists():  # the main pipeline's PGGAN: its last (final-resolution) phase
        rates = json.loads(args.gan_timings.read_text()).get("img_per_s") or {}
        if rates:
            timings["pggan"] = {"img_per_s": list(rates.values())[-1]}
    write_text(args.measured, "# Baselines with this run's measured images/s and peak memory\n\n"
               + markdown(frame, claim, timings))
    columns_figure(frame, args.figure, "Baselines against the PGGAN (demo phantoms)")
    paper_004 = frame[frame["paper"] == "004"]
    if claim.get("held") is not None:
        d_loss_figure(paper_004, claim["pearson_r_fid"], args.d_loss_figure)
    samples = {}
    for name in frame["system"]:
        path = args.samples / ("pggan" if name in PGGAN_ROWS else name) / (f"{name}.npz" if name in PGGAN_ROWS
                                                                            else "samples.npz")
        samples[name] = np.load(path)["images"]
    samples_sheet(samples, args.samples_figure)
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
    stage_main(run, parser)
