"""Every GPU figure the project claims, measured in one run on one device (``gpu_check.sh`` wraps it).

* GAN training images/s and peak memory in every phase (fade-in and stabilisation, 4 px to the
  final side) of the full-scale schedule, bf16-mixed, through the training code itself: the
  Lightning ``GANModule`` step (D with gradient penalty and drift, G, EMA) under a ``Trainer``
  set up as ``train_gan`` sets it up, on random images held in memory;
* the projected time of that schedule on this device: each phase's images over its rate;
* DenseNet-121 training images/s as ``train_classifier`` trains it (its size, batch, precision);
* class optimisation: accepted latents/s one latent at a time (the paper's loop) and batched
  (``LatentOptimiser``) with the same generator, scorer and thresholds, and the speed-up.

Networks are built from the full-scale params (the ``nih`` profile) with random weights, so
nothing has to be trained first. Random networks have no trained notion of a class, so each job's
target is a quantile (90% to 99.9%) of its class score over random latents: a realistic mix of
quick, slow and failed optimisations. ``--dry-run`` runs the same code at toy sizes on the CPU in
well under a minute (the figures are then meaningless).

    bash benchmarks/gpu_check.sh [--dry-run] [--out gpu_check.json] [--params FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from tqdm import tqdm

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.config.base import parse_section, read_params
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.config.gan import GANParams
from cxrsynth.models.d_classifier import discriminator_head
from cxrsynth.models.gan import GANConfig, build_networks, gan_config
from cxrsynth.synthesis.class_optimisation import LatentOptimiser, one_at_a_time, truncated_normal
from cxrsynth.synthesis.scorers import Scorer
from cxrsynth.training.classifier_module import ChestClassifier
from cxrsynth.training.datamodule import ArrayDataModule
from cxrsynth.training.gan_data import RealImages
from cxrsynth.training.gan_module import GANModule
from cxrsynth.training.gan_schedule import Phase, ProgressiveSchedule

TARGET_HOURS = 24  # the projected schedule is judged against a day on one GPU (docs/gan.md)
TARGET_SPEEDUP = 10  # batched class optimisation against one latent at a time (docs/synthesis.md)
SINGLE_LOOP_S = 90  # the one-at-a-time loop stops taking new jobs after this long


@dataclass
class Setup:
    """What one check measures: the full-scale sections, or toy ones (``--dry-run``)."""

    gan: GANParams
    classifier: ClassifierParams
    archive: ArchiveParams
    device: str  # "gpu" or "cpu", as Lightning's accelerator
    warmup: int
    steps: int
    jobs: int  # class optimisation: jobs of the batched run
    single_jobs: int  # ... of the one-at-a-time loop (its rate does not depend on the number)


def full_scale(path: Path | None, steps: int) -> Setup:
    """The ``nih`` profile (or the complete params file ``path``) on the GPU."""
    if path is not None:
        params = read_params(path)
    else:
        from cxrsynth.config.profiles import compose

        params = compose(["profile=nih"], root=Path(__file__).parents[1])
    # a shorter budget per latent than the archive's (200 x 5 at full scale) keeps the check to minutes
    archive = parse_section(params, ArchiveParams).model_copy(update={"max_steps": 50, "max_attempts": 2})
    return Setup(parse_section(params, GANParams), parse_section(params, ClassifierParams), archive, "gpu",
                 warmup=3, steps=steps, jobs=64, single_jobs=16)


def toy() -> Setup:
    """Tiny networks, sides and step counts: the same code on the CPU in seconds."""
    gan = GANParams(resolution=16, z_dim=16, channels=[8, 8, 8], fade_images=[0, 800, 800],
                    stable_images=[800, 800, 800], batch_sizes=[8, 8, 8], precision="bf16-mixed", deterministic=False)
    classifier = ClassifierParams(input_size=32, batch_size=4, pretrained="none", precision="bf16-mixed")
    archive = ArchiveParams(batch_size=8, max_steps=10, max_attempts=2, scorer="discriminator",
                            parallel_restarts=True)
    return Setup(gan, classifier, archive, "cpu", warmup=1, steps=2, jobs=8, single_jobs=4)


def synchronise() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mib() -> float | None:
    """The CUDA allocator's peak since ``reset_peak`` (None on the CPU)."""
    return round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None


class StepTimer(L.Callback):
    """Seconds of training batches ``warmup`` to ``total - 1``; the device is synchronised only at those
    two points, so the steps run as asynchronously as in training."""

    def __init__(self, warmup: int, total: int):
        self.warmup, self.total, self.start, self.stop = warmup, total, 0.0, 0.0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx in (self.warmup - 1, self.total - 1):
            synchronise()
            if batch_idx == self.warmup - 1:
                self.start = time.perf_counter()
            else:
                self.stop = time.perf_counter()

    @property
    def timed(self) -> int:
        return self.total - self.warmup

    @property
    def seconds(self) -> float:
        return self.stop - self.start


