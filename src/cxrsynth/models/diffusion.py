"""The class-conditional diffusion generator: MONAI's networks and schedulers, our conditioning and sampler.

MONAI rather than diffusers: it is the medical-imaging field's own library, its generative networks
are 2-D and 3-D alike (one code path if a CT archive follows), and ``DiffusionModelUNet``,
``AutoencoderKL`` and the DDPM/DDIM schedulers cover both of our paths without a pipeline object.

Two paths, one param (``gan.arch``):

- ``ddpm``: the UNet denoises pixels. At the demo's 32 px this is the honest choice: an autoencoder
  would squeeze 1,024 pixels into an 8 x 8 latent and lose the findings the labeller looks for.
- ``ldm``: a KL autoencoder (trained first, then frozen) maps the film to a latent 2^(levels-1)
  times smaller per side, and the same UNet denoises the latent, scaled to unit variance
  (Rombach et al. 2022; Packhäuser et al. 2023). From the full-scale 1024 px up, pixel diffusion
  costs too much memory per image; the rehearsal profile runs this path at toy size.

Conditioning: 15 tokens, one per label, each a learned embedding of (label, present or absent), to
which the UNet's attention levels cross-attend; a 16th embedding stands in for every token when the
labels are dropped (classifier-free guidance, Ho & Salimans 2022). Sampling is deterministic DDIM from
the initial noise, so a film is a function of (noise, labels): the archive draws a patient's
follow-ups from noise near its first film's, as the GAN's archive does around z*. Its timesteps are
spaced from the end (``ddim_timesteps``), not as MONAI's ``set_timesteps`` spaces them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from monai.networks.nets import AutoencoderKL, DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler
from torch import nn
from tqdm import tqdm

from cxrsynth.config.diffusion import DiffusionParams
from cxrsynth.labels import LABELS


def _default(name: str):
    info = DiffusionParams.model_fields[name]
    if info.default_factory is not None:
        return field(default_factory=info.default_factory)
    return field(default=info.default)


@dataclass
class DiffusionConfig:
    """Everything that defines a diffusion run (saved with every checkpoint and beside the exported model).

    Its schedule has one phase per network trained (``autoencoder`` for ldm, then ``diffusion``), and
    ``z_dim`` is the size of the initial noise, so the GAN's training loop, checkpoints and samplers
    take it as they take a ``GANConfig``."""

    arch: str = "ddpm"
    resolution: int = 32
    seed: int = 0
    log_every: int = 20
    n_samples: int = 64
    images: int = _default("images")
    batch_size: int = _default("batch_size")
    lr: float = _default("lr")
    channels: list[int] = _default("channels")
    attention_levels: list[bool] = _default("attention_levels")
    num_res_blocks: int = _default("num_res_blocks")
    norm_groups: int = _default("norm_groups")
    head_channels: int = _default("head_channels")
    label_dim: int = _default("label_dim")
    train_timesteps: int = _default("train_timesteps")
    beta_schedule: str = _default("beta_schedule")
    p_uncond: float = _default("p_uncond")
    sample_steps: int = _default("sample_steps")
    guidance: float = _default("guidance")
    sample_dtype: str = _default("sample_dtype")
    archive_oversample: float = _default("archive_oversample")
    archive_extra_findings: int = _default("archive_extra_findings")
    ema_decay: float = _default("ema_decay")
    ae_images: int = _default("ae_images")
    ae_channels: list[int] = _default("ae_channels")
    ae_latent_channels: int = _default("ae_latent_channels")
    ae_lr: float = _default("ae_lr")
    ae_kl_weight: float = _default("ae_kl_weight")

    @property
    def latent(self) -> bool:
        return self.arch == "ldm"

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(channels, side, side) of what the UNet denoises."""
        if not self.latent:
            return 1, self.resolution, self.resolution
        side = self.resolution // 2 ** (len(self.ae_channels) - 1)
        return self.ae_latent_channels, side, side

    @property
    def z_dim(self) -> int:
        """Entries of one image's initial noise."""
        return math.prod(self.latent_shape)

    @property
    def resolutions(self) -> list[int]:
        return [self.resolution]

    def schedule_lists(self) -> dict[str, list[int]]:
        """One stable phase of every image shown, as ``GANModule`` builds its schedule (``DiffusionModule``
        then names the phases)."""
        return {"resolutions": [self.resolution], "fade_images": [0],
                "stable_images": [sum(images for _, images in self.phases())], "batch_sizes": [self.batch_size]}

    def phases(self) -> list[tuple[str, int]]:
        """(name, images) of each network's training, in order."""
        return ([("autoencoder", self.ae_images)] if self.latent and self.ae_images else []) + [("diffusion", self.images)]


