"""A row of the baselines table: the measurements a stage writes to ``metrics/baselines/<name>.json``,
and the samples it judged, for a baseline system and for the main pipeline's PGGAN (``PGGAN_ROWS``
of ``compare``: its plain samples and the class-optimised archive's films)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from cxrsynth.labels import LABELS

if TYPE_CHECKING:
    from cxrsynth.baselines.train import SystemRun


def save_samples(path: str | os.PathLike, images: np.ndarray, conditions: np.ndarray | None) -> None:
    """``images`` (uint8 (N, r, r)) and, where the row set them, their labels (``conditions``, (N, 15))
    in one compressed ``.npz``."""
    np.savez_compressed(path, images=images, **({} if conditions is None else {"conditions": conditions}))


def system_row(name: str, system, common, run: SystemRun, measured: dict, memory: dict[str, int]) -> dict:
    """The row of baseline system ``name``: what it is (``system``, a ``SystemParams``; ``common``), how its
    training went (``run``), the judge's ``measured`` values and one training step's ``memory`` in bytes."""
    stats = run.d_loss_stats()
    return {
        "system": name, "paper": system.paper, "model": system.model, "loss": system.loss,
        "optimiser": system.optimiser, "ttur": system.lr_g != system.lr_d, "activation": system.activation,
        "resolution": common.resolution, "images_shown": int(sum(m.images_seen for m in run.modules.values())),
        "generators": len(run.modules), "train_images": run.train_images, "skipped_labels": run.skipped,
        **measured,
        "d_loss": None if stats is None else {k: round(v, 6) if isinstance(v, float) else v for k, v in stats.items()},
        "training_memory_mib": {k: round(v / 2**20, 2) for k, v in memory.items()},
    }


def pggan_samples(gan_dir, n: int, seed: int, device) -> np.ndarray:
    """``n`` plain samples (uint8 (N, r, r)) of the main pipeline's exported generator, from latents of ``seed``."""
    from cxrsynth.sampling import latents, load_generator, sample_images

    generator, gan = load_generator(gan_dir, device)
    z = latents(n, gan.z_dim, seed, device=device)
    return sample_images(generator, z, gan.resolutions[-1], progress=True)[:, 0].numpy()


def archive_sample(archive_dir, resolution: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` films of the class-optimised archive at ``resolution`` (a seeded choice, in archive order) and
    the labels the archive carries for them: (uint8 (N, r, r), uint8 (N, 15))."""
    from cxrsynth.synthesis.archive_writer import read_archive

    table, images = read_archive(archive_dir, resolution)
    pick = np.sort(np.random.default_rng(seed).permutation(len(table))[:n])
    return images[pick], table[list(LABELS)].to_numpy(dtype=np.uint8)[pick]


def pggan_row(name: str, gan_metrics: dict, resolution: int, measured: dict, archive_labels: bool) -> dict:
    """The row of a PGGAN row ``name``: what the PGGAN is, its training numbers from the main pipeline's
    ``gan_metrics`` (metrics/gan.json), and the judge's ``measured`` values; ``archive_labels``: the
    GAN-train classifier learned the labels the archive carries."""
    if archive_labels:
        measured = {**measured, "gan_train_labels": "archive"}
    return {"system": name, "paper": "001", "model": "pggan", "loss": "wgan_gp", "optimiser": "adam", "ttur": False,
            "activation": "leaky_relu", "resolution": resolution, "images_shown": gan_metrics["images_shown"],
            "generators": 1, "d_loss": gan_metrics["d_loss"], "training_memory_mib": None, **measured}
