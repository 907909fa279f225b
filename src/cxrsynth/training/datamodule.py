"""Lightning data module over the prepared image store and the patient split."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

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


class SplitDataModule(L.LightningDataModule):
    """Train/val/test loaders over ``self.datasets`` (filled by ``setup``)."""

    def __init__(self, batch_size: int, num_workers: int = 0):
        super().__init__()
        self.batch_size, self.num_workers = batch_size, num_workers
        self.datasets: dict[str, StoreDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        """Fill ``self.datasets`` (subclasses that read data on demand override this)."""

    def train_labels(self) -> np.ndarray:
        self.setup()
        return self.datasets["train"].labels.numpy()

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.datasets[name], batch_size=self.batch_size, shuffle=shuffle, drop_last=False,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)


class StoreDataModule(SplitDataModule):
    """Train/val/test of the patient split, reading level ``input_size`` of the store; labels in LABELS order."""

    def __init__(self, store_dir: str | Path, split_csv: str | Path, input_size: int, batch_size: int,
                 num_workers: int = 0, in_memory_limit_gib: float = 2.0):
        super().__init__(batch_size, num_workers)
        self.store = ImageStore(store_dir)
        if input_size not in self.store.sizes:
            raise InputError(f"classifier.input_size: {input_size} is not a stored level {self.store.sizes}")
        self.split = pd.read_csv(split_csv)
        self.input_size = input_size
        self.in_memory_limit = in_memory_limit_gib * 2**30

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        table = self.store.table.merge(self.split[["image", "split"]], on="image", how="inner", validate="1:1")
        images = self.store.images(self.input_size)
        if images.nbytes <= self.in_memory_limit:  # small levels: one sequential read, no random memmap access
            images = np.asarray(images)
        for name in ("train", "val", "test"):
            part = table[table["split"] == name]
            self.datasets[name] = StoreDataset(images, part["row"].to_numpy(), part[list(LABELS)].to_numpy())


class ArrayDataModule(SplitDataModule):
    """Subsets given as arrays: ``{"train": (uint8 (N, r, r) images, (N, 15) labels), "val": ..., "test": ...}``."""

    def __init__(self, subsets: dict[str, tuple[np.ndarray, np.ndarray]], batch_size: int, num_workers: int = 0):
        super().__init__(batch_size, num_workers)
        sizes = {images.shape[1:] for images, _ in subsets.values()}
        if len(sizes) != 1:
            raise ValueError(f"subsets have different image sizes: {sorted(sizes)}")
        for name, (images, labels) in subsets.items():
            self.datasets[name] = StoreDataset(images, np.arange(len(images)), labels)
