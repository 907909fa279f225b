"""A no-op ``dvc status`` with a 112,120-film source: films as DVC outputs vs a manifest.

Builds two small DVC projects in a temporary folder around one source of ``--films`` small
files (NIH's count by default) and times ``dvc status`` once each is up to date:
- per-file (the old layout): a ``download`` stage whose output folder holds every film;
- manifest (ours): the films lie outside DVC and the stage writes ``images.json`` with
  ``cxrsynth.data.sources.manifest.folder_source``, the code the ``download`` stage runs.

Both add a ``prepare`` stage that depends on the output, as the pipeline does. Target: the
manifest layout's no-op status at most 2 s.

    python benchmarks/raw_status.py [--films 112120] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

PER_FILE = """stages:
  download:
    cmd: cp -r {source} raw
    outs: [raw]
  prepare:
    cmd: ls raw > listing.txt
    deps: [raw]
    outs: [listing.txt]
"""

MANIFEST = """stages:
  download:
    cmd: {python} -c "import sys; from pathlib import Path; from cxrsynth.data.sources.manifest import folder_source, write_manifest; Path('raw').mkdir(exist_ok=True); write_manifest(Path('raw'), [folder_source(Path(sys.argv[1]))])" {source}
    outs: [raw]
  prepare:
    cmd: wc -c raw/images.json > listing.txt
    deps: [raw]
    outs: [listing.txt]
"""


def make_films(folder: Path, n: int) -> None:
    """``n`` small files named like NIH films (a tiny body each: DVC's cost is per file, not per byte)."""
    folder.mkdir(parents=True)
    for i in tqdm(range(n), desc="write films", unit="file"):
        (folder / f"{i // 10 + 1:08d}_{i % 10:03d}.png").write_bytes(i.to_bytes(4, "little"))


def project(root: Path, dvc_yaml: str) -> Path:
    root.mkdir()
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=root, check=True)
    (root / "dvc.yaml").write_text(dvc_yaml)
    start = time.perf_counter()
    subprocess.run(["dvc", "repro", "-q"], cwd=root, check=True)
    print(f"  {root.name}: dvc repro {time.perf_counter() - start:.1f} s")
    return root


def status_seconds(root: Path, repeats: int) -> float:
    """Median wall time of ``dvc status`` in an up-to-date project (it must say so)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(["dvc", "status"], cwd=root, check=True, capture_output=True, text=True).stdout
        times.append(time.perf_counter() - start)
        if "up to date" not in out:
            raise SystemExit(f"{root.name}: dvc status is not a no-op: {out[:200]}")
    return statistics.median(times)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--films", type=int, default=112_120)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_films(tmp / "nih" / "images", args.films)
        source = tmp / "nih" / "images"
        per_file = project(tmp / "per_file", PER_FILE.format(source=source))
        manifest = project(tmp / "manifest", MANIFEST.format(python=sys.executable, source=source))
        old, new = status_seconds(per_file, args.repeats), status_seconds(manifest, args.repeats)
    print(f"no-op dvc status, {args.films:,} films (median of {args.repeats}):")
    print(f"  per-file output:  {old:.2f} s")
    print(f"  manifest:         {new:.2f} s   ({old / new:.1f}x faster; target <= 2 s: {'met' if new <= 2 else 'MISSED'})")
