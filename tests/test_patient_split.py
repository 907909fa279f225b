"""The patient split as one object: its checks, its two joins with the store's table, whole-patient choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrsynth.data.patient_split import PatientSplit, choose_patients
from cxrsynth.errors import InputError


def store_table(n: int = 24, seed: int = 0) -> pd.DataFrame:
    """A store table as ``ImageStore.table`` holds it: not in row order, some rows rejected (gaps)."""
    rng = np.random.default_rng(seed)
    rows = rng.permutation(np.arange(n) * 2)  # gaps, shuffled: store order is not row order
    patients = np.arange(n) // 3 + 100
    return pd.DataFrame({"image": [f"{p:08d}_{i % 3:03d}.png" for i, p in enumerate(patients)],
                         "patient_id": patients, "row": rows, "Mass": rng.integers(0, 2, n).astype(np.uint8)})


def split_frame(table: pd.DataFrame) -> pd.DataFrame:
    """split.csv for ``table``'s patients (reversed, so file order is not store order)."""
    names = np.array(["train", "train", "val", "test"])[table["patient_id"].to_numpy() % 4]
    halves = np.array(["half_a", "half_b"])[table["patient_id"].to_numpy() % 2]
    frame = pd.DataFrame({"image": table["image"], "patient_id": table["patient_id"], "split": names,
                          "fid_half": halves})
    return frame.iloc[::-1].reset_index(drop=True)


def test_read_checks_the_file(tmp_path):
    table = store_table()
    frame = split_frame(table)
    frame.to_csv(tmp_path / "split.csv", index=False)
    split = PatientSplit.read(tmp_path / "split.csv")
    assert split.frame.equals(pd.read_csv(tmp_path / "split.csv")) and split.source == str(tmp_path / "split.csv")
    with pytest.raises(InputError, match="listed twice"):
        PatientSplit(pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(InputError, match="unknown split name.*holdout"):
        PatientSplit(frame.assign(split=frame["split"].where(frame.index > 0, "holdout")))
    with pytest.raises(InputError, match="split.csv: no split column"):
        PatientSplit(frame.drop(columns="split"), "split.csv")
    with pytest.raises(InputError, match="no fid_half column"):
        PatientSplit(frame.drop(columns="fid_half")).store_rows(table, fid_half=True)


def test_store_rows_are_the_inner_join_in_store_order():
    table = store_table()
    frame = split_frame(table).iloc[2:]  # two stored images the split does not list
    split = PatientSplit(frame)
    joined = split.store_rows(table)
    old = table.merge(frame[["image", "split"]], on="image", how="inner", validate="1:1")  # the joins it replaced
    pd.testing.assert_frame_equal(joined, old)
    assert joined["image"].tolist() == [i for i in table["image"] if i in set(frame["image"])]
    assert list(joined.columns) == [*table.columns, "split"]
    with_halves = split.store_rows(table, fid_half=True)
    assert list(with_halves.columns) == [*table.columns, "split", "fid_half"]
    pd.testing.assert_frame_equal(with_halves, table.merge(frame[["image", "split", "fid_half"]], on="image"))


def test_store_rows_of_some_subsets():
    table = store_table()
    frame = split_frame(table)
    split = PatientSplit(frame)
    all_rows = table.merge(frame[["image", "split"]], on="image", validate="1:1")
    pd.testing.assert_frame_equal(split.store_rows(table, ("train", "val")), all_rows[all_rows["split"] != "test"])
    test = split.store_rows(table, ("test",))
    assert test["image"].tolist() == table.loc[table["image"].isin(set(frame.loc[frame["split"] == "test", "image"])),
                                               "image"].tolist()
    assert set(test["split"]) == {"test"} and len(test) == (frame["split"] == "test").sum()
    with pytest.raises(ValueError, match="unknown split 'tests'"):
        split.store_rows(table, ("tests",))


def test_every_store_row_is_sorted_by_row_and_refuses_images_without_a_split():
    table = store_table()
    frame = split_frame(table)
    rows = PatientSplit(frame).every_store_row(table)
    assert rows["row"].tolist() == sorted(table["row"]) and rows.index.tolist() == list(range(len(table)))
    assert (rows.set_index("image")["split"] == frame.set_index("image")["split"].reindex(rows["image"])).all()
    with pytest.raises(InputError, match=r"^split.csv: 3 stored images have no split$"):
        PatientSplit(frame.iloc[3:], "split.csv").every_store_row(table)


def test_patients_of_a_subset():
    frame = split_frame(store_table())
    split = PatientSplit(frame)
    by_name = {name: split.patients(name) for name in ("train", "val", "test")}
    assert by_name["test"].tolist() == [103, 107]
    assert sorted(np.concatenate(list(by_name.values())).tolist()) == sorted(frame["patient_id"].unique().tolist())
    with pytest.raises(InputError, match="no patient_id"):
        PatientSplit(frame.drop(columns="patient_id")).patients("test")


def test_choose_patients_takes_whole_patients_until_enough_images():
    table = store_table(30)
    assert choose_patients(table, None, 0) is table and choose_patients(table, 30, 0) is table
    for n in (1, 4, 7, 12):
        chosen = choose_patients(table, n, seed=3)
        sizes = table.groupby("patient_id").size()
        assert n <= len(chosen) < n + sizes.max()  # stops at the first patient that reaches n
        assert chosen["patient_id"].map(sizes).eq(chosen.groupby("patient_id")["image"].transform("size")).all()
        assert chosen.index.is_monotonic_increasing  # table order kept
    assert choose_patients(table, 12, 3).equals(choose_patients(table, 12, 3))
    assert not choose_patients(table, 12, 3).equals(choose_patients(table, 12, 4))
