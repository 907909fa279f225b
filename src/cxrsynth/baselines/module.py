"""Training of the baseline systems: ``GANModule``'s checkpoints, resume and logging, their own game.

One generator step per training step, after ``n_critic`` discriminator steps (each on a fresh
real batch). Losses: the non-saturating BCE game (``bce``), the WGAN with weight clipping
(``wgan_clip``: critic weights clamped after each step), WGAN-GP (``wgan_gp``: gradient penalty,
no drift term), or the VAE's negative ELBO (``elbo``: one optimiser, encoder and decoder
together). Conditional systems draw the labels of their real batch with it, and condition the
fakes on the labels of other real images, so the conditions follow the source's label mix. The
samples come from the generator's weights at the end (no moving average: the papers use none;
the module's ``ema`` is a copy).
"""

from __future__ import annotations

import numpy as np
import torch

from cxrsynth.baselines.systems import BaselineConfig, build_networks, build_optimiser
from cxrsynth.models.vae import elbo_loss
from cxrsynth.training.ema import update_ema
from cxrsynth.training.gan_losses import (
    bce_d_loss,
    bce_g_loss,
    wgan_g_loss,
    wgan_gp_d_loss,
)
from cxrsynth.training.gan_module import GANModule


class BaselineModule(GANModule):
    """One baseline system (``BaselineConfig``) trained on one store level."""

    config_class = BaselineConfig

    def build_networks(self):
        return build_networks(self.config)

    def attach_labels(self, labels: np.ndarray) -> None:
        """The multi-hot labels of the training images, in the pool's order (ascending store rows)."""
        self.pool_labels = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32))

    def configure_optimizers(self):
        c = self.config
        if c.loss == "elbo":
            params = [*self.generator.parameters(), *self.discriminator.parameters()]
            return build_optimiser(c.optimiser, params, c.lr_g, c.betas)
        return [build_optimiser(c.optimiser, self.generator.parameters(), c.lr_g, c.betas),
                build_optimiser(c.optimiser, self.discriminator.parameters(), c.lr_d, c.betas)]

    def _labels(self, index: torch.Tensor) -> torch.Tensor | None:
        return self.pool_labels[index].to(self.device) if self.config.conditions else None

    def _condition_draw(self, size: int) -> torch.Tensor | None:
        """Labels of ``size`` random training images: conditions that follow the source's label mix."""
        if not self.config.conditions:
            return None
        index = torch.randint(len(self.pool_labels), (size,), generator=self._batch_rng)
        return self.pool_labels[index].to(self.device)

    def training_step(self, batch, batch_idx):
        c = self.config
        phase, _ = self.schedule.at(self.images_seen)
        res, size = phase.resolution, self.batch_per_process(phase.batch_size)
        if c.loss == "elbo":
            self._vae_step(res, size)
        else:
            self._adversarial_step(res, size)
        update_ema(self.ema, self.generator, 0.0)  # a copy: the papers sample the trained weights
        self.images_seen += phase.batch_size

    def _vae_step(self, res: int, size: int) -> None:
        opt = self.optimizers()
        real, _ = self._real_batch_at(res, size)
        eps = torch.randn(size, self.config.z_dim, device=self.device, generator=self._noise())
        parts = elbo_loss(self.discriminator, self.generator, real, eps)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(parts["loss"])
        opt.step()
        # "d" is the negative ELBO, "g" its KL part: a VAE has no discriminator, its D statistics are not reported
        self.record_losses(parts["loss"], parts["kl"], res, 1.0)

    def _adversarial_step(self, res: int, size: int) -> None:
        c = self.config
        opt_g, opt_d = self.optimizers()
        noise = self._noise()
        self.toggle_optimizer(opt_d)
        for _ in range(c.n_critic):
            real, index = self._real_batch_at(res, size)
            labels, fake_labels = self._labels(index), self._condition_draw(size)
            z = torch.randn(size, c.z_dim, device=self.device, generator=noise)
            with torch.no_grad():
                fake = self._generate(z, fake_labels)
            if c.loss == "wgan_gp":
                eps = torch.rand(size, 1, 1, 1, device=self.device, generator=noise)
                # the penalty's mixed images take the real batch's labels (conditional WGAN-GP)
                d_loss = wgan_gp_d_loss(lambda x, y=labels: self._score(x, y), real, fake, eps, c.gp_lambda, 0.0)["loss"]
            elif c.loss == "wgan_clip":
                d_loss = self._score(fake, fake_labels).mean() - self._score(real, labels).mean()
            else:
                d_loss = bce_d_loss(self._score(real, labels), self._score(fake, fake_labels))
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
            if c.loss == "wgan_clip":
                with torch.no_grad():
                    for p in self.discriminator.parameters():
                        p.clamp_(-c.clip, c.clip)
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        fake_labels = self._condition_draw(size)
        z = torch.randn(size, c.z_dim, device=self.device, generator=noise)
        scores = self._score(self._generate(z, fake_labels), fake_labels)
        g_loss = bce_g_loss(scores) if c.loss == "bce" else wgan_g_loss(scores)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.record_losses(d_loss, g_loss, res, 1.0)

    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator(z) if labels is None else self.generator(z, labels=labels)

    def _score(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.discriminator(images) if labels is None else self.discriminator(images, labels=labels)
