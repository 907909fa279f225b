"""Lightning data modules over the prepared image store and the patient split (``data.patient_split``)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from cxrsynth.data.patient_split import PatientSplit
from cxrsynth.data.store import ImageStore
from cxrsynth.data.store_splits import StoreDataset, split_datasets
from cxrsynth.errors import InputError, ParamsError


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

    def batch_per_process(self) -> int:
        """This process's share of the global ``batch_size`` (Lightning's DDP gives each process its own
        shard of the data and its own loader)."""
        world = self.trainer.world_size if self.trainer is not None else 1
        if self.batch_size % world:
            raise ParamsError(f"classifier.batch_size: {self.batch_size} does not split evenly over {world} "
                              "processes (it is global: the total over all devices)")
        return self.batch_size // world

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.datasets[name], batch_size=self.batch_per_process(), shuffle=shuffle, drop_last=False,
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
        self.split = PatientSplit.read(split_csv)
        self.input_size = input_size
        self.in_memory_limit = in_memory_limit_gib * 2**30

    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            self.datasets = split_datasets(self.store, self.split, self.input_size, self.in_memory_limit)


class ArrayDataModule(SplitDataModule):
    """Subsets given as arrays: ``{"train": (uint8 (N, r, r) images, (N, 15) labels), "val": ..., "test": ...}``."""

    def __init__(self, subsets: dict[str, tuple[np.ndarray, np.ndarray]], batch_size: int, num_workers: int = 0):
        super().__init__(batch_size, num_workers)
        sizes = {images.shape[1:] for images, _ in subsets.values()}
        if len(sizes) != 1:
            raise ValueError(f"subsets have different image sizes: {sorted(sizes)}")
        for name, (images, labels) in subsets.items():
            self.datasets[name] = StoreDataset(images, np.arange(len(images)), labels)
