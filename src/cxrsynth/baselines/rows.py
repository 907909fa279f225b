"""A row of the baselines table: the measurements a stage writes to ``metrics/baselines/<name>.json``,
and the samples it judged, for a baseline system and for the main pipeline's generator (``main_rows``
of ``compare``: ``<gan.arch>``, its samples, and ``<gan.arch>_archive``, the archive's films)."""

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


def pggan_samples(gan_dir, n: int, seed: int, device, store_table=None) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` samples (uint8 (N, r, r)) of the main pipeline's exported generator, from latents (or initial
    noise) of ``seed``, and the labels they were drawn with: None for a GAN's plain samples; for the
    diffusion generator, labels of ``n`` random films of ``store_table`` (the source's mix), each sample
    drawn conditioned on its labels with guidance and no privacy filter (as ``cgan`` is judged)."""
    import torch

    from cxrsynth.models.diffusion import sample_batches
    from cxrsynth.sampling import is_diffusion, latents, load_generator, sample_images

    generator, gan = load_generator(gan_dir, device)
    z = latents(n, gan.z_dim, seed, device=device)
    if not is_diffusion(gan):
        return sample_images(generator, z, gan.resolutions[-1], progress=True)[:, 0].numpy(), None
    pool = store_table[list(LABELS)].to_numpy(dtype=np.float32)
    conditions = pool[np.random.default_rng(seed).integers(len(pool), size=n)]
    images = sample_batches(generator, z, torch.from_numpy(conditions), progress=True)
    return images[:, 0].numpy(), conditions.astype(np.uint8)


def archive_sample(archive_dir, resolution: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` films of the class-optimised archive at ``resolution`` (a seeded choice, in archive order) and
    the labels the archive carries for them: (uint8 (N, r, r), uint8 (N, 15))."""
    from cxrsynth.synthesis.archive_writer import read_archive

    table, images = read_archive(archive_dir, resolution)
    pick = np.sort(np.random.default_rng(seed).permutation(len(table))[:n])
    return images[pick], table[list(LABELS)].to_numpy(dtype=np.uint8)[pick]


#: what the main pipeline's generator is, by ``gan.arch``: (model, loss, optimiser, activation)
MAIN_MODELS = {"pggan": ("pggan", "wgan_gp", "adam", "leaky_relu"), "dcgan": ("dcgan", "bce", "adam", "relu"),
               "ddpm": ("monai_unet", "eps_mse", "adamw", "silu"), "ldm": ("monai_unet+autoencoder_kl", "eps_mse",
                                                                            "adamw", "silu")}


def main_row_names(arch: str) -> tuple[str, str]:
    """The two rows of the main pipeline's generator: its samples, and its archive's films."""
    return arch, f"{arch}_archive"


def pggan_row(name: str, gan_metrics: dict, resolution: int, measured: dict, archive_labels: bool) -> dict:
    """The row ``name`` of the main pipeline's generator: what it is (``gan_metrics["arch"]``), its training
    numbers from ``gan_metrics`` (metrics/gan.json: D-loss statistics for a GAN, the cost of a film) and
    the judge's ``measured`` values; ``archive_labels``: the GAN-train classifier learned the labels the
    archive carries."""
    if archive_labels:
        measured = {**measured, "gan_train_labels": "archive"}
    arch = gan_metrics.get("arch", "pggan")
    model, loss, optimiser, activation = MAIN_MODELS[arch]
    return {"system": name, "paper": "001" if arch in ("pggan", "dcgan") else "diffusion", "model": model,
            "loss": loss, "optimiser": optimiser, "ttur": False, "activation": activation, "resolution": resolution,
            "images_shown": gan_metrics["images_shown"], "generators": 1, "d_loss": gan_metrics.get("d_loss"),
            "training_memory_mib": None, "film_cost": gan_metrics.get("film_cost"), **measured}
