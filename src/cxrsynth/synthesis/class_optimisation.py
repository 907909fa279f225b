"""Class optimisation (paper 001, Algorithm 1), batched.

For a target class c and threshold T_c, a latent z is moved by gradient ascent on the
class logit F_c(G(z)) until F_c(G(z)) >= T_c; G and F are frozen and other classes are
ignored, so co-occurring findings appear naturally.

Batched: ``batch_size`` slots are optimised together, each with its own class and
threshold. A slot that reaches its threshold is frozen (its z is no longer updated) and
handed back; a slot that spends ``max_steps`` restarts from a fresh truncated-normal z, up
to ``max_attempts`` times. Freed slots are refilled from the queue of jobs, so the batch
stays full; once the queue is empty, idle slots may run a slow job's remaining attempts at
the same time instead of one after another. The optimiser state is per slot (Adam moments
and step counts are reset when a slot is refilled), so every latent follows exactly the path
it would follow alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from cxrsynth.synthesis.scorers import Scorer

BETAS, EPS = (0.9, 0.999), 1e-8


@dataclass
class OptimisationResult:
    """Per job: success, final latent, score, steps of the successful attempt, total steps and
    attempts; per run: batched steps and the latents scored in them (``latents_scored``)."""

    classes: np.ndarray
    thresholds: np.ndarray
    success: np.ndarray
    z: torch.Tensor
    score: np.ndarray
    steps: np.ndarray
    total_steps: np.ndarray
    attempts: np.ndarray
    batched_steps: int = 0
    latents_scored: int = 0

    @property
    def mean_occupied_slots(self) -> float:
        """Latents scored per batched step: how full the batch ran."""
        return self.latents_scored / max(self.batched_steps, 1)


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
        # A one-row batch runs twice over: MKL's matrix-vector path on 2 threads sums in a run-dependent
        # order, so a lone slot's gradient would change in its last bits from one run to the next (and
        # with it the archive); as a two-row batch it takes the matrix-matrix path, which does not.
        single = len(z) == 1
        if single:
            z, classes = z.expand(2, -1), classes.expand(2)
        with torch.enable_grad() if grad else torch.no_grad():
            z = z.detach().clone().requires_grad_(grad)
            logits = self.scorer.logits(self.generator(z, self.resolution, 1.0))
            s = logits.gather(1, classes[:, None]).squeeze(1)
            if single:
                # both rows are the same; the ascent uses the first row's own gradient, not the sum
                s = s[:1]
            if not grad:
                return s.detach(), None
            (g,) = torch.autograd.grad(s.sum(), z)  # slots are independent: d(sum)/dz_i = ds_i/dz_i
        return s.detach(), g[:1] if single else g

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
            max_attempts: int, truncation: float, seed: int, progress: bool = True,
            parallel_restarts: bool = False) -> OptimisationResult:
        """Optimise one latent per job (``classes[j]``, logit threshold ``thresholds[j]``).

        With ``parallel_restarts``, slots left idle once the queue is empty start the remaining
        attempts of the jobs still running, so a slow job ends with the first of its attempts to
        converge instead of holding the run for several sequential attempts; the other attempts
        of a job that converges are dropped. Attempts per job never exceed ``max_attempts``.
        Slot bookkeeping lives on the host, latents and optimiser state on the device; each
        batched step reads back only the scores.
        """
        device = next(self.generator.parameters()).device
        n, dim = len(classes), self.generator.z_dim
        rng = torch.Generator(device=device).manual_seed(seed)
        classes, thresholds = np.asarray(classes, np.int64), np.asarray(thresholds, np.float64)
        out = OptimisationResult(classes, thresholds, np.zeros(n, bool), torch.zeros(n, dim), np.full(n, np.nan),
                                 np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64))
        width = min(batch_size, n)
        job = np.full(width, -1, np.int64)  # per slot; -1: empty
        steps = np.zeros(width, np.int64)  # per slot: steps of its current attempt
        thr = np.zeros(width, np.float32)  # per slot; compared on the host with the scores read back
        running = np.zeros(n, np.int64)  # per job: slots working on it
        ended = np.zeros(n, bool)  # per job: converged or given up
        z = torch.zeros(width, dim, device=device)
        cls = torch.zeros(width, dtype=torch.long, device=device)
        m, v, t = torch.zeros_like(z), torch.zeros_like(z), torch.zeros(width, device=device)
        queued = 0  # jobs handed out so far

        def on_device(index: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(index, dtype=torch.long, device=device)

        def start(slots: np.ndarray, jobs: np.ndarray) -> None:
            """A new attempt of ``jobs[i]`` in ``slots[i]``: a fresh truncated-normal z, zeroed moments."""
            if not len(slots):
                return
            job[slots], thr[slots], steps[slots] = jobs, thresholds[jobs], 0
            np.add.at(running, jobs, 1)
            np.add.at(out.attempts, jobs, 1)
            index = on_device(slots)
            cls[index] = on_device(classes[jobs])
            z[index] = truncated_normal(len(slots), dim, truncation, rng, device)
            m[index], v[index], t[index] = 0.0, 0.0, 0.0

        def release(slots: np.ndarray) -> None:
            np.add.at(out.total_steps, job[slots], steps[slots])
            np.add.at(running, job[slots], -1)
            job[slots] = -1

        def refill(free: np.ndarray) -> None:
            """Free slots take queued jobs first, then (``parallel_restarts``) spare attempts of running jobs."""
            nonlocal queued
            take = min(len(free), n - queued)
            start(free[:take], np.arange(queued, queued + take))
            queued += take
            spare = list(free[take:])
            while parallel_restarts and spare:
                open_jobs = np.flatnonzero((running > 0) & ~ended & (out.attempts < max_attempts))
                if not len(open_jobs):
                    break
                # the jobs with the fewest attempts under way go first; ties by job order
                open_jobs = open_jobs[np.argsort(running[open_jobs], kind="stable")][: len(spare)]
                start(np.array(spare[: len(open_jobs)]), open_jobs)
                spare = spare[len(open_jobs):]

        refill(np.arange(width))
        bar = tqdm(total=n, desc=f"class optimisation ({self.scorer.name})", unit="latent", disable=not progress)
        while (live := job >= 0).any():
            if live.all():
                s, g = self.scores(z, cls, grad=True)
            else:  # the queue is empty: only occupied slots are computed
                index = on_device(np.flatnonzero(live))
                s_part, g_part = self.scores(z[index], cls[index], grad=True)
                s = torch.full((width,), -torch.inf, device=device).index_copy(0, index, s_part)
                g = torch.zeros_like(z).index_copy(0, index, g_part)
            s_host = s.cpu().numpy()  # the one read per step: which slots finished decides the next step
            reached = live & (s_host >= thr)
            # the first slot (in slot order) to reach its threshold wins its job
            winners = np.flatnonzero(reached)
            winners = winners[np.unique(job[winners], return_index=True)[1]]
            if len(winners):
                jobs = job[winners]
                ended[jobs], out.success[jobs], out.score[jobs] = True, True, s_host[winners]
                out.z[torch.as_tensor(jobs)] = z[on_device(winners)].detach().cpu()
                out.steps[jobs] = steps[winners]
            dropped = live & ended[np.maximum(job, 0)]  # winners and the other attempts of their jobs
            spent = live & ~dropped & (steps >= max_steps)
            retry, stop, left = [], [], {}
            for slot in np.flatnonzero(spent):  # a job restarts at most as often as it has attempts left
                j = job[slot]
                left.setdefault(j, max_attempts - out.attempts[j])
                (retry if left[j] > 0 else stop).append(slot)
                left[j] -= 1
            retry, stop = np.array(retry, np.int64), np.array(stop, np.int64)
            moving = live & ~dropped & ~spent  # restarted slots wait for their first score
            release(np.flatnonzero(dropped))
            retry_jobs = job[retry]
            release(retry)
            start(retry, retry_jobs)
            stopped_jobs = job[stop]
            release(stop)
            gave_up = np.unique(stopped_jobs[(running[stopped_jobs] == 0) & ~ended[stopped_jobs]])
            ended[gave_up] = True
            for j in gave_up:  # the score of the last attempt to stop
                out.score[j] = s_host[stop[stopped_jobs == j][-1]]
            bar.update(len(winners) + len(gave_up))
            refill(np.flatnonzero(job < 0))
            z = self.step(z, g, torch.as_tensor(moving, device=device), (m, v, t)).detach()
            steps += moving
            out.batched_steps += 1
            out.latents_scored += int(live.sum())
        bar.close()
        return out


def one_at_a_time(optimiser: LatentOptimiser, cls: int, threshold: float, max_steps: int, max_attempts: int,
                  truncation: float, seed: int) -> tuple[bool, torch.Tensor, int, int]:
    """Algorithm 1 for a single latent (the reference the benchmark compares with):
    (success, z, steps taken, latents scored)."""
    device = next(optimiser.generator.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)
    classes = torch.tensor([cls], device=device)
    active = torch.ones(1, dtype=torch.bool, device=device)
    total = scored = 0
    for _ in range(max_attempts):
        z = truncated_normal(1, optimiser.generator.z_dim, truncation, rng, device)
        state = (torch.zeros_like(z), torch.zeros_like(z), torch.zeros(1, device=device))
        for step in range(max_steps + 1):
            s, g = optimiser.scores(z, classes, grad=True)
            scored += 1
            if float(s) >= threshold:
                return True, z[0].cpu(), total, scored
            if step == max_steps:
                break
            total += 1
            z = optimiser.step(z, g, active, state)
    return False, z[0].cpu(), total, scored
