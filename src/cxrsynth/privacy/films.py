"""The real films the audit and the verifier read: the store's images with their split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.data.patient_split import PatientSplit
from cxrsynth.data.store import ImageStore


def reference_table(store: ImageStore, split_csv: Path) -> pd.DataFrame:
    """The store's images, sorted by row, with their split (every stored image needs one:
    ``PatientSplit.every_store_row``)."""
    return PatientSplit.read(split_csv).every_store_row(store.table)


def split_images(store: ImageStore, table: pd.DataFrame, resolution: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, r, r) and patient IDs of one split."""
    part = table[table["split"] == name]
    return store.read(resolution, part["row"].to_numpy()), part["patient_id"].to_numpy()
