"""Sample images from a trained generator (the EMA weights): the API every later stage uses.

A GAN draws a film from a latent; the diffusion generator (``gan.arch`` ddpm | ldm) from its initial
noise, with the labels dropped, by the same call (``models.diffusion.ConditionalDiffusion``), so
``latents`` and ``sample_images`` serve both.

    python -m cxrsynth.sampling --gan data/gan/model --n 100 --out samples/ [--truncation 0.7]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from cxrsynth.config.gan import DIFFUSION_ARCHS
from cxrsynth.errors import MissingInputError
from cxrsynth.models.diffusion import DiffusionConfig, build_diffusion
from cxrsynth.models.gan import GANConfig, build_networks


def is_diffusion(config) -> bool:
    """Whether a loaded generator's config is the diffusion model's (no discriminator, no latent to optimise)."""
    return isinstance(config, DiffusionConfig)


def generator_arch(folder: str | Path) -> str:
    """The ``gan.arch`` an exported generator was trained as (pggan, dcgan, ddpm or ldm)."""
    path = Path(folder) / "config.json"
    if not path.exists():
        raise MissingInputError(f"{path}: no exported generator (rerun the train_gan stage)")
    return json.loads(path.read_text()).get("arch", "pggan")


def gan_only(stage: str, folder: str | Path) -> str | None:
    """Why ``stage`` does not apply to the generator exported in ``folder`` (None when it does): the
    stages that need a discriminator or a latent space skip a diffusion generator."""
    arch = generator_arch(folder)
    if arch in DIFFUSION_ARCHS:
        return f"gan.arch {arch}: {stage} needs a GAN (a discriminator or a latent space); a diffusion generator has neither"
    return None


def load_generator(folder: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module,
                                                                                     GANConfig | DiffusionConfig]:
    """The exported EMA generator in eval mode, and its configuration."""
    folder = Path(folder)
    raw = json.loads((folder / "config.json").read_text())
    if raw.get("arch") in DIFFUSION_ARCHS:
        config = DiffusionConfig(**raw)
        generator = build_diffusion(config)
    else:
        raw.pop("resolution", None)
        config = GANConfig(**raw)
        generator, _ = build_networks(config)
    generator.load_state_dict(torch.load(folder / "generator.pt", map_location=device, weights_only=True))
    return generator.to(device).eval(), config


def load_discriminator_state(folder: str | Path) -> dict[str, torch.Tensor]:
    """The trained discriminator's weights exported beside the generator."""
    path = Path(folder) / "discriminator.pt"
    if not path.exists() and (Path(folder) / "config.json").exists() and generator_arch(folder) in DIFFUSION_ARCHS:
        raise MissingInputError(f"{path}: a diffusion generator has no discriminator to re-purpose")
    if not path.exists():
        raise MissingInputError(f"{path}: no exported discriminator (rerun the train_gan stage)")
    return torch.load(path, map_location="cpu", weights_only=True)


def latents(n: int, z_dim: int, seed: int, truncation: float | None = None, device="cpu") -> torch.Tensor:
    """N(0, 1) latents; with ``truncation`` t, entries beyond |t| are redrawn (truncated normal)."""
    rng = torch.Generator(device=device).manual_seed(seed)
    z = torch.randn(n, z_dim, generator=rng, device=device)
    if truncation is not None:
        while (out := z.abs() > truncation).any():
            z[out] = torch.randn(int(out.sum()), generator=rng, device=device)
    return z


@torch.no_grad()
def sample_images(generator: torch.nn.Module, z: torch.Tensor, resolution: int, batch_size: int = 256,
                  progress: bool = False) -> torch.Tensor:
    """Generate one uint8 (N, 1, r, r) image per latent, in batches."""
    device = next(generator.parameters()).device
    out = []
    for i in tqdm(range(0, len(z), batch_size), desc="sample", unit="batch", disable=not progress):
        images = generator(z[i : i + batch_size].to(device), resolution, 1.0).float()
        out.append(((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu())
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description="Sample PNGs from a trained generator")
    parser.add_argument("--gan", type=Path, required=True, help="exported generator folder")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truncation", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    generator, config = load_generator(args.gan, args.device)
    z = latents(args.n, config.z_dim, args.seed, args.truncation, args.device)
    images = sample_images(generator, z, config.resolutions[-1], args.batch_size, progress=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images.numpy()[:, 0]):
        Image.fromarray(np.ascontiguousarray(image), "L").save(args.out / f"sample_{i:06d}.png")
    print(f"{len(images)} images -> {args.out}")


if __name__ == "__main__":
    main()
