"""Run the diffusion generator's training through ``gan_fit`` (checkpoints, run key, resume) and export it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from cxrsynth.labels import LABELS
from cxrsynth.models.cost import film_cost
from cxrsynth.models.diffusion import DiffusionConfig, config_dict
from cxrsynth.training.diffusion_module import DiffusionModule
from cxrsynth.training.gan_fit import GANFit, fit_gan


def fit_diffusion(store_dir: Path, config: DiffusionConfig, checkpoint_dir: Path, checkpoint_every: int,
                  trainer_kwargs: dict | None = None, live_dir: Path | None = None, memory_limit_gib: float = 4.0,
                  keep_checkpoints: int = 3, resume_from: str | None = None) -> GANFit:
    """Train (resume, or reload when finished) the diffusion model on every listed image of the store,
    the images the GAN trains on, conditioned on their labels; as ``fit_gan`` otherwise."""

    def attach(module: DiffusionModule, store) -> None:
        table = store.table.sort_values("row")  # the pool's order: ascending store rows
        module.attach_labels(table[list(LABELS)].to_numpy(dtype=np.float32))

    return fit_gan(store_dir, config, checkpoint_dir, checkpoint_every, trainer_kwargs, live_dir, memory_limit_gib,
                   module_class=DiffusionModule, prepare=attach, keep_checkpoints=keep_checkpoints,
                   resume_from=resume_from)


def export_diffusion(module: DiffusionModule, out_dir: Path, samples_dir: Path | None = None) -> None:
    """Write the EMA model (``generator.pt``, weights_only-loadable), its ``config.json`` and a copy of the
    phase grids: what ``sampling.load_generator`` reads. There is no discriminator to export."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if samples_dir is not None and samples_dir.exists():
        shutil.copytree(samples_dir, out_dir / "samples", dirs_exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.ema.state_dict().items()}
    torch.save(state, out_dir / "generator.pt")
    (out_dir / "config.json").write_text(json.dumps(config_dict(module.config), indent=2) + "\n")


def diffusion_metrics(fit: GANFit) -> dict:
    """What ``metrics/gan.json`` records of a diffusion run: its phases, final losses and settings."""
    module, c = fit.module, fit.module.config
    return {
        "arch": c.arch,
        "resolution": c.resolution,
        "images_shown": module.images_seen,
        "processes": fit.processes,
        "batch_per_process": {p.name: p.batch_size // fit.processes for p in module.schedule.phases},
        "memory_mapped_levels": fit.memory_mapped,
        "final_loss": {k: round(v, 5) for k, v in module.last_losses.items()},
        "parameters": {name: sum(p.numel() for p in part.parameters()) for name, part in
                       (("unet", module.ema.unet), ("autoencoder", module.ema.autoencoder)) if part is not None},
        "latent_shape": list(c.latent_shape),
        "sampler": {"kind": "DDIM", "steps": c.sample_steps, "guidance": c.guidance, "p_uncond": c.p_uncond},
        "phases": module.finished_phases,
        "resumed_from": module.resumed_from,
        "film_cost": film_cost(module.ema, c.z_dim, c.resolution),  # counted, not timed
    }
