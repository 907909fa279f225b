"""The local source: an NIH copy on disk, checked, recorded in data/raw's manifest, read where it lies."""

from __future__ import annotations

import os
import re
import shlex
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import write_raw
from PIL import Image

from cxrsynth.config.data import DataParams, LocalParams
from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.metadata import MetadataError
from cxrsynth.data.store_writer import prepare_dataset
from cxrsynth.data.sources.local import import_local
from cxrsynth.data.sources.manifest import SourceChangedError, read_manifest
from cxrsynth.data.store import ImageStore
from cxrsynth.labels import LABELS

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


def readme_example() -> tuple[list[str], str, dict]:
    """The README's "Use your own data" example: the tree's file names, the CSV and the ``-S`` overrides."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    section = text.split("## Use your own data", 1)[1].split("\n## ", 1)[0]
    tree, csv, command = re.findall(r"```[a-z]*\n(.*?)```", section, re.S)[:3]
    overrides = dict(arg.split("=", 1) for arg in shlex.split(command.replace("\\\n", " "))
                     if "=" in arg and arg.startswith("data."))
    return re.findall(r"\d{8}_\d{3}\.png", tree), csv, overrides


def test_the_readme_own_data_example_is_prepared(tmp_path):
    """The README's example folder, built as it shows it (the CSV verbatim, the params its command
    sets, with $PWD), runs the local source's download and prepare: every film kept with its row's
    labels, blank optional fields read as missing, odd PNG modes and a non-square film converted."""
    names, csv, overrides = readme_example()
    rows = [line.split(",") for line in csv.strip().splitlines()[1:]]
    assert names == [row[0] for row in rows] and len(names) == 3
    params = DataParams.model_validate(
        {"source": overrides.pop("data.source"),
         "local": {key.removeprefix("data.local."): value.replace("$PWD", str(tmp_path)) for key, value in overrides.items()}})
    assert params.source == "local"
    images = Path(params.local.images_dir)
    images.mkdir(parents=True)
    Path(params.local.metadata_csv).write_text(csv)
    rng = np.random.default_rng(0)
    films = [Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8), "L"),        # not square
             Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "RGB"),   # colour
             Image.fromarray(rng.integers(0, 65535, (32, 32), dtype=np.uint16))]          # 16-bit
    for name, film in zip(names, films):
        film.save(images / name)
    summary = import_local(params.local, tmp_path / "raw")
    assert summary["images"] == 3
    store = tmp_path / "store"
    store.mkdir()
    metrics = prepare_dataset(tmp_path / "raw", store, PrepareParams(size=32, workers=1))
    assert metrics["images"] == 3 and metrics["rejected"] == 0 and metrics["patients"] == 2
    table = ImageStore(store).table.set_index("image")
    for name, labels in ((row[0], set(row[1].split("|"))) for row in rows):
        assert {label for label in LABELS if table.loc[name, label]} == labels
    blank = table.loc[names[2]]
    assert np.isnan(blank["age"]) and blank[["sex", "view"]].isna().all()
    assert table.loc[names[0], "view"] == "PA" and table.loc[names[1], "age"] == 59
