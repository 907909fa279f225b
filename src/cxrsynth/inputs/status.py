"""Where each known input stands: present, matching the manifest, tracked by an up-to-date pointer."""

from __future__ import annotations

from pathlib import Path

from cxrsynth.inputs.checksums import digests, mismatch
from cxrsynth.inputs.manifest import MANIFEST, Input
from cxrsynth.inputs.pointers import read_pointer


def input_status(entry: Input, root: Path) -> dict[str, str]:
    """``{"name", "path", "present", "verified", "tracked"}`` for ``entry`` under ``root``: present
    yes/no; verified yes/no/``-`` (missing) or ``n/a`` (no checksum known); tracked ``yes``
    (the pointer records this file), ``stale`` (it records another) or ``no``."""
    dest = entry.dest(root)
    row = {"name": entry.name, "path": entry.path, "present": "no", "verified": "-", "tracked": "no"}
    pointer = read_pointer(dest)
    if not dest.is_file():
        row["tracked"] = "pointer only" if pointer else "no"
        return row
    got = digests(dest)
    row["present"] = "yes"
    if entry.checksums:
        row["verified"] = "yes" if mismatch(entry.path, entry.checksums, got) is None else "no"
    else:
        row["verified"] = "n/a"
    if pointer:
        row["tracked"] = "yes" if pointer.get("md5") == got["md5"] else "stale"
    return row


def status_table(root: Path, entries: tuple[Input, ...] = MANIFEST) -> str:
    """One aligned line per known input, under a header."""
    rows = [input_status(entry, Path(root)) for entry in entries]
    columns = ("name", "present", "verified", "tracked", "path")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)
