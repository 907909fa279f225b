"""Run GAN training: checkpoint intervals, resume, phase-end sample grids, export.

One Lightning "epoch" is one checkpoint interval (``checkpoint_every`` images, ended early
at the end of the schedule), so every checkpoint sits on an epoch boundary and a resumed
run continues exactly where the saved one stood. Checkpoints are written to a temporary
file and renamed, so a kill during a save leaves the previous one intact.
"""

from __future__ import annotations

import json
import os
import warnings
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from cxrsynth.data.store import ImageStore
from cxrsynth.training.gan_module import GANConfig, GANModule

LAST = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file, then rename it into place."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        os.replace(tmp, path)


class _Steps(Dataset):
    """``n`` step tokens: the module draws its own batches, so the loader carries no state."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def steps_to_next_checkpoint(module: GANModule, every: int) -> int:
    """Training steps from the current images shown to the next checkpoint or the end."""
    schedule, seen = module.schedule, module.images_seen
    target = min(schedule.total_images, (seen // every + 1) * every)
    steps = 0
    while seen < target:
        seen += schedule.at(seen)[0].batch_size * module.world_size
        steps += 1
    return steps


class _Intervals(L.LightningDataModule):
    def __init__(self, module: GANModule, every: int):
        super().__init__()
        self.module, self.every = module, every

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Steps(max(1, steps_to_next_checkpoint(self.module, self.every))), batch_size=None)


def image_grid(images: torch.Tensor, columns: int = 8) -> Image.Image:
    """(N, 1, r, r) images in [-1, 1] → one grey PIL grid with 2-pixel gaps."""
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()[:, 0]
    n, r = len(pixels), pixels.shape[-1]
    rows = (n + columns - 1) // columns
    grid = np.full((rows * (r + 2), columns * (r + 2)), 255, dtype=np.uint8)
    for i, image in enumerate(pixels):
        y, x = divmod(i, columns)
        grid[y * (r + 2) : y * (r + 2) + r, x * (r + 2) : x * (r + 2) + r] = image
    return Image.fromarray(grid, "L")


class PhaseMonitor(Callback):
    """At the end of every phase: a sample grid from the fixed latents (EMA) and the phase's images/s."""

    def __init__(self, samples_dir: Path):
        self.samples_dir = samples_dir
        self.started: tuple[str, int, float] | None = None

    def on_train_batch_start(self, trainer, module: GANModule, batch, batch_idx):
        phase = module.schedule.phase_at(module.images_seen)
        if self.started is None or self.started[0] != phase.name:
            self.started = (phase.name, module.images_seen, time.perf_counter())

    def on_train_batch_end(self, trainer, module: GANModule, outputs, batch, batch_idx):
        if not trainer.is_global_zero:
            return
        name, first, t0 = self.started
        now = module.schedule.phase_at(module.images_seen)
        if now.name != name or module.images_seen >= module.schedule.total_images:
            seconds = time.perf_counter() - t0
            module.phase_rates[name] = round((module.images_seen - first) / max(seconds, 1e-9), 1)
            module.finished_phases.append(name)
            self._grid(trainer, module, name)
            self.started = None

    @torch.no_grad()
    def _grid(self, trainer, module: GANModule, name: str) -> None:
        done = [p for p in module.schedule.phases if p.name == name][0]
        images = module.ema(module.fixed_z, done.resolution, 1.0).float()
        grid = image_grid(images)
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        grid.save(self.samples_dir / f"{len(module.finished_phases):02d}_{name}.png")
        logger = trainer.logger
        if logger is not None and hasattr(logger, "experiment") and hasattr(logger.experiment, "log_image"):
            logger.experiment.log_image(f"samples/{name}.png", grid)


class IntervalCheckpoint(Checkpoint):
    """Save ``last.ckpt`` (through the atomic checkpoint IO) at the end of every interval.

    A Checkpoint subclass, so Lightning calls it after the module's epoch-end hook, which
    checks the losses: a non-finite run stops before it could overwrite the last good file."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_epoch_end(self, trainer, module):
        trainer.save_checkpoint(self.path, weights_only=False)  # Lightning writes on global rank 0 only


def _resumable(checkpoint: Path, config: GANConfig) -> bool:
    """True for an unfinished checkpoint of the same configuration. A finished one means the
    stage was asked to run again (its code, data or params changed), so training starts over."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)["gan_state"]
    except Exception:  # unreadable or foreign: start over
        return False
    same = json.loads(json.dumps(state["config"])) == json.loads(json.dumps(asdict(config)))
    return same and state["images_seen"] < config.schedule().total_images


