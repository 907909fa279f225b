"""Pretrained weight files: found only where DVC can see them, and recorded as loaded.

The stages look in the repository's ``weights/<network>/`` folders (or at an explicit path in
params), which dvc.yaml lists as dependencies, so adding or replacing a file reruns every stage
that stands on it. The torch hub cache is not searched: DVC cannot see it, and a file appearing
there would silently change results.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cxrsynth.errors import MissingInputError


def find_weights(path: str | Path | None, folder: str | Path | None, file_name: str, key: str) -> Path | None:
    """``path`` if given (a one-line error naming the params ``key`` if it is missing), else
    ``folder / file_name`` if it exists, else None."""
    if path:
        path = Path(path)
        if not path.is_file():
            raise MissingInputError(f"{key}: {path} not found")
        return path
    if folder is not None and (Path(folder) / file_name).is_file():
        return Path(folder) / file_name
    return None


def weights_record(path: str | Path | None) -> dict | str:
    """What was loaded: ``{"file", "sha256"}`` of a weights file, or ``"none"`` (random initialisation)."""
    if path is None:
        return "none"
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return {"file": Path(path).name, "sha256": digest.hexdigest()}
