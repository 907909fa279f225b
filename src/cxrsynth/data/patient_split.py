"""The patient split as one object: which image of the store is in train, val or test, and its FID half.

``split.csv`` (written by the ``split`` stage) lists every image with ``patient_id``, ``split``
(``train``/``val``/``test``, each patient in one) and ``fid_half`` (the Table 1 halves).
``PatientSplit`` reads it once, checks it, and joins it to a store's table in the two ways the
stages need:

- ``store_rows``: the stored images that have a split, in store order (an inner join), optionally
  only some subsets; what the classifier, FID, embedding and reader-study stages read;
- ``every_store_row``: every stored image with its split, sorted by ``row``, refusing a store
  image without one; what the privacy audit and the verifier read.

``choose_patients`` then takes whole patients of such a table up to a number of images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsynth.data.split import SPLITS
from cxrsynth.errors import InputError


class PatientSplit:
    """Each image's subset (``split``) and, when listed, its FID half (``fid_half``) and patient.

    ``frame`` needs ``image`` (unique) and ``split`` (values in ``SPLITS``); ``source`` names it in
    errors (the CSV's path)."""

    def __init__(self, frame: pd.DataFrame, source: str | Path = "split"):
        self.source = str(source)
        missing = [c for c in ("image", "split") if c not in frame.columns]
        if missing:
            raise InputError(f"{self.source}: no {' or '.join(missing)} column (a patient split lists image and split)")
        repeated = frame["image"].duplicated()
        if repeated.any():
            raise InputError(f"{self.source}: {int(repeated.sum())} images listed twice "
                             f"(e.g. {frame.loc[repeated, 'image'].iloc[0]})")
        names = frame["split"]
        unknown = sorted(set(names.dropna()) - set(SPLITS)) + (["(blank)"] if names.isna().any() else [])
        if unknown:
            raise InputError(f"{self.source}: unknown split name(s) {', '.join(map(str, unknown))} "
                             f"(expected {', '.join(SPLITS)})")
        self.frame = frame

    @classmethod
    def read(cls, path: str | Path) -> PatientSplit:
        """The split the ``split`` stage wrote to ``path`` (``split.csv``)."""
        return cls(pd.read_csv(path), path)

    def patients(self, name: str) -> np.ndarray:
        """The sorted unique patient IDs of subset ``name`` (InputError when the split lists no patients)."""
        if "patient_id" not in self.frame.columns:
            raise InputError(f"{self.source}: no patient_id column")
        return np.sort(self.frame.loc[self.frame["split"] == self._checked(name), "patient_id"].unique())

    def store_rows(self, store_table: pd.DataFrame, splits: Sequence[str] = SPLITS,
                   fid_half: bool = False) -> pd.DataFrame:
        """The stored images with a split, in store order: ``store_table``'s columns plus ``split``
        (and ``fid_half`` when asked), only those in ``splits``. Stored images the split does not
        list are left out (an inner join on ``image``); the index is the join's, filtered."""
        columns = ["image", "split", "fid_half"] if fid_half else ["image", "split"]
        if fid_half and "fid_half" not in self.frame.columns:
            raise InputError(f"{self.source}: no fid_half column (rerun the split stage)")
        table = store_table.merge(self.frame[columns], on="image", how="inner", validate="1:1")
        if tuple(splits) == SPLITS:
            return table
        return table[table["split"].isin([self._checked(name) for name in splits])]

    def every_store_row(self, store_table: pd.DataFrame) -> pd.DataFrame:
        """Every stored image with its ``split``, sorted by ``row`` (index 0..N-1); InputError when a
        stored image has no split."""
        table = store_table.merge(self.frame[["image", "split"]], on="image", how="left", validate="1:1")
        table = table.sort_values("row").reset_index(drop=True)
        if table["split"].isna().any():
            raise InputError(f"{self.source}: {int(table['split'].isna().sum())} stored images have no split")
        return table

    def _checked(self, name: str) -> str:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r} (expected one of {', '.join(SPLITS)})")
        return name


def choose_patients(table: pd.DataFrame, n_images: int | None, seed: int) -> pd.DataFrame:
    """Whole patients of ``table`` in random order (``seed``) until ``n_images`` images are reached
    (all when None or when the table has no more); rows keep ``table``'s order."""
    if n_images is None or n_images >= len(table):
        return table
    patients = table["patient_id"].drop_duplicates().sample(frac=1.0, random_state=seed)
    sizes = table.groupby("patient_id").size().reindex(patients)
    keep = patients[(sizes.cumsum() - sizes).to_numpy() < n_images]
    return table[table["patient_id"].isin(keep)]
