"""Candidate films for a study: real ones from the test split, generated ones from the archive or the generator.

Both kinds are returned at one stored side, so the display step treats them identically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cxrsynth.data.patient_split import PatientSplit
from cxrsynth.data.store import ImageStore
from cxrsynth.errors import InputError
from cxrsynth.reader_study.design import Films
from cxrsynth.resize import pillow_resize
from cxrsynth.synthesis.archive_writer import read_archive


def real_films(store: str | Path, split_csv: str | Path, side: int) -> Films:
    """The real test split's films (patients no model trained on) at the stored level ``side``."""
    images = ImageStore(store)
    if side not in images.sizes:
        raise InputError(f"reader_study.resolution: {side} px is not a stored level of {store} "
                         f"(stored: {images.sizes})")
    table = PatientSplit.read(split_csv).store_rows(images.table, ("test",))
    return Films(images.read(side, table["row"].to_numpy()), table["image"].tolist())


def archive_films(archive: str | Path, side: int | None) -> Films:
    """The class-optimised archive's films, at ``side`` (None: as written)."""
    table, images = read_archive(archive, side)
    return Films(images, table["image"].tolist())


def sampled_films(gan_folder: str | Path, n: int, side: int | None, seed: int) -> Films:
    """``n`` fresh samples of the exported generator from plain N(0, 1) latents, at ``side`` (None:
    the generator's), resized with Pillow's box filter down or bilinear up as the archive reader does."""
    from cxrsynth.sampling import latents, load_generator, sample_images

    generator, config = load_generator(gan_folder)
    resolution = config.resolutions[-1]
    images = sample_images(generator, latents(n, config.z_dim, seed), resolution)[:, 0].numpy()
    if side is not None and side != resolution:
        images = np.stack([np.asarray(pillow_resize(Image.fromarray(im), side)) for im in images])
    return Films(images, [f"sample_{i:06d}" for i in range(n)])
