"""Which checkpoint a GAN run continues, and where other runs' checkpoints are kept.

A run is named by its *run key* (``run_key``): the params that change training, the images
trained on and the source of the training code. Every checkpoint saves its key, and only a
checkpoint with the same key is resumed (unfinished) or exported again without training
(finished): ``checkpoint_decision``.

No checkpoint is ever deleted because another run starts: ``last.ckpt`` of another run key
(or an unreadable one) is moved, with its sample grids, to ``kept/<key digest>/`` (``keep_aside``);
a kept run of the current key is moved back and resumed (``restore_kept``). The number of kept
runs is bounded: only kept runs beyond ``keep_checkpoints`` (the oldest) are removed
(``prune_kept``), never the one just moved aside, the one ``resume_from`` names, or one of the
current key. ``resume_from`` (a checkpoint file, a folder holding one, or a kept run's name)
continues another run's weights, optimiser moments, EMA and images shown under a new key, when
the current run has no checkpoint of its own (``start_from``).

Under DDP only the first process moves files (``settle_checkpoints``); the others find the same
action without changing anything (``foresee_checkpoint``). Checkpoints are written to a
temporary file and renamed (``AtomicCheckpointIO``), so a kill during a save leaves the
previous one intact.

Every checkpoint is read with ``weights_only=True`` (``checkpoints.load_checkpoint``): one that holds
more than tensors and plain values (``last.ckpt``, a kept run's, the one ``resume_from`` names) stops
the run in one line before anything is moved or trained, since loading it could run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lightning.pytorch.plugins.io import TorchCheckpointIO

from cxrsynth.code_closure import import_closure, module_file, source_digest
from cxrsynth.errors import CxrsynthError
from cxrsynth.io import write_json
from cxrsynth.training.checkpoints import UnsafeCheckpointError, load_checkpoint
from cxrsynth.training.gan_module import GANModule

LAST = "last.ckpt"
SAMPLES = "samples"  # phase-end grids, beside the checkpoint they belong to
KEPT = "kept"  # checkpoints of other runs, one folder each: kept/<key digest>/{last.ckpt, samples/, kept.json}


class ResumeError(CxrsynthError, ValueError):
    """``gan.resume_from`` names no checkpoint, or one that these params cannot continue."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file, then rename it into place."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        os.replace(tmp, path)


#: GANConfig fields that change nothing the run trains (only how often the losses are read)
#: config keys that change no training: how often losses are read, and how a diffusion model samples
NOT_IN_RUN_KEY = ("log_every", "sample_steps", "guidance", "archive_oversample", "archive_extra_findings",
                  "sample_dtype")
#: the modules whose code is the training: networks, losses, schedule, EMA, the step, the real images drawn
TRAINING_MODULES = ("cxrsynth.training.gan_module", "cxrsynth.training.gan_data")
#: the params models (``models.gan`` reads its defaults there): what they give a run is the key's params
PARAMS_PACKAGE = "cxrsynth.config"


def training_modules(module_class: type[GANModule] = GANModule) -> tuple[str, ...]:
    """The modules whose code is a run's training: ``TRAINING_MODULES`` and the module class's own."""
    return tuple(dict.fromkeys((*TRAINING_MODULES, module_class.__module__)))


def training_code(module_class: type[GANModule] = GANModule) -> list[Path]:
    """The source files of a run's training code: ``training_modules`` and every project module they
    import (the networks' and configs' modules under ``models/``, losses, schedule, EMA), less the
    params models (``PARAMS_PACKAGE``): the values a run takes from them are the run key's params, so
    an edit there that changes no value (a description, another section) keeps the key."""
    params_dir = module_file(PARAMS_PACKAGE).parent
    return [p for p in import_closure(training_modules(module_class)) if params_dir not in p.parents]


def run_key(config, store_fingerprint: str, trainer_kwargs: dict | None = None,
            module_class: type[GANModule] = GANModule) -> dict:
    """What makes a GAN run: the params that change training, the data, and the training code.

    Saved in every checkpoint; only a checkpoint with the same key is resumed or re-exported.
    ``store_fingerprint`` names the images trained on (the store, plus any subset of it)."""
    kwargs = trainer_kwargs or {}
    params = {k: v for k, v in asdict(config).items() if k not in NOT_IN_RUN_KEY}
    params |= {k: kwargs.get(k, default) for k, default in (("precision", "32-true"), ("devices", 1), ("num_nodes", 1))}
    key = {"params": params, "data": store_fingerprint,
           "code": source_digest(training_code(module_class))}
    return json.loads(json.dumps(key))  # tuples as lists, as they come back from a checkpoint


