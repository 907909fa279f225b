"""Train one baseline system on the store (one generator, or one per label), export it, sample it."""

from __future__ import annotations

import json
import resource
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from cxrsynth.baselines.module import BaselineModule
from cxrsynth.baselines.systems import BaselineConfig, build_networks
from cxrsynth.data.store import ImageStore
from cxrsynth.labels import LABELS
from cxrsynth.sampling import latents, sample_images
from cxrsynth.training.gan_fit import export_generator, fit_gan

#: the folder of a system trained as one generator; per-class systems have one folder per label
WHOLE = "all"


def folder_name(group: str) -> str:
    """The folder of a generator: its label with spaces as underscores ("No Finding" → "No_Finding")."""
    return group.replace(" ", "_")


@dataclass
class SystemRun:
    """What training one system gave: its generators (by label, or ``WHOLE``) and how it went."""

    config: BaselineConfig
    modules: dict[str, BaselineModule]
    train_images: dict[str, int]  # real images each generator learned from
    actions: dict[str, str]  # fresh | resume | finished | restart, per generator
    rates: dict[str, float] = field(default_factory=dict)  # training images/s per generator this process trained
    skipped: list[str] = field(default_factory=list)  # labels no image carries (per-class systems)

    @property
    def images_per_s(self) -> float | None:
        """Training throughput (images shown per second, the mean over the generators this process
        trained); None when all were finished already and only re-exported."""
        return round(float(np.mean(list(self.rates.values()))), 1) if self.rates else None

    def d_loss_stats(self) -> dict | None:
        """D-loss mean, variance and std over every step of every generator (None for the VAE)."""
        if self.config.loss == "elbo":
            return None
        moments = np.sum([m.d_loss_moments for m in self.modules.values()], axis=0)
        n, total, squares = moments
        mean = total / n
        variance = max(squares / n - mean * mean, 0.0)
        return {"steps": int(n), "mean": float(mean), "variance": float(variance), "std": float(np.sqrt(variance))}


