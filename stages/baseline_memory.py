"""Stage ``memory`` of baselines/dvc.yaml: paper 004's memory per configuration (its Figs 7-8)."""

import argparse
from pathlib import Path

import pandas as pd

from cxrsynth.baselines.compare import batch_norm_saving
from cxrsynth.baselines.figures import memory_figure
from cxrsynth.baselines.memory import dcgan_memory
from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.baselines import CommonParams
from cxrsynth.io import atomic_path
from cxrsynth.runtime import resolve_device, use_all_cores


def run(args: argparse.Namespace) -> None:
    common = load_validated(CommonParams, args.common, "run `dvc repro baselines/dvc.yaml`")
    use_all_cores(common.threads)
    rows = pd.DataFrame(dcgan_memory(common.memory_widths, common.memory_resolutions, device=resolve_device(common.device)))
    measured = [c for c in ("params", "grads", "activations", "total", "cuda_peak") if c in rows]
    with atomic_path(args.out) as tmp:
        rows.to_csv(tmp, index=False)
    memory_figure(rows, args.figure)
    saving = batch_norm_saving(rows)
    print(f"memory: {len(rows)} passes ({', '.join(measured)}); removing batch norm saves "
          f"{saving['min']:.1f}-{saving['max']:.1f}% (paper 004: 1.2-7%)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--common", type=Path, required=True, help="validated baselines.common (JSON)")
    parser.add_argument("--out", type=Path, required=True, help="CSV: one row per network, resolution, width, batch norm")
    parser.add_argument("--figure", type=Path, required=True)
    stage_main(run, parser, name="baselines/memory")  # records under metrics/*/baselines/
