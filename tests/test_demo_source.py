"""The embedded demo: real NIH rows, whole patients, enough positives, NIH layout."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
from PIL import Image

from cxrsynth.config.data import DemoParams
from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.metadata import read_bbox_list, read_data_entry, read_image_list
from cxrsynth.data.store_writer import prepare_dataset
from cxrsynth.data.sources.demo import bundled_sample_text, select_rows, write_demo
from cxrsynth.data.sources.manifest import read_manifest, stream_films
from cxrsynth.labels import FINDINGS
from cxrsynth.metadata_source import torchxrayvision_table


def test_bundled_rows_are_verbatim_real_rows():
    real = set(gzip.decompress(torchxrayvision_table().read_bytes()).decode().splitlines())
    header, *lines = bundled_sample_text().splitlines()
    assert header in real
    assert all(line in real for line in lines)


def test_bundle_holds_whole_patients(real_table):
    table, _ = real_table
    _, lines = select_rows(6219)
    sample = pd.Series([line.split(",")[3] for line in lines]).astype(int)
    sizes_real = table.groupby("patient_id").size()
    sizes_sample = sample.value_counts()
    assert (sizes_real.loc[sizes_sample.index] == sizes_sample).all()


def test_default_selection_has_positives_for_every_finding():
    _, lines = select_rows(DemoParams().n_images)
    labels = "\n".join(line.split(",")[1] for line in lines)
    for finding in FINDINGS:
        assert labels.count(finding) >= 150, finding
    patients = [line.split(",")[3] for line in lines]
    assert patients[-1] != select_rows(DemoParams().n_images + 40)[1][len(lines)].split(",")[3]  # ends on a whole patient


def test_write_demo_small(tmp_path):
    raw = tmp_path / "raw"
    summary = write_demo(raw, DemoParams(n_images=60, size=32, rgba_fraction=0.5, bbox_fraction=1.0, workers=1,
                                         archive_images=25))
    table, report = read_data_entry(raw / "Data_Entry_2017_v2020.csv")
    assert summary["images"] == len(table) >= 60 and report.rejects == []
    assert summary["archives"] == 3 and sorted(p.name for p in raw.glob("*.tar.gz")) == [
        "images_001.tar.gz", "images_002.tar.gz", "images_003.tar.gz"]
    assert not (raw / "images").exists()
    assert {Image.open(io.BytesIO(png)).mode for png in _films(raw).values()} == {"L", "RGBA"}
    boxes = read_bbox_list(raw / "BBox_List_2017.csv")
    assert set(boxes["label"]) <= {"Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax"}
    assert "Infiltrate" in (raw / "BBox_List_2017.csv").read_text() or "Infiltration" not in set(boxes["label"])
    test, train = read_image_list(raw / "test_list.txt"), read_image_list(raw / "train_val_list.txt")
    assert not {n[:8] for n in test} & {n[:8] for n in train} and len(test) + len(train) == len(table)
    (tmp_path / "store").mkdir()
    metrics = prepare_dataset(raw, tmp_path / "store", PrepareParams(size=32, workers=1))
    assert metrics["converted_to_grey"] == summary["rgba"] and metrics["rejected"] == 0


def _films(raw) -> dict[str, bytes]:
    films = {}
    for source in read_manifest(raw):
        films.update(stream_films(source, raw, set(source.images)))
    return films


def test_demo_is_deterministic(tmp_path):
    """Two renders give the same bytes, archives included (no times or owners in tar or gzip)."""
    params = DemoParams(n_images=10, size=32, workers=1, archive_images=4)
    summary = write_demo(tmp_path / "a", params)
    write_demo(tmp_path / "b", params)
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
    assert len(list((tmp_path / "a").glob("*.tar.gz"))) == -(-summary["images"] // 4) == 4  # 13 films
    assert np.asarray(Image.open(io.BytesIO(next(iter(_films(tmp_path / "a").values()))))).std() > 20  # not blank
