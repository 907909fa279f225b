"""Reading mednet's CheXNeXt relabelled NIH lists and applying them to the clean NIH table."""

from __future__ import annotations

import bz2
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import params_text, validate_params, write_raw

from cxrsynth.data.chexnext import (
    ABBREVIATIONS,
    ChexnextError,
    apply_chexnext,
    read_chexnext,
)
from cxrsynth.data.metadata import read_data_entry
from cxrsynth.errors import ParamsError
from cxrsynth.labels import FINDINGS, LABELS

HEADER = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
NIH_ROWS = [  # uncovered rows first and in the middle, so dropping them shows in order and index
    ("00000006_000.png", "No Finding"),
    ("00000001_000.png", "Cardiomegaly"),
    ("00000002_000.png", "Effusion"),
    ("00000005_000.png", "Nodule"),
    ("00000003_000.png", "Infiltration|Effusion"),
    ("00000004_000.png", "Pneumothorax"),
]
MEDNET = {
    "train": [
        ["images/00000001_000.png", ["car", "her"], 58, "M"],
        ["images/00000002_000.png", [], 81, "F"],
        ["00000003_000.png", ["inf", "eff"], 70, "F"],
    ],
    "validation": [
        ["images/00000004_000.png", ["pnt", "plt"], 60, "M"],
        ["images/00000099_000.png", ["mas"], 50, "M"],
        ["images/00000001_000.png", ["her", "car"], 58, "M"],  # same image, same labels: kept once
    ],
    "test": [["images/00000005_000.png", ["nod", "fib"], 40, "F"]],
}


@pytest.fixture
def mednet_file(tmp_path):
    path = tmp_path / "default.json"
    path.write_text(json.dumps(MEDNET, indent=2))
    return path


@pytest.fixture
def nih_table(tmp_path):
    lines = [HEADER] + [
        f"{img},{labels},0,{int(img[:8])},50,M,PA,1024,1024,0.143,0.143" for img, labels in NIH_ROWS
    ]
    (tmp_path / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    table, _ = read_data_entry(tmp_path / "Data_Entry_2017_v2020.csv")
    return table


def test_abbreviations_cover_the_14_findings():
    assert len(ABBREVIATIONS) == 14
    assert sorted(ABBREVIATIONS.values()) == sorted(FINDINGS)
    assert ABBREVIATIONS["plt"] == "Pleural_Thickening" and ABBREVIATIONS["pnt"] == "Pneumothorax"


def test_reader_maps_abbreviations_and_bare_names(mednet_file):
    got = read_chexnext(mednet_file)
    assert list(got.columns) == ["image", "labels", "list"]
    assert [tuple(r) for r in got.itertuples(index=False)] == [
        ("00000001_000.png", "Cardiomegaly|Hernia", "train"),
        ("00000002_000.png", "No Finding", "train"),
        ("00000003_000.png", "Effusion|Infiltration", "train"),
        ("00000004_000.png", "Pleural_Thickening|Pneumothorax", "validation"),
        ("00000099_000.png", "Mass", "validation"),
    ]


def test_only_train_and_validation_by_default(mednet_file):
    assert "00000005_000.png" not in set(read_chexnext(mednet_file)["image"])
    test = read_chexnext(mednet_file, lists="test")
    assert test.values.tolist() == [["00000005_000.png", "Fibrosis|Nodule", "test"]]
    everything = read_chexnext(mednet_file, lists=("train", "validation", "test"))
    assert len(everything) == 6 and everything["list"].tolist()[-1] == "test"


def test_no_list_named_is_a_params_error(mednet_file):
    with pytest.raises(ParamsError):
        read_chexnext(mednet_file, lists=())


def test_bz2_file_is_read(tmp_path):
    path = tmp_path / "default.json.bz2"
    path.write_bytes(bz2.compress(json.dumps(MEDNET).encode()))
    assert read_chexnext(path)["image"].tolist()[:2] == ["00000001_000.png", "00000002_000.png"]


def test_apply_restricts_rows_and_replaces_labels(mednet_file, nih_table):
    nih_table["extra"] = range(len(nih_table))  # a column after the label columns keeps its place
    out, report = apply_chexnext(nih_table, read_chexnext(mednet_file))
    assert list(out.columns) == list(nih_table.columns)
    assert out.index.tolist() == [0, 1, 2, 3]
    assert out["image"].tolist() == ["00000001_000.png", "00000002_000.png", "00000003_000.png", "00000004_000.png"]
    assert out["extra"].tolist() == [1, 2, 4, 5]
    assert out["labels"].tolist() == [
        "Cardiomegaly|Hernia",
        "No Finding",
        "Effusion|Infiltration",
        "Pleural_Thickening|Pneumothorax",
    ]
    assert out["patient_id"].tolist() == [1, 2, 3, 4]  # other columns travel with their rows
    for name in LABELS:
        assert out[name].dtype == np.uint8
    assert out.loc[0, list(LABELS)].to_dict() == {n: int(n in ("Cardiomegaly", "Hernia")) for n in LABELS}
    assert out.loc[1, list(LABELS)].to_dict() == {n: int(n == "No Finding") for n in LABELS}
    assert out.loc[3, ["Pneumothorax", "Pleural_Thickening", "Pneumonia"]].tolist() == [1, 1, 0]
    assert out[list(LABELS)].to_numpy().sum() == 7
    assert report == {
        "labels": "chexnext",
        "covered": 4,
        "not_covered": 2,
        "listed_not_in_table": 1,
        "changed": 3,
    }


def test_apply_leaves_the_input_table_alone(mednet_file, nih_table):
    before = nih_table.copy()
    apply_chexnext(nih_table, read_chexnext(mednet_file))
    assert nih_table.equals(before)


def test_apply_with_nothing_covered_names_the_source(tmp_path, nih_table):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"train": [["images/00000077_000.png", ["car"], 1, "M"]], "validation": []}))
    with pytest.raises(ChexnextError, match="none of the 1 relabelled images") as info:
        apply_chexnext(nih_table, read_chexnext(path), source=path)
    assert str(info.value).startswith(f"{path}: ")


