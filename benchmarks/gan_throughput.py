"""PGGAN training throughput per resolution, and the projected time of the paper's schedule.

Times one full training step (D step with gradient penalty and drift, G step, EMA update)
built from the library's own networks and losses, per resolution, for the demo widths and
the authors' full widths, in fp32 and bf16 autocast. In the same run it times a naive step
(a host sync per loss with .item(), noise drawn on the CPU and copied) to show what the
sync-free step saves. From the measured full-width rates it projects the wall time of the
paper's schedule (800k fade-in + 800k stabilisation images per resolution, 4 to 1024), and
from the FLOPs of a step (counted from the networks' shapes) the share of a GPU's peak that
the 24-hour target on one H100 needs.

    python benchmarks/gan_throughput.py [--max-res 1024] [--steps 10]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from cxrsynth.models.pggan import PGGANDiscriminator, PGGANGenerator
from cxrsynth.training.ema import update_ema
from cxrsynth.training.gan_losses import wgan_g_loss, wgan_gp_d_loss

FULL = [512, 512, 512, 512, 256, 128, 64, 32, 16]
DEMO = [64, 64, 32, 16]
FULL_BATCH = {4: 64, 8: 64, 16: 64, 32: 64, 64: 64, 128: 64, 256: 56, 512: 32, 1024: 12}


def make_losses(g, d, real, res, batch, z_dim, device, naive):
    """The D loss (WGAN-GP + drift on a fresh fake batch) and the G loss, as two closures."""

    def z():
        return torch.randn(batch, z_dim).to(device) if naive else torch.randn(batch, z_dim, device=device)

    def d_loss():
        with torch.no_grad():
            fake = g(z(), res, 0.5)
        eps = torch.rand(batch, 1, 1, 1, device=device)
        return wgan_gp_d_loss(lambda x: d(x, res, 0.5), real, fake, eps)["loss"]

    def g_loss():
        return wgan_g_loss(d(g(z(), res, 0.5), res, 0.5))

    return d_loss, g_loss


def make_step(g, d, ema, opt_g, opt_d, res, batch, z_dim, device, dtype, naive):
    real = torch.randn(batch, 1, res, res, device=device)
    if device.type == "cuda":
        g, d, real = (m.to(memory_format=torch.channels_last) for m in (g, d, real))
    d_loss_of, g_loss_of = make_losses(g, d, real, res, batch, z_dim, device, naive)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            d_loss = d_loss_of()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            g_loss = g_loss_of()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        update_ema(ema, g, 0.999)
        if naive:
            d_loss.item(), g_loss.item()

    return step


class FlopCount(TorchDispatchMode):
    """Counts the FLOPs of every op torch's flop registry knows (convolutions, matmuls), forward and
    backward. Written here rather than using ``FlopCounterMode`` because that mode's module hooks
    refuse the gradient penalty's ``autograd.grad`` (double backward)."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.flops += count(*args, **kwargs, out_val=out)
        return out


def step_flops(channels, res, z_dim) -> float:
    """FLOPs per training image of one D step + one G step at ``res`` (shapes only: meta tensors)."""
    meta, batch = torch.device("meta"), 4
    chans = channels[: [4 * 2**i for i in range(len(channels))].index(res) + 1]
    g, d = PGGANGenerator(z_dim, chans).to(meta), PGGANDiscriminator(chans).to(meta)
    d_loss_of, g_loss_of = make_losses(g, d, torch.randn(batch, 1, res, res, device=meta), res, batch, z_dim, meta,
                                       naive=False)
    with FlopCount() as counter:
        d_loss_of().backward()
        g_loss_of().backward()
    return counter.flops / batch


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
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="dense bf16 peak the 24 h target is judged against (H100 SXM: 989)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    max_res = args.max_res or (1024 if device.type == "cuda" else 64)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}")
    print(f"{'widths':6s} {'res':>5s} {'batch':>5s} {'GFLOP/img':>10s} {'fp32 img/s':>11s} {'bf16 img/s':>11s} "
          f"{'naive fp32':>11s} {'sync-free gain':>15s} {'best TFLOP/s':>13s}")
    full_rates, full_flops = {}, {r: step_flops(FULL, r, 512) for r in FULL_BATCH}
    for label, channels in (("demo", DEMO), ("full", FULL)):
        for res in (4 * 2**i for i in range(len(channels))):
            if res > max_res:
                break
            batch = 32 if label == "demo" else FULL_BATCH[res]
            flops = full_flops[res] if label == "full" else step_flops(DEMO, res, 128)
            fp32 = rate(channels, res, batch, device, "fp32", args.steps)
            bf16 = rate(channels, res, batch, device, "bf16", args.steps)
            naive = rate(channels, res, batch, device, "fp32", args.steps, naive=True)
            if label == "full":
                full_rates[res] = max(fp32, bf16)
            print(f"{label:6s} {res:5d} {batch:5d} {flops / 1e9:10.2f} {fp32:11.1f} {bf16:11.1f} {naive:11.1f} "
                  f"{fp32 / naive:14.2f}x {flops * max(fp32, bf16) / 1e12:13.3f}")
    images = {r: 800_000 * (2 if r > 4 else 1) for r in FULL_BATCH}  # 4 px has no fade-in
    total_flops = sum(images[r] * full_flops[r] for r in FULL_BATCH)
    needed = total_flops / (24 * 3600) / 1e12
    print(f"paper schedule (800k + 800k images per resolution, 4 to 1024, full widths): "
          f"{total_flops / 1e18:.2f} EFLOP of convolutions and matmuls; in 24 h that is a sustained "
          f"{needed:.0f} TFLOP/s, {100 * needed / args.peak_tflops:.1f}% of a {args.peak_tflops:.0f} TFLOP/s peak")
    measured = [r for r in FULL_BATCH if r in full_rates]
    hours = sum(images[r] / full_rates[r] for r in measured) / 3600
    print(f"measured on this device, resolutions {measured}: {hours:.1f} h")
    missing = [r for r in FULL_BATCH if r not in full_rates]
    if missing:  # extrapolated at the FLOP rate reached at the largest resolution measured
        top = measured[-1]
        flop_rate = full_flops[top] * full_rates[top]
        rest = sum(images[r] * full_flops[r] for r in missing) / flop_rate / 3600
        print(f"not measured here: {missing}; at the {flop_rate / 1e12:.3f} TFLOP/s reached at {top} px they would "
              f"add {rest:,.0f} h, {hours + rest:,.0f} h in all (run on a GPU for measured figures)")

if __name__ == "__main__":
    main()
