"""Assigning each patient to a subset: the iterative-stratified split, checked and summarised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.config.split import SplitParams
from cxrsynth.data.metadata import read_image_list
from cxrsynth.data.split import (
    SPLITS,
    max_deviation_pp,
    official_split,
    patient_overlap,
    prevalence_table,
    stratify_patients,
)
from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.labels import LABELS

FID_HALVES = ("half_a", "half_b")


def check_nonempty(table: pd.DataFrame, subset: pd.Series, halves: pd.Series, params: SplitParams) -> None:
    """Raise InputError (one line naming the ``split`` params) when a subset or an FID half has no images:
    every later stage would measure an empty set (NaN AUROCs, no covariance)."""
    patients = table["patient_id"].nunique()
    sizes = np.bincount(subset.to_numpy(), minlength=len(SPLITS))
    empty = [name for name, n in zip(SPLITS, sizes) if n == 0]
    if empty:
        how = (f"split.method official with split.fractions {tuple(params.fractions)}" if params.method == "official"
               else f"split.fractions {tuple(params.fractions)}")
        subsets = f"{' and '.join(empty)} subset{'s' if len(empty) > 1 else ''}"
        raise InputError(f"split: the {subsets} of {len(table)} images from {patients} patients would be empty "
                         f"under {how}; change split.fractions "
                         f"(or split.method, split.seed), or prepare more images")
    if (np.bincount(halves.to_numpy(), minlength=len(FID_HALVES)) == 0).any():
        raise InputError(f"split: {len(table)} images from {patients} patient(s) cannot fill both FID halves "
                         f"(split.seed {params.seed}, split.weighting {params.weighting}); prepare more patients")


def make_split(table: pd.DataFrame, params: SplitParams, store_dir: Path) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Return (per-image split table, metrics dict, long prevalence table for plots).

    Raises ValueError if any patient lands in two subsets, InputError if a subset or FID half is empty.
    """
    if params.method == "official":
        test_list = store_dir / "test_list.txt"
        if not test_list.exists():
            raise MissingInputError(f"split.method official: {test_list} not found (the source gave no NIH lists)")
        subset = official_split(table, set(read_image_list(test_list)), params.fractions, params.seed, params.weighting)
    else:
        subset = stratify_patients(table, params.fractions, params.seed, params.weighting)
    halves = stratify_patients(table, (0.5, 0.5), params.seed + 1000, params.weighting)
    check_nonempty(table, subset, halves, params)

    overlap = patient_overlap(table, subset)
    if overlap:
        raise ValueError(f"split: {overlap} patients fall in more than one subset")
    labels = table[list(LABELS)]
    prevalence = prevalence_table(labels, subset)
    out = pd.DataFrame(
        {
            "image": table["image"],
            "patient_id": table["patient_id"],
            "split": np.asarray(SPLITS)[subset.to_numpy()],
            "fid_half": np.asarray(FID_HALVES)[halves.to_numpy()],
        }
    )
    metrics = {
        "method": params.method,
        "weighting": params.weighting,
        "images": len(table),
        "patients": int(table["patient_id"].nunique()),
        "patient_overlap": overlap,
        "max_prevalence_deviation_pp": round(max_deviation_pp(labels, subset), 4),
        "fid_halves_max_prevalence_deviation_pp": round(max_deviation_pp(labels, halves, FID_HALVES), 4),
        "fid_halves_patient_overlap": patient_overlap(table, halves),
    }
    for k, name in enumerate(SPLITS):
        chosen = subset.to_numpy() == k
        metrics[name] = {"images": int(chosen.sum()), "patients": int(table.loc[chosen, "patient_id"].nunique())}
    deviation = prevalence[list(SPLITS)].sub(prevalence["all"], axis=0).abs().max(axis=1)
    metrics["deviation_pp_by_label"] = {name: round(float(v), 4) for name, v in deviation.items()}
    long = prevalence.reset_index(names="label").melt(id_vars="label", var_name="split", value_name="prevalence_pct")
    long["prevalence_pct"] = long["prevalence_pct"].round(4)
    return out, metrics, long
