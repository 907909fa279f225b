"""Run GAN training: checkpoint intervals, resume, phase-end sample grids, export.

One Lightning "epoch" is one checkpoint interval (``checkpoint_every`` images, ended early
at the end of the schedule), so every checkpoint sits on an epoch boundary and a resumed
run continues exactly where the saved one stood. Checkpoints are written to a temporary
file and renamed, so a kill during a save leaves the previous one intact.

Which checkpoint a run continues, and where other runs' checkpoints are kept (run keys,
``kept/<key digest>/``, ``keep_checkpoints``, ``resume_from``), is ``gan_checkpoints``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from cxrsynth.data.store import ImageStore
from cxrsynth.distributed import is_first_process
from cxrsynth.models.cost import film_cost
from cxrsynth.training.checkpoints import load_checkpoint
from cxrsynth.training.gan_checkpoints import (
    KEPT,
    LAST,
    SAMPLES,
    AtomicCheckpointIO,
    foresee_checkpoint,
    key_digest,
    run_key,
    settle_checkpoints,
)
from cxrsynth.training.gan_data import load_pyramid, memory_mapped_levels
from cxrsynth.training.gan_module import GANModule, NonFiniteLossError


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
        seen += schedule.at(seen)[0].batch_size  # global: the images all processes show in one step
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
        done = next(p for p in module.schedule.phases if p.name == name)
        if hasattr(module, "phase_grid"):  # a module with its own grid (the diffusion model's)
            images = module.phase_grid(done)
        else:
            images = module.ema(module.fixed_z, done.resolution, 1.0).float()
        grid = image_grid(images)
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        grid.save(self.samples_dir / f"{len(module.finished_phases):02d}_{name}.png")
        logger = trainer.logger
        if logger is not None and hasattr(logger, "experiment") and hasattr(logger.experiment, "log_image"):
            logger.experiment.log_image(f"samples/{name}.png", grid)


def check_finite(module: GANModule) -> None:
    """Raise ``NonFiniteLossError`` unless the losses not read yet and every weight are finite.

    One host sync, taken before a checkpoint (none per step): a NaN loss inside the current log
    interval, or a last optimiser step that left NaN or inf weights behind finite losses, must
    not reach a checkpoint that a resumed run would reuse."""
    phase, alpha = module.schedule.at(module.images_seen)
    module._flush_logs(phase.resolution, alpha)  # raises on a non-finite loss not read yet
    weights = {name: t for name, t in module.state_dict().items() if t.is_floating_point()}
    finite = torch.stack([torch.isfinite(t).all() for t in weights.values()]).tolist()
    bad = [name for name, ok in zip(weights, finite) if not ok]
    if bad:
        raise NonFiniteLossError(
            f"gan: non-finite weights ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}) at "
            f"{module.images_seen} images; the last good checkpoint is kept"
        )


class IntervalCheckpoint(Checkpoint):
    """Save ``last.ckpt`` (through the atomic checkpoint IO) at the end of every interval.

    Every save first runs ``check_finite``, so a diverged run stops before it could overwrite
    the last good file, whatever the order of the epoch-end hooks. (The check lives here, not in
    ``gan_module``, whose source is part of the run key: guarding the save changes no training.)"""

    def __init__(self, path: Path):
        self.path = path

    def on_train_epoch_end(self, trainer, module):
        check_finite(module)  # on every process, before anything is written
        trainer.save_checkpoint(self.path, weights_only=False)  # Lightning writes on global rank 0 only


@dataclass
class GANFit:
    """The outcome of ``fit_gan``: the module at the end of the schedule, and how it got there."""

    module: GANModule
    action: str  # fresh | resume | finished | restart | resume_from
    is_global_zero: bool = True  # under DDP, only process 0 writes outputs
    processes: int = 1  # training processes (DDP world size) this run used
    memory_mapped: list[int] = field(default_factory=list)  # levels read from the memory map batch by batch


def fit_gan(store_dir: Path, config, checkpoint_dir: Path, checkpoint_every: int,
            trainer_kwargs: dict | None = None, live_dir: Path | None = None, memory_limit_gib: float = 4.0,
            module_class: type[GANModule] = GANModule, rows: np.ndarray | None = None,
            prepare=None, keep_checkpoints: int = 3, resume_from: str | None = None) -> GANFit:
    """Train, resume or re-export a GAN on the store; the module ends at the end of the schedule.

    A checkpoint is reused only by the run that made it (``run_key``): an unfinished one is
    resumed, a finished one is loaded without training. Any other ``last.ckpt`` is moved aside
    to ``kept/<key digest>/`` with its grids, never deleted; a kept checkpoint of this run is
    moved back and reused; of the other kept runs the newest ``keep_checkpoints`` stay. One line
    says what was found, kept, restored and pruned. ``resume_from`` (a checkpoint file, a folder
    holding one, or a kept run's name) is used only when this run has no checkpoint of its own:
    training continues that checkpoint's weights, optimiser moments, EMA and images shown under
    this run's key, with this run's params (action ``resume_from``); its checkpoints record the
    source (``module.resumed_from``), so later resumes and re-exports keep saying so.

    Sample grids of finished phases are written beside the checkpoints (``samples/``).
    ``module_class`` (a ``GANModule``) and its ``config`` give the system trained; ``rows``
    limits training to those store rows (default: every listed image); ``prepare(module, store)``
    runs before training (e.g. to attach labels)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")  # the EMA copy, on purpose
    module = module_class(asdict(config))
    store = ImageStore(store_dir)
    fingerprint = store.fingerprint
    if rows is not None:
        fingerprint += ":rows:" + hashlib.sha256(np.sort(np.asarray(rows, dtype=np.int64)).tobytes()).hexdigest()[:16]
    module.run_key = run_key(config, fingerprint, trainer_kwargs, module_class)
    last = checkpoint_dir / LAST
    first = is_first_process()
    if first:
        action, continues_curves = settle_checkpoints(checkpoint_dir, module, keep_checkpoints, resume_from)
    else:
        action, continues_curves = foresee_checkpoint(checkpoint_dir, module.run_key, module.schedule.total_images,
                                                      resume_from), True
    if action == "finished":
        own = checkpoint_dir / KEPT / key_digest(module.run_key) / LAST  # not moved back yet, in another process
        checkpoint = load_checkpoint(last if last.exists() else own)
        module.load_state_dict(checkpoint["state_dict"])
        module.on_load_checkpoint(checkpoint)
        return GANFit(module, action, is_global_zero=first,
                      memory_mapped=memory_mapped_levels(store_dir, config.resolutions, memory_limit_gib))
    if live_dir is not None and first and not continues_curves:
        shutil.rmtree(live_dir, ignore_errors=True)
    module.attach_images(load_pyramid(store_dir, config.resolutions, memory_limit_gib, rows))
    if prepare is not None:
        prepare(module, store)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    logger = False
    if live_dir is not None:
        from dvclive.lightning import DVCLiveLogger

        logger = DVCLiveLogger(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, resume=continues_curves)
    trainer = L.Trainer(
        max_epochs=10**9,
        callbacks=[PhaseMonitor(checkpoint_dir / SAMPLES), IntervalCheckpoint(last)],
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
    resumes = action in ("resume", "resume_from")
    # settle_checkpoints has read last.ckpt with weights_only=True already; Lightning reads it so too
    trainer.fit(module, datamodule=_Intervals(module, checkpoint_every), ckpt_path=last if resumes else None,
                weights_only=True)
    return GANFit(module, action, trainer.is_global_zero, trainer.world_size,
                  memory_mapped_levels(store_dir, config.resolutions, memory_limit_gib))


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


def gan_metrics(fit: GANFit) -> dict:
    """What ``metrics/gan.json`` records of a GAN run: its schedule, losses and D-loss statistics."""
    module = fit.module
    return {
        "arch": module.config.arch,
        "resolution": module.config.resolutions[-1],
        "images_shown": module.images_seen,
        "processes": fit.processes,
        "batch_per_process": {str(p.resolution): p.batch_size // fit.processes for p in module.schedule.phases},
        "memory_mapped_levels": fit.memory_mapped,  # over gan.memory_limit_gib: read batch by batch
        "final_loss_d": round(module.last_losses.get("d", float("nan")), 4),
        "final_loss_g": round(module.last_losses.get("g", float("nan")), 4),
        "d_loss": {k: round(v, 6) if isinstance(v, float) else v for k, v in module.d_loss_stats().items()},
        "phases": module.finished_phases,
        "resumed_from": module.resumed_from,  # gan.resume_from: the other run's checkpoint this one continued
        "film_cost": film_cost(module.ema, module.config.z_dim, module.config.resolutions[-1]),  # counted, not timed
    }
