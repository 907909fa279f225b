"""Reading the synthetic archive: ``ArchiveDataset`` (shards read in place) against an extracted PNG folder.

The reference is the plain way: extract the shards (``tar -xf``), then a Dataset that opens
``images/<Image Index>`` by path with PIL. Both decode the same PNGs with PIL into float32
(1, H, W) on torchxrayvision's scale and return the same sample keys, batched by a DataLoader
with the same settings, at each worker count. Each figure is the best of ``--repeats`` full
passes after one warm-up pass (so both read from the page cache), the two readers' passes taken
in turn so that both meet the same load; workers persist across passes.
Prints images/s and the ratio; the target is at least the folder's speed (ratio >= 1). One-time
costs (indexing the shards, extracting them) are printed apart.

    python benchmarks/archive_reading.py [--archive data/archive] [--workers 0 2] [--repeats 5]

Without the archive folder (no ``dvc repro`` yet) it first writes one of ``--n`` phantom films of
``--size`` pixels with the archive stage's own writer.
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from cxrsynth.data.archive_dataset import ArchiveDataset, xrv_scale
from cxrsynth.data.phantom import render_phantom
from cxrsynth.data.shards import ARCHIVE_CSV
from cxrsynth.labels import FINDINGS


class FolderDataset(Dataset):
    """The reference: PNGs by path in an extracted ``images/`` folder, labels from the CSV."""

    def __init__(self, images_dir: Path, csv_path: Path):
        table = pd.read_csv(csv_path)
        self.images_dir = images_dir
        self.names = table["Image Index"].tolist()
        self.patientid = table["Patient ID"].astype(str).tolist()
        self.view = [v if isinstance(v, str) and v else "UNKNOWN" for v in table["View Position"]]
        self.labels = np.stack([table["Finding Labels"].str.contains(p, regex=False).to_numpy() for p in FINDINGS],
                               axis=1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, idx: int) -> dict:
        with Image.open(self.images_dir / self.names[idx]) as image:
            pixels = np.asarray(image if image.mode == "L" else image.convert("L"))
        return {"idx": idx, "img": xrv_scale(pixels)[None], "lab": self.labels[idx], "patientid": self.patientid[idx],
                "image_index": self.names[idx], "view": self.view[idx]}


def make_archive(folder: Path, n: int, size: int) -> None:
    """An archive of ``n`` phantom films, 4 per synthetic patient, written by the archive stage's writer."""
    from cxrsynth.synthesis.archive_writer import archive_table, write_archive

    rng = np.random.default_rng(0)
    findings = (rng.random((n, len(FINDINGS))) < 0.1).astype(np.uint8)
    labels = np.concatenate([(~findings.any(1))[:, None].astype(np.uint8), findings], axis=1)
    counts = np.full(-(-n // 4), 4)
    counts[-1] = n - 4 * (len(counts) - 1)
    table = archive_table(rng.integers(0, 15, len(counts)), counts, labels, rng.random(n), size, np.array([1]))
    images = np.stack([render_phantom(size, {FINDINGS[j] for j in np.flatnonzero(row)}, seed=i).pixels
                       for i, row in enumerate(findings)])
    write_archive(folder, images, table)


def images_per_second(readers: dict[str, Dataset], workers: int, batch_size: int, repeats: int) -> dict[str, float]:
    """Each reader's best rate over ``repeats`` full passes of its DataLoader, the readers' passes
    interleaved (in turn, the order alternating) so that both meet the same load on a shared machine.
    Workers persist across passes; the first pass of each starts them and warms the page cache."""
    loaders = {name: DataLoader(data, batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0)
               for name, data in readers.items()}
    best = dict.fromkeys(readers, float("inf"))
    for attempt in range(repeats + 1):
        for name in list(loaders)[:: 1 if attempt % 2 else -1]:
            start = time.perf_counter()
            seen = sum(len(batch["idx"]) for batch in loaders[name])
            seconds = time.perf_counter() - start
            assert seen == len(readers[name])
            if attempt:
                best[name] = min(best[name], seconds)
    return {name: len(readers[name]) / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=Path("data/archive"))
    parser.add_argument("--n", type=int, default=4000, help="films of the generated archive (without --archive)")
    parser.add_argument("--size", type=int, default=32, help="pixels of the generated archive's films")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)  # collation only: keep both readers on the same footing
    with tempfile.TemporaryDirectory() as tmp:
        archive = args.archive
        if not (archive / ARCHIVE_CSV).is_file():
            archive = Path(tmp) / "archive"
            print(f"{args.archive} not found: writing {args.n} phantom films of {args.size} px")
            make_archive(archive, args.n, args.size)
        start = time.perf_counter()
        shards = ArchiveDataset(archive)
        index_s = time.perf_counter() - start
        start = time.perf_counter()
        for shard in shards.shards:
            with tarfile.open(shard) as tar:
                tar.extractall(Path(tmp) / "extracted", filter="data")
        extract_s = time.perf_counter() - start
        folder = FolderDataset(Path(tmp) / "extracted" / "images", archive / ARCHIVE_CSV)
        np.testing.assert_array_equal(folder.labels, shards.labels)
        last = len(folder) - 1
        np.testing.assert_array_equal(folder[last]["img"], shards[last]["img"])  # the same pixels
        height, width = shards[0]["img"].shape[1:]
        mb = sum(s.stat().st_size for s in shards.shards) / 1e6
        print(f"{archive}: {len(shards)} films of {height}x{width} px in {len(shards.shards)} shards ({mb:.1f} MB); "
              f"batch {args.batch_size}, best of {args.repeats} passes")
        print(f"one-time: index the shards {index_s:.2f} s (ArchiveDataset()), extract them {extract_s:.2f} s (tar -xf)")
        for workers in args.workers:
            rates = images_per_second({"shards": shards, "folder": folder}, workers, args.batch_size, args.repeats)
            print(f"workers {workers}: ArchiveDataset {rates['shards']:8.0f} img/s, PNG folder {rates['folder']:8.0f} "
                  f"img/s: {rates['shards'] / rates['folder']:.2f}x the folder's speed (target at least 1x)")


if __name__ == "__main__":
    main()