def trainer(setup: Setup, timer: StepTimer, precision: str, deterministic: bool, **kwargs) -> L.Trainer:
    """A one-device Trainer as the stages build it, without logging, checkpoints or progress bars."""
    return L.Trainer(accelerator=setup.device, devices=1, precision=precision, deterministic=deterministic,
                     max_epochs=1, callbacks=[timer], logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **kwargs)


def gan_phase_rate(setup: Setup, config: GANConfig, phase: Phase) -> tuple[float, float | None]:
    """(images/s, peak MiB) of the GAN training step in one phase of the schedule."""
    n = config.resolutions.index(phase.resolution) + 1
    upto = replace(config, channels=config.channels[:n], fade_images=config.fade_images[:n],
                   stable_images=config.stable_images[:n], batch_sizes=config.batch_sizes[:n])
    module = GANModule(asdict(upto))
    module.images_seen = phase.start + (phase.length // 2 if phase.fading else 0)  # fade-ins timed at alpha 0.5
    rng = np.random.default_rng(0)
    module.attach_images({r: RealImages(rng.integers(0, 256, (phase.batch_size, r, r), dtype=np.uint8),
                                        np.arange(phase.batch_size), 2**40) for r in upto.resolutions})
    timer = StepTimer(setup.warmup, setup.warmup + setup.steps)
    steps = torch.utils.data.DataLoader(list(range(timer.total)), batch_size=None)
    reset_peak()
    trainer(setup, timer, "bf16-mixed", setup.gan.deterministic, use_distributed_sampler=False,
            limit_val_batches=0).fit(module, train_dataloaders=steps)
    return timer.timed * phase.batch_size / timer.seconds, peak_mib()


def gan_rows(setup: Setup) -> list[dict]:
    """One row per phase of the schedule (images/s, peak memory), and the schedule's projected time."""
    config = gan_config(setup.gan)
    schedule = ProgressiveSchedule(**config.schedule_lists())
    rows, hours = [], 0.0
    for phase in tqdm(schedule.phases, desc="GAN phases", unit="phase"):
        name = f"GAN {phase.resolution} px {'fade-in' if phase.fading else 'stable'}"
        try:
            rate, peak = gan_phase_rate(setup, config, phase)
        except torch.cuda.OutOfMemoryError:
            rows.append(row(name, None, "img/s", f"out of memory at batch {phase.batch_size}"))
            hours = float("nan")
            continue
        hours += phase.length / rate / 3600
        rows.append(row(name, rate, "img/s", f"batch {phase.batch_size}, bf16-mixed", peak))
    rows.append(row("GAN schedule, projected", hours, "h",
                    f"{schedule.total_images:,} images, 4 to {config.resolutions[-1]} px, each phase at its "
                    f"measured rate; target {TARGET_HOURS} h"))
    return rows


def classifier_row(setup: Setup) -> dict:
    """Training images/s of the classifier recipe (random weights and images, the stage's Trainer)."""
    p, rng = setup.classifier, np.random.default_rng(0)
    n = p.batch_size * (setup.warmup + setup.steps)
    images = rng.integers(0, 256, (n, p.input_size, p.input_size), dtype=np.uint8)
    labels = (rng.random((n, 15)) < 0.3).astype(np.float32)
    data = ArrayDataModule({"train": (images, labels), "val": (images[: p.batch_size], labels[: p.batch_size])},
                           p.batch_size, p.num_workers)
    augment = dict(max_rotation_deg=p.max_rotation_deg, flip_p=p.flip_p, brightness=p.brightness, contrast=p.contrast)
    module = ChestClassifier([1.0] * 15, [1.0] * 15, p.lr, p.plateau_patience, "none", None, augment, arch=p.arch)
    timer = StepTimer(setup.warmup, setup.warmup + setup.steps)
    reset_peak()
    trainer(setup, timer, p.precision, True, limit_train_batches=timer.total,
            limit_val_batches=1).fit(module, datamodule=data)
    return row(f"classifier {p.arch} {p.input_size} px training", timer.timed * p.batch_size / timer.seconds,
               "img/s", f"batch {p.batch_size}, {p.precision}", peak_mib())


def class_optimisation_rows(setup: Setup) -> list[dict]:
    """Accepted latents/s one at a time and batched, on the same jobs, and their ratio."""
    torch.manual_seed(0)
    device = torch.device("cuda" if setup.device == "gpu" else "cpu")
    config = gan_config(setup.gan)
    generator, _ = build_networks(config)
    res = config.resolutions[-1]
    head = discriminator_head(config, 15).to(device).eval().requires_grad_(False)
    scorer = Scorer("discriminator", head, res, np.full(15, 0.5))
    a = setup.archive
    optimiser = LatentOptimiser(generator.to(device), res, scorer, a.step_size, a.optimiser)
    rng = np.random.default_rng(0)
    classes = np.arange(setup.jobs) % 15
    # targets: a quantile of each class's score over random latents (see the module's docstring)
    z = truncated_normal(256, config.z_dim, a.truncation, torch.Generator(device=device).manual_seed(1), device)
    with torch.no_grad():
        start = torch.cat([scorer.logits(generator(part, res, 1.0)) for part in z.split(a.batch_size)]).cpu().numpy()
    thresholds = np.array([np.quantile(start[:, c], rng.uniform(0.9, 0.999)) for c in classes])
    optimiser.run(classes[:2], thresholds[:2], 2, 2, 1, a.truncation, seed=99, progress=False)  # warm-up

    synchronise()
    t0, single = time.perf_counter(), []
    for j, (c, t) in enumerate(tqdm(list(zip(classes, thresholds))[: setup.single_jobs], desc="one latent at a time",
                                    unit="latent")):
        single.append(one_at_a_time(optimiser, int(c), float(t), a.max_steps, a.max_attempts, a.truncation, seed=j)[0])
        synchronise()
        if time.perf_counter() - t0 > SINGLE_LOOP_S:  # a sequential loop's rate needs no more jobs
            break
    single_rate = sum(single) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    batched = optimiser.run(classes, thresholds, a.batch_size, a.max_steps, a.max_attempts, a.truncation, seed=0,
                            progress=True, parallel_restarts=a.parallel_restarts)
    synchronise()
    batched_rate = int(batched.success.sum()) / (time.perf_counter() - t0)
    budget = f"{a.max_steps} steps x {a.max_attempts} attempts"
    return [
        row("class optimisation, one at a time", single_rate, "latents/s",
            f"{sum(single)} of {len(single)} accepted, {budget}, {res} px"),
        row("class optimisation, batched", batched_rate, "latents/s",
            f"{int(batched.success.sum())} of {setup.jobs} accepted, batch {a.batch_size}, "
            f"{batched.batched_steps} batched steps"),
        row("class optimisation speed-up", batched_rate / single_rate if single_rate else None, "x",
            f"target at least {TARGET_SPEEDUP}x"),
    ]


def row(figure: str, value: float | None, unit: str, detail: str, peak: float | None = None) -> dict:
    """One line of the table (``value`` None: not measured, the detail says why)."""
    return {"figure": figure, "value": None if value is None else float(f"{value:.4g}"), "unit": unit,
            "peak_memory_mib": peak, "detail": detail}


def device_name(setup: Setup) -> str:
    if setup.device == "gpu":
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__.split('+')[0]})"
    return f"CPU, {torch.get_num_threads()} threads ({platform.processor() or platform.machine()})"


