"""PGGAN training throughput per resolution, and the projected time of the paper's schedule.

Times one full training step (D step with gradient penalty and drift, G step, EMA update)
built from the library's own networks and losses, per resolution, for the demo widths and
the authors' full widths, in fp32 and bf16 autocast. In the same run it times a naive step
(a host sync per loss with .item(), noise drawn on the CPU and copied) to show what the
sync-free step saves. From the measured full-width rates it projects the wall time of the
paper's schedule (800k fade-in + 800k stabilisation images per resolution, 4 to 1024).

    python benchmarks/gan_throughput.py [--max-res 1024] [--steps 10]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from cxrsynth.models.pggan import PGGANDiscriminator, PGGANGenerator
from cxrsynth.training.ema import update_ema
from cxrsynth.training.gan_losses import wgan_g_loss, wgan_gp_d_loss

FULL = [512, 512, 512, 512, 256, 128, 64, 32, 16]
DEMO = [64, 64, 32, 16]
FULL_BATCH = {4: 64, 8: 64, 16: 64, 32: 64, 64: 64, 128: 64, 256: 56, 512: 32, 1024: 12}


def make_step(g, d, ema, opt_g, opt_d, res, batch, z_dim, device, dtype, naive):
    real = torch.randn(batch, 1, res, res, device=device)
    if device.type == "cuda":
        g, d, real = (m.to(memory_format=torch.channels_last) for m in (g, d, real))

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            z = torch.randn(batch, z_dim).to(device) if naive else torch.randn(batch, z_dim, device=device)
            with torch.no_grad():
                fake = g(z, res, 0.5)
            eps = torch.rand(batch, 1, 1, 1, device=device)
            d_loss = wgan_gp_d_loss(lambda x: d(x, res, 0.5), real, fake, eps)["loss"]
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            z = torch.randn(batch, z_dim).to(device) if naive else torch.randn(batch, z_dim, device=device)
            g_loss = wgan_g_loss(d(g(z, res, 0.5), res, 0.5))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        update_ema(ema, g, 0.999)
        if naive:
            d_loss.item(), g_loss.item()

    return step


def rate(channels, res, batch, device, dtype, steps, naive=False) -> float:
    z_dim = 512 if channels is FULL else 128
    chans = channels[: [4 * 2**i for i in range(len(channels))].index(res) + 1]
    g, d = PGGANGenerator(z_dim, chans).to(device), PGGANDiscriminator(chans).to(device)
    ema = copy.deepcopy(g).requires_grad_(False)
    opt_g = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.0, 0.99))
    step = make_step(g, d, ema, opt_g, opt_d, res, batch, z_dim, device, dtype, naive)
    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-res", type=int, default=None, help="default: 1024 on GPU, 64 on CPU")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    max_res = args.max_res or (1024 if device.type == "cuda" else 64)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}")
    print(f"{'widths':6s} {'res':>5s} {'batch':>5s} {'fp32 img/s':>11s} {'bf16 img/s':>11s} {'naive fp32':>11s} {'sync-free gain':>15s}")
    full_rates = {}
    for label, channels in (("demo", DEMO), ("full", FULL)):
        for res in (4 * 2**i for i in range(len(channels))):
            if res > max_res:
                break
            batch = 32 if label == "demo" else FULL_BATCH[res]
            fp32 = rate(channels, res, batch, device, "fp32", args.steps)
            bf16 = rate(channels, res, batch, device, "bf16", args.steps)
            naive = rate(channels, res, batch, device, "fp32", args.steps, naive=True)
            if label == "full":
                full_rates[res] = max(fp32, bf16)
            print(f"{label:6s} {res:5d} {batch:5d} {fp32:11.1f} {bf16:11.1f} {naive:11.1f} {fp32 / naive:14.2f}x")
    measured = [r for r in FULL_BATCH if r in full_rates]
    hours = sum((800_000 * (2 if r > 4 else 1)) / full_rates[r] for r in measured) / 3600
    missing = [r for r in FULL_BATCH if r not in full_rates]
    print(f"paper schedule (800k + 800k images per resolution), resolutions measured {measured}: {hours:.1f} h"
          + (f"; not measured here: {missing} (run on a GPU for the full projection)" if missing else ""))


if __name__ == "__main__":
    main()
