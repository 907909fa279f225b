"""The local source: an NIH copy on disk, checked, recorded in data/raw's manifest, read where it lies."""

from __future__ import annotations

import os
import tarfile

import numpy as np
import pytest
from conftest import write_raw
from PIL import Image

from cxrsynth.config.data import LocalParams
from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.metadata import MetadataError
from cxrsynth.data.prepare import prepare_dataset
from cxrsynth.data.sources.local import import_local
from cxrsynth.data.sources.manifest import SourceChangedError, read_manifest

ROWS = [("00000001_000.png", "Mass"), ("00000002_000.png", "No Finding"), ("00000003_000.png", "Effusion")]


def test_local_copy_is_read_where_it_lies(tmp_path):
    src = write_raw(tmp_path / "nih", ROWS)
    params = LocalParams(images_dir=str(src / "images"), metadata_csv=str(src / "Data_Entry_2017_v2020.csv"))
    summary = import_local(params, tmp_path / "raw")
    assert summary["images"] == 3 and summary["sources"] == {"images": 3}
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["Data_Entry_2017_v2020.csv", "images.json"]
    (source,) = read_manifest(tmp_path / "raw")
    assert source.kind == "folder" and source.resolve(tmp_path / "raw") == (src / "images").resolve()
    store = tmp_path / "store"
    store.mkdir()
    metrics = prepare_dataset(tmp_path / "raw", store, PrepareParams(size=32, workers=1))
    assert metrics["images"] == 3 and metrics["rejected"] == 0
    np.testing.assert_array_equal(np.load(store / "images_32.npy")[2], np.asarray(Image.open(src / "images" / ROWS[2][0])))


def test_a_local_copy_changed_after_download_is_refused_in_one_line(tmp_path):
    src = write_raw(tmp_path / "nih", ROWS)
    params = LocalParams(images_dir=str(src / "images"), metadata_csv=str(src / "Data_Entry_2017_v2020.csv"))
    import_local(params, tmp_path / "raw")
    Image.fromarray(np.zeros((32, 32), np.uint8), "L").save(src / "images" / ROWS[1][0])
    os.utime(src / "images" / ROWS[1][0], ns=(1, 1))
    (tmp_path / "store").mkdir()
    with pytest.raises(SourceChangedError, match=r"images: files changed .*`dvc repro --force download`"):
        prepare_dataset(tmp_path / "raw", tmp_path / "store", PrepareParams(size=32, workers=1))
    (src / "images" / ROWS[0][0]).unlink()
    with pytest.raises(SourceChangedError, match="1 recorded films are gone, e.g. 00000001_000.png"):
        prepare_dataset(tmp_path / "raw", tmp_path / "store", PrepareParams(size=32, workers=1))


def test_local_archives_stream_the_same_pixels_as_the_folder(tmp_path):
    """NIH's own packaging (images_NNN.tar.gz) is streamed, never extracted, and gives the store
    the folder gives; an archive edited after download is refused."""
    src = write_raw(tmp_path / "nih", ROWS)
    shards = tmp_path / "shards"
    shards.mkdir()
    for number, names in ((1, [r[0] for r in ROWS[:2]]), (2, [ROWS[2][0]])):
        with tarfile.open(shards / f"images_00{number}.tar.gz", "w:gz") as tar:
            for name in names:
                tar.add(src / "images" / name, f"images/{name}")
    csv = str(src / "Data_Entry_2017_v2020.csv")
    stores = {}
    for kind, folder in (("folder", src / "images"), ("archives", shards)):
        import_local(LocalParams(images_dir=str(folder), metadata_csv=csv), tmp_path / f"raw_{kind}")
        stores[kind] = tmp_path / f"store_{kind}"
        stores[kind].mkdir()
        prepare_dataset(tmp_path / f"raw_{kind}", stores[kind], PrepareParams(size=32, workers=1))
    assert not list(shards.glob("**/*.png"))
    for res in (4, 8, 16, 32):
        np.testing.assert_array_equal(np.load(stores["archives"] / f"images_{res}.npy"),
                                      np.load(stores["folder"] / f"images_{res}.npy"))
    with tarfile.open(shards / "images_002.tar.gz", "w:gz") as tar:
        tar.add(src / "images" / ROWS[0][0], f"images/{ROWS[2][0]}")  # same name, other film
    (tmp_path / "again").mkdir()
    with pytest.raises(SourceChangedError, match="images_002.tar.gz: .*since they were recorded|images_002.tar.gz: .* bytes"):
        prepare_dataset(tmp_path / "raw_archives", tmp_path / "again", PrepareParams(size=32, workers=1))


def test_local_errors_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.local.images_dir"):
        import_local(LocalParams(images_dir=str(tmp_path / "nope"), metadata_csv=str(tmp_path / "x.csv")), tmp_path / "raw")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(MetadataError, match="data.local.metadata_csv"):
        import_local(LocalParams(images_dir=str(tmp_path / "imgs"), metadata_csv=str(tmp_path / "x.csv")), tmp_path / "raw")
