"""The prepared image store: one memory-mapped uint8 array per resolution plus a table.

Layout of a store folder::

    table.csv          one row per usable image: clean metadata, 15 label columns, ``row``
    images_4.npy ...   (N, r, r) uint8 arrays, r = every power of two up to the stored size
    rejects.csv        images (and metadata rows) dropped, with the reason
    store.json         sizes, counts and the content fingerprint

A few large files instead of one file per image keeps ``dvc status`` fast at full scale.
``row`` indexes the arrays; rows of rejected images stay allocated but are never listed.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.labels import LABELS


def level_sizes(size: int, min_size: int = 4) -> list[int]:
    """Powers of two from ``min_size`` up to ``size``."""
    sizes, res = [], min_size
    while res <= size:
        sizes.append(res)
        res *= 2
    return sizes


def array_name(res: int) -> str:
    return f"images_{res}.npy"


def content_fingerprint(folder: Path, sizes: list[int], chunk_mib: int = 64) -> str:
    """SHA-256 of ``table.csv`` and every pyramid level's bytes: the store's identity, recorded by the
    GAN's checkpoints so a changed store is never resumed into (streamed; about 1 s per GiB)."""
    digest = hashlib.sha256((folder / "table.csv").read_bytes())
    for res in sizes:
        with open(folder / array_name(res), "rb") as f:
            while block := f.read(chunk_mib << 20):
                digest.update(block)
    return digest.hexdigest()


class ImageStore:
    """Read access to a prepared store: ``store.table``, ``store.images(64)[store.table.row]``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        meta = self.folder / "store.json"
        if not meta.exists():
            raise MissingInputError(f"{meta}: not a prepared image store (run the prepare stage)")
        self.info = json.loads(meta.read_text())

    @cached_property
    def table(self) -> pd.DataFrame:
        """The clean metadata table, one row per usable image."""
        dtypes = {name: np.uint8 for name in LABELS}
        return pd.read_csv(self.folder / "table.csv", dtype=dtypes | {"labels": str, "sex": str, "view": str})

    @property
    def fingerprint(self) -> str:
        """Content hash of the table and images (written by ``prepare``; computed for older stores)."""
        return self.info.get("fingerprint") or content_fingerprint(self.folder, self.sizes)

    @property
    def sizes(self) -> list[int]:
        return list(self.info["sizes"])

    def images(self, res: int) -> np.ndarray:
        """The (N, res, res) uint8 array of one pyramid level, memory-mapped read-only."""
        if res not in self.sizes:
            raise InputError(f"{self.folder}: resolution {res} not stored; available: {self.sizes}")
        return np.load(self.folder / array_name(res), mmap_mode="r")

    def read(self, res: int, rows: np.ndarray) -> np.ndarray:
        """uint8 (len(rows), res, res) images of ``rows`` (in that order), read from the memory map in
        ascending row order; never the whole level."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        level = self.images(res)
        out = np.empty((len(rows), res, res), dtype=np.uint8)
        out[order] = level[rows[order]]
        return out

    def label_matrix(self) -> np.ndarray:
        """(N, 15) uint8 labels in LABELS order."""
        return self.table[list(LABELS)].to_numpy(dtype=np.uint8)