def _key_difference(saved: dict, key: dict) -> str:
    """One line naming what differs between two run keys."""
    parts = []
    changed = sorted(k for k in set(saved.get("params", {})) | set(key["params"])
                     if saved.get("params", {}).get(k) != key["params"].get(k))
    if changed:
        parts.append("gan params " + ", ".join(changed))
    if saved.get("data") != key["data"]:
        parts.append(f"data (store {str(saved.get('data'))[:12]} -> {key['data'][:12]})")
    if saved.get("code") != key["code"]:
        parts.append("training code (" + ", ".join(TRAINING_MODULES) + " and what they import)")
    return "; ".join(parts) or "unknown"


def key_digest(key: dict) -> str:
    """A run key's short name (12 hex digits of the SHA-256 of its JSON): its folder under ``kept/``."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _read_state(path: Path) -> tuple[dict | None, str]:
    """The ``gan_state`` of the checkpoint at ``path``, or None and why it cannot be read.

    Raises ``UnsafeCheckpointError`` for a file that would run code when loaded: such a file is not
    kept aside like a truncated one, where a later ``resume_from`` could name it, but refused in
    place for the user to delete."""
    if not path.exists():
        return None, "no checkpoint"
    try:
        return load_checkpoint(path)["gan_state"], ""
    except UnsafeCheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 -- unreadable or foreign: kept aside, not trusted
        return None, f"{path} is unreadable ({type(err).__name__})"


def checkpoint_decision(path: Path, key: dict, total_images: int) -> tuple[str, str]:
    """What to do with the checkpoint at ``path``: ``fresh`` (none), ``resume`` (same run, unfinished),
    ``finished`` (same run, done: export it again without training) or ``restart`` (another run), and why."""
    return _decide(path, *_read_state(path), key, total_images)


def _decide(path: Path, state: dict | None, unreadable: str, key: dict, total_images: int) -> tuple[str, str]:
    if state is None:
        return ("fresh", unreadable) if not path.exists() else ("restart", unreadable)
    saved = state.get("run_key")
    if saved != key:
        return "restart", f"{path} was made by another run: {_key_difference(saved or {}, key)} differ"
    if state["images_seen"] >= total_images:
        return "finished", f"{path} is this run, finished at {state['images_seen']} images"
    return "resume", f"{path} is this run, at {state['images_seen']} of {total_images} images"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def _kept_name(path: Path, state: dict | None) -> str:
    """The kept folder's name: the run key's digest, or the file's for a checkpoint without a readable key."""
    if state is not None and isinstance(state.get("run_key"), dict):
        return key_digest(state["run_key"])
    return ("unkeyed-" if state is not None else "unreadable-") + _file_digest(path)


def keep_aside(checkpoint_dir: Path, state: dict | None, why: str) -> Path:
    """Move ``last.ckpt`` and its sample grids to ``kept/<name>/`` (``_kept_name``) and return that folder.

    Renames within the checkpoint folder only, so the checkpoint is on disk under one name or the
    other at every moment. ``kept.json`` records when and why; a name taken already gets a suffix."""
    last, kept = checkpoint_dir / LAST, checkpoint_dir / KEPT
    name = _kept_name(last, state)
    folder, n = kept / name, 1
    while folder.exists():
        n += 1
        folder = kept / f"{name}-{n}"
    folder.mkdir(parents=True)
    os.replace(last, folder / LAST)
    if (checkpoint_dir / SAMPLES).is_dir():
        os.replace(checkpoint_dir / SAMPLES, folder / SAMPLES)
    images = state.get("images_seen") if state is not None else None
    planned = _planned_images(state.get("config", {})) if state is not None else None
    write_json(folder / "kept.json", {"kept_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                                      "images_seen": images, "planned_images": planned,
                                      "finished": images is not None and planned is not None and images >= planned,
                                      "why": why})
    return folder


