"""The archive's shards read in place (``ArchiveDataset``), by torchxrayvision once extracted, and by WebDataset.

One small real archive (phantom films drawn with their labels' findings, written by the archive
stage's own ``archive_table`` + ``write_archive`` into three shards) serves every test. Its
``View Position`` holds PA and AP, as a per-film view prediction would.
"""

from __future__ import annotations

import json
import pickle
import shutil
import tarfile

import numpy as np
import pytest
import torch

from cxrsynth.data.archive_dataset import ArchiveDataset
from cxrsynth.data.phantom import render_phantom
from cxrsynth.data.shards import ARCHIVE_CSV
from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.labels import FINDINGS, LABELS
from cxrsynth.synthesis.archive_writer import archive_table, read_archive, write_archive

SIZE = 32
COUNTS = np.array([3, 4, 3, 2])  # four synthetic patients, 12 films


def make_archive(folder):
    """Write the test archive; return its table, uint8 images (N, 32, 32) and 0/1 labels (N, 15)."""
    rng = np.random.default_rng(0)
    n = int(COUNTS.sum())
    findings = (rng.random((n, len(FINDINGS))) < 0.25).astype(np.uint8)
    labels = np.concatenate([(~findings.any(1))[:, None].astype(np.uint8), findings], axis=1)
    table = archive_table(np.array([4, 1, 0, 9]), COUNTS, labels, rng.random(n), SIZE, np.array([1, 2]))
    table["View Position"] = np.where(np.arange(n) % 3 == 0, "AP", "PA")
    images = np.stack([render_phantom(SIZE, {FINDINGS[j] for j in np.flatnonzero(row)}, seed=i).pixels
                       for i, row in enumerate(findings)])
    write_archive(folder, images, table, shard_images=5)
    return table, images, labels


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive") / "archive"
    table, images, labels = make_archive(folder)
    return folder, table, images, labels


def xrv_pixels(images):
    return (2 * (images.astype(np.float32) / 255) - 1.0) * 1024


def test_every_film_comes_back_with_its_pixels_labels_and_ids(archive):
    folder, table, images, labels = archive
    data = ArchiveDataset(folder)
    assert len(data) == len(table) and len(data.shards) == 3
    assert data.pathologies == list(FINDINGS)
    np.testing.assert_array_equal(data.labels, labels[:, 1:])
    for i in range(len(data)):
        sample = data[i]
        assert sample["img"].dtype == np.float32 and sample["img"].shape == (1, SIZE, SIZE)
        np.testing.assert_array_equal(sample["img"][0], xrv_pixels(images[i]))
        np.testing.assert_array_equal(sample["lab"], labels[i, 1:])
        assert sample["idx"] == i and sample["image_index"] == table["Image Index"][i]
        assert sample["patientid"] == str(table["Patient ID"][i]) and sample["view"] == table["View Position"][i]
    ours = ArchiveDataset(folder, pathologies="cxrsynth", scale="unit", transform=lambda img: img[:, ::2, ::2])
    assert ours.pathologies == list(LABELS)
    np.testing.assert_array_equal(ours[5]["lab"], labels[5])
    np.testing.assert_array_equal(ours[5]["img"][0], images[5, ::2, ::2].astype(np.float32) / 255)
    chosen = ArchiveDataset(folder, pathologies=["Mass", "No Finding"], scale="symmetric")
    np.testing.assert_array_equal(chosen.labels, labels[:, [LABELS.index("Mass"), 0]])
    assert chosen[0]["img"].min() >= -1 and chosen[0]["img"].max() <= 1
    with pytest.raises(IndexError):
        data[len(data)]


def test_a_dataloader_with_two_workers_reads_every_film_once(archive):
    folder, table, images, labels = archive
    data = ArchiveDataset(folder)
    data[0]  # the parent holds an open handle before the workers fork
    loader = torch.utils.data.DataLoader(data, batch_size=5, num_workers=2)
    batches = list(loader)
    np.testing.assert_array_equal(torch.cat([b["img"] for b in batches]).numpy()[:, 0], xrv_pixels(images))
    np.testing.assert_array_equal(torch.cat([b["lab"] for b in batches]).numpy(), labels[:, 1:])
    assert sum((b["image_index"] for b in batches), []) == table["Image Index"].tolist()
    copy = pickle.loads(pickle.dumps(data))  # what a spawned worker receives: no open handle
    assert copy._files == {} and copy[7]["image_index"] == data[7]["image_index"]


