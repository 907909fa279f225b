"""The prepare stage: greyscale store, rejects, the reject ceiling, nothing half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_raw
from PIL import Image

from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.prepare import prepare_dataset
from cxrsynth.data.store import ImageStore
from cxrsynth.errors import InputError

ROWS = [(f"{i // 2 + 1:08d}_{i % 2:03d}.png", ("No Finding", "Mass|Nodule", "Effusion")[i % 3]) for i in range(12)]
ROOT = Path(__file__).parents[1]


def test_store_holds_every_level_and_the_table(tmp_path):
    raw = write_raw(tmp_path / "raw", ROWS, size=40)
    Image.open(raw / "images" / ROWS[0][0]).convert("RGBA").save(raw / "images" / ROWS[0][0])
    out = tmp_path / "store"
    out.mkdir()
    metrics = prepare_dataset(raw, out, PrepareParams(size=16, workers=1, chunk=5))
    store = ImageStore(out)
    assert store.sizes == [4, 8, 16] and len(store.table) == 12
    assert metrics["converted_to_grey"] == 1 and metrics["source_modes"] == {"L": 11, "equal-channels": 1}
    assert metrics["label_counts"]["Mass"] == 4 and metrics["patients"] == 6
    original = np.asarray(Image.open(raw / "images" / ROWS[3][0]))
    expected = np.asarray(Image.fromarray(original).convert("F").resize((16, 16), Image.Resampling.BOX))
    row = int(store.table.loc[store.table.image == ROWS[3][0], "row"].iloc[0])
    assert np.abs(store.images(16)[row].astype(float) - expected).max() <= 0.5 + 1e-4


def test_corrupt_images_are_rejected_and_listed(tmp_path):
    raw = write_raw(tmp_path / "raw", ROWS)
    (raw / "images" / ROWS[1][0]).write_bytes(b"not a png at all")
    good = (raw / "images" / ROWS[2][0]).read_bytes()
    (raw / "images" / ROWS[2][0]).write_bytes(good[: len(good) // 2])  # truncated
    out = tmp_path / "store"
    out.mkdir()
    metrics = prepare_dataset(raw, out, PrepareParams(size=8, workers=2, chunk=3, max_reject_fraction=0.2))
    assert metrics["rejected"] == 2 and metrics["images"] == 10
    rejects = (out / "rejects.csv").read_text()
    assert ROWS[1][0] in rejects and ROWS[2][0] in rejects
    assert not ImageStore(out).table["image"].isin([ROWS[1][0], ROWS[2][0]]).any()


def test_missing_images_are_counted_not_rejected(tmp_path):
    raw = write_raw(tmp_path / "raw", ROWS)
    (raw / "images" / ROWS[5][0]).unlink()
    out = tmp_path / "store"
    out.mkdir()
    metrics = prepare_dataset(raw, out, PrepareParams(size=8, workers=1))
    assert metrics["not_downloaded"] == 1 and metrics["rejected"] == 0 and metrics["images"] == 11


def test_too_many_rejects_fails_and_leaves_no_output(tmp_path):
    raw = write_raw(tmp_path / "raw", ROWS)
    for name, _ in ROWS[:3]:
        (raw / "images" / name).write_bytes(b"garbage")
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    cmd = [sys.executable, str(ROOT / "stages" / "prepare.py"), "--raw", str(raw), "--out", str(tmp_path / "store"),
           "--metrics", str(tmp_path / "m.json"), "--samples", str(tmp_path / "s.png")]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: prepare: 3 of 12 images unreadable") and "max_reject_fraction" in last
    assert not (tmp_path / "store").exists() and not (tmp_path / "m.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_prepare_is_deterministic(tmp_path):
    raw = write_raw(tmp_path / "raw", ROWS)
    arrays = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        prepare_dataset(raw, tmp_path / name, PrepareParams(size=8, workers=2, chunk=2))
        arrays.append(np.load(tmp_path / name / "images_8.npy"))
        assert (tmp_path / name / "table.csv").read_text() == (tmp_path / "a" / "table.csv").read_text()
    assert np.array_equal(*arrays)


def test_store_json(tmp_path):
    raw = write_raw(tmp_path / "raw", ROWS[:4])
    (tmp_path / "s").mkdir()
    prepare_dataset(raw, tmp_path / "s", PrepareParams(size=4, workers=1))
    assert json.loads((tmp_path / "s" / "store.json").read_text())["sizes"] == [4]
    with pytest.raises(InputError, match="not stored"):
        ImageStore(tmp_path / "s").images(8)


def test_not_an_image_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="store.json"):
        ImageStore(tmp_path)
