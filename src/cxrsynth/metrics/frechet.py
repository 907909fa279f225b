"""Fréchet distance between image sets from streamed feature moments (FID, paper 001 section 2.3).

Features are never held all at once: :class:`GroupMoments` accumulates, per group of
images (a split half, a sex, a label...), the count, the sum and the sum of outer products
in float64, shifted by a fixed reference vector so that the covariance does not suffer
from cancellation when feature means are large against their spread.

The matrix square root in the distance is taken on symmetric matrices only:
``tr sqrt(S1 S2) = sum sqrt(eig(F^T S2 F))`` with ``S1 = F F^T``, ``F = V sqrt(w)`` from
``eigh`` keeping the non-zero eigenvalues only. This is real by construction (no complex
round-off to discard, unlike ``scipy.linalg.sqrtm`` on the non-symmetric product). ``F`` is
computed once per set, and a set of n images has rank at most n - 1, so a class with 40
films against 2,048 Inception features costs a 39x39 eigenvalue problem per pair, not a
2,048x2,048 one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cxrsynth.errors import InputError


#: The fewest images a set needs for a Fréchet distance: its unbiased covariance divides by n - 1.
#: More are welcome but not required: n images give a covariance of rank n - 1 on d features, singular
#: when n <= d, which ``frechet_distance`` handles exactly (``psd_factor``); it is noisier, not wrong.
MIN_IMAGES = 2


@dataclass(frozen=True)
class Gaussian:
    """Mean and covariance of one set's features, with the number of images behind them."""

    n: int
    mu: np.ndarray
    sigma: np.ndarray


class GroupMoments:
    """Streaming float64 moments of features for several (possibly overlapping) groups of images."""

    def __init__(self, groups: list[str], dim: int):
        self.groups, self.dim = list(groups), dim
        self.count = np.zeros(len(groups), dtype=np.int64)
        self.sum = torch.zeros(len(groups), dim, dtype=torch.float64)
        self.outer = torch.zeros(len(groups), dim, dim, dtype=torch.float64)
        self.shift: torch.Tensor | None = None

    def update(self, features: torch.Tensor | np.ndarray, members: torch.Tensor | np.ndarray) -> None:
        """Add a batch: ``features`` (B, dim); ``members`` (B, groups) bool, True where an image is in a group."""
        x = torch.as_tensor(features).detach().to("cpu", torch.float64)
        m = torch.as_tensor(members, dtype=torch.bool).cpu()
        if x.ndim != 2 or x.shape[1] != self.dim or m.shape != (len(x), len(self.groups)):
            raise ValueError(f"features {tuple(x.shape)} / members {tuple(m.shape)} do not match "
                             f"{self.dim} features and {len(self.groups)} groups")
        if self.shift is None:
            self.shift = x.mean(0)
        x = x - self.shift
        self.count += m.sum(0).numpy()
        self.sum += m.to(torch.float64).T @ x
        for g in torch.nonzero(m.any(0)).flatten().tolist():
            sub = x[m[:, g]]
            self.outer[g] += sub.T @ sub

    def gaussian(self, group: str) -> Gaussian:
        """Mean and unbiased covariance of one group (needs at least ``MIN_IMAGES`` images)."""
        g = self.groups.index(group)
        n = int(self.count[g])
        if n < MIN_IMAGES:
            raise InputError(f"group {group!r} has {n} image(s); a covariance needs at least {MIN_IMAGES}")
        mean = self.sum[g] / n
        cov = (self.outer[g] - n * torch.outer(mean, mean)) / (n - 1)
        cov = 0.5 * (cov + cov.T)
        return Gaussian(n, (mean + self.shift).numpy(), cov.numpy())

    def images(self, group: str) -> int:
        """How many images ``group`` holds."""
        return int(self.count[self.groups.index(group)])

    def save(self, path: str | Path) -> None:
        """Write the raw moments (``np.savez``), so a later run can add to or read them."""
        shift = self.shift if self.shift is not None else torch.zeros(self.dim, dtype=torch.float64)
        with open(path, "wb") as fh:
            np.savez(fh, groups=np.array(self.groups), count=self.count, sum=self.sum.numpy(),
                     outer=self.outer.numpy(), shift=shift.numpy())

    @classmethod
    def load(cls, path: str | Path) -> GroupMoments:
        with np.load(path) as data:
            out = cls([str(g) for g in data["groups"]], int(data["sum"].shape[1]))
            out.count = data["count"].copy()
            out.sum = torch.from_numpy(data["sum"].copy())
            out.outer = torch.from_numpy(data["outer"].copy())
            out.shift = torch.from_numpy(data["shift"].copy())
        return out


def psd_factor(sigma: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """``F`` (dim x rank) with ``F F^T = sigma``: eigenvectors scaled by the square roots of the
    eigenvalues above ``rtol`` times the largest (the rest are zero up to round-off)."""
    w, v = np.linalg.eigh(sigma)
    keep = w > rtol * max(float(w[-1]), 0.0)
    return v[:, keep] * np.sqrt(w[keep])


def trace_sqrt_product(factor_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """``tr sqrt(A B)`` given ``A = F F^T``: the non-zero eigenvalues of ``F^T B F`` are those of AB."""
    inner = factor_a.T @ sigma_b @ factor_a
    w = np.linalg.eigvalsh(0.5 * (inner + inner.T))
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(a: Gaussian, b: Gaussian, factor_a: np.ndarray | None = None) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b)``; ``factor_a`` (psd_factor of
    ``S_a``) may be passed precomputed."""
    factor_a = psd_factor(a.sigma) if factor_a is None else factor_a
    diff = a.mu - b.mu
    value = diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * trace_sqrt_product(factor_a, b.sigma)
    return float(max(value, 0.0))


def pairwise_frechet(sets: list[Gaussian], progress: bool = False) -> np.ndarray:
    """Symmetric matrix of Fréchet distances between every pair of ``sets`` (zero diagonal)."""
    from tqdm import tqdm

    factors = [psd_factor(s.sigma) for s in sets]
    n = len(sets)
    out = np.zeros((n, n))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    for i, j in tqdm(pairs, desc="pairwise FID", unit="pair", disable=not progress):
        out[i, j] = out[j, i] = frechet_distance(sets[i], sets[j], factors[i])
    return out
