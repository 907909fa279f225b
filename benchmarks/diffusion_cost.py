"""What a film costs from each generator: measured on this machine at the demo's size, computed at full scale.

Part 1 times sampling on this machine, at the demo's settings (params/base.yaml): the PGGAN's G(z) against
the diffusion model's guided DDIM (sample_steps UNet evaluations, two per step with classifier-free
guidance). It prints images per second for each, their ratio, and the seconds an archive of
archive.size films takes to draw once (the archive stage draws more: rejected draws, the oversampled
candidates and the pilot; metrics/timings/archive.json has what a run took).

Part 2 computes, on the meta device (no arithmetic is done), the full-scale settings of
params/profile/nih.yaml: the GFLOP of one film (UNet evaluations, then the autoencoder's decoder), the
parameters, and the activations a training step keeps per image (the autograd graph's saved tensors:
bf16, so 2 bytes an entry), for the latent diffusion model at 1024 px and the PGGAN's generator at 1024
px. From the GFLOP it gives the seconds per film at a stated share of an H100's dense bf16 peak.

    python benchmarks/diffusion_cost.py [--n 64] [--skip-measure]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from cxrsynth.config.gan import GANParams
from cxrsynth.models.diffusion import ConditionalDiffusion, diffusion_config
from cxrsynth.models.gan import build_networks, gan_config

ROOT = Path(__file__).parents[1]
H100_BF16_TFLOPS = 989.0  # dense bf16 peak of an H100 SXM
SUSTAINED = 0.4  # the share of peak a well-fed convolutional network sustains (stated, not measured here)


def gan_params(profile: str | None, arch: str) -> GANParams:
    """The ``gan`` section of params/base.yaml, with a profile's values over it."""
    base = OmegaConf.to_container(OmegaConf.load(ROOT / "params" / "base.yaml"))["gan"]
    if profile:
        over = OmegaConf.to_container(OmegaConf.load(ROOT / "params" / "profile" / f"{profile}.yaml")).get("gan", {})
        base = OmegaConf.to_container(OmegaConf.merge(base, over))
    return GANParams(**{**base, "arch": arch})


def images_per_second(sample, n: int, batch: int) -> float:
    sample(min(batch, n))  # warm-up
    start = time.perf_counter()
    for i in range(0, n, batch):
        sample(min(batch, n - i))
    return n / (time.perf_counter() - start)


def measure(n: int, archive_size: int) -> None:
    torch.manual_seed(0)
    gan = gan_params(None, "pggan")
    pggan, _ = build_networks(gan_config(gan))
    pggan.eval()
    res = gan.resolution
    model = ConditionalDiffusion(diffusion_config(gan_params(None, "ddpm"))).eval()
    labels = torch.zeros(n, 15)
    labels[:, 0] = 1
    rates = {}
    with torch.no_grad():
        gan_rate = images_per_second(lambda k: pggan(torch.randn(k, gan.z_dim), res, 1.0), n, 64)
        for dtype in ("float32", "bfloat16"):  # gan.diffusion.sample_dtype
            model.config.sample_dtype = dtype
            rates[dtype] = images_per_second(lambda k: model.sample(torch.randn(k, model.config.z_dim), labels[:k]),
                                             n, 64)
    print(f"sampling on this machine ({torch.get_num_threads()} threads), demo settings:")
    print(f"  PGGAN G(z) at {res} px: {gan_rate:.1f} images/s; {archive_size / gan_rate:.1f} s per {archive_size} films")
    for dtype, rate in rates.items():
        print(f"  diffusion (DDIM {model.config.sample_steps} steps, guided, UNet in {dtype}) at {res} px: "
              f"{rate:.2f} images/s; {archive_size / rate:.1f} s per {archive_size} films")
    diff_rate = rates["bfloat16"]
    print(f"  ratio: bfloat16 draws {diff_rate / rates['float32']:.2f}x as many films per second as float32; the PGGAN "
          f"{gan_rate / diff_rate:.0f}x as many as bfloat16")


