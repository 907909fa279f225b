"""Class optimisation: batched, masked Algorithm 1 against one latent at a time.

Same generator, same scorer, same jobs (classes and thresholds), same step budget.
Reports accepted latents per second for one latent at a time and for the batched run with
restarts in turn and in parallel, the ratios, how many fewer steps the batched runs take
(the gain where a step costs the same at any width), and what batching alone can gain on
the device (the model's cost per latent alone and in a batch). Uses the trained generator
and scorer of the pipeline, so run ``dvc repro`` first.

    python benchmarks/class_optimisation.py [--jobs 64] [--scorer discriminator|densenet] [--device cuda]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from cxrsynth.runtime import resolve_device, use_all_cores
from cxrsynth.synthesis.class_optimisation import LatentOptimiser, one_at_a_time
from cxrsynth.synthesis.scorers import load_scorer, severity_thresholds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gan", type=Path, default=Path("data/gan/model"))
    parser.add_argument("--scorer", choices=["discriminator", "densenet"], default="discriminator")
    parser.add_argument("--jobs", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-steps", type=int, default=60)
    parser.add_argument("--max-attempts", type=int, default=4)
    parser.add_argument("--step-size", type=float, default=0.05)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    use_all_cores()
    device = resolve_device(args.device)
    from cxrsynth.sampling import load_generator

    folder = Path("data/d_classifier" if args.scorer == "discriminator" else "data/classifier")
    for needed in (args.gan, folder):
        if not needed.is_dir():
            raise SystemExit(f"class_optimisation: {needed} not found: run `dvc repro` first")
    generator, gan = load_generator(args.gan, device)
    scorer = load_scorer(folder, device, args.scorer)
    rng = np.random.default_rng(0)
    classes = np.arange(args.jobs) % 15
    thresholds = severity_thresholds(scorer.logit_thresholds, classes, 1.0, 1.0, rng)
    optimiser = LatentOptimiser(generator, gan.resolutions[-1], scorer, args.step_size)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    optimiser.run(classes[:4], thresholds[:4], 4, 2, 1, 0.7, seed=99, progress=False)  # warm-up
    print(f"device {device}, scorer {args.scorer}, {args.jobs} jobs, batch {args.batch_size}")
    start = time.perf_counter()
    single = [one_at_a_time(optimiser, int(c), float(t), args.max_steps, args.max_attempts, 0.7, seed=j)
              for j, (c, t) in enumerate(zip(classes, thresholds))]
    sync()
    single_s = time.perf_counter() - start
    rate_s = sum(ok for ok, *_ in single) / single_s
    scored = sum(n for *_, n in single)
    print(f"one at a time:                 {sum(ok for ok, *_ in single):4d} accepted in {single_s:7.2f} s = "
          f"{rate_s:8.2f} latents/s ({scored} latents scored, one per step)")
    for parallel in (True, False):
        sync()
        start = time.perf_counter()
        batched = optimiser.run(classes, thresholds, args.batch_size, args.max_steps, args.max_attempts, 0.7,
                                seed=0, progress=False, parallel_restarts=parallel)
        sync()
        seconds = time.perf_counter() - start
        rate_b = int(batched.success.sum()) / seconds
        label = "in parallel" if parallel else "in turn    "
        print(f"batched, restarts {label}: {int(batched.success.sum()):4d} accepted in {seconds:7.2f} s = "
              f"{rate_b:8.2f} latents/s ({batched.batched_steps} batched steps, {batched.latents_scored} latents "
              f"scored): {rate_b / max(rate_s, 1e-9):.1f}x one at a time (target at least 10x)")
        # the most batching can gain on a device where a step costs the same at any width (a GPU
        # running these small networks): the single loop's steps over the batched run's steps
        print(f"  {scored / batched.batched_steps:.1f}x fewer steps than one at a time")
    # what batching alone can gain on this device: the model's cost per latent-step alone vs in a full
    # batch (median of 10 timed calls each; the optimiser's bookkeeping comes on top of both)
    costs = {}
    for width in (1, args.batch_size):
        z = torch.randn(width, generator.z_dim, device=device)
        cls = torch.zeros(width, dtype=torch.long, device=device)
        optimiser.scores(z, cls, grad=True)
        times = []
        for _ in range(10):
            sync()
            start = time.perf_counter()
            optimiser.scores(z, cls, grad=True)
            sync()
            times.append(time.perf_counter() - start)
        costs[width] = float(np.median(times)) / width
    print(f"model cost per latent-step: {1e3 * costs[1]:.2f} ms alone, {1e3 * costs[args.batch_size]:.2f} ms in a "
          f"batch of {args.batch_size}: about {costs[1] / costs[args.batch_size]:.1f}x from batching on this device")


if __name__ == "__main__":
    main()
