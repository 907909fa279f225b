"""The real films the audit and the verifier read: the store's images with their split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.data.store import ImageStore
from cxrsynth.errors import InputError


def reference_table(store: ImageStore, split_csv: Path) -> pd.DataFrame:
    """The store's images, sorted by row, with their split."""
    split = pd.read_csv(split_csv, usecols=["image", "split"])
    table = store.table.merge(split, on="image", how="left", validate="1:1").sort_values("row").reset_index(drop=True)
    if table["split"].isna().any():
        raise InputError(f"{split_csv}: {int(table['split'].isna().sum())} stored images have no split")
    return table


def split_images(store: ImageStore, table: pd.DataFrame, resolution: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, r, r) and patient IDs of one split."""
    part = table[table["split"] == name]
    return store.read(resolution, part["row"].to_numpy()), part["patient_id"].to_numpy()
