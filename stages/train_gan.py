"""Stage ``train_gan``: progressive growing GAN (or the DCGAN baseline, or a class-conditional diffusion
model: ``gan.arch`` ddpm | ldm), resumable from checkpoints."""

import argparse
import shutil
from pathlib import Path

from cxrsynth.cli import stage_main
from cxrsynth.config.base import load_validated
from cxrsynth.config.gan import GANParams
from cxrsynth.io import atomic_dir, write_json
from cxrsynth.models.diffusion import diffusion_config
from cxrsynth.models.gan import gan_config
from cxrsynth.runtime import use_all_cores
from cxrsynth.training.diffusion_fit import diffusion_metrics, export_diffusion, fit_diffusion
from cxrsynth.training.gan_fit import export_generator, fit_gan, gan_metrics


def run(args: argparse.Namespace) -> None:
    params = load_validated(GANParams, args.params / "gan.json")
    use_all_cores(params.threads)
    trainer_kwargs = dict(accelerator=params.accelerator, devices=params.devices, num_nodes=params.num_nodes,
                          strategy=params.strategy, precision=params.precision, deterministic=params.deterministic)
    fit_kwargs = dict(trainer_kwargs=trainer_kwargs, live_dir=args.live, memory_limit_gib=params.memory_limit_gib,
                      keep_checkpoints=params.keep_checkpoints, resume_from=params.resume_from)
    if params.is_diffusion:
        config = diffusion_config(params)
        fit = fit_diffusion(args.store, config, args.checkpoints, params.checkpoint_every, **fit_kwargs)
    else:
        config = gan_config(params)
        fit = fit_gan(args.store, config, args.checkpoints, params.checkpoint_every, **fit_kwargs)
    if not fit.is_global_zero:  # under DDP, process 0 writes the outputs
        return
    module = fit.module
    with atomic_dir(args.out) as out:
        (export_diffusion if params.is_diffusion else export_generator)(module, out, args.checkpoints / "samples")
    final = sorted((args.out / "samples").glob("*.png"))[-1]
    shutil.copyfile(final, args.samples)
    metrics = diffusion_metrics(fit) if params.is_diffusion else gan_metrics(fit)
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
