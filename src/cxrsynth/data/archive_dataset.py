"""``ArchiveDataset``: a map-style torch ``Dataset`` over a synthetic archive, read in place.

    from cxrsynth.data.archive_dataset import ArchiveDataset

    data = ArchiveDataset("data/archive")      # torchxrayvision's 14 pathologies and pixel scale
    data[0]  # {"idx", "img": (1, H, W) float32, "lab": (14,) float32, "patientid", "image_index", "view"}
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True, num_workers=4)

The shards are never extracted. On construction each tar's headers are read once
(``data.shards.index_shards``: member -> byte range); a film is then one positioned read of its
PNG from a file handle that each process opens for itself on first use, so DataLoader workers
(forked or spawned) never share a file position. Labels come from ``Data_Entry_synthetic.csv``,
the archive's source of truth, read by the project's metadata reader; the shards' JSON records
(for WebDataset) repeat them and are not read here.

Samples follow torchxrayvision's datasets: ``img`` is a float32 numpy array (1, H, W), by default
on torchxrayvision's scale, [0, 255] mapped to [-1024, 1024] (``scale="xrv"``, what its models
take; ``"unit"`` gives [0, 1], ``"symmetric"`` [-1, 1] as this project's networks take); ``lab``
is float32 multi-hot over ``.pathologies``; ``transform`` is applied to ``img``. ``.csv`` is the
archive's CSV (NIH's columns) plus torchxrayvision's ``patientid`` and ``view`` columns, and
``.labels`` the (N, L) label array, rows in the CSV's order.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from PIL import Image
from torch.utils.data import Dataset

from cxrsynth.data.metadata import read_data_entry
from cxrsynth.data.shards import ARCHIVE_CSV, index_shards
from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.labels import FINDINGS, LABELS

#: Named label sets: torchxrayvision's NIH_Dataset pathologies (its 14, sorted: our FINDINGS), or all 15.
PATHOLOGY_SETS: dict[str, tuple[str, ...]] = {"torchxrayvision": FINDINGS, "cxrsynth": LABELS}


def xrv_scale(pixels: np.ndarray) -> np.ndarray:
    """uint8 -> float32 [-1024, 1024], exactly torchxrayvision's ``utils.normalize(img, 255)``."""
    return (2 * (pixels.astype(np.float32) / 255) - 1.0) * 1024


def unit_scale(pixels: np.ndarray) -> np.ndarray:
    """uint8 -> float32 [0, 1]."""
    return pixels.astype(np.float32) / 255


def symmetric_scale(pixels: np.ndarray) -> np.ndarray:
    """uint8 -> float32 [-1, 1], as this project's generator and classifiers take."""
    return pixels.astype(np.float32) / 127.5 - 1.0


#: The ``scale`` argument's choices.
SCALES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"xrv": xrv_scale, "unit": unit_scale,
                                                         "symmetric": symmetric_scale}


