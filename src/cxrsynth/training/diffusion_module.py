"""Lightning module for the class-conditional diffusion generator (``gan.arch`` ddpm | ldm).

It is a ``GANModule`` so that the GAN's machinery trains it unchanged: one checkpoint per
interval of images shown, exact resume (images shown, the batch and noise generators and the EMA
are all in the checkpoint), the run key, DVCLive curves and phase-end sample grids. What differs
is the game: one optimiser step on the denoising loss per training step (and, for ``ldm``, a
first phase that trains the autoencoder on L1 reconstruction plus a small KL term). The labels
of each real batch are drawn with it, so the conditions follow the source's label mix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from cxrsynth.models.diffusion import DiffusionConfig, build_diffusion
from cxrsynth.training.ema import update_ema, warmup_decay
from cxrsynth.training.gan_module import GANModule, NonFiniteLossError


@dataclass(frozen=True)
class DiffusionPhase:
    """One network's training: its name, first image, images and global batch."""

    name: str
    resolution: int
    start: int
    length: int
    batch_size: int
    fading: bool = False


class DiffusionSchedule:
    """Images shown → phase (``autoencoder`` then ``diffusion``), as ``ProgressiveSchedule`` answers it."""

    def __init__(self, config: DiffusionConfig):
        self.phases, start = [], 0
        for name, images in config.phases():
            self.phases.append(DiffusionPhase(name, config.resolution, start, images, config.batch_size))
            start += images
        self.total_images = start

    def phase_at(self, images_seen: int) -> DiffusionPhase:
        for phase in self.phases:
            if images_seen < phase.start + phase.length:
                return phase
        return self.phases[-1]

    def at(self, images_seen: int) -> tuple[DiffusionPhase, float]:
        return self.phase_at(images_seen), 1.0


class _NoDiscriminator(torch.nn.Module):
    """Stands where a GAN's discriminator would: a diffusion run has none to export or re-purpose."""


