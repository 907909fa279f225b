"""The embedding baseline of Table 2: an encoder E ≈ G^-1 and real images regenerated through it.

E is the trained discriminator with its last layer replaced by a z-sized head, trained on
fresh generator samples to predict their latents (mean squared error), as in paper 001
section 4.5. Real training images x are then replaced by G(E(x)) and keep their labels.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from cxrsynth.models.classifier import normalise
from cxrsynth.sampling import sample_images


def _encoder_input(images_gan_scale: torch.Tensor) -> torch.Tensor:
    return normalise(((images_gan_scale + 1.0) * 0.5).clamp(0.0, 1.0))


def train_encoder(encoder: torch.nn.Module, generator: torch.nn.Module, resolution: int, n_images: int,
                  batch_size: int, lr: float, seed: int) -> list[float]:
    """Fit ``encoder`` to map G(z) back to z on ``n_images`` fresh samples; returns the loss per step."""
    device = next(generator.parameters()).device
    generator.eval().requires_grad_(False)
    encoder.train()
    optimiser = torch.optim.Adam(encoder.parameters(), lr=lr)
    rng = torch.Generator(device=device).manual_seed(seed)
    losses = []
    steps = max(1, n_images // batch_size)
    for _ in tqdm(range(steps), desc="train encoder", unit="step"):
        z = torch.randn(batch_size, generator.z_dim, generator=rng, device=device)
        with torch.no_grad():
            x = generator(z, resolution, 1.0)
        loss = torch.nn.functional.mse_loss(encoder(_encoder_input(x)), z)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.detach())
    encoder.eval()
    return torch.stack(losses).cpu().tolist()


@torch.no_grad()
def latent_error(encoder: torch.nn.Module, generator: torch.nn.Module, resolution: int, n: int, seed: int) -> dict:
    """Held-out check on new samples: latent MSE and cosine similarity of E(G(z)) to z."""
    device = next(generator.parameters()).device
    z = torch.randn(n, generator.z_dim, generator=torch.Generator(device=device).manual_seed(seed), device=device)
    predicted = encoder(_encoder_input(generator(z, resolution, 1.0)))
    return {
        "latent_mse": float(torch.nn.functional.mse_loss(predicted, z)),
        "latent_cosine": float(torch.nn.functional.cosine_similarity(predicted, z).mean()),
    }


@torch.no_grad()
def embed_images(encoder: torch.nn.Module, generator: torch.nn.Module, resolution: int, images: np.ndarray,
                 batch_size: int = 256) -> np.ndarray:
    """Regenerate uint8 (N, r, r) real images as G(E(x)), uint8 (N, r, r)."""
    device = next(generator.parameters()).device
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="embed images", unit="batch"):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).unsqueeze(1).to(device)
        z = encoder(normalise(x.float() / 255.0))
        out.append(sample_images(generator, z, resolution, batch_size)[:, 0].numpy())
    return np.concatenate(out) if out else np.zeros((0, resolution, resolution), np.uint8)
