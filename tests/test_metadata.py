"""Reading the three known variants of the NIH metadata, and the box list."""

from __future__ import annotations

import math

import pytest

from cxrsynth.data.metadata import (
    MetadataError,
    parse_age,
    read_bbox_list,
    read_data_entry,
    read_image_list,
)
from cxrsynth.labels import LABELS, UnknownLabelError, parse_label_string

HEADER = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
V2020 = f"""{HEADER}
00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.14300000000000002,0.14300000000000002
00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143
00000002_000.png,No Finding,0,2,81,F,AP,2500,2048,0.171,0.171
"""
ORIGINAL_2017 = (
    f"{HEADER},\r\n"
    "00000001_000.png,Cardiomegaly,0,1,058Y,M,PA,2682,2749,0.143,0.143,\r\n"
    "00000002_000.png,Effusion|Infiltration,0,2,011M,F,AP,2500,2048,0.171,0.171,\r\n"
    "00000003_000.png,Hernia,0,3,001D,F,PA,2500,2048,0.171,0.171,\r\n"
)
RESHARED = f"""{HEADER}
00000001_000.png,Pneumothorax,0,1,148,M,PA,2682,2749,0.143,0.143
00000002_000.png,Pleural_Thickening,0,2,413,F,AP,2500,2048,0.171,0.171
00000003_000.png,Nodule|Mass,0,3,45,F,PA,2500,2048,0.171,0.171
"""


def test_v2020(tmp_path):
    (tmp_path / "m.csv").write_text(V2020)
    table, report = read_data_entry(tmp_path / "m.csv")
    assert list(table["image"]) == ["00000001_000.png", "00000001_001.png", "00000002_000.png"]
    assert table.loc[1, "labels"] == "Cardiomegaly|Emphysema"
    assert table.loc[1, ["Cardiomegaly", "Emphysema", "No Finding"]].tolist() == [1, 1, 0]
    assert table.loc[0, "spacing_x"] == pytest.approx(0.143)
    assert table.loc[2, ["sex", "view", "orig_width", "orig_height"]].tolist() == ["F", "AP", 2500, 2048]
    assert all(name in table.columns for name in LABELS)
    assert report.ages_missing == 0


def test_2017_original_trailing_comma_crlf_and_unit_ages(tmp_path):
    (tmp_path / "m.csv").write_bytes(ORIGINAL_2017.encode())
    table, report = read_data_entry(tmp_path / "m.csv")
    assert table["age"].tolist() == pytest.approx([58.0, 11 / 12, 1 / 365.25])
    assert (report.ages_in_months, report.ages_in_days) == (1, 1)
    assert table.loc[1, "labels"] == "Effusion|Infiltration"


def test_reshared_copy_impossible_ages_become_missing(tmp_path):
    (tmp_path / "m.csv").write_text(RESHARED)
    table, report = read_data_entry(tmp_path / "m.csv")
    assert math.isnan(table.loc[0, "age"]) and math.isnan(table.loc[1, "age"])
    assert table.loc[2, "age"] == 45 and report.ages_missing == 2
    assert table.loc[2, "labels"] == "Mass|Nodule"  # canonical order


def test_unknown_label_is_an_error_naming_it(tmp_path):
    (tmp_path / "m.csv").write_text(V2020.replace("Emphysema", "Emphysem"))
    with pytest.raises(MetadataError, match="Emphysem"):
        read_data_entry(tmp_path / "m.csv")


def test_malformed_rows_are_rejected_not_fatal(tmp_path):
    text = V2020 + "00000003_000.png,Mass,0,3,40,M\nnot_an_image.png,Mass,0,4,40,M,PA,1,1,0.1,0.1\n"
    (tmp_path / "m.csv").write_text(text)
    table, report = read_data_entry(tmp_path / "m.csv")
    assert len(table) == 3
    reasons = [r[2] for r in report.rejects]
    assert any("fields" in r for r in reasons) and any("NNNNNNNN" in r for r in reasons)


def test_wrong_header_names_the_file(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(MetadataError, match="bad.csv"):
        read_data_entry(tmp_path / "bad.csv")


def test_parse_age():
    assert parse_age("058Y") == (58.0, "Y")
    assert parse_age("72") == (72.0, "Y")
    assert math.isnan(parse_age("414")[0]) and math.isnan(parse_age("")[0])


def test_label_aliases():
    assert parse_label_string("Infiltrate|Pleural Effusion|pleural thickening") == [
        "Effusion", "Infiltration", "Pleural_Thickening"]
    with pytest.raises(UnknownLabelError, match="Covid"):
        parse_label_string("Covid|Mass")


def test_bbox_list_cleaned(tmp_path):
    (tmp_path / "b.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00013118_008.png,Atelectasis,225.08,547.02,86.76,79.18,,,\n"
        "00014716_007.png,Infiltrate,686.08,272.21,191.15,280.52,,,\n"
    )
    boxes = read_bbox_list(tmp_path / "b.csv")
    assert boxes["label"].tolist() == ["Atelectasis", "Infiltration"]
    assert boxes.loc[1, "h"] == pytest.approx(280.52)


def test_image_list_without_final_newline(tmp_path):
    (tmp_path / "t.txt").write_text("a.png\nb.png")
    assert read_image_list(tmp_path / "t.txt") == ["a.png", "b.png"]


def test_real_v2020_table(real_table):
    table, report = real_table
    assert len(table) == 112_120 and table["patient_id"].nunique() == 30_805
    counts = {name: int(table[name].sum()) for name in LABELS}
    assert counts["No Finding"] == 60_361 and counts["Hernia"] == 227 and counts["Infiltration"] == 19_894
    assert table["view"].value_counts().to_dict() == {"PA": 67_310, "AP": 44_810}
    assert (table["image"].str[:8].astype(int) == table["patient_id"]).all()
    assert report.rejects == []


def test_real_bbox_list():
    from cxrsynth.metadata_source import torchxrayvision_table

    boxes = read_bbox_list(torchxrayvision_table("BBox_List_2017.csv.gz"))
    assert len(boxes) == 984 and boxes["image"].nunique() == 880
    assert "Infiltration" in set(boxes["label"]) and boxes["label"].nunique() == 8
