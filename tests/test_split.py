"""Patient-level stratified splits: no overlap, image-level prevalence within 0.5 pp."""

from __future__ import annotations

import numpy as np
import pytest

from cxrsynth.config.split import SplitParams
from cxrsynth.data.split import (
    max_deviation_pp,
    official_split,
    patient_overlap,
    stratify_patients,
    weighted_iterative_stratification,
)
from cxrsynth.data.split_assignment import make_split
from cxrsynth.labels import LABELS


def test_real_table_three_way_split_within_half_a_point(real_table):
    table, _ = real_table
    subset = stratify_patients(table, (0.7, 0.1, 0.2), seed=0, weighting="images")
    assert patient_overlap(table, subset) == 0
    assert max_deviation_pp(table[list(LABELS)], subset) <= 0.5
    shares = np.bincount(subset) / len(subset)
    assert np.allclose(shares, [0.7, 0.1, 0.2], atol=0.005)


def test_real_table_fid_halves(real_table):
    table, _ = real_table
    halves = stratify_patients(table, (0.5, 0.5), seed=1, weighting="images")
    assert patient_overlap(table, halves) == 0
    assert max_deviation_pp(table[list(LABELS)], halves, ("a", "b")) <= 0.5


def test_paper_weighting_keeps_patients_apart(real_table):
    table, _ = real_table
    sample = table[table["patient_id"] % 10 == 0].reset_index(drop=True)
    subset = stratify_patients(sample, (0.7, 0.1, 0.2), seed=0, weighting="patients")
    assert patient_overlap(sample, subset) == 0 and set(subset) == {0, 1, 2}


def test_weighted_stratification_hand_example():
    # Two labels; patient 0 holds 6 images of label 0, the others one image each.
    counts = np.array([[6, 0], [1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [0, 1], [1, 0]], dtype=float)
    weights = counts.sum(axis=1)
    assignment = weighted_iterative_stratification(counts, weights, [0.5, 0.5], np.random.default_rng(0))
    per_subset = np.array([counts[assignment == k].sum(axis=0) for k in (0, 1)])
    assert per_subset[:, 1].tolist() in ([2, 2],)  # label 1 split evenly
    assert sorted(per_subset[:, 0].tolist()) == [3, 6]  # the big patient stays whole


def test_split_is_reproducible_and_seed_dependent(real_table):
    table, _ = real_table
    sample = table[table["patient_id"] % 7 == 0].reset_index(drop=True)
    a = stratify_patients(sample, (0.7, 0.1, 0.2), 3)
    assert a.equals(stratify_patients(sample, (0.7, 0.1, 0.2), 3))
    assert not a.equals(stratify_patients(sample, (0.7, 0.1, 0.2), 4))


def test_official_split_uses_the_test_list(real_table):
    table, _ = real_table
    sample = table[table["patient_id"] % 5 == 0].reset_index(drop=True)
    test_images = set(sample.loc[sample["patient_id"] % 3 == 0, "image"])
    subset = official_split(sample, test_images, (0.7, 0.1, 0.2), 0, "images")
    assert set(sample.loc[subset == 2, "image"]) == test_images
    assert patient_overlap(sample, subset) == 0 and (subset == 1).any()


def test_make_split_metrics(real_table, tmp_path):
    table, _ = real_table
    sample = table[table["patient_id"] % 11 == 0].reset_index(drop=True)
    split, metrics, long = make_split(sample, SplitParams(), tmp_path)
    assert metrics["patient_overlap"] == 0 and metrics["fid_halves_patient_overlap"] == 0
    assert metrics["train"]["images"] + metrics["val"]["images"] + metrics["test"]["images"] == len(sample)
    assert set(split["split"]) == {"train", "val", "test"} and set(split["fid_half"]) == {"half_a", "half_b"}
    assert set(long["split"]) == {"all", "train", "val", "test"}
    with pytest.raises(FileNotFoundError, match="test_list.txt"):
        make_split(sample, SplitParams(method="official"), tmp_path)


def tiny_store(root, patients: int, images_each: int = 2):
    """A prepared 8-px store of ``patients`` patients with ``images_each`` images each (mixed labels)."""
    from conftest import write_raw

    from cxrsynth.config.prepare import PrepareParams
    from cxrsynth.data.store_writer import prepare_dataset

    labels = ("No Finding", "Effusion", "Atelectasis|Mass")
    rows = [(f"{p + 1:08d}_{i:03d}.png", labels[(p + i) % len(labels)])
            for p in range(patients) for i in range(images_each)]
    write_raw(root / "raw", rows, size=8)
    (root / "store").mkdir()
    prepare_dataset(root / "raw", root / "store", PrepareParams(size=8, workers=1))
    return root / "store"


def test_an_empty_subset_fails_in_one_line_naming_the_split_params(tmp_path):
    """Three patients cannot fill train/val/test at 0.7/0.1/0.2: the stage stops in one line naming
    split.fractions and writes nothing (before: NaN prevalences, then tracebacks downstream)."""
    import subprocess
    import sys
    from pathlib import Path

    from conftest import validate_params

    store = tiny_store(tmp_path, patients=3)
    root = Path(__file__).parents[1]
    (tmp_path / "params.yaml").write_text("split:\n  fractions: [0.7, 0.1, 0.2]\n")
    validate_params(tmp_path)
    cmd = [sys.executable, str(root / "stages" / "split.py"), "--store", str(store), "--out", "s.csv",
           "--metrics", "m.json", "--plot", "p.csv", "--figure", "f.png"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: split: the val subset of 6 images from 3 patients would be empty")
    assert "would be empty" in result.stderr and "split.fractions" in result.stderr
    assert not any((tmp_path / name).exists() for name in ("s.csv", "m.json", "p.csv", "f.png"))


def test_enough_patients_fill_every_subset(tmp_path):
    store = tiny_store(tmp_path, patients=30)
    from cxrsynth.data.store import ImageStore

    split, metrics, _ = make_split(ImageStore(store).table, SplitParams(), store)
    assert all(metrics[name]["images"] > 0 for name in ("train", "val", "test"))
    assert set(split["fid_half"]) == {"half_a", "half_b"}


def test_an_empty_fid_half_is_refused_in_one_line():
    import pandas as pd

    from cxrsynth.data.split_assignment import check_nonempty
    from cxrsynth.errors import InputError

    table = pd.DataFrame({"patient_id": [1, 2, 3]})
    check_nonempty(table, pd.Series([0, 1, 2]), pd.Series([0, 1, 1]), SplitParams())
    with pytest.raises(InputError, match=r"^split: 3 images from 3 patient\(s\) cannot fill both FID halves"):
        check_nonempty(table, pd.Series([0, 1, 2]), pd.Series([1, 1, 1]), SplitParams())
