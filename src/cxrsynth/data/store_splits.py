"""The train/val/test images of the patient split (``data.patient_split``), read from the prepared image store.

Free of Lightning: scoring stages read held-out images with ``split_datasets``;
``training.datamodule`` wraps the same datasets in loaders for training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from cxrsynth.data.patient_split import PatientSplit
from cxrsynth.data.store import ImageStore
from cxrsynth.errors import InputError
from cxrsynth.labels import LABELS


class StoreDataset(Dataset):
    """Images of one split at one pyramid level: ``(uint8 (1, r, r) tensor, float (15,) labels)``."""

    def __init__(self, images: np.ndarray, rows: np.ndarray, labels: np.ndarray):
        self.images, self.rows, self.labels = images, rows, torch.from_numpy(labels.astype(np.float32))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        return torch.from_numpy(np.array(self.images[self.rows[i]])).unsqueeze(0), self.labels[i]

    def all_images(self) -> torch.Tensor:
        """Every image of this split as one (N, 1, r, r) uint8 tensor (sorted reads of the memmap)."""
        order = np.argsort(self.rows)
        out = np.empty((len(self.rows), *self.images.shape[1:]), dtype=np.uint8)
        out[order] = self.images[self.rows[order]]
        return torch.from_numpy(out).unsqueeze(1)


def split_datasets(store: ImageStore, split: PatientSplit | pd.DataFrame, input_size: int,
                   in_memory_limit: float = 2.0 * 2**30) -> dict[str, StoreDataset]:
    """``{"train", "val", "test"}`` datasets at stored level ``input_size`` (the split's
    ``store_rows``, in store order); labels in LABELS order. ``split`` may be split.csv's table.
    A level of at most ``in_memory_limit`` bytes is read into memory in one pass."""
    if input_size not in store.sizes:
        raise InputError(f"classifier.input_size: {input_size} is not a stored level {store.sizes}")
    split = split if isinstance(split, PatientSplit) else PatientSplit(split)
    table = split.store_rows(store.table)
    images = store.images(input_size)
    if images.nbytes <= in_memory_limit:  # small levels: one sequential read, no random memmap access
        images = np.asarray(images)
    return {name: StoreDataset(images, part["row"].to_numpy(), part[list(LABELS)].to_numpy())
            for name, part in ((name, table[table["split"] == name]) for name in ("train", "val", "test"))}