def diffusion_config(params) -> DiffusionConfig:
    """The run's ``DiffusionConfig`` from the validated ``gan`` section (``config.gan.GANParams``)."""
    return DiffusionConfig(arch=params.arch, resolution=params.resolution, seed=params.seed,
                           log_every=params.log_every, n_samples=params.n_samples, **params.diffusion.model_dump())


class LabelTokens(nn.Module):
    """(N, 15) multi-hot labels → (N, 15, d) tokens: one embedding per (label, present?), or the null
    embedding for every token of a row whose labels are dropped."""

    def __init__(self, dim: int, n_labels: int = len(LABELS)):
        super().__init__()
        self.n_labels = n_labels
        self.embed = nn.Embedding(2 * n_labels + 1, dim)
        self.register_buffer("offsets", 2 * torch.arange(n_labels), persistent=False)

    def forward(self, labels: torch.Tensor, dropped: torch.Tensor | None = None) -> torch.Tensor:
        index = self.offsets + labels.round().long()
        if dropped is not None:
            index = torch.where(dropped[:, None], torch.full_like(index, 2 * self.n_labels), index)
        return self.embed(index)


class ConditionalDiffusion(nn.Module):
    """The UNet, its label tokens and (ldm) the autoencoder, with the sampler.

    Called as a GAN generator is, ``model(z, resolution, alpha)``, it draws the unconditional films
    (labels dropped) from flat noise ``z``; ``sample(z, labels)`` draws conditioned on labels with
    guidance. Images come out in [-1, 1]."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        c = self.config = config
        channels, _, _ = c.latent_shape
        self.unet = DiffusionModelUNet(
            spatial_dims=2, in_channels=channels, out_channels=channels, channels=tuple(c.channels),
            attention_levels=tuple(c.attention_levels), num_res_blocks=c.num_res_blocks,
            norm_num_groups=c.norm_groups, num_head_channels=c.head_channels, with_conditioning=True,
            cross_attention_dim=c.label_dim)
        self.tokens = LabelTokens(c.label_dim)
        self.autoencoder = None
        if c.latent:
            self.autoencoder = AutoencoderKL(
                spatial_dims=2, in_channels=1, out_channels=1, channels=tuple(c.ae_channels),
                latent_channels=c.ae_latent_channels, num_res_blocks=1, norm_num_groups=c.norm_groups,
                attention_levels=(False,) * len(c.ae_channels), with_encoder_nonlocal_attn=False,
                with_decoder_nonlocal_attn=False)
        # latents are divided by their standard deviation, measured once the autoencoder is trained
        self.register_buffer("latent_scale", torch.ones(()))
        self.train_scheduler = DDPMScheduler(num_train_timesteps=c.train_timesteps, schedule=c.beta_schedule,
                                             clip_sample=not c.latent)

    # ------------------------------------------------------------------ training
    def to_latent(self, images: torch.Tensor) -> torch.Tensor:
        """What the UNet denoises for (N, 1, r, r) films in [-1, 1]: the films, or their scaled latent means."""
        if self.autoencoder is None:
            return images
        z_mu, _ = self.autoencoder.encode(images)
        return z_mu * self.latent_scale

    def denoising_loss(self, x0: torch.Tensor, labels: torch.Tensor, noise_rng: torch.Generator) -> torch.Tensor:
        """The epsilon-prediction loss at random timesteps, with labels dropped at rate ``p_uncond``."""
        n, device = len(x0), x0.device
        t = torch.randint(0, self.config.train_timesteps, (n,), device=device, generator=noise_rng)
        noise = torch.randn(x0.shape, device=device, generator=noise_rng)
        dropped = torch.rand(n, device=device, generator=noise_rng) < self.config.p_uncond
        noisy = self.train_scheduler.add_noise(x0, noise, t)
        predicted = self.unet(noisy, t, context=self.tokens(labels, dropped))
        return nn.functional.mse_loss(predicted, noise)

    # ------------------------------------------------------------------ sampling
    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """Unconditional films (labels dropped) from flat noise ``z`` (N, z_dim): the GAN generator's call."""
        return self.sample(z, None)

    @torch.no_grad()
    def sample(self, z: torch.Tensor, labels: torch.Tensor | None, guidance: float | None = None,
               steps: int | None = None) -> torch.Tensor:
        """DDIM from flat noise ``z`` (N, z_dim), conditioned on (N, 15) ``labels`` with classifier-free
        guidance ``guidance`` (default: the config's), or unconditional when ``labels`` is None. The UNet
        runs in the config's ``sample_dtype``."""
        c = self.config
        guidance = c.guidance if guidance is None else guidance
        x = z.reshape(len(z), *c.latent_shape)
        scheduler = DDIMScheduler(num_train_timesteps=c.train_timesteps, schedule=c.beta_schedule,
                                  clip_sample=not c.latent)
        scheduler.set_timesteps(steps or c.sample_steps, device=x.device)  # sets the step size step() takes
        scheduler.timesteps = ddim_timesteps(c.train_timesteps, steps or c.sample_steps, x.device)
        n = len(x)
        null = self.tokens(torch.zeros(n, len(LABELS), device=x.device), torch.ones(n, dtype=torch.bool, device=x.device))
        guided = labels is not None and guidance > 0
        if labels is None:
            context = null
        else:
            context = self.tokens(labels.to(x.device).float())
            if guided:
                context = torch.cat([context, null])
        low = c.sample_dtype == "bfloat16"
        for t in scheduler.timesteps:
            inputs = torch.cat([x, x]) if guided else x
            steps_t = torch.full((len(inputs),), int(t), device=x.device, dtype=torch.long)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=low):
                eps = self.unet(inputs, steps_t, context=context).float()  # the DDIM update stays float32
            if guided:
                conditional, unconditional = eps.chunk(2)
                eps = unconditional + (1 + guidance) * (conditional - unconditional)
            x, _ = scheduler.step(eps, int(t), x)
        if self.autoencoder is not None:
            x = self.autoencoder.decode(x / self.latent_scale)
        return x.clamp(-1, 1)


