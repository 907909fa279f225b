"""Read any known variant of the ChestX-ray14 metadata into one clean table.

Variants handled:
- ``Data_Entry_2017_v2020.csv`` (current): integer ages in years.
- ``Data_Entry_2017.csv`` (2017 original): a trailing comma (12th empty column), CRLF line
  ends, and ages written ``058Y`` / ``011M`` / ``001D``.
- re-shared copies of the 2017 file whose month ages were read as years (148-155, 411-414):
  impossible ages become missing and are counted.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.errors import InputError
from cxrsynth.labels import (
    LABELS,
    UnknownLabelError,
    canonical_label,
    join_labels,
    parse_label_string,
)

#: The 11 fields of NIH's header once the bracketed names that contain commas are re-joined.
NIH_HEADER = (
    "Image Index",
    "Finding Labels",
    "Follow-up #",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "View Position",
    "OriginalImage[Width",
    "Height]",
    "OriginalImagePixelSpacing[x",
    "y]",
)
NIH_HEADER_LINE = ",".join(NIH_HEADER)

#: Columns of the clean table, in order (the 15 label columns follow).
CLEAN_COLUMNS = (
    "image",
    "patient_id",
    "follow_up",
    "age",
    "sex",
    "view",
    "orig_width",
    "orig_height",
    "spacing_x",
    "spacing_y",
    "labels",
)
MAX_AGE_YEARS = 120
_IMAGE_RE = re.compile(r"^\d{8}_\d{3}\.png$")
_AGE_RE = re.compile(r"^(\d{1,3})\s*([YMD]?)$", re.IGNORECASE)


class MetadataError(InputError):
    """The metadata file cannot be read at all (wrong header, unknown labels...)."""


@dataclass
class MetadataReport:
    """What reading a metadata file repaired or dropped."""

    rows: int = 0
    ages_in_months: int = 0
    ages_in_days: int = 0
    ages_missing: int = 0
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (line, image, reason)

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "ages_in_months": self.ages_in_months,
            "ages_in_days": self.ages_in_days,
            "ages_missing": self.ages_missing,
            "rows_rejected": len(self.rejects),
        }


def parse_age(text: str) -> tuple[float, str]:
    """Parse an NIH age field into years.

    Returns (years, unit) with unit one of 'Y', 'M', 'D', or (nan, '') when the field is
    empty, unparseable or impossible (over MAX_AGE_YEARS, as in re-shared copies).
    """
    match = _AGE_RE.match(text.strip())
    if not match:
        return math.nan, ""
    value, unit = int(match.group(1)), (match.group(2) or "Y").upper()
    years = {"Y": float(value), "M": value / 12.0, "D": value / 365.25}[unit]
    if years > MAX_AGE_YEARS:
        return math.nan, ""
    return years, unit


def _open_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        import gzip

        raw = gzip.decompress(raw)
    text = raw.decode("utf-8-sig")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_data_entry(path: str | Path) -> tuple[pd.DataFrame, MetadataReport]:
    """Read a ``Data_Entry_2017*.csv`` (any variant, optionally gzipped) into the clean table.

    Rows that cannot be used (wrong field count, bad image name, bad patient id) are
    returned in the report's rejects; unknown label names are fatal (MetadataError).
    """
    path = Path(path)
    if not path.exists():
        raise MetadataError(f"{path}: metadata file not found")
    lines = _open_text(path).split("\n")
    header = next(csv.reader([lines[0]]))
    while header and header[-1] == "":
        header.pop()  # the 2017 original's trailing comma
    if tuple(h.strip() for h in header[: len(NIH_HEADER)]) != NIH_HEADER:
        raise MetadataError(f"{path}: unexpected header {lines[0][:120]!r}; expected {NIH_HEADER_LINE!r}")
    n_fields = len(header)  # NIH's 11, or more for files that append columns (synthetic archives); extras are ignored

    report = MetadataReport()
    records = []
    unknown: dict[str, int] = {}
    for lineno, fields in enumerate(csv.reader(io.StringIO("\n".join(lines[1:]))), start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        while len(fields) > n_fields and fields[-1] == "":
            fields.pop()
        image = fields[0].strip() if fields else ""
        if len(fields) != n_fields:
            report.rejects.append((lineno, image, f"expected {n_fields} fields, got {len(fields)}"))
            continue
        img, finding, follow, pid, age, sex, view, w, h, sx, sy = (f.strip() for f in fields[: len(NIH_HEADER)])
        if not _IMAGE_RE.match(img):
            report.rejects.append((lineno, img, "image name is not NNNNNNNN_NNN.png"))
            continue
        try:
            patient = int(pid)
            follow_up = int(follow)
        except ValueError:
            report.rejects.append((lineno, img, f"non-integer patient id or follow-up ({pid!r}, {follow!r})"))
            continue
        try:
            names = parse_label_string(finding)
        except UnknownLabelError:
            for part in finding.split("|"):
                if part.strip() and canonical_label(part) is None:
                    unknown[part.strip()] = unknown.get(part.strip(), 0) + 1
            continue
        if not names:
            report.rejects.append((lineno, img, "empty label string"))
            continue
        years, unit = parse_age(age)
        report.ages_in_months += unit == "M"
        report.ages_in_days += unit == "D"
        report.ages_missing += math.isnan(years)
        records.append(
            (
                img,
                patient,
                follow_up,
                years,
                sex.upper() if sex.upper() in ("M", "F") else None,
                view.upper() if view.upper() in ("PA", "AP") else None,
                _to_float(w),
                _to_float(h),
                _to_float(sx),
                _to_float(sy),
                join_labels(names),
            )
        )
    if unknown:
        listed = ", ".join(f"{k!r} ({v} rows)" for k, v in sorted(unknown.items()))
        raise MetadataError(f"{path}: unknown label name(s): {listed}")
    table = pd.DataFrame.from_records(records, columns=list(CLEAN_COLUMNS))
    dup = table["image"].duplicated(keep="first")
    for img in table.loc[dup, "image"]:
        report.rejects.append((0, img, "duplicate image row (first kept)"))
    table = table.loc[~dup].reset_index(drop=True)
    table = add_label_columns(table)
    report.rows = len(table)
    return table, report


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def add_label_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Add one uint8 0/1 column per label (LABELS order) from the ``labels`` string column."""
    onehot = np.zeros((len(table), len(LABELS)), dtype=np.uint8)
    index = {name: i for i, name in enumerate(LABELS)}
    for row, text in enumerate(table["labels"]):
        for name in text.split("|"):
            onehot[row, index[name]] = 1
    out = table.copy()
    for i, name in enumerate(LABELS):
        out[name] = onehot[:, i]
    return out


