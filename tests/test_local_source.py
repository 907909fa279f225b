"""The local source: an NIH copy on disk, checked, linked into data/raw."""

from __future__ import annotations

import pytest
from conftest import write_raw

from cxrsynth.config.data import LocalParams
from cxrsynth.data.metadata import MetadataError
from cxrsynth.data.sources.local import import_local


def test_local_copy_linked(tmp_path):
    src = write_raw(tmp_path / "nih", [("00000001_000.png", "Mass"), ("00000002_000.png", "No Finding")])
    params = LocalParams(images_dir=str(src / "images"), metadata_csv=str(src / "Data_Entry_2017_v2020.csv"))
    summary = import_local(params, tmp_path / "raw")
    assert summary["images"] == 2 and summary["placed"] == {"hardlink": 2}
    assert (tmp_path / "raw" / "images" / "00000001_000.png").stat().st_ino == (src / "images" / "00000001_000.png").stat().st_ino
    assert (tmp_path / "raw" / "Data_Entry_2017_v2020.csv").exists()


def test_local_errors_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.local.images_dir"):
        import_local(LocalParams(images_dir=str(tmp_path / "nope"), metadata_csv=str(tmp_path / "x.csv")), tmp_path / "raw")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(MetadataError, match="data.local.metadata_csv"):
        import_local(LocalParams(images_dir=str(tmp_path / "imgs"), metadata_csv=str(tmp_path / "x.csv")), tmp_path / "raw")
