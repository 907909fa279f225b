"""What one film costs a generator, counted rather than timed: GFLOP and network evaluations per film.

Counted on PyTorch's meta device (shapes only, no arithmetic), so the figure is the same on every
machine and every run, and can sit in a metrics file that DVC compares bit for bit. The seconds a
film takes on a given machine are measured by ``benchmarks/diffusion_cost.py`` and kept in the stages'
timings files, which are not compared.
"""

from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode

from cxrsynth.models.diffusion import ConditionalDiffusion


def film_cost(generator: torch.nn.Module, z_dim: int, resolution: int) -> dict:
    """``{"gflop_per_film", "evaluations_per_film", "parameters"}`` of drawing one film: one G(z) for a GAN;
    for the diffusion model its guided DDIM (two UNet evaluations a step) and, for ldm, the decoder."""
    meta = copy.deepcopy(generator).to("meta")
    z = torch.zeros(1, z_dim, device="meta")
    counter = FlopCounterMode(display=False)
    if isinstance(meta, ConditionalDiffusion):
        c = meta.config
        x = torch.zeros(2, *c.latent_shape, device="meta")  # conditional and unconditional halves
        context = torch.zeros(2, 15, c.label_dim, device="meta")
        with torch.no_grad(), counter:
            meta.unet(x, torch.zeros(2, dtype=torch.long, device="meta"), context=context)
        unet = counter.get_total_flops()
        decode = 0
        if meta.autoencoder is not None:
            counter = FlopCounterMode(display=False)
            with torch.no_grad(), counter:
                meta.autoencoder.decode(x[:1])
            decode = counter.get_total_flops()
        flops, evaluations = c.sample_steps * unet + decode, 2 * c.sample_steps
    else:
        with torch.no_grad(), counter:
            meta(z, resolution, 1.0)
        flops, evaluations = counter.get_total_flops(), 1
    return {"gflop_per_film": round(flops / 1e9, 3), "evaluations_per_film": evaluations,
            "parameters": sum(p.numel() for p in generator.parameters())}