def read_bbox_list(path: str | Path) -> pd.DataFrame:
    """Read ``BBox_List_2017.csv`` into columns image, label (canonical), x, y, w, h.

    Handles the three empty trailing columns and NIH's ``Infiltrate`` spelling.
    """
    path = Path(path)
    if not path.exists():
        raise MetadataError(f"{path}: bounding-box file not found")
    rows = list(csv.reader(io.StringIO(_open_text(path))))
    if not rows or [c.strip() for c in rows[0][:3]] != ["Image Index", "Finding Label", "Bbox [x"]:
        raise MetadataError(f"{path}: unexpected header {','.join(rows[0]) if rows else ''!r}")
    records, unknown = [], set()
    for fields in rows[1:]:
        fields = [f.strip() for f in fields]
        while fields and fields[-1] == "":
            fields.pop()
        if not fields:
            continue
        if len(fields) != 6:
            raise MetadataError(f"{path}: row {fields!r} has {len(fields)} fields, expected 6")
        label = canonical_label(fields[1])
        if label is None:
            unknown.add(fields[1])
            continue
        records.append((fields[0], label, *(float(v) for v in fields[2:])))
    if unknown:
        raise MetadataError(f"{path}: unknown label name(s): {', '.join(sorted(unknown))}")
    return pd.DataFrame.from_records(records, columns=["image", "label", "x", "y", "w", "h"])


def read_image_list(path: str | Path) -> list[str]:
    """Read ``train_val_list.txt`` / ``test_list.txt`` (no final newline) into file names."""
    text = Path(path).read_text().replace("\r\n", "\n")
    return [line.strip() for line in text.split("\n") if line.strip()]