class DiffusionModule(GANModule):
    """Trains ``ConditionalDiffusion``; ``generator`` is the model, ``ema`` its moving average (sampled)."""

    config_class = DiffusionConfig

    def __init__(self, config: dict):
        super().__init__(config)
        self.schedule = DiffusionSchedule(self.config)
        self.pool_labels: torch.Tensor | None = None
        self._latents_ready: bool | None = None  # read once from latent_scale (a checkpoint restores it)

    def build_networks(self):
        return build_diffusion(self.config), _NoDiscriminator()

    def attach_labels(self, labels: np.ndarray) -> None:
        """The (N, 15) multi-hot labels of the training images, in the pool's order (ascending store rows)."""
        self.pool_labels = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32))

    def configure_optimizers(self):
        model, c = self.generator, self.config
        unet = [*model.unet.parameters(), *model.tokens.parameters()]
        optimisers = [torch.optim.AdamW(unet, lr=c.lr, weight_decay=0.0)]
        if model.autoencoder is not None:
            optimisers.append(torch.optim.Adam(model.autoencoder.parameters(), lr=c.ae_lr))
        return optimisers

    def training_step(self, batch, batch_idx):
        c, model = self.config, self.generator
        phase, _ = self.schedule.at(self.images_seen)
        size = self.batch_per_process(phase.batch_size)
        real, index = self._real_batch_at(c.resolution, size)
        optimisers = self.optimizers()
        optimisers = optimisers if isinstance(optimisers, list) else [optimisers]
        if phase.name == "autoencoder":
            optimiser = optimisers[1]
            reconstruction, z_mu, z_sigma = model.autoencoder(real)
            kl = 0.5 * (z_mu.pow(2) + z_sigma.pow(2) - torch.log(z_sigma.pow(2) + 1e-12) - 1).flatten(1).sum(1).mean()
            loss = (reconstruction - real).abs().mean() + c.ae_kl_weight * kl
        else:
            optimiser = optimisers[0]
            if model.autoencoder is not None and not self._latents_ready:
                if self._latents_ready is None:  # the one host sync: a resumed run has its scale already
                    self._latents_ready = bool(model.latent_scale.item() != 1.0)
                if not self._latents_ready:
                    self._start_latent_phase(real)
            labels = self.pool_labels[index].to(self.device)
            with torch.no_grad():
                x0 = model.to_latent(real)
            loss = model.denoising_loss(x0, labels, self._noise())
        optimiser.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimiser.step()
        update_ema(self.ema, self.generator, warmup_decay(c.ema_decay, self.ema_updates))
        self.ema_updates += 1
        self.images_seen += phase.batch_size
        zero = torch.zeros((), device=self.device)
        if phase.name == "autoencoder":
            self.record_losses(zero, loss, phase.resolution, 1.0)
        else:
            self.record_losses(loss, zero, phase.resolution, 1.0)

    @torch.no_grad()
    def _start_latent_phase(self, real: torch.Tensor) -> None:
        """Once, when the UNet starts on an autoencoder's latents: freeze the autoencoder, scale the
        latents to unit variance (measured on this batch), and give the EMA the trained autoencoder
        itself (the moving average of a network that stops changing would lag behind it)."""
        model = self.generator
        model.autoencoder.requires_grad_(False).eval()
        z_mu, _ = model.autoencoder.encode(real)
        model.latent_scale.fill_(1.0 / z_mu.std().clamp_min(1e-6))
        self.ema.autoencoder.load_state_dict(model.autoencoder.state_dict())
        self.ema.latent_scale.copy_(model.latent_scale)
        self._latents_ready = True

    def on_train_start(self) -> None:
        """A run resumed inside the diffusion phase keeps its autoencoder frozen."""
        if self.generator.autoencoder is not None and self.schedule.phase_at(self.images_seen).name == "diffusion":
            self.generator.autoencoder.requires_grad_(False).eval()

    def _flush_logs(self, resolution: int, alpha: float) -> None:
        """Read the accumulated losses (the only host sync), check them, log means."""
        if self._sums is None:
            return
        sums = self._sums.tolist()
        means = [v / self._steps_since_log for v in sums[:2]]
        self.d_loss_moments = [self.d_loss_moments[0] + self._steps_since_log, self.d_loss_moments[1] + sums[0],
                               self.d_loss_moments[2] + sums[2]]
        self._sums, self._steps_since_log = None, 0
        if not all(math.isfinite(v) for v in means):
            raise NonFiniteLossError(f"gan: non-finite diffusion loss ({means}) at {self.images_seen} images; "
                                     "the last good checkpoint is kept")
        phase = self.schedule.phase_at(max(self.images_seen - 1, 0)).name
        self.last_losses = {"diffusion": means[0], "autoencoder": means[1]}
        if self.logger:  # x-axis: images shown
            self.logger.log_metrics({f"loss/{phase}": means[0] if phase == "diffusion" else means[1]},
                                    step=self.images_seen)

    @torch.no_grad()
    def sample_fixed(self) -> torch.Tensor:
        """The EMA model's unconditional films from the fixed noise, in [-1, 1]."""
        return self.ema(self.fixed_z).float()

    @torch.no_grad()
    def phase_grid(self, phase) -> torch.Tensor:
        """The grid shown at the end of ``phase``, in [-1, 1]: the autoencoder's reconstructions of the
        first training films, or films drawn from the fixed noise conditioned on those films' labels."""
        n = len(self.fixed_z)
        first = torch.arange(min(n, len(self.pool_labels)))
        real = self.images[self.config.resolution].batch(first).to(self.device).float().div_(127.5).sub_(1.0)
        if phase.name == "autoencoder":
            return self.ema.autoencoder.reconstruct(real).clamp(-1, 1).float()
        return self.ema.sample(self.fixed_z[: len(first)], self.pool_labels[first].to(self.device)).float()
