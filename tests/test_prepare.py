"""The prepare stage: greyscale store, rejects, the reject ceiling, nothing half-written."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import validate_params, write_raw
from PIL import Image

from cxrsynth.config.data import LocalParams
from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.store_writer import TooManyRejectsError, prepare_dataset
from cxrsynth.data.sources.local import import_local
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


def run_prepare_stage(raw, workdir):
    """``stages/prepare.py`` on ``raw`` with the repository's params, writing under ``workdir``."""
    (workdir / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    validate_params(workdir)
    cmd = [sys.executable, str(ROOT / "stages" / "prepare.py"), "--raw", str(raw), "--out", str(workdir / "store"),
           "--metrics", str(workdir / "m.json"), "--samples", str(workdir / "s.png")]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)


def test_too_many_rejects_fails_and_leaves_no_output(tmp_path):
    raw = write_raw(tmp_path / "raw", ROWS)
    for name, _ in ROWS[:3]:
        (raw / "images" / name).write_bytes(b"garbage")
    result = run_prepare_stage(raw, tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: prepare: 3 of 12 images rejected (3 unreadable)") and "max_reject_fraction" in last
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


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` 8-bit grey pixels (one row of data)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
            + chunk(b"IEND", b""))


def rejects_of(store: Path) -> dict[str, str]:
    """rejects.csv as image -> reason."""
    table = pd.read_csv(store / "rejects.csv", keep_default_na=False)
    return dict(zip(table["image"], table["reason"], strict=True))


def test_decompression_bomb_is_a_reject_not_a_crash(tmp_path):
    raw = write_raw(tmp_path / "raw", ROWS)
    (raw / "images" / ROWS[4][0]).write_bytes(png_claiming(20_000, 20_000))  # 400 Mpx, Pillow's error limit is 179
    out = tmp_path / "store"
    out.mkdir()
    metrics = prepare_dataset(raw, out, PrepareParams(size=8, workers=1, max_reject_fraction=0.2))
    assert metrics["rejected"] == 1 and metrics["images"] == 11
    assert "prepare.max_pixels" in rejects_of(out)[ROWS[4][0]]


def test_films_over_max_pixels_are_rejected_before_decoding(tmp_path):
    from cxrsynth.data.store_writer import film_byte_limit

    raw = write_raw(tmp_path / "raw", ROWS, size=32)
    Image.new("L", (64, 32)).save(raw / "images" / ROWS[0][0])
    (raw / "images" / ROWS[1][0]).write_bytes(png_claiming(5000, 5000))  # under Pillow's default limit
    (raw / "images" / ROWS[2][0]).write_bytes(b"\0" * (film_byte_limit(32 * 32) + 1))
    out = tmp_path / "store"
    out.mkdir()
    metrics = prepare_dataset(raw, out, PrepareParams(size=8, workers=1, max_pixels=32 * 32, max_reject_fraction=0.3))
    reasons = rejects_of(out)
    assert metrics["rejected"] == 3 and set(reasons) == {ROWS[0][0], ROWS[1][0], ROWS[2][0]}
    assert reasons[ROWS[2][0]].startswith(f"ImageTooLargeError: {film_byte_limit(32 * 32) + 1:,} bytes, over the")
    assert reasons[ROWS[0][0]] == "ImageTooLargeError: 64 x 32 pixels, over prepare.max_pixels (1,024)"
    # past twice the limit Pillow's own check (set to the same limit) refuses it while reading the header
    assert reasons[ROWS[1][0]].startswith("ImageTooLargeError: over prepare.max_pixels (1,024): Image size (25000000")


def test_archive_member_over_the_byte_limit_is_rejected_unread(tmp_path):
    from cxrsynth.data.store_writer import film_byte_limit

    raw = write_raw(tmp_path / "nih", ROWS[:4])
    (tmp_path / "shards").mkdir()
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\0" * (film_byte_limit(32 * 32) + 1))
    with tarfile.open(tmp_path / "shards" / "images_001.tar.gz", "w:gz") as tar:
        for name, _ in ROWS[:3]:
            tar.add(raw / "images" / name, f"images/{name}")
        tar.add(huge, f"images/{ROWS[3][0]}")
    import_local(LocalParams(images_dir=str(tmp_path / "shards"), metadata_csv=str(raw / "Data_Entry_2017_v2020.csv")),
                 tmp_path / "raw")
    out = tmp_path / "store"
    out.mkdir()
    metrics = prepare_dataset(tmp_path / "raw", out, PrepareParams(size=8, workers=1, max_pixels=32 * 32,
                                                                   max_reject_fraction=0.5))
    assert metrics["images"] == 3 and metrics["rejected"] == 1
    assert "bytes in images_001.tar.gz, over the" in rejects_of(out)[ROWS[3][0]]


def test_metadata_row_rejects_count_towards_the_ceiling(tmp_path):
    raw = write_raw(tmp_path / "raw", ROWS)
    csv = raw / "Data_Entry_2017_v2020.csv"
    lines = csv.read_text().splitlines()
    for i in (3, 7):  # two films on disk whose rows lost a field
        lines[i] = lines[i].rsplit(",", 1)[0]
    csv.write_text("\n".join(lines) + "\n")
    (tmp_path / "a").mkdir()
    with pytest.raises(TooManyRejectsError, match=r"2 of 12 images rejected \(2 with an unusable row in Data_Entry"):
        prepare_dataset(raw, tmp_path / "a", PrepareParams(size=8, workers=1, max_reject_fraction=0.1))
    (tmp_path / "b").mkdir()
    metrics = prepare_dataset(raw, tmp_path / "b", PrepareParams(size=8, workers=1, max_reject_fraction=0.2))
    assert metrics["rejected"] == 2 and metrics["images"] == 10
    reasons = rejects_of(tmp_path / "b")
    assert reasons[ROWS[2][0]] == "metadata line 4: expected 11 fields, got 10"
    assert reasons[ROWS[6][0]] == "metadata line 8: expected 11 fields, got 10"


def test_truncated_data_entry_fails_the_stage_in_one_line(tmp_path):
    raw = write_raw(tmp_path / "raw", ROWS)
    csv = raw / "Data_Entry_2017_v2020.csv"
    text = csv.read_text()
    csv.write_text(text[: len(text) // 2])  # cut mid-line, as a broken copy or transfer leaves it
    (tmp_path / "kept").mkdir()
    metrics = prepare_dataset(raw, tmp_path / "kept", PrepareParams(size=8, workers=1, max_reject_fraction=0.9))
    reasons = rejects_of(tmp_path / "kept")
    assert metrics["rejected"] == 12 - metrics["images"] >= 6
    assert reasons[ROWS[-1][0]] == "no row in Data_Entry_2017_v2020.csv (is the metadata file truncated?)"

    result = run_prepare_stage(raw, tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: prepare: ") and "with no row in Data_Entry_2017_v2020.csv" in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "store").exists() and not (tmp_path / "m.json").exists()
