"""The real images a GAN trains on: the store's listed images at each pyramid level.

A level is read into memory when it fits under a limit; a larger one (1024 px at full scale
is 117 GB) stays memory-mapped and each batch reads only its own rows. Either way only the
rows the store's table lists are ever drawn: rejected images keep zero-filled slots in the
arrays and must never reach the discriminator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cxrsynth.data.store import ImageStore


def fits_in_memory(image_shape: tuple[int, ...], images: int, limit_bytes: float) -> bool:
    """Whether ``images`` uint8 images of ``image_shape`` fit under the in-memory limit."""
    return int(np.prod(image_shape)) * images <= limit_bytes


def memory_mapped_levels(store_dir: Path, resolutions: list[int], limit_gib: float) -> list[int]:
    """The levels ``load_pyramid`` keeps memory-mapped (read batch by batch) under ``limit_gib``."""
    images = len(ImageStore(store_dir).table)
    return [res for res in resolutions if not fits_in_memory((res, res), images, limit_gib * 2**30)]


class RealImages:
    """The listed rows of one store level: ``len`` images, ``batch(index)`` → uint8 (B, 1, r, r)."""

    def __init__(self, level: np.ndarray, rows: np.ndarray, limit_bytes: float):
        self.rows = np.sort(np.asarray(rows, dtype=np.int64))
        if not len(self.rows):
            raise ValueError("no images to train on")
        self.shape = (1, *level.shape[1:])
        self.in_memory = fits_in_memory(level.shape[1:], len(self.rows), limit_bytes)
        if self.in_memory:
            self._data = torch.from_numpy(np.ascontiguousarray(level[self.rows])).unsqueeze(1)
        else:
            self._level = level

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        """Images at positions ``index`` (0 .. len - 1) of the listed rows, on the CPU."""
        if self.in_memory:
            return self._data[index]
        rows = self.rows[index.numpy()]
        order = np.argsort(rows, kind="stable")  # ascending reads from the memory map
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        out[order] = self._level[rows[order]]
        return torch.from_numpy(out).unsqueeze(1)


def load_pyramid(store_dir: Path, resolutions: list[int], limit_gib: float = 4.0,
                 rows: np.ndarray | None = None) -> dict[int, RealImages]:
    """The store's listed images (or only ``rows`` of them) at each of ``resolutions``; a level over
    ``limit_gib`` stays memory-mapped. Each level's pool holds the rows in ascending order."""
    store = ImageStore(store_dir)
    listed = store.table["row"].to_numpy()
    if rows is not None:
        unknown = np.setdiff1d(rows, listed)
        if len(unknown):
            raise ValueError(f"{store_dir}: rows {unknown[:5].tolist()} are not listed images")
    rows = listed if rows is None else np.asarray(rows)
    return {res: RealImages(store.images(res), rows, limit_gib * 2**30) for res in resolutions}
