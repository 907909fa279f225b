"""Stage ``train_gan``: progressive growing GAN (or the DCGAN baseline), resumable from checkpoints."""

import argparse
import shutil
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.gan import GANParams
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.models.gan import gan_config
from cxrsynth.runtime import use_all_cores
from cxrsynth.training.gan_fit import export_generator, fit_gan


def run(args: argparse.Namespace) -> None:
    params = load_validated(GANParams, args.params / "gan.json")
    use_all_cores(params.threads)
    config = gan_config(params)
    trainer_kwargs = dict(accelerator=params.accelerator, devices=params.devices, num_nodes=params.num_nodes,
                          strategy=params.strategy, precision=params.precision, deterministic=params.deterministic)
    fit = fit_gan(args.store, config, args.checkpoints, params.checkpoint_every, trainer_kwargs, args.live,
                  params.memory_limit_gib, keep_checkpoints=params.keep_checkpoints, resume_from=params.resume_from)
    if not fit.is_global_zero:  # under DDP, process 0 writes the outputs
        return
    module = fit.module
    with atomic_dir(args.out) as out:
        export_generator(module, out, args.checkpoints / "samples")
    final = sorted((args.out / "samples").glob("*.png"))[-1]
    shutil.copyfile(final, args.samples)
    metrics = {
        "arch": params.arch,
        "resolution": config.resolutions[-1],
        "images_shown": module.images_seen,
        "processes": fit.processes,
        "batch_per_process": {str(p.resolution): p.batch_size // fit.processes for p in module.schedule.phases},
        "memory_mapped_levels": fit.memory_mapped,  # over gan.memory_limit_gib: read batch by batch
        "final_loss_d": round(module.last_losses.get("d", float("nan")), 4),
        "final_loss_g": round(module.last_losses.get("g", float("nan")), 4),
        "d_loss": {k: round(v, 6) if isinstance(v, float) else v for k, v in module.d_loss_stats().items()},
        "phases": module.finished_phases,
        "resumed_from": module.resumed_from,  # gan.resume_from: the other run's checkpoint this one continued
    }
    write_json(args.metrics, metrics)
    print(f"train_gan: {params.arch} to {metrics['resolution']}px, {module.images_seen} images "
          f"({'re-exported, no training' if fit.action == 'finished' else fit.action})")
    return {"checkpoint": fit.action, "img_per_s": module.phase_rates}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("data/params"), help="validated params sections")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="exported generator and sample grids")
    parser.add_argument("--checkpoints", type=Path, required=True, help="persistent checkpoint folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True, help="final sample grid PNG")
    parser.add_argument("--live", type=Path, default=None, help="DVCLive folder")
    stage_main(run, parser)