def _planned_images(config: dict) -> int | None:
    """The images a saved run's schedule shows in all (``ProgressiveSchedule.total_images``: the first
    resolution has no fade-in), from its saved config; None when the config does not say."""
    if config.get("arch") == "ldm" and "images" in config:  # the autoencoder's phase, then the UNet's
        return int(config["images"]) + int(config.get("ae_images", 0))
    if config.get("arch") == "dcgan" and "dcgan_images" in config:
        return int(config["dcgan_images"])
    if "fade_images" in config and "stable_images" in config:
        return int(sum(config["fade_images"][1:]) + sum(config["stable_images"]))
    if "images" in config:
        return int(config["images"])
    return None


def _finished(folder: Path) -> bool:
    """Whether a kept run had shown every image of its schedule (False when unknown)."""
    try:
        return json.loads((folder / "kept.json").read_text()).get("finished") is True
    except (OSError, ValueError):
        return False


def restore_kept(checkpoint_dir: Path, key: dict) -> Path | None:
    """Move the kept checkpoint of run ``key`` (and its grids) back to ``last.ckpt``; the folder it
    came from, or None when no run of this key is kept."""
    folder = checkpoint_dir / KEPT / key_digest(key)
    if not (folder / LAST).is_file():
        return None
    shutil.rmtree(checkpoint_dir / SAMPLES, ignore_errors=True)  # grids of no checkpoint
    os.replace(folder / LAST, checkpoint_dir / LAST)
    if (folder / SAMPLES).is_dir():
        os.replace(folder / SAMPLES, checkpoint_dir / SAMPLES)
    shutil.rmtree(folder)  # only kept.json is left
    return folder


def _kept_at(folder: Path) -> float:
    try:
        return datetime.fromisoformat(json.loads((folder / "kept.json").read_text())["kept_at"]).timestamp()
    except (OSError, ValueError, KeyError):  # killed before kept.json was written
        return folder.stat().st_mtime


def kept_runs(checkpoint_dir: Path) -> list[Path]:
    """The kept run folders (``kept/<name>/``), newest first."""
    kept = checkpoint_dir / KEPT
    folders = [p for p in kept.iterdir() if p.is_dir() and not p.name.startswith(".")] if kept.is_dir() else []
    return sorted(folders, key=_kept_at, reverse=True)


def prune_kept(checkpoint_dir: Path, keep: int, protect: tuple[Path, ...] = (), key: dict | None = None) -> list[Path]:
    """Remove the oldest finished kept runs beyond the newest ``keep``; return the folders removed.

    An unfinished kept run (or one whose progress is unknown) is never removed: a killed run is in
    no DVC cache, so this may be its only copy. Nor are folders in ``protect`` (the one just moved
    aside, the one ``resume_from`` names) or any kept under ``key`` (the current run). All of
    these count towards ``keep``."""
    safe = {p.resolve() for p in protect}
    own = key_digest(key) if key is not None else None
    removed, survivors = [], 0
    for folder in kept_runs(checkpoint_dir):
        if (folder.resolve() in safe or folder.name.split("-")[0] == own or survivors < keep
                or not _finished(folder)):
            survivors += 1
            continue
        trash = folder.with_name(f".{folder.name}.removing")  # a kill mid-removal leaves no half-kept run
        os.replace(folder, trash)
        shutil.rmtree(trash)
        removed.append(folder)
    return removed


def find_resume_checkpoint(value: str, checkpoint_dir: Path) -> Path:
    """The checkpoint ``gan.resume_from`` names: a checkpoint file, a folder holding ``last.ckpt``, or a
    kept run's name (its key digest, or a unique start of it) under ``checkpoint_dir/kept``."""
    path, kept = Path(value), checkpoint_dir / KEPT
    for candidate in (path, path / LAST, kept / value / LAST):
        if candidate.is_file():
            return candidate
    names = [p.name for p in kept_runs(checkpoint_dir)]
    matches = [name for name in names if name.startswith(value)] if value and "/" not in value else []
    if len(matches) == 1 and (kept / matches[0] / LAST).is_file():
        return kept / matches[0] / LAST
    raise ResumeError(f"gan.resume_from: {value!r} is neither a checkpoint file nor one kept run in {kept} "
                      f"(kept: {', '.join(names) or 'none'})")