def number(value: float) -> str:
    """Four significant figures, without exponents for the sizes a table holds."""
    if math.isnan(value):
        return "nan"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def table(rows: list[dict], title: str) -> str:
    """The rows as an aligned text table under ``title``."""
    lines = [title, f"{'figure':36s} {'value':>12s} {'unit':10s} {'peak MiB':>9s}  detail"]
    for r in rows:
        value = "n/a" if r["value"] is None else number(r["value"])
        peak = "" if r["peak_memory_mib"] is None else f"{r['peak_memory_mib']:,.0f}"
        lines.append(f"{r['figure']:36s} {value:>12s} {r['unit']:10s} {peak:>9s}  {r['detail']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU: checks the script, not the GPU")
    parser.add_argument("--params", type=Path, default=None,
                        help="a complete params file (default: the nih profile, composed as dvc exp run does)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per GAN phase and classifier")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here as JSON")
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device (use --dry-run to check the script on a CPU)")
    setup = toy() if args.dry_run else full_scale(args.params, args.steps)
    if args.dry_run:
        torch.set_num_threads(1)  # toy networks gain nothing from threads; shared CPUs lose to them
    warnings.filterwarnings("ignore", category=UserWarning)  # Lightning's advice on loaders and logging
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    start = time.perf_counter()
    rows = gan_rows(setup) + [classifier_row(setup)] + class_optimisation_rows(setup)
    title = f"cxrsynth GPU check on {device_name(setup)}, {time.perf_counter() - start:.0f} s"
    if args.dry_run:
        title = f"DRY RUN (toy sizes on the CPU: the figures are meaningless) -- {title}"
    print(table(rows, title))
    if args.out is not None:
        args.out.write_text(json.dumps({"title": title, "dry_run": args.dry_run, "device": device_name(setup),
                                        "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
