"""The synthetic archive's tar shards: NIH's ``images/`` layout that WebDataset also reads.

Each ``images_NNN.tar`` holds, per film, ``images/<stem>.png`` followed by ``images/<stem>.json``.
``tar -xf`` gives NIH's ``images/`` folder (the JSON files sit beside the PNGs and loaders that
read by ``Image Index`` never look at them); WebDataset groups members by the name before the
first dot, so each film is one sample with ``png`` and ``json`` keys. Every member is written
with mtime 0, mode 0644 and no owner, so two writes of the same archive give the same bytes.

The JSON record (``sample_record``) repeats the film's row of ``Data_Entry_synthetic.csv``,
which stays the source of truth, plus its labels as a multi-hot vector in ``LABELS`` order::

    {"finding_labels": "Effusion|Mass", "follow_up": 0, "image_index": "90000000_000.png",
     "labels": [0, 0, 0, 0, 0, 1, ...], "pathologies": ["No Finding", "Atelectasis", ...],
     "patient_id": 90000000, "target_label": "Effusion", "target_score": 0.93,
     "view_position": "PA"}

``index_shards`` finds every member's byte range in one pass over the tar headers, so a reader
(``data.archive_dataset.ArchiveDataset``) can fetch a film with one positioned read.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.labels import LABELS, parse_label_string

ARCHIVE_CSV = "Data_Entry_synthetic.csv"
SHARD_GLOB = "images_*.tar"
IMAGE_DIR = "images"


class Member(NamedTuple):
    """Where one member's bytes lie: its shard, the offset of its data and its size."""

    shard: Path
    offset: int
    size: int


def shard_name(number: int) -> str:
    """``images_001.tar`` for shard 1 (NIH's numbering, from 1)."""
    return f"images_{number:03d}.tar"


def json_member(image_index: str) -> str:
    """The member name of a film's JSON record: ``images/<stem>.json`` beside ``images/<stem>.png``."""
    return f"{IMAGE_DIR}/{Path(image_index).stem}.json"


def _text(value: Any) -> str:
    """A table cell as text; a missing value (None, NaN) as an empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def sample_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON record of one archive row (NIH column names, plus Target Label and Target Score)."""
    names = parse_label_string(row["Finding Labels"])
    return {
        "image_index": str(row["Image Index"]),
        "patient_id": int(row["Patient ID"]),
        "follow_up": int(row["Follow-up #"]),
        "finding_labels": str(row["Finding Labels"]),
        "labels": [int(name in names) for name in LABELS],
        "pathologies": list(LABELS),
        "target_label": _text(row["Target Label"]),
        "target_score": float(row["Target Score"]),
        "view_position": _text(row["View Position"]),
    }


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """A record as compact JSON with sorted keys (the same bytes for the same record)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Append ``data`` as member ``name`` with fixed metadata (mtime 0, mode 0644, no owner)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def shard_paths(folder: str | Path) -> list[Path]:
    """The archive's uncompressed shards in order; a one-line error when there are none."""
    folder = Path(folder)
    shards = sorted(folder.glob(SHARD_GLOB))
    if not shards:
        compressed = sorted(p.name for p in folder.glob(SHARD_GLOB + ".*"))
        if compressed:
            raise InputError(f"{folder}: shards {compressed[0]} ... are compressed; they cannot be read in place: "
                             "decompress them (gunzip) first")
        raise MissingInputError(f"{folder}: no {SHARD_GLOB} shards (the archive stage writes them)")
    return shards


def index_shards(folder: str | Path) -> dict[str, Member]:
    """Every regular member of the archive's shards by name (``images/<file>``), with its byte range.

    One pass over the tar headers (tarfile seeks past the data); a name met twice keeps the first.
    """
    index: dict[str, Member] = {}
    for shard in shard_paths(folder):
        try:
            with tarfile.open(shard, "r:") as tar:
                for member in tar:
                    if member.isfile() and member.name not in index:
                        index[member.name] = Member(shard, member.offset_data, member.size)
        except (tarfile.TarError, OSError) as err:
            raise InputError(f"{shard}: cannot be read as an uncompressed tar: {err}") from err
    return index