def _check_resumable(checkpoint: dict, module: GANModule, source: Path) -> None:
    """Raise ``ResumeError`` unless ``module``'s networks and schedule can continue ``checkpoint``."""
    state = checkpoint["gan_state"]
    seen, total = int(state["images_seen"]), module.schedule.total_images
    if seen >= total:
        raise ResumeError(f"gan.resume_from: {source} is at {seen} images; this schedule ends at {total}, "
                          "so nothing would be left to train")
    phase = module.schedule.phase_at(seen).name
    if state.get("phase", phase) != phase:
        raise ResumeError(f"gan.resume_from: {source} stopped in phase {state['phase']} at {seen} images, "
                          f"where this schedule is in phase {phase}")
    ours, theirs = module.state_dict(), checkpoint["state_dict"]
    differ = sorted(k for k in ours.keys() | theirs.keys()
                    if k not in ours or k not in theirs or ours[k].shape != theirs[k].shape)
    if differ:
        raise ResumeError(f"gan.resume_from: {source} holds other networks than these params build "
                          f"({', '.join(differ[:3])}{', ...' if len(differ) > 3 else ''})")


def _use_new_optimiser_settings(checkpoint: dict, module: GANModule, source: Path) -> None:
    """Give the saved optimiser states this run's settings (lr, betas, ...): loading a state would
    otherwise bring back the old run's, since they are stored with the moments."""
    optimisers = module.configure_optimizers()
    optimisers = list(optimisers) if isinstance(optimisers, (list, tuple)) else [optimisers]
    saved = checkpoint.get("optimizer_states", [])
    if len(saved) != len(optimisers):
        raise ResumeError(f"gan.resume_from: {source} holds {len(saved)} optimiser states, these params "
                          f"build {len(optimisers)} optimisers")
    for state, optimiser in zip(saved, optimisers):
        for group, new in zip(state["param_groups"], optimiser.param_groups):
            group.update({k: v for k, v in new.items() if k != "params"})


def start_from(source: Path, module: GANModule, checkpoint_dir: Path) -> tuple[dict, str]:
    """Write ``last.ckpt`` from another run's checkpoint, for ``module``'s run (``gan.resume_from``).

    The new file holds the saved networks, EMA, optimiser moments, random streams and images
    shown, under ``module.run_key`` and with this run's optimiser settings; its sample grids
    are copied beside it, and ``source`` is left as it is. Returns what is recorded as
    ``resumed_from`` in this and every later checkpoint of the run (the source's path, run key
    digest and images shown), and what differs between the two runs' keys."""
    try:
        checkpoint = load_checkpoint(source)
        state = checkpoint["gan_state"]
    except UnsafeCheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 -- any unreadable file is the user's pick to fix
        raise ResumeError(f"gan.resume_from: {source} is unreadable ({type(err).__name__})") from err
    _check_resumable(checkpoint, module, source)
    _use_new_optimiser_settings(checkpoint, module, source)
    saved_key = state.get("run_key")
    record = {"path": str(source), "run_key_digest": key_digest(saved_key) if isinstance(saved_key, dict) else None,
              "images_seen": int(state["images_seen"])}
    differs = _key_difference(saved_key if isinstance(saved_key, dict) else {}, module.run_key)
    state |= {"run_key": module.run_key, "resumed_from": record, "config": asdict(module.config)}
    if "hyper_parameters" in checkpoint:
        checkpoint["hyper_parameters"] = dict(module.hparams)
    shutil.rmtree(checkpoint_dir / SAMPLES, ignore_errors=True)
    if (source.parent / SAMPLES).is_dir():
        shutil.copytree(source.parent / SAMPLES, checkpoint_dir / SAMPLES)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    AtomicCheckpointIO().save_checkpoint(checkpoint, checkpoint_dir / LAST)
    return record, differs


@dataclass
class _Plan:
    """What ``plan_checkpoints`` found and did: the action, the one-line story, and the folders it moved."""

    action: str
    notes: list[str]
    kept: list[Path] = field(default_factory=list)
    restored: bool = False
    source: Path | None = None  # the checkpoint gan.resume_from names, when it is to be used


