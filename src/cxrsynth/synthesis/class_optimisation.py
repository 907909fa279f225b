"""Class optimisation (paper 001, Algorithm 1), batched.

For a target class c and threshold T_c, a latent z is moved by gradient ascent on the
class logit F_c(G(z)) until F_c(G(z)) >= T_c; G and F are frozen and other classes are
ignored, so co-occurring findings appear naturally.

Batched: ``batch_size`` slots are optimised together, each with its own class and
threshold. A slot that reaches its threshold is frozen (its z is no longer updated) and
handed back; a slot that spends ``max_steps`` restarts from a fresh truncated-normal z, up
to ``max_attempts`` times. Freed slots are refilled from the queue of jobs, so the batch
stays full. The optimiser state is per slot (Adam moments and step counts are reset when
a slot is refilled), so every latent follows exactly the path it would follow alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from cxrsynth.synthesis.scorers import Scorer

BETAS, EPS = (0.9, 0.999), 1e-8


@dataclass
class OptimisationResult:
    """Per job: success, final latent, score, steps of the successful attempt, total steps and attempts."""

    classes: np.ndarray
    thresholds: np.ndarray
    success: np.ndarray
    z: torch.Tensor
    score: np.ndarray
    steps: np.ndarray
    total_steps: np.ndarray
    attempts: np.ndarray
    batched_steps: int = 0
    history: list = field(default_factory=list)


def truncated_normal(n: int, dim: int, threshold: float, generator: torch.Generator, device) -> torch.Tensor:
    """N(0, 1) entries redrawn until inside [-threshold, threshold]."""
    z = torch.randn(n, dim, generator=generator, device=device)
    while (out := z.abs() > threshold).any():
        z[out] = torch.randn(int(out.sum()), generator=generator, device=device)
    return z


class LatentOptimiser:
    """Masked per-slot gradient ascent on class logits (Adam or SGD)."""

    def __init__(self, generator: torch.nn.Module, resolution: int, scorer: Scorer, step_size: float,
                 optimiser: str = "adam"):
        if optimiser not in ("adam", "sgd"):
            raise ValueError(f"archive.optimiser: unknown optimiser {optimiser!r} (adam | sgd)")
        self.generator, self.resolution, self.scorer = generator.eval().requires_grad_(False), resolution, scorer
        self.step_size, self.optimiser = step_size, optimiser

    def scores(self, z: torch.Tensor, classes: torch.Tensor, grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Target-class logits of G(z), and their gradient with respect to z when ``grad``."""
        with torch.enable_grad() if grad else torch.no_grad():
            z = z.detach().requires_grad_(grad)
            logits = self.scorer.logits(self.generator(z, self.resolution, 1.0))
            s = logits.gather(1, classes[:, None]).squeeze(1)
            if not grad:
                return s.detach(), None
            (g,) = torch.autograd.grad(s.sum(), z)  # slots are independent: d(sum)/dz_i = ds_i/dz_i
        return s.detach(), g

    def step(self, z, g, active, state) -> torch.Tensor:
        """One ascent step on the ``active`` slots only; the others keep their z and optimiser state."""
        a = active[:, None].to(z.dtype)
        if self.optimiser == "sgd":
            return z + self.step_size * g * a
        m, v, t = state
        t += active.to(t.dtype)
        m.copy_(torch.lerp(m, g, (1 - BETAS[0]) * a))
        v.copy_(torch.lerp(v, g * g, (1 - BETAS[1]) * a))
        tt = t.clamp(min=1)[:, None]
        update = (m / (1 - BETAS[0] ** tt)) / ((v / (1 - BETAS[1] ** tt)).sqrt() + EPS)
        return z + self.step_size * update * a

    def run(self, classes: np.ndarray, thresholds: np.ndarray, batch_size: int, max_steps: int,
            max_attempts: int, truncation: float, seed: int, progress: bool = True) -> OptimisationResult:
        """Optimise one latent per job (``classes[j]``, logit threshold ``thresholds[j]``)."""
        device = next(self.generator.parameters()).device
        n, dim = len(classes), self.generator.z_dim
        rng = torch.Generator(device=device).manual_seed(seed)
        out = OptimisationResult(np.asarray(classes), np.asarray(thresholds, dtype=np.float64),
                                 np.zeros(n, bool), torch.zeros(n, dim), np.full(n, np.nan), np.zeros(n, np.int64),
                                 np.zeros(n, np.int64), np.zeros(n, np.int64))
        width = min(batch_size, n)
        job = torch.full((width,), -1, dtype=torch.long)  # -1: empty slot
        z = torch.zeros(width, dim, device=device)
        cls = torch.zeros(width, dtype=torch.long, device=device)
        thr = torch.zeros(width, device=device)
        steps = torch.zeros(width, dtype=torch.long)
        attempts = torch.zeros(width, dtype=torch.long)
        m, v, t = torch.zeros_like(z), torch.zeros_like(z), torch.zeros(width, device=device)
        queue = iter(range(n))
        classes_t = torch.as_tensor(np.asarray(classes), dtype=torch.long, device=device)
        thresholds_t = torch.as_tensor(np.asarray(thresholds), dtype=torch.float32, device=device)

        def fill(slots: torch.Tensor, fresh_job: bool) -> None:
            for slot in slots.tolist():
                if fresh_job:
                    nxt = next(queue, None)
                    job[slot] = -1 if nxt is None else nxt
                    attempts[slot] = 0
                    if nxt is None:
                        continue
                    cls[slot], thr[slot] = classes_t[nxt], thresholds_t[nxt]
                z[slot] = truncated_normal(1, dim, truncation, rng, device)[0]
                m[slot], v[slot], t[slot] = 0.0, 0.0, 0.0
                steps[slot] = 0
                attempts[slot] += 1

        fill(torch.arange(width), fresh_job=True)
        bar = tqdm(total=n, desc=f"class optimisation ({self.scorer.name})", unit="latent", disable=not progress)
        while (job >= 0).any():
            # only occupied slots are computed: once the queue is empty the batch shrinks with the stragglers
            occupied = torch.nonzero(job >= 0).flatten()
            if len(occupied) == width:
                s, g = self.scores(z, cls, grad=True)
            else:
                index = occupied.to(device)
                s_part, g_part = self.scores(z[index], cls[index], grad=True)
                s = torch.full((width,), -torch.inf, device=device).index_copy(0, index, s_part)
                g = torch.zeros_like(z).index_copy(0, index, g_part)
            reached = s >= thr
            # one small read per step: which slots finished decides what the next step computes
            reached_cpu, s_cpu = reached.cpu() & (job >= 0), s.cpu()
            done = torch.nonzero(reached_cpu).flatten()
            for slot in done.tolist():
                j = int(job[slot])
                out.success[j], out.z[j], out.score[j] = True, z[slot].detach().cpu(), float(s_cpu[slot])
                out.steps[j], out.total_steps[j] = int(steps[slot]), out.total_steps[j] + int(steps[slot])
                out.attempts[j] = int(attempts[slot])
            exhausted = torch.nonzero((steps >= max_steps) & ~reached_cpu & (job >= 0)).flatten()
            retry, give_up = [], []
            for slot in exhausted.tolist():
                j = int(job[slot])
                out.total_steps[j] += int(steps[slot])
                (retry if attempts[slot] < max_attempts else give_up).append(slot)
                if attempts[slot] >= max_attempts:
                    out.attempts[j], out.score[j] = int(attempts[slot]), float(s_cpu[slot])
            finished = torch.tensor(done.tolist() + give_up, dtype=torch.long)
            bar.update(len(finished))
            if len(retry):
                fill(torch.tensor(retry), fresh_job=False)
            if len(finished):
                fill(finished, fresh_job=True)
            moving = (job >= 0) & ~torch.isin(torch.arange(width), torch.tensor(retry + done.tolist() + give_up,
                                                                                    dtype=torch.long))
            moving = moving.to(device)
            z = self.step(z, g, moving, (m, v, t)).detach()
            steps += moving.cpu().long()
            out.batched_steps += 1
        bar.close()
        return out


def one_at_a_time(optimiser: LatentOptimiser, cls: int, threshold: float, max_steps: int, max_attempts: int,
                  truncation: float, seed: int) -> tuple[bool, torch.Tensor, int]:
    """Algorithm 1 for a single latent (the reference the benchmark compares with): (success, z, steps)."""
    device = next(optimiser.generator.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)
    classes = torch.tensor([cls], device=device)
    active = torch.ones(1, dtype=torch.bool, device=device)
    total = 0
    for _ in range(max_attempts):
        z = truncated_normal(1, optimiser.generator.z_dim, truncation, rng, device)
        state = (torch.zeros_like(z), torch.zeros_like(z), torch.zeros(1, device=device))
        for step in range(max_steps + 1):
            s, g = optimiser.scores(z, classes, grad=True)
            if float(s) >= threshold:
                return True, z[0].cpu(), total
            if step == max_steps:
                break
            total += 1
            z = optimiser.step(z, g, active, state)
    return False, z[0].cpu(), total
