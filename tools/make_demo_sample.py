"""Draw the embedded demo's metadata rows from the real NIH v2020 table.

Run once by the maintainers (the output is committed as package data):

    python tools/make_demo_sample.py --out src/cxrsynth/resources/nih_demo_sample.csv.gz

Whole patients only (so follow-up series and patient-level splitting stay real), at most
``--max-images-per-patient`` images each, enriched until every finding has at least
``--min-positives`` positive images, then topped up with random patients. Rows are copied
verbatim (original text of every field): first the enrichment patients, then the top-up
patients, each group in a seeded random order, so that a smaller demo (a prefix of whole
patients) keeps the rare findings.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.labels import FINDINGS
from cxrsynth.metadata_source import torchxrayvision_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--min-positives", type=int, default=260)
    parser.add_argument("--max-images-per-patient", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2021)
    args = parser.parse_args()

    raw = torchxrayvision_table().read_bytes()
    text = gzip.decompress(raw).decode()
    header, *lines = text.rstrip("\n").split("\n")
    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    table["line"] = lines
    sizes = table.groupby("Patient ID")["Image Index"].transform("size")
    table = table[sizes <= args.max_images_per_patient]
    rng = np.random.default_rng(args.seed)
    by_patient = {pid: rows for pid, rows in table.groupby("Patient ID", sort=False)}

    chosen: list[str] = []
    counts = dict.fromkeys(FINDINGS, 0)
    n_rows = 0

    def take(pid: str) -> None:
        nonlocal n_rows
        chosen.append(pid)
        rows = by_patient.pop(pid)
        n_rows += len(rows)
        for labels in rows["Finding Labels"]:
            for name in labels.split("|"):
                if name in counts:
                    counts[name] += 1

    for finding in sorted(FINDINGS, key=lambda f: table["Finding Labels"].str.contains(f).sum()):
        candidates = [pid for pid, rows in by_patient.items() if rows["Finding Labels"].str.contains(finding).any()]
        rng.shuffle(candidates)
        for pid in candidates:
            if counts[finding] >= args.min_positives:
                break
            if pid in by_patient:
                take(pid)
    n_enriched = len(chosen)
    rest = list(by_patient)
    rng.shuffle(rest)
    for pid in rest:
        if n_rows >= args.rows:
            break
        take(pid)

    order = np.concatenate([rng.permutation(n_enriched), n_enriched + rng.permutation(len(chosen) - n_enriched)])
    out_lines = [header]
    for i in order:
        out_lines.extend(by_patient_lines(table, chosen[i]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.out, "wb", mtime=0) as fh:
        fh.write(("\n".join(out_lines) + "\n").encode())
    print(f"{len(out_lines) - 1} rows, {len(chosen)} patients ({n_enriched} enriching) -> {args.out}")
    for name, n in sorted(counts.items(), key=lambda kv: kv[1]):
        print(f"  {name:20s} {n}")


def by_patient_lines(table: pd.DataFrame, pid: str) -> list[str]:
    return table.loc[table["Patient ID"] == pid, "line"].tolist()


if __name__ == "__main__":
    main()