def plan_checkpoints(checkpoint_dir: Path, key: dict, total_images: int, resume_from: str | None) -> _Plan:
    """Settle ``last.ckpt`` for run ``key``: keep another run's aside, bring back a kept one of this run,
    and, when this run has no checkpoint of its own, find the one ``resume_from`` names (which may
    be ``last.ckpt`` as it was, or the kept run it just became). Deletes no checkpoint."""
    last = checkpoint_dir / LAST
    state, unreadable = _read_state(last)
    action, reason = _decide(last, state, unreadable, key, total_images)
    plan = _Plan(action, [reason])
    if action == "restart":
        _keep(plan, checkpoint_dir, state, reason)
    if action in ("fresh", "restart"):
        shutil.rmtree(checkpoint_dir / SAMPLES, ignore_errors=True)  # grids of no checkpoint
        back = restore_kept(checkpoint_dir, key)
        if back is not None:
            state, unreadable = _read_state(last)
            plan.action, reason = _decide(last, state, unreadable, key, total_images)
            plan.restored = plan.action != "restart"
            plan.notes.append(f"moved {back}/ back: {reason}")
            if plan.action == "restart":  # not this run after all (a renamed folder): aside again
                _keep(plan, checkpoint_dir, state, reason)
    if resume_from and plan.action in ("fresh", "restart"):
        named_last = any(p.resolve() == last.resolve() for p in (Path(resume_from), Path(resume_from) / LAST))
        if named_last and plan.kept:
            plan.source = plan.kept[0] / LAST
        else:
            plan.source = find_resume_checkpoint(resume_from, checkpoint_dir)
    elif resume_from:
        plan.notes.append("gan.resume_from is not used: this run has a checkpoint of its own")
    return plan


def _keep(plan: _Plan, checkpoint_dir: Path, state: dict | None, why: str) -> None:
    plan.kept.append(keep_aside(checkpoint_dir, state, why))
    plan.notes.append(f"kept it in {plan.kept[-1]}/")


#: what ``fit_gan`` goes on to do after each action, for its one line
NEXT = {"fresh": "training", "resume": "resuming", "finished": "exporting it without training",
        "restart": "starting over", "resume_from": "continuing it under this run's key"}


def settle_checkpoints(checkpoint_dir: Path, module: GANModule, keep: int,
                       resume_from: str | None) -> tuple[str, bool]:
    """Arrange the checkpoint folder for ``module``'s run (``plan_checkpoints``, then ``start_from`` when
    ``resume_from`` is to be used, then ``prune_kept``) and print one line saying what was found and
    done. Returns the action and whether the DVCLive curves on disk are this run's to continue."""
    total = module.schedule.total_images
    plan = plan_checkpoints(checkpoint_dir, module.run_key, total, resume_from)
    action = plan.action
    if plan.source is not None:
        record, differs = start_from(plan.source, module, checkpoint_dir)
        action = "resume_from"
        plan.notes.append(f"gan.resume_from {plan.source} is at {record['images_seen']} of {total} images "
                          f"(its run differs in {differs})")
    protect = (*plan.kept, *([plan.source.parent] if plan.source is not None else []))
    pruned = prune_kept(checkpoint_dir, keep, protect, module.run_key)
    if pruned:
        plan.notes.append(f"removed the oldest kept {', '.join(f'{p}/' for p in pruned)} (keep_checkpoints: {keep})")
    print("gan: " + "; ".join(plan.notes) + "; " + NEXT[action])
    return action, action == "resume" and not plan.restored


def foresee_checkpoint(checkpoint_dir: Path, key: dict, total_images: int, resume_from: str | None) -> str:
    """The action ``settle_checkpoints`` takes in the first process, found by the others without
    changing anything (under torchrun or SLURM they start at the same time). What matters is whether
    ``last.ckpt`` is to be loaded: the first process has finished writing it before the process
    group forms, which is before any process loads it."""
    own = checkpoint_dir / KEPT / key_digest(key) / LAST
    for path in (own, checkpoint_dir / LAST):  # in this order: the first process moves own to last.ckpt
        state, _ = _read_state(path)
        if state is not None and state.get("run_key") == key:
            return "finished" if state["images_seen"] >= total_images else "resume"
    return "resume_from" if resume_from else "fresh"
