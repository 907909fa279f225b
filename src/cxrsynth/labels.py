"""The 15 ChestX-ray14 labels under one canonical spelling, and the aliases seen in the wild."""

from __future__ import annotations

from collections.abc import Iterable

from cxrsynth.errors import InputError

NO_FINDING = "No Finding"

#: The 14 findings in NIH's own spelling (alphabetical, as in the paper's Table 2).
FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
)

#: All 15 label columns of the clean table: No Finding first, then the findings.
LABELS: tuple[str, ...] = (NO_FINDING, *FINDINGS)

_ALIASES = {
    "infiltrate": "Infiltration",  # BBox_List_2017.csv spelling
    "pleural effusion": "Effusion",  # the paper's spelling
    "pleural thickening": "Pleural_Thickening",
    "pleural-thickening": "Pleural_Thickening",
    "nofinding": NO_FINDING,
    "no_finding": NO_FINDING,
}
_CANONICAL = {name.lower(): name for name in LABELS} | _ALIASES


class UnknownLabelError(InputError):
    """Raised when a label string holds names that are not ChestX-ray14 labels."""


def canonical_label(name: str) -> str | None:
    """Return the canonical spelling of one label name, or None if it is not a known label."""
    return _CANONICAL.get(name.strip().lower())


def parse_label_string(text: str) -> list[str]:
    """Split an NIH ``|``-joined label string into canonical names, in LABELS order.

    Raises UnknownLabelError naming every unknown part.
    """
    parts = [p for p in (s.strip() for s in text.split("|")) if p]
    found, unknown = set(), []
    for part in parts:
        name = canonical_label(part)
        if name is None:
            unknown.append(part)
        else:
            found.add(name)
    if unknown:
        raise UnknownLabelError(f"unknown label name(s): {', '.join(sorted(set(unknown)))}")
    return [name for name in LABELS if name in found]


def join_labels(names: Iterable[str]) -> str:
    """Join canonical label names with ``|`` in LABELS order (the NIH convention)."""
    chosen = set(names)
    return "|".join(name for name in LABELS if name in chosen)