GOOD = ["images/00000001_000.png", ["car"], 58, "M"]
MALFORMED = {
    "not found": (None, "not found"),
    "bad json": ('{"train": [', "not valid JSON"),
    "top-level list": ("[]", "expected a JSON object"),
    "no known list": ('{"folds": []}', "expected a JSON object"),
    "missing validation": (json.dumps({"train": [GOOD]}), "no list 'validation'"),
    "list not a list": (json.dumps({"train": {}, "validation": []}), "train is a JSON dict"),
    "entry is a string": (json.dumps({"train": [GOOD, "images/00000002_000.png"], "validation": []}), "train[1]: expected"),
    "entry too short": (json.dumps({"train": [["images/00000002_000.png"]], "validation": []}), "train[0]: expected"),
    "findings not a list": (json.dumps({"train": [["images/00000002_000.png", "car", 1, "M"]], "validation": []}), "train[0]: expected"),
    "finding not a string": (json.dumps({"train": [["images/00000002_000.png", [3], 1, "M"]], "validation": []}), "train[0]: expected"),
    "unknown abbreviation": (json.dumps({"train": [GOOD], "validation": [GOOD, ["images/00000002_000.png", ["car", "xyz"], 1, "F"]]}), "validation[1]: unknown finding abbreviation(s) 'xyz'"),
    "full name not abbreviation": (json.dumps({"train": [["images/00000002_000.png", ["Cardiomegaly"], 1, "F"]], "validation": []}), "train[0]: unknown finding"),
    "bad image name": (json.dumps({"train": [["images/1_000.png", [], 1, "F"]], "validation": []}), "train[0]: image name 'images/1_000.png' is not NNNNNNNN_NNN.png"),
    "jpg image": (json.dumps({"train": [["images/00000002_000.jpg", [], 1, "F"]], "validation": []}), "train[0]: image name"),
    "conflicting duplicate": (json.dumps({"train": [GOOD], "validation": [["00000001_000.png", ["eff"], 58, "M"]]}), "validation[0]: image 00000001_000.png is listed twice with different labels (train[0]: Cardiomegaly"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_file_gives_one_line_error_naming_file_and_entry(tmp_path, case):
    text, fragment = MALFORMED[case]
    path = tmp_path / "default.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ChexnextError) as info:
        read_chexnext(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert fragment in message
    assert "\n" not in message


def test_corrupt_bz2_is_a_chexnext_error(tmp_path):
    path = tmp_path / "default.json.bz2"
    path.write_text(json.dumps(MEDNET))  # not compressed
    with pytest.raises(ChexnextError, match="cannot be read"):
        read_chexnext(path)


def _run(tmp_path, name: str, *args: str):
    root = Path(__file__).parents[1]
    return subprocess.run([sys.executable, str(root / "stages" / f"{name}.py"), *args], check=False, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


def test_labels_chexnext_runs_download_and_prepare_on_the_relabelled_subset(tmp_path, mednet_file):
    """``data.labels: chexnext`` through the real stage scripts: the store holds only the images
    CheXNeXt relabelled (train + validation), under its labels; prepare's metrics say so."""
    write_raw(tmp_path / "nih", NIH_ROWS)
    (tmp_path / "params.yaml").write_text(
        f"data:\n  source: local\n  labels: chexnext\n  chexnext_file: {mednet_file}\n"
        f"  local:\n    images_dir: {tmp_path / 'nih' / 'images'}\n"
        f"    metadata_csv: {tmp_path / 'nih' / 'Data_Entry_2017_v2020.csv'}\n"
        "prepare:\n  size: 16\n  workers: 1\n")
    validate_params(tmp_path)
    done = _run(tmp_path, "download", "--out", "raw", "--downloads", "dl")
    assert done.returncode == 0, done.stderr[-2000:]
    done = _run(tmp_path, "prepare", "--raw", "raw", "--out", "store", "--metrics", "m.json", "--samples", "s.png")
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(tmp_path / "store" / "table.csv")
    assert sorted(table["image"]) == ["00000001_000.png", "00000002_000.png", "00000003_000.png", "00000004_000.png"]
    labels = dict(zip(table["image"], table["labels"], strict=True))
    assert labels["00000001_000.png"] == "Cardiomegaly|Hernia" and labels["00000002_000.png"] == "No Finding"
    assert table.loc[table["image"] == "00000004_000.png", "Pleural_Thickening"].item() == 1
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["labels"] == {"labels": "chexnext", "covered": 4, "not_covered": 2, "listed_not_in_table": 1,
                                 "changed": 3}
    assert metrics["label_counts"]["Nodule"] == 0  # 00000005 is in mednet's test list: not relabelled, not used


def test_labels_chexnext_without_a_file_fails_in_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text(params_text("data.labels=chexnext"))
    done = _run(tmp_path, "params", "--out", "data/params")  # where dvc repro checks every section
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "error: params.yaml: data: chexnext_file is required when labels is 'chexnext'"]
    assert not (tmp_path / "raw").exists()
