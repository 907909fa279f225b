"""CheXNeXt relabelled NIH labels (Rajpurkar et al. 2018), as converted by the ``mednet`` package.

mednet ships them as one JSON object under ``config/classify/data/nih_cxr14/`` with lists
``train``, ``validation`` and ``test``; each entry is
``["images/00000001_000.png", ["car", "her"], 58, "M"]``: image path, finding abbreviations
(an empty list is No Finding), age, sex. Train and validation hold the images CheXNeXt
relabelled; test holds the rest with NIH's original labels, so only train + validation are
read by default. mednet may ship the file bz2-compressed; ``.bz2`` and ``.gz`` are read too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from cxrsynth.data.metadata import add_label_columns
from cxrsynth.data.sources.manifest import film_name
from cxrsynth.errors import InputError, ParamsError
from cxrsynth.labels import LABELS, NO_FINDING, join_labels

#: mednet's finding abbreviations, mapped to the canonical names of ``cxrsynth.labels``.
ABBREVIATIONS: dict[str, str] = {
    "car": "Cardiomegaly",
    "emp": "Emphysema",
    "eff": "Effusion",
    "her": "Hernia",
    "inf": "Infiltration",
    "mas": "Mass",
    "nod": "Nodule",
    "ate": "Atelectasis",
    "pnt": "Pneumothorax",
    "plt": "Pleural_Thickening",
    "pne": "Pneumonia",
    "fib": "Fibrosis",
    "ede": "Edema",
    "con": "Consolidation",
}

#: The lists a mednet NIH CXR14 file may hold.
KNOWN_LISTS = ("train", "validation", "test")
#: The lists holding CheXNeXt's modified labels (the ones the paper used).
RELABELLED_LISTS = ("train", "validation")
#: The relabelled set as the ``download`` stage leaves it in ``data/raw`` for ``prepare``.
RELABELLED_NAME = "chexnext_labels.csv"

_SHOWN = 100  # characters of an offending entry quoted in a message


class ChexnextError(InputError):
    """The CheXNeXt label file cannot be used; the message names the file and the entry."""


def read_chexnext(path: str | Path, lists: Iterable[str] = RELABELLED_LISTS) -> pd.DataFrame:
    """Read the named lists of a mednet NIH CXR14 JSON file into columns image, labels, list.

    ``image`` is the bare file name, ``labels`` the NIH-style ``|``-joined canonical names in
    LABELS order (``No Finding`` for an empty list), ``list`` the list the row came from.
    An image listed twice with the same labels is kept once (its first listing); with
    different labels, or any malformed entry, ChexnextError names the file and the entry.
    """
    path = Path(path)
    names = _list_names(lists)
    data = _load_json(path)
    rows: list[tuple[str, str, str]] = []
    seen: dict[str, tuple[str, str]] = {}  # image -> (labels, "list[i]")
    for name in names:
        for i, entry in enumerate(_get_list(path, data, name)):
            where = f"{name}[{i}]"
            image, labels = _parse_entry(path, where, entry)
            if image in seen:
                _check_same(path, where, image, labels, seen[image])
                continue
            seen[image] = (labels, where)
            rows.append((image, labels, name))
    return pd.DataFrame.from_records(rows, columns=["image", "labels", "list"])


def save_relabelled(path: str | Path, raw_dir: Path) -> int:
    """Read (checking every entry) the relabelled lists of ``path`` and write them into the raw
    folder as ``chexnext_labels.csv``; returns the number of images."""
    relabelled = read_chexnext(path)
    relabelled.to_csv(raw_dir / RELABELLED_NAME, index=False)
    return len(relabelled)


def read_relabelled(raw_dir: Path) -> pd.DataFrame | None:
    """The relabelled set the ``download`` stage saved, or None when the source keeps NIH's labels."""
    path = raw_dir / RELABELLED_NAME
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None


