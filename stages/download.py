"""Stage ``download``: fill data/raw (metadata, films or a manifest of where they lie, CheXNeXt labels
when asked) from the demo, NIH, or a local copy."""

import argparse
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.data import DataParams
from cxrsynth.data.chexnext import save_relabelled
from cxrsynth.data.sources.demo import write_demo
from cxrsynth.data.sources.local import import_local
from cxrsynth.data.sources.nih import download_nih
from cxrsynth.io import atomic_dir


def run(args: argparse.Namespace) -> None:
    params = load_validated(DataParams, args.params / "data.json")
    args.downloads.mkdir(parents=True, exist_ok=True)  # persistent: survives reruns for resume
    with atomic_dir(args.out) as raw:
        if params.source == "demo":
            summary = write_demo(raw, params.demo)
        elif params.source == "nih":
            summary = download_nih(params.nih, raw, args.downloads)
        else:
            summary = import_local(params.local, raw)
        if params.labels == "chexnext":
            summary["chexnext_images"] = save_relabelled(params.chexnext_file, raw)
    print(f"download ({params.source}): {summary}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--out", type=Path, required=True, help="raw folder (NIH layout)")
    parser.add_argument("--downloads", type=Path, required=True, help="persistent archive cache")
    stage_main(run, parser)
