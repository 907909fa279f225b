"""Paper 004's memory analysis (its Figs 7-8): the memory one training batch needs, per configuration.

For a network, one forward and backward pass over one batch needs its parameters, their
gradients, and the activations autograd saves for the backward pass. The activations are counted
exactly as autograd keeps them (``saved_tensors_hooks``; storages counted once, parameters not
counted there), so the figure does not depend on the device or the allocator; on a GPU the CUDA
allocator's peak for the same pass is recorded beside it. Paper 004 used torchsummary's
estimate for one image; ``batch`` sets how many.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from tqdm import tqdm

from cxrsynth.models.dcgan import DCGANDiscriminator, DCGANGenerator


def pass_bytes(network: nn.Module, inputs: torch.Tensor, forward=None) -> dict[str, int]:
    """Bytes of parameters, of their gradients and of the saved activations for one forward and
    backward pass of ``network`` on ``inputs`` (through ``forward(inputs)`` when given); with
    ``cuda_peak`` on a GPU."""
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not (t.is_leaf and t.requires_grad):  # parameters are counted once, below
            storage = t.untyped_storage()
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    device = inputs.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    network.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = network(inputs) if forward is None else forward(inputs)
    out.float().sum().backward()
    params = sum(p.numel() * p.element_size() for p in network.parameters())
    grads = sum(p.grad.numel() * p.grad.element_size() for p in network.parameters() if p.grad is not None)
    result = {"params": params, "grads": grads, "activations": sum(saved.values())}
    result["total"] = params + grads + result["activations"]
    if device.type == "cuda":
        result["cuda_peak"] = int(torch.cuda.max_memory_allocated(device) - base + params)
    network.zero_grad(set_to_none=True)
    return result


def dcgan_memory(widths: list[int], resolutions: list[int], batch: int = 1, z_dim: int = 100,
                 activation: str = "relu", device: str | torch.device = "cpu") -> list[dict]:
    """``pass_bytes`` of the DCGAN generator and discriminator at every width and resolution, with
    and without batch norm (paper 004, Figs 7 and 8)."""
    rows = []
    grid = [(r, w, bn) for r in resolutions for w in widths for bn in (True, False)]
    for resolution, width, batch_norm in tqdm(grid, desc="memory per configuration", unit="config"):
        torch.manual_seed(0)
        nets = {"G": (DCGANGenerator(z_dim, resolution, width, activation, batch_norm),
                      torch.randn(batch, z_dim, device=device)),
                "D": (DCGANDiscriminator(0.0, resolution, width, activation, batch_norm),
                      torch.randn(batch, 1, resolution, resolution, device=device))}
        for name, (net, inputs) in nets.items():
            measured = pass_bytes(net.to(device).train(), inputs)
            rows.append({"network": name, "resolution": resolution, "width": width, "batch_norm": batch_norm,
                         "batch": batch} | measured)
            del net
    return rows


def _optimiser_state_bytes(config, networks: nn.Module) -> int:
    """Bytes of the tensors the system's optimiser keeps (Adam's moments, AdaS's step sizes, ...),
    measured after one step of a fresh optimiser on the copies (their weights are thrown away)."""
    from cxrsynth.baselines.systems import build_optimiser

    for p in networks.parameters():
        p.grad = torch.zeros_like(p)
    optimiser = build_optimiser(config.optimiser, networks.parameters(), config.lr_g, config.betas)
    optimiser.step()
    return sum(t.numel() * t.element_size() for state in optimiser.state.values() for t in state.values()
               if torch.is_tensor(t) and t.dim() > 0)


def training_step_bytes(module, batch: int) -> dict[str, int]:
    """Memory of one training step of a baseline system at ``batch`` images (computed, not sampled):
    both networks' parameters and gradients, the optimiser state, and the larger of the two steps'
    saved activations (the discriminator step scores a real and a fake batch; the generator step
    backpropagates through G and D). For the VAE, the one pass through encoder and decoder."""
    c = module.config
    generator, discriminator = copy.deepcopy(module.generator).cpu(), copy.deepcopy(module.discriminator).cpu()
    torch.manual_seed(0)
    z = torch.randn(batch, c.z_dim)
    images = torch.rand(batch, 1, c.resolution, c.resolution) * 2 - 1
    labels = torch.zeros(batch, c.conditions) if c.conditions else None
    gen = (lambda x: generator(x)) if labels is None else (lambda x: generator(x, labels=labels))
    score = (lambda x: discriminator(x)) if labels is None else (lambda x: discriminator(x, labels=labels))
    both = nn.ModuleList([generator, discriminator])
    if c.loss == "elbo":
        step = pass_bytes(both, images, lambda x: generator.logits(discriminator(x)[0]))["activations"]
    else:
        d_step = 2 * pass_bytes(discriminator, images, score)["activations"]
        g_step = pass_bytes(both, z, lambda x: score(gen(x)))["activations"]
        step = max(d_step, g_step)
    weights = sum(p.numel() * p.element_size() for p in both.parameters())
    result = {"params": weights, "grads": weights, "optimiser": _optimiser_state_bytes(c, both), "activations": step}
    return result | {"total": sum(result.values())}
