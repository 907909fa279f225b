"""Patient-level split of the real NIH v2020 table: time and image-level prevalence deviation.

Compares, in one run, the image-weighted iterative stratification (default) with the
paper's patient-averaged labels through iterative-stratification's
MultilabelStratifiedShuffleSplit, for the 3-way 70/10/20 split and a plain 80/20 split.

    python benchmarks/split_stratification.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cxrsynth.data.metadata import read_data_entry
from cxrsynth.data.split import max_deviation_pp, patient_overlap, stratify_patients
from cxrsynth.labels import LABELS
from cxrsynth.metadata_source import torchxrayvision_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    table, _ = read_data_entry(torchxrayvision_table())
    labels = table[list(LABELS)]
    print(f"real v2020 table: {len(table)} images, {table['patient_id'].nunique()} patients")
    print(f"{'split':10s} {'weighting':10s} {'seconds':>8s} {'max dev (pp)':>13s} {'worst label':>20s} overlap")
    results = {}
    for fractions in ((0.7, 0.1, 0.2), (0.8, 0.2)):
        names = tuple(str(i) for i in range(len(fractions)))
        for weighting in ("images", "patients"):
            times, devs = [], []
            for seed in range(args.seeds):
                start = time.perf_counter()
                subset = stratify_patients(table, fractions, seed, weighting)
                times.append(time.perf_counter() - start)
                devs.append(max_deviation_pp(labels, subset, names))
                overlap = patient_overlap(table, subset)
            prev = {k: labels[subset.to_numpy() == k].mean() * 100 for k in range(len(fractions))}
            worst = max(LABELS, key=lambda c: max(abs(prev[k][c] - labels[c].mean() * 100) for k in prev))
            key = ("/".join(f"{f:g}" for f in fractions), weighting)
            results[key] = (np.median(times), np.mean(devs))
            print(f"{key[0]:10s} {weighting:10s} {np.median(times):8.2f} {np.mean(devs):13.3f} {worst:>20s} {overlap}")
    for split in ("0.7/0.1/0.2", "0.8/0.2"):
        (t_img, d_img), (t_pat, d_pat) = results[(split, "images")], results[(split, "patients")]
        print(f"{split}: image weighting is {t_pat / t_img:.1f}x the speed of the paper's way "
              f"and {d_pat / max(d_img, 1e-9):.0f}x closer at image level ({d_img:.3f} vs {d_pat:.3f} pp)")


if __name__ == "__main__":
    main()
