"""The real images a GAN trains on: the store's pyramid levels as uint8 tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cxrsynth.data.store import ImageStore


def load_pyramid(store_dir: Path, resolutions: list[int], limit_gib: float = 4.0) -> dict[int, torch.Tensor]:
    """The store's levels as (N, 1, r, r) uint8 tensors (read into memory; memory-mapped above ``limit_gib``)."""
    store = ImageStore(store_dir)
    rows = np.sort(store.table["row"].to_numpy())
    out = {}
    for res in resolutions:
        level = store.images(res)
        data = np.asarray(level[rows]) if level[rows[:1]].nbytes * len(rows) <= limit_gib * 2**30 else level
        out[res] = torch.from_numpy(np.ascontiguousarray(data)).unsqueeze(1)
    return out