def load_pyramid(store_dir: Path, resolutions: list[int], limit_gib: float = 4.0) -> dict[int, torch.Tensor]:
    """The store's levels as (N, 1, r, r) uint8 tensors (read into memory; memory-mapped above ``limit_gib``)."""
    store = ImageStore(store_dir)
    rows = np.sort(store.table["row"].to_numpy())
    out = {}
    for res in resolutions:
        level = store.images(res)
        data = np.asarray(level[rows]) if level[rows[:1]].nbytes * len(rows) <= limit_gib * 2**30 else level
        out[res] = torch.from_numpy(np.ascontiguousarray(data)).unsqueeze(1)
    return out


def fit_gan(store_dir: Path, config: GANConfig, checkpoint_dir: Path, checkpoint_every: int,
            trainer_kwargs: dict | None = None, live_dir: Path | None = None) -> GANModule:
    """Train (or resume) a GAN on the store; returns the module at the end of the schedule.

    Sample grids of finished phases are written beside the checkpoints (``samples/``)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")  # the EMA copy, on purpose
    module = GANModule(asdict(config))
    if last_is_stale := (checkpoint_dir / LAST).exists() and not _resumable(checkpoint_dir / LAST, config):
        shutil.rmtree(checkpoint_dir / "samples", ignore_errors=True)
    module.attach_images(load_pyramid(store_dir, config.resolutions))
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    last = checkpoint_dir / LAST
    resume = last if last.exists() and not last_is_stale else None
    if last_is_stale:
        print(f"gan: {last} is finished or from another configuration; starting over")
        last.unlink()
    if resume is None:
        shutil.rmtree(checkpoint_dir / "samples", ignore_errors=True)
        if live_dir is not None:  # a fresh run starts fresh curves; a resumed one appends
            shutil.rmtree(live_dir, ignore_errors=True)
    else:
        print(f"gan: resuming from {last}")
    logger = False
    if live_dir is not None:
        from dvclive.lightning import DVCLiveLogger

        logger = DVCLiveLogger(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, resume=resume is not None)
    trainer = L.Trainer(
        max_epochs=10**9,
        callbacks=[PhaseMonitor(checkpoint_dir / "samples"), IntervalCheckpoint(last)],
        plugins=[AtomicCheckpointIO()],
        logger=logger,
        reload_dataloaders_every_n_epochs=1,
        use_distributed_sampler=False,  # step tokens, not data: every process runs every step
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        log_every_n_steps=1,
        **(trainer_kwargs or {}),
    )
    trainer.fit(module, datamodule=_Intervals(module, checkpoint_every), ckpt_path=resume)
    return module


def export_generator(module: GANModule, out_dir: Path, samples_dir: Path | None = None) -> None:
    """Write the EMA generator (``generator.pt``, weights_only-loadable), the trained discriminator
    (``discriminator.pt``, re-purposed by later stages), their ``config.json``, and a copy of the
    phase sample grids."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if samples_dir is not None and samples_dir.exists():  # grids live beside the checkpoints so a resume keeps them
        shutil.copytree(samples_dir, out_dir / "samples", dirs_exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.ema.state_dict().items()}
    torch.save(state, out_dir / "generator.pt")
    d_state = {k: v.detach().cpu().contiguous() for k, v in module.discriminator.state_dict().items()}
    torch.save(d_state, out_dir / "discriminator.pt")
    config = asdict(module.config) | {"resolution": module.config.resolutions[-1]}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def gan_config(params) -> GANConfig:
    """The run configuration from the validated ``gan`` params section."""
    keep = ("arch", "z_dim", "channels", "fade_images", "stable_images", "batch_sizes", "lr", "gp_lambda", "drift",
            "ema_decay", "group_size", "seed", "log_every", "n_samples", "dcgan_images")
    values = {k: getattr(params, k) for k in keep} | {"betas": tuple(params.betas)}
    if params.arch == "dcgan":
        values["z_dim"] = 100
    return GANConfig(**values)