def apply_chexnext(
    table: pd.DataFrame, relabelled: pd.DataFrame, *, source: str | Path | None = None
) -> tuple[pd.DataFrame, dict]:
    """Restrict the clean NIH table to the relabelled images and give them CheXNeXt's labels.

    ``table`` is the output of ``read_data_entry``; ``relabelled`` that of ``read_chexnext``.
    Rows keep the table's order (index reset) and its column order; ``labels`` and the 15
    label columns are replaced. The report counts rows kept (covered), dropped (not_covered),
    relabelled images absent from the table and rows whose label set changed. Raises
    ChexnextError if no row is covered; ``source`` (the label file) prefixes its messages.
    """
    prefix = f"{source}: " if source is not None else ""
    dup = relabelled["image"].duplicated()
    if dup.any():
        raise ChexnextError(f"{prefix}relabelled set lists image {relabelled['image'][dup].iloc[0]} more than once")
    mapping = dict(zip(relabelled["image"], relabelled["labels"]))
    covered = table["image"].isin(mapping.keys())
    if not covered.any():
        raise ChexnextError(
            f"{prefix}none of the {len(mapping)} relabelled images is in the metadata table "
            f"({len(table)} rows); wrong label file or metadata?"
        )
    kept = table.loc[covered].reset_index(drop=True)
    new_labels = kept["image"].map(mapping)
    changed = sum(set(a.split("|")) != set(b.split("|")) for a, b in zip(kept["labels"], new_labels))
    out = kept.drop(columns=[c for c in LABELS if c in kept.columns])
    out["labels"] = new_labels.to_numpy()
    out = add_label_columns(out)
    order = list(table.columns) + [c for c in out.columns if c not in table.columns]
    report = {
        "labels": "chexnext",
        "covered": int(covered.sum()),
        "not_covered": int((~covered).sum()),
        "listed_not_in_table": len(set(mapping) - set(table["image"])),
        "changed": int(changed),
    }
    return out[order], report


def _list_names(lists: Iterable[str]) -> tuple[str, ...]:
    names = (lists,) if isinstance(lists, str) else tuple(lists)
    if not names:
        raise ParamsError("read_chexnext: no list named (expected some of train, validation, test)")
    return names


def _load_json(path: Path) -> dict:
    if not path.exists():
        raise ChexnextError(f"{path}: CheXNeXt label file not found (labels/chexnext/README.md says where to get one)")
    raw = path.read_bytes()
    try:
        if path.suffix == ".bz2":
            import bz2

            raw = bz2.decompress(raw)
        elif path.suffix == ".gz":
            import gzip

            raw = gzip.decompress(raw)
        data = json.loads(raw.decode("utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ChexnextError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except (OSError, EOFError, ValueError) as exc:  # bad compression or encoding
        raise ChexnextError(f"{path}: cannot be read ({_one_line(str(exc))})") from None
    if not isinstance(data, dict) or not any(k in data for k in KNOWN_LISTS):
        raise ChexnextError(f"{path}: expected a JSON object with lists {', '.join(KNOWN_LISTS)}")
    return data


def _get_list(path: Path, data: dict, name: str) -> list:
    if name not in data:
        raise ChexnextError(f"{path}: no list {name!r} (the file has: {', '.join(map(str, data))})")
    entries = data[name]
    if not isinstance(entries, list):
        raise ChexnextError(f"{path}: {name} is a JSON {type(entries).__name__}, expected a list of entries")
    return entries


def _parse_entry(path: Path, where: str, entry: object) -> tuple[str, str]:
    """Return (bare image name, joined canonical labels) of one ``[path, findings, ...]`` entry."""
    if not (
        isinstance(entry, list)
        and len(entry) >= 2
        and isinstance(entry[0], str)
        and isinstance(entry[1], list)
        and all(isinstance(a, str) for a in entry[1])
    ):
        raise ChexnextError(
            f"{path}: {where}: expected [image path, [findings], age, sex], got {_shown(entry)}"
        )
    image = film_name(entry[0].strip())
    if image is None:
        raise ChexnextError(f"{path}: {where}: image name {entry[0]!r} is not NNNNNNNN_NNN.png")
    unknown = sorted({a for a in entry[1] if a not in ABBREVIATIONS})
    if unknown:
        raise ChexnextError(
            f"{path}: {where}: unknown finding abbreviation(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(ABBREVIATIONS)})"
        )
    return image, join_labels(ABBREVIATIONS[a] for a in entry[1]) or NO_FINDING


def _check_same(path: Path, where: str, image: str, labels: str, first: tuple[str, str]) -> None:
    if labels != first[0]:
        raise ChexnextError(
            f"{path}: {where}: image {image} is listed twice with different labels "
            f"({first[1]}: {first[0]}; {where}: {labels})"
        )


def _shown(entry: object) -> str:
    text = _one_line(json.dumps(entry))  # entries come from JSON, so they dump back
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())