def _choose_pathologies(pathologies: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(pathologies, str):
        if pathologies not in PATHOLOGY_SETS:
            raise InputError(f"ArchiveDataset: pathologies={pathologies!r}; expected one of "
                             f"{sorted(PATHOLOGY_SETS)} or a list of label names")
        return PATHOLOGY_SETS[pathologies]
    unknown = [name for name in pathologies if name not in LABELS]
    if unknown or not pathologies:
        raise InputError(f"ArchiveDataset: unknown pathologies {unknown}; expected names from {list(LABELS)}")
    return tuple(pathologies)


def _pread(file: BinaryIO, size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset``: one positioned read where the OS has one (no shared file position)."""
    if hasattr(os, "pread"):
        return os.pread(file.fileno(), size, offset)
    file.seek(offset)
    return file.read(size)


class ArchiveDataset(Dataset):
    """The films of a synthetic archive folder (``images_NNN.tar`` + ``Data_Entry_synthetic.csv``)."""

    def __init__(self, folder: str | Path, pathologies: str | Sequence[str] = "torchxrayvision",
                 scale: str = "xrv", transform: Callable[[np.ndarray], Any] | None = None):
        folder = Path(folder)
        csv_path = folder / ARCHIVE_CSV
        if not folder.is_dir():
            raise MissingInputError(f"{folder}: archive folder not found")
        if not csv_path.is_file():
            raise MissingInputError(f"{folder}: no {ARCHIVE_CSV}: not a synthetic archive "
                                    "(the archive stage writes one)")
        if scale not in SCALES:
            raise InputError(f"ArchiveDataset: scale={scale!r}; expected one of {sorted(SCALES)}")
        self.folder, self.transform, self.scale = folder, transform, scale
        self.pathologies = list(_choose_pathologies(pathologies))

        clean, report = read_data_entry(csv_path)
        if report.rejects:
            line, image, reason = report.rejects[0]
            raise InputError(f"{csv_path}: line {line} ({image}): {reason}")
        self.csv = pd.read_csv(csv_path)
        if self.csv["Image Index"].tolist() != clean["image"].tolist():
            raise InputError(f"{csv_path}: pandas and the metadata reader disagree on its rows")
        self.csv["patientid"] = self.csv["Patient ID"].astype(str)
        self.csv["view"] = [v if isinstance(v, str) and v else "UNKNOWN" for v in self.csv["View Position"]]
        self.labels = clean[self.pathologies].to_numpy(dtype=np.float32)

        members = {Path(name).name: m for name, m in index_shards(folder).items() if name.endswith(".png")}
        missing = [name for name in clean["image"] if name not in members]
        if missing:
            raise MissingInputError(f"{folder}: {len(missing)} of {len(clean)} images listed in {ARCHIVE_CSV} are "
                                    f"not in its shards (first: {missing[0]})")
        found = [members[name] for name in clean["image"]]
        self.shards = sorted({m.shard for m in found})
        number = {path: k for k, path in enumerate(self.shards)}
        self._shard = np.asarray([number[m.shard] for m in found], dtype=np.int32)
        self._offset = np.asarray([m.offset for m in found], dtype=np.int64)
        self._size = np.asarray([m.size for m in found], dtype=np.int64)
        self._image_index = clean["image"].tolist()
        self._patientid = self.csv["patientid"].tolist()
        self._view = self.csv["view"].tolist()
        self._files: dict[int, BinaryIO] = {}
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"ArchiveDataset({str(self.folder)!r}, {len(self)} films in {len(self.shards)} shards, "
                f"{len(self.pathologies)} pathologies)")

    def png_bytes(self, idx: int) -> bytes:
        """The film's PNG exactly as stored in its shard."""
        if self._pid != os.getpid():  # a new process (a forked DataLoader worker): its own handles
            self.close()  # this process's copies of the handles it inherited
            self._pid = os.getpid()
        k = int(self._shard[idx])
        if k not in self._files:
            self._files[k] = open(self.shards[k], "rb", buffering=0)  # kept open until close()
        size = int(self._size[idx])
        data = _pread(self._files[k], size, int(self._offset[idx]))
        if len(data) != size:
            raise InputError(f"{self.shards[k]}: {self._image_index[idx]} is cut short "
                             "(the shard changed after it was indexed)")
        return data

    def pixels(self, idx: int) -> np.ndarray:
        """The film as uint8 (H, W)."""
        with Image.open(io.BytesIO(self.png_bytes(idx))) as image:
            return np.asarray(image if image.mode == "L" else image.convert("L"))

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if not -len(self) <= idx < len(self):
            raise IndexError(f"ArchiveDataset: index {idx} out of range for {len(self)} films")
        idx = idx % len(self)
        img = SCALES[self.scale](self.pixels(idx))[None]
        if self.transform is not None:
            img = self.transform(img)
        return {"idx": idx, "img": img, "lab": self.labels[idx], "patientid": self._patientid[idx],
                "image_index": self._image_index[idx], "view": self._view[idx]}

    def close(self) -> None:
        """Close the shard handles this process holds (reopened on the next read)."""
        for file in self._files.values():
            file.close()
        self._files = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"], state["_pid"] = {}, None  # handles stay with their process
        return state

    def __del__(self) -> None:
        if getattr(self, "_pid", None) == os.getpid():
            self.close()
