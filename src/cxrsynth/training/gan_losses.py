"""GAN objectives: WGAN-GP with drift (PGGAN) and the non-saturating BCE game (DCGAN)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (||grad critic(x_hat)|| - 1)^2 at x_hat = eps * real + (1 - eps) * fake, and the
    critic's output there. ``eps`` is (N, 1, 1, 1) uniform. The norm is taken in float32."""
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    score = critic(x_hat)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    norm = grad.float().flatten(1).norm(dim=1)
    return (norm - 1).pow(2), score


def wgan_gp_d_loss(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                   eps: torch.Tensor, gp_lambda: float = 10.0, drift: float = 0.001) -> dict[str, torch.Tensor]:
    """D minimises D(fake) - D(real) + lambda * GP + drift * D(real)^2 (batch means)."""
    d_real = critic(real).float()
    d_fake = critic(fake.detach()).float()
    penalty, _ = gradient_penalty(critic, real, fake.detach(), eps)
    wasserstein = d_fake.mean() - d_real.mean()
    loss = wasserstein + gp_lambda * penalty.mean() + drift * d_real.pow(2).mean()
    return {"loss": loss, "wasserstein": wasserstein.detach(), "gp": penalty.mean().detach(),
            "d_real": d_real.mean().detach()}


def wgan_g_loss(critic_on_fake: torch.Tensor) -> torch.Tensor:
    """G minimises -D(G(z))."""
    return -critic_on_fake.float().mean()


def bce_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """The DCGAN discriminator's -[log D(x) + log(1 - D(G(z)))], from logits."""
    real = F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
    fake = F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
    return real + fake


def bce_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -log D(G(z)), from logits."""
    return F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))
