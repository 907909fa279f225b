"""Lightning module for GAN training with manual optimisation (one D step, one G step).

The module owns everything a resume needs, all saved in the Lightning checkpoint: G, D, the
EMA of G, both optimisers (Lightning), the images shown (from which the schedule gives the
phase and alpha), the fixed sample latents (a buffer) and the random generators that draw
batches, latents and the penalty's mixing weights. No per-step host syncs: losses are
accumulated on the device and read every ``log_every`` steps, alpha is a Python float, noise
is drawn on the device.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict

import lightning as L
import torch

from cxrsynth.errors import CxrsynthError, InputError
from cxrsynth.models.gan import GANConfig, build_networks
from cxrsynth.models.layers import fade_real
from cxrsynth.training.ema import update_ema, warmup_decay
from cxrsynth.training.gan_data import RealImages
from cxrsynth.training.gan_losses import (
    bce_d_loss,
    bce_g_loss,
    wgan_g_loss,
    wgan_gp_d_loss,
)
from cxrsynth.training.gan_schedule import ProgressiveSchedule


class NonFiniteLossError(CxrsynthError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class GANModule(L.LightningModule):
    """PGGAN (WGAN-GP, drift, EMA, fade-ins) or DCGAN (BCE) trained on a uint8 image pyramid.

    Other generators (the baselines) subclass it: ``config_class`` (whose ``schedule_lists`` give the
    schedule) and ``build_networks`` give their networks, ``configure_optimizers`` and ``training_step``
    their game; checkpoints, resume, loss logging and the D-loss statistics stay the same."""

    config_class = GANConfig

    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters()
        self.config = self.config_class(**config)
        self.automatic_optimization = False
        self.generator, self.discriminator = self.build_networks()
        self.ema = copy.deepcopy(self.generator).requires_grad_(False).eval()
        self.schedule = ProgressiveSchedule(**self.config.schedule_lists())
        seeds = torch.Generator().manual_seed(self.config.seed)
        self.register_buffer("fixed_z", torch.randn(self.config.n_samples, self.config.z_dim, generator=seeds))
        self.images_seen = 0
        self.ema_updates = 0
        self.images: dict[int, RealImages] = {}  # resolution → the real images, set by attach_images
        self._batch_rng = torch.Generator().manual_seed(self.config.seed + 1)  # which real images (host)
        self._noise_rng: torch.Generator | None = None  # latents and penalty weights (device)
        self._noise_state: torch.Tensor | None = None
        self._sums: torch.Tensor | None = None
        self._steps_since_log = 0
        self.d_loss_moments = [0.0, 0.0, 0.0]  # steps, sum and sum of squares of the per-step D loss
        self.last_losses: dict[str, float] = {}
        self.phase_rates: dict[str, float] = {}  # images/s of the phases this process ran (a timing: not saved)
        self.finished_phases: list[str] = []
        self.run_key: dict | None = None  # what made this run (params, data, code), saved with every checkpoint
        self.resumed_from: dict | None = None  # the other run's checkpoint this run started from (gan.resume_from)

    def build_networks(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(generator, discriminator) for ``self.config``."""
        return build_networks(self.config)

    # ------------------------------------------------------------------ data
    def attach_images(self, images: dict[int, RealImages]) -> None:
        """Give the module the real images of every resolution it trains at (``gan_data.load_pyramid``)."""
        missing = [r for r in self.config.resolutions if r not in images]
        if missing:
            raise InputError(f"gan: the image store lacks resolutions {missing}")
        self.images = images

    def _real_batch(self, resolution: int, size: int) -> torch.Tensor:
        return self._real_batch_at(resolution, size)[0]

    def _real_batch_at(self, resolution: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch of real images in [-1, 1] on the device, and their positions in the pool."""
        pool = self.images[resolution]
        index = torch.randint(len(pool), (size,), generator=self._batch_rng)
        batch = pool.batch(index).to(self.device, non_blocking=True)
        return batch.float().div_(127.5).sub_(1.0), index

    def _noise(self) -> torch.Generator:
        if self._noise_rng is None or self._noise_rng.device != self.device:
            self._noise_rng = torch.Generator(device=self.device).manual_seed(self.config.seed + 2)
            if self._noise_state is not None:
                self._noise_rng.set_state(self._noise_state)
        return self._noise_rng

    # ------------------------------------------------------------------ training
    @property
    def world_size(self) -> int:
        """Number of training processes; the schedule's batch sizes are global, split evenly among them."""
        return self._trainer.world_size if self._trainer is not None else 1

    def batch_per_process(self, batch: int) -> int:
        """This process's share of a global batch."""
        if batch % self.world_size:
            raise InputError(f"gan.batch_sizes: a batch of {batch} does not split evenly over {self.world_size} "
                             "processes (batch sizes are global: the total over all devices)")
        return batch // self.world_size

    def on_fit_start(self) -> None:
        """Check that every batch splits over the processes; under DDP, give every other process its own
        batches and noise (rank 0 keeps the restored streams, so a single-device resume stays exact)."""
        for phase in self.schedule.phases:
            self.batch_per_process(phase.batch_size)
        if self.global_rank > 0:
            offset = self.config.seed + 1000 * self.global_rank + self.images_seen
            self._batch_rng.manual_seed(offset + 1)
            self._noise_rng = torch.Generator(device=self.device).manual_seed(offset + 2)
        if self.device.type == "cuda":
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)

    def configure_optimizers(self):
        c = self.config
        if c.arch == "dcgan":
            return [torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
                    torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))]
        return [torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=tuple(float(b) for b in c.betas), eps=1e-8),
                torch.optim.Adam(self.discriminator.parameters(), lr=c.lr, betas=tuple(float(b) for b in c.betas), eps=1e-8)]

    def training_step(self, batch, batch_idx):
        c = self.config
        opt_g, opt_d = self.optimizers()
        phase, alpha = self.schedule.at(self.images_seen)
        res, size = phase.resolution, self.batch_per_process(phase.batch_size)
        noise = self._noise()
        real = fade_real(self._real_batch(res, size), alpha)
        critic = lambda x: self.discriminator(x, res, alpha)

        self.toggle_optimizer(opt_d)
        z = torch.randn(size, c.z_dim, device=self.device, generator=noise)
        with torch.no_grad():
            fake = self.generator(z, res, alpha)
        if c.arch == "pggan":
            eps = torch.rand(size, 1, 1, 1, device=self.device, generator=noise)
            parts = wgan_gp_d_loss(critic, real, fake, eps, c.gp_lambda, c.drift)
            d_loss = parts["loss"]
        else:
            d_loss = bce_d_loss(critic(real), critic(fake))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        z = torch.randn(size, c.z_dim, device=self.device, generator=noise)
        scores = critic(self.generator(z, res, alpha))
        g_loss = wgan_g_loss(scores) if c.arch == "pggan" else bce_g_loss(scores)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        update_ema(self.ema, self.generator, warmup_decay(c.ema_decay, self.ema_updates))
        self.ema_updates += 1

        self.images_seen += phase.batch_size  # images shown over all processes
        self.record_losses(d_loss, g_loss, phase.resolution, alpha)

    def record_losses(self, d_loss: torch.Tensor, g_loss: torch.Tensor, resolution: int, alpha: float) -> None:
        """Accumulate one step's losses on the device (and D's square, for its variance); read and log
        them every ``log_every`` steps."""
        d = d_loss.detach().double()
        losses = torch.stack([d, g_loss.detach().double(), d * d])
        self._sums = losses if self._sums is None else self._sums + losses
        self._steps_since_log += 1
        if self._steps_since_log >= self.config.log_every:
            self._flush_logs(resolution, alpha)

    def d_loss_stats(self) -> dict[str, float]:
        """Mean, variance and standard deviation of the per-step D loss over the whole run (paper 004's
        Table I statistics), from every step, not from the logged interval means."""
        n, total, squares = self.d_loss_moments
        if not n:
            return {"steps": 0, "mean": float("nan"), "variance": float("nan"), "std": float("nan")}
        mean = total / n
        variance = max(squares / n - mean * mean, 0.0)
        return {"steps": int(n), "mean": mean, "variance": variance, "std": math.sqrt(variance)}

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
            raise NonFiniteLossError(
                f"gan: non-finite loss (D {means[0]}, G {means[1]}) at {self.images_seen} images; "
                "the last good checkpoint is kept"
            )
        self.last_losses = {"d": means[0], "g": means[1]}
        if self.logger:  # x-axis: images shown
            self.logger.log_metrics({"loss/d": means[0], "loss/g": means[1], "schedule/resolution": float(resolution),
                                     "schedule/alpha": alpha}, step=self.images_seen)

    def on_train_epoch_end(self) -> None:
        phase, alpha = self.schedule.at(self.images_seen)
        self._flush_logs(phase.resolution, alpha)
        if self.images_seen >= self.schedule.total_images:
            self.trainer.should_stop = True

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan_state"] = {
            "images_seen": self.images_seen,
            "ema_updates": self.ema_updates,
            "batch_rng": self._batch_rng.get_state(),
            "noise_rng": self._noise().get_state().cpu(),
            "torch_rng": torch.get_rng_state(),  # dropout in the DCGAN's D
            "phase": self.schedule.at(self.images_seen)[0].name,
            "alpha": self.schedule.at(self.images_seen)[1],
            "last_losses": dict(self.last_losses),
            "d_loss_moments": list(self.d_loss_moments),
            "finished_phases": list(self.finished_phases),
            "config": asdict(self.config),
            "run_key": self.run_key,
            "resumed_from": self.resumed_from,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["gan_state"]
        self.images_seen = int(state["images_seen"])
        self.ema_updates = int(state["ema_updates"])
        self._batch_rng.set_state(state["batch_rng"])
        self._noise_state = state["noise_rng"]
        self._noise_rng = None
        torch.set_rng_state(state["torch_rng"])
        self.last_losses = dict(state.get("last_losses", {}))
        self.d_loss_moments = list(state.get("d_loss_moments", [0.0, 0.0, 0.0]))
        self.finished_phases = list(state["finished_phases"])
        self.resumed_from = state.get("resumed_from")

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample_fixed(self) -> torch.Tensor:
        """The EMA generator's images for the fixed latents at the current phase, in [-1, 1]."""
        phase, alpha = self.schedule.at(self.images_seen)
        return self.ema(self.fixed_z, phase.resolution, alpha).float()
