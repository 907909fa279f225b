"""Prepare throughput at full NIH resolution (1024x1024 PNG input), in images/s per core.

Renders ``--n`` phantoms at 1024x1024 (a share as RGBA, as in NIH), then times, in one run:
- naive: decode, then one PIL box resize from full resolution per pyramid level;
- ours, one process: decode, one box resize to the top level, 2x2 means below it;
- ours, the stage's process pool over all cores (memory-mapped store).

    python benchmarks/prepare_throughput.py [--n 200] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.greyscale import area_pyramid, to_grey
from cxrsynth.data.metadata import NIH_HEADER_LINE
from cxrsynth.data.phantom import render_phantom
from cxrsynth.data.store_writer import prepare_dataset
from cxrsynth.data.store import level_sizes


def make_raw(folder: Path, n: int) -> list[Path]:
    images = folder / "images"
    images.mkdir(parents=True)
    lines, paths = [NIH_HEADER_LINE], []
    for i in range(n):
        name = f"{i + 1:08d}_000.png"
        pixels = render_phantom(1024, {"Nodule"} if i % 3 else set(), "MF"[i % 2], 50, "PA", i).pixels
        image = Image.fromarray(pixels, "L")
        (image.convert("RGBA") if i % 20 == 0 else image).save(images / name)
        lines.append(f"{name},No Finding,0,{i + 1},50,M,PA,1024,1024,0.143,0.143")
        paths.append(images / name)
    (folder / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    return paths


def naive(paths: list[Path], size: int) -> None:
    for path in paths:
        with Image.open(path) as image:
            grey = image.convert("L")
        for res in level_sizes(size):
            np.asarray(grey.resize((res, res), Image.Resampling.BOX))


def ours_serial(paths: list[Path], size: int) -> None:
    for path in paths:
        with Image.open(path) as image:
            image.load()
            grey, _ = to_grey(image)
        area_pyramid(grey, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        print(f"rendering {args.n} phantoms at 1024x1024 ...")
        paths = make_raw(raw, args.n)
        mb = sum(p.stat().st_size for p in paths) / args.n / 1e6
        print(f"mean PNG size {mb:.2f} MB; pyramid 4..{args.size}; {cores} cores")
        timings = {}
        for name, fn in (("naive (1 core)", naive), ("ours (1 core)", ours_serial)):
            start = time.perf_counter()
            fn(paths, args.size)
            timings[name] = time.perf_counter() - start
        (Path(tmp) / "store").mkdir()
        start = time.perf_counter()
        prepare_dataset(raw, Path(tmp) / "store", PrepareParams(size=args.size, workers=cores, chunk=8))
        timings[f"stage ({cores} cores)"] = time.perf_counter() - start
    base = timings["naive (1 core)"]
    for name, seconds in timings.items():
        used = cores if "cores" in name else 1
        rate = args.n / seconds
        print(f"{name:18s} {rate:8.1f} img/s  {rate / used:8.1f} img/s/core  {base / seconds:5.2f}x naive")


if __name__ == "__main__":
    main()