def ddim_timesteps(train_timesteps: int, steps: int, device=None) -> torch.Tensor:
    """The DDIM chain T-1, T-1-r, ..., r-1 with r = T / ``steps`` (trailing spacing, Lin et al. 2024).

    MONAI's ``DDIMScheduler.step`` moves r timesteps back from the one it is given, but its
    ``set_timesteps`` spaces them by linspace(T-1, 0, steps): 999, 888, ..., 111, 0 for 10 of 1000.
    Each step then lands 11 timesteps from where the next starts, and the last starts from 0, so the
    noise of t = 11 stays in the film (on the demo it doubled the findings the labeller read in a film
    conditioned on none). This chain starts from pure noise and its last step lands on the clean film.
    Raises ValueError when ``steps`` does not divide ``train_timesteps``."""
    if train_timesteps % steps:
        raise ValueError(f"DDIM: {steps} sampling steps do not divide {train_timesteps} training timesteps "
                         "(gan.diffusion.sample_steps must divide gan.diffusion.train_timesteps)")
    r = train_timesteps // steps
    return torch.arange(train_timesteps - 1, -1, -r, device=device)


def build_diffusion(config: DiffusionConfig) -> ConditionalDiffusion:
    """The model of ``config`` (random weights)."""
    return ConditionalDiffusion(config)


def config_dict(config: DiffusionConfig) -> dict:
    """``config`` as ``config.json`` holds it."""
    return asdict(config)


def sample_batches(model: ConditionalDiffusion, z: torch.Tensor, labels: torch.Tensor | None, batch_size: int = 256,
                   progress: bool = False, desc: str = "diffusion sample") -> torch.Tensor:
    """``model.sample`` in batches: uint8 (N, 1, r, r) films on the host."""
    device = next(model.parameters()).device
    out = []
    for i in tqdm(range(0, len(z), batch_size), desc=desc, unit="batch", disable=not progress):
        part = None if labels is None else labels[i : i + batch_size].to(device)
        images = model.sample(z[i : i + batch_size].to(device), part)
        out.append(((images + 1) * 127.5).round().to(torch.uint8).cpu())
    if not out:
        r = model.config.resolution
        return torch.zeros(0, 1, r, r, dtype=torch.uint8)
    return torch.cat(out)