def meta_cost(module: torch.nn.Module, run) -> tuple[float, int, float]:
    """(GFLOP of ``run()``, parameters, MiB of saved activations of a training forward) on the meta device."""
    flops = FlopCounterMode(display=False)
    with torch.no_grad(), flops:
        run(grad=False)
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * 2  # bf16
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run(grad=True)
    return flops.get_total_flops() / 1e9, sum(p.numel() for p in module.parameters()), saved[0] / 2**20


def full_scale() -> None:
    params = gan_params("nih", "ldm")
    with torch.device("meta"):
        model = ConditionalDiffusion(diffusion_config(params))
    c = model.config
    latent = torch.zeros(1, *c.latent_shape, device="meta")
    tokens = torch.zeros(1, 15, c.label_dim, device="meta")
    t = torch.zeros(1, dtype=torch.long, device="meta")

    def unet(grad):
        with torch.set_grad_enabled(grad):
            model.unet(latent.requires_grad_(grad), t, context=tokens)

    def decode(grad):
        with torch.set_grad_enabled(grad):
            model.autoencoder.decode(latent)

    def encode(grad):
        with torch.set_grad_enabled(grad):
            model.autoencoder.encode(torch.zeros(1, 1, c.resolution, c.resolution, device="meta"))

    unet_gflop, unet_params, unet_mib = meta_cost(model.unet, unet)
    dec_gflop, ae_params, _ = meta_cost(model.autoencoder, decode)
    enc_gflop, _, ae_mib = meta_cost(model.autoencoder, encode)
    per_film = 2 * c.sample_steps * unet_gflop + dec_gflop
    seconds = per_film / (H100_BF16_TFLOPS * 1e3 * SUSTAINED)
    print(f"latent diffusion at {c.resolution} px (params/profile/nih.yaml), latent {c.latent_shape}:")
    print(f"  UNet: {unet_params / 1e6:.1f} M parameters, {unet_gflop:.1f} GFLOP per evaluation, "
          f"{unet_mib:.0f} MiB of activations per training image (bf16)")
    print(f"  autoencoder: {ae_params / 1e6:.1f} M parameters, encoder {enc_gflop:.0f} GFLOP, decoder "
          f"{dec_gflop:.0f} GFLOP per film, {ae_mib:.0f} MiB of activations per training image (bf16)")
    print(f"  one film: {2 * c.sample_steps} UNet evaluations ({c.sample_steps} DDIM steps, guided) + a decode = "
          f"{per_film:.0f} GFLOP, {seconds * 1e3:.1f} ms on an H100 at {SUSTAINED:.0%} of its bf16 peak; "
          f"{112_120 * seconds / 3600:.2f} h for an archive of NIH's size")
    gan = gan_params("nih", "pggan")
    with torch.device("meta"):
        generator, _ = build_networks(gan_config(gan))
    z = torch.zeros(1, gan.z_dim, device="meta")

    def g(grad):
        with torch.set_grad_enabled(grad):
            generator(z, gan.resolution, 1.0)

    g_gflop, g_params, g_mib = meta_cost(generator, g)
    g_seconds = g_gflop / (H100_BF16_TFLOPS * 1e3 * SUSTAINED)
    print(f"PGGAN generator at {gan.resolution} px: {g_params / 1e6:.1f} M parameters, {g_gflop:.0f} GFLOP per film "
          f"({g_seconds * 1e3:.2f} ms), {g_mib:.0f} MiB of activations per training image (bf16)")
    print(f"  a diffusion film costs {per_film / g_gflop:.0f}x a PGGAN film")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="films drawn per generator in part 1")
    parser.add_argument("--skip-measure", action="store_true", help="part 2 only")
    args = parser.parse_args()
    archive_size = OmegaConf.load(ROOT / "params" / "base.yaml")["archive"]["size"]
    if not args.skip_measure:
        measure(args.n, archive_size)
    full_scale()


if __name__ == "__main__":
    main()