def peak_memory_mib(device: torch.device) -> dict:
    """Peak memory of this process: CUDA's allocator peak on a GPU, the resident set size on a CPU."""
    if device.type == "cuda":
        return {"what": "cuda max_memory_allocated", "mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}
    return {"what": "process peak RSS", "mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def single_device_trainer(device: torch.device) -> dict:
    """Lightning Trainer arguments for a baseline run: one device of ``device``'s type, deterministic."""
    return {"accelerator": "gpu" if device.type == "cuda" else "cpu", "devices": 1, "deterministic": True}


def store_labels(store_dir: Path) -> np.ndarray:
    """(N, 15) uint8 label sets of the store's images in row order (the conditions the conditional GAN
    is sampled with)."""
    table = ImageStore(store_dir).table.sort_values("row")
    return table[list(LABELS)].to_numpy(dtype=np.uint8)


def train_system(store_dir: Path, config: BaselineConfig, per_class: bool, checkpoint_dir: Path, checkpoint_every: int,
                 trainer_kwargs: dict | None = None, live_dir: Path | None = None,
                 memory_limit_gib: float = 4.0) -> SystemRun:
    """Train (resume, or reload when finished) the system's generator, or one per label on the images
    carrying it (paper 003) with seeds ``seed + label index``."""
    table = ImageStore(store_dir).table.sort_values("row")
    labels = table[list(LABELS)].to_numpy(dtype=np.float32)
    groups = {WHOLE: np.ones(len(table), dtype=bool)}
    if per_class:
        groups = {name: labels[:, i] > 0 for i, name in enumerate(LABELS)}
    run = SystemRun(config, {}, {}, {})
    for i, (group, members) in enumerate(groups.items()):
        if not members.any():
            run.skipped.append(group)
            continue
        group_config = replace(config, seed=config.seed + i) if per_class else config
        rows = None if group == WHOLE else table["row"].to_numpy()[members]
        chosen = labels[members]

        def attach(module, store, chosen=chosen):
            module.attach_labels(chosen)

        if per_class:
            print(f"baselines: {config.system} / {group}: {int(members.sum())} images")
        fit = fit_gan(store_dir, group_config, checkpoint_dir / folder_name(group), checkpoint_every, trainer_kwargs,
                      None if live_dir is None else live_dir / folder_name(group) if per_class else live_dir,
                      memory_limit_gib, module_class=BaselineModule, rows=rows, prepare=attach)
        if fit.module.phase_rates:
            run.rates[group] = float(np.mean(list(fit.module.phase_rates.values())))
        run.modules[group], run.actions[group] = fit.module, fit.action
        run.train_images[group] = int(members.sum())
    if not run.modules:
        raise ValueError(f"baselines.systems.{config.system}: no label has any image to train on")
    return run


def export_system(run: SystemRun, out_dir: Path, checkpoint_dir: Path) -> None:
    """One exported generator folder per generator (``out_dir/<label or all>/``), as ``export_generator``."""
    for group, module in run.modules.items():
        export_generator(module, out_dir / folder_name(group), checkpoint_dir / folder_name(group) / "samples")
    (out_dir / "train_images.json").write_text(json.dumps(run.train_images, indent=2) + "\n")


def load_generators(folder: Path, device="cpu") -> tuple[dict[str, torch.nn.Module], BaselineConfig, dict[str, int]]:
    """The exported generators of a system (by label, or ``WHOLE``), its config and training-image counts."""
    counts = json.loads((folder / "train_images.json").read_text())
    generators, config = {}, None
    for group in counts:
        raw = json.loads((folder / folder_name(group) / "config.json").read_text())
        config = BaselineConfig(**raw)
        generator, _ = build_networks(config)
        path = folder / folder_name(group) / "generator.pt"
        generator.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        generators[group] = generator.to(device).eval()
    return generators, config, counts


@torch.no_grad()
def sample_system(generators: dict[str, torch.nn.Module], config: BaselineConfig, counts: dict[str, int], n: int,
                  source_labels: np.ndarray, seed: int, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` uint8 images (N, r, r) and, where the system decides them, their labels (N, 15):

    * one unconditional generator: no labels (the labeller gives them);
    * the conditional GAN: conditions drawn from ``source_labels`` (the training images' label sets);
    * one generator per label: samples in proportion to each label's training images, labelled by it.
    """
    r = config.resolution
    device = next(next(iter(generators.values())).parameters()).device
    if WHOLE in generators and not config.conditions:
        z = latents(n, config.z_dim, seed, device=device)
        return sample_images(generators[WHOLE], z, r, batch_size)[:, 0].numpy(), None
    if WHOLE in generators:
        rng = np.random.default_rng(seed)
        conditions = source_labels[rng.integers(len(source_labels), size=n)].astype(np.float32)
        z = latents(n, config.z_dim, seed, device=device)
        generator, out = generators[WHOLE], []
        for start in range(0, n, batch_size):
            y = torch.from_numpy(conditions[start : start + batch_size]).to(device)
            images = generator(z[start : start + batch_size], labels=y).float()
            out.append(((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu())
        return torch.cat(out)[:, 0].numpy(), conditions.astype(np.uint8)
    names = list(generators)
    share = np.array([counts[name] for name in names], dtype=np.float64)
    per_label = np.floor(n * share / share.sum()).astype(int)
    per_label[np.argsort(-(n * share / share.sum() - per_label))[: n - per_label.sum()]] += 1  # largest remainders
    images, labels = [], []
    for k, (name, m) in enumerate(zip(names, per_label)):
        if m:
            z = latents(int(m), config.z_dim, seed + 1000 * (k + 1), device=device)
            images.append(sample_images(generators[name], z, r, batch_size)[:, 0].numpy())
            one_hot = np.zeros((m, len(LABELS)), dtype=np.uint8)
            one_hot[:, LABELS.index(name)] = 1
            labels.append(one_hot)
    return np.concatenate(images), np.concatenate(labels)

