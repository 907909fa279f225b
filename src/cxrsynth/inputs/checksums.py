"""Digests of a file in one pass, and the one-line verdict of a manifest's checksums on them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cxrsynth.data.sources.nih import DownloadError
from cxrsynth.inputs.manifest import Checksum


class ChecksumError(DownloadError):
    """A file is not the published one: the message names it, the checksum expected and the one got."""


def digests(path: str | Path) -> dict[str, str]:
    """``{"sha256", "sha1", "md5"}`` hex digests of ``path`` (md5 is what DVC's pointers record)."""
    hashes = {name: hashlib.new(name) for name in ("sha256", "sha1", "md5")}
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            for h in hashes.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashes.items()}


def mismatch(label: str, checksums: tuple[Checksum, ...], got: dict[str, str]) -> str | None:
    """None when ``got`` agrees with every checksum, else one line naming ``label``, the first
    checksum that disagrees and the digest found."""
    for checksum in checksums:
        if not checksum.matches(got):
            kind = "sha256" if checksum.kind == "sha256-prefix" else checksum.kind
            return f"{label}: {checksum.kind} mismatch (expected {checksum.value}, got {got[kind]})"
    return None


def check(path: Path, checksums: tuple[Checksum, ...], label: str | None = None) -> dict[str, str]:
    """The digests of ``path``; raises ChecksumError when one of ``checksums`` disagrees."""
    got = digests(path)
    problem = mismatch(label or str(path), checksums, got)
    if problem:
        raise ChecksumError(problem)
    return got