def test_shards_pair_each_png_with_its_json_record_and_rewrite_to_the_same_bytes(archive, tmp_path):
    folder, table, images, labels = archive
    with tarfile.open(folder / "images_001.tar") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        first = json.loads(tar.extractfile("images/90000000_000.json").read())
    stems = [n.removesuffix(".png") for n in table["Image Index"][:5]]
    assert names == [f"images/{s}.{ext}" for s in stems for ext in ("png", "json")]
    assert {m.mtime for m in members} == {0} and {m.mode for m in members} == {0o644}
    assert first == {"image_index": "90000000_000.png", "patient_id": 90_000_000, "follow_up": 0,
                     "finding_labels": table["Finding Labels"][0], "labels": labels[0].tolist(),
                     "pathologies": list(LABELS), "target_label": table["Target Label"][0],
                     "target_score": float(table["Target Score"][0]), "view_position": "AP"}
    write_archive(tmp_path / "again", images, table, shard_images=5)
    for path in sorted(folder.iterdir()):
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes(), path.name
    _, read = read_archive(folder)  # the project's own reader skips the JSON records
    np.testing.assert_array_equal(read, images)


def test_torchxrayvision_reads_every_extracted_film_with_our_labels(archive, tmp_path):
    """NIH_Dataset needs two arguments: views=["PA", "AP"] (or ["*"]), as its default ["PA"] drops the
    AP films, and unique_patients=False, as its default keeps one film per synthetic patient."""
    import torchxrayvision as xrv

    folder, table, images, labels = archive
    for shard in sorted(folder.glob("images_*.tar")):
        with tarfile.open(shard) as tar:
            tar.extractall(tmp_path, filter="data")
    csv = str(folder / ARCHIVE_CSV)
    theirs = xrv.datasets.NIH_Dataset(imgpath=str(tmp_path / "images"), csvpath=csv, views=["PA", "AP"],
                                      unique_patients=False)
    ours = ArchiveDataset(folder)
    assert theirs.pathologies == ours.pathologies and len(theirs) == len(ours) == len(table)
    np.testing.assert_array_equal(theirs.labels, ours.labels)
    for i in range(len(theirs)):
        np.testing.assert_array_equal(theirs[i]["img"], ours[i]["img"])
        np.testing.assert_array_equal(theirs[i]["lab"], ours[i]["lab"])
    everything = xrv.datasets.NIH_Dataset(imgpath=str(tmp_path / "images"), csvpath=csv, views=["*"],
                                          unique_patients=False)
    assert len(everything) == len(table)
    pa_only = xrv.datasets.NIH_Dataset(imgpath=str(tmp_path / "images"), csvpath=csv, unique_patients=False)
    assert len(pa_only) == int((table["View Position"] == "PA").sum()) < len(table)
    per_patient = xrv.datasets.NIH_Dataset(imgpath=str(tmp_path / "images"), csvpath=csv, views=["*"])
    assert len(per_patient) == len(COUNTS)


def test_webdataset_reads_the_shards_as_png_json_pairs(archive):
    import webdataset as wds

    folder, table, images, labels = archive
    urls = [str(p) for p in sorted(folder.glob("images_*.tar"))]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("l8"))
    assert [s["__key__"] for s in samples] == [f"images/{n.removesuffix('.png')}" for n in table["Image Index"]]
    np.testing.assert_array_equal(np.stack([s["png"] for s in samples]), images)
    np.testing.assert_array_equal(np.array([s["json"]["labels"] for s in samples]), labels)
    assert [s["json"]["view_position"] for s in samples] == table["View Position"].tolist()


def test_bad_folders_fail_in_one_line_naming_the_folder(archive, tmp_path):
    folder, table, _, _ = archive
    with pytest.raises(MissingInputError, match="archive folder not found"):
        ArchiveDataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingInputError, match=f"empty: no {ARCHIVE_CSV}"):
        ArchiveDataset(tmp_path / "empty")
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(folder / ARCHIVE_CSV, bare)
    with pytest.raises(MissingInputError, match=r"bare: no images_\*\.tar shards"):
        ArchiveDataset(bare)
    (bare / "images_001.tar.gz").write_bytes(b"")
    with pytest.raises(InputError, match="compressed"):
        ArchiveDataset(bare)
    (bare / "images_001.tar.gz").unlink()
    for shard in ("images_001.tar", "images_002.tar"):
        shutil.copy(folder / shard, bare)
    with tarfile.open(folder / "images_003.tar") as src, tarfile.open(bare / "images_003.tar", "w") as dst:
        for member in src:
            if member.name != "images/90000003_000.png":  # the last patient's first film goes missing
                dst.addfile(member, src.extractfile(member))
    with pytest.raises(MissingInputError, match=f"bare: 1 of {len(table)} images .* not in its shards"):
        ArchiveDataset(bare)
    with pytest.raises(InputError, match="unknown pathologies"):
        ArchiveDataset(folder, pathologies=["Lung Opacity"])
    with pytest.raises(InputError, match="scale="):
        ArchiveDataset(folder, scale="hu")
