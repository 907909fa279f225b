"""Precision, recall, density and coverage: fidelity and diversity as two numbers each, where FID gives one.

Each real feature vector gets a ball reaching its k-th nearest real neighbour; together the balls
estimate the real manifold (and the generated vectors' balls the generated one).

- **precision** (Kynkäänniemi et al. 2019, "Improved precision and recall metric for assessing
  generative models", NeurIPS): the share of generated vectors inside at least one real ball;
- **recall** (ibid.): the share of real vectors inside at least one generated ball;
- **density** (Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative models",
  ICML): how many real balls hold each generated vector, over k, averaged (about 1 when the two
  sets come from one distribution; above 1 when samples crowd where real vectors are dense);
- **coverage** (ibid.): the share of real vectors whose ball holds at least one generated vector.

The definitions, the strict ``<`` of a ball and the radius (the k-th neighbour not counting the
vector itself) are those of ``prdc.compute_prdc(real_features, fake_features, nearest_k)`` (NAVER's
``prdc`` package, v0.2; ``tests/test_prdc.py`` checks the two agree). We do not call it: it
materialises the full real-real, fake-fake and real-fake distance matrices through scikit-learn
(three N x N float32 matrices, 10 GB each at 50,000 vectors), where this module works through ``chunk``
rows at a time and holds O(chunk x N) distances. Distances are float64 Euclidean.
"""

from __future__ import annotations

import numpy as np
import torch

#: rows of distances held at once: ``chunk`` x N float64 (1024 x 50,000 is 400 MB)
CHUNK = 1024


def as_float64(vectors: np.ndarray | torch.Tensor, device: str | torch.device | None = None) -> torch.Tensor:
    """(N, dim) vectors as a float64 tensor on ``device`` (default: the CPU)."""
    x = torch.as_tensor(np.asarray(vectors) if not isinstance(vectors, torch.Tensor) else vectors)
    if x.ndim != 2:
        raise ValueError(f"feature vectors must be (N, dim), got shape {tuple(x.shape)}")
    return x.to(device or "cpu", torch.float64)


def nearest_neighbour_radii(x: torch.Tensor, k: int, chunk: int = CHUNK) -> torch.Tensor:
    """Distance of each row of ``x`` (N, dim) to its k-th nearest other row: the (k+1)-th smallest
    distance with the row's own (zero) distance counted, as ``prdc`` computes it."""
    n = len(x)
    if not 1 <= k < n:
        raise ValueError(f"k-nearest neighbours: need 1 <= k < N, got k={k} with {n} vectors")
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        d = torch.cdist(x[start:stop], x)
        own = torch.arange(start, stop, device=x.device)
        d[own - start, own] = 0.0
        out[start:stop] = d.kthvalue(k + 1, dim=1).values
    return out


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5, chunk: int = CHUNK,
         device: str | torch.device | None = None) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` (M, dim) against ``real`` (N, dim) feature
    vectors with ``k`` nearest neighbours (Kynkäänniemi et al. 2019; Naeem et al. 2020).

    Returns ``{"precision", "recall", "density", "coverage"}`` as floats, equal to
    ``prdc.compute_prdc(real, fake, k)``. Memory: O(chunk x (N + M)) distances on ``device``."""
    r, f = as_float64(real, device), as_float64(fake, device)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real vectors have {r.shape[1]} features, generated {f.shape[1]}")
    real_radii = nearest_neighbour_radii(r, k, chunk)
    fake_radii = nearest_neighbour_radii(f, k, chunk)
    balls_holding = torch.zeros(len(f), dtype=torch.int64, device=r.device)  # per generated vector
    recalled = torch.zeros(len(r), dtype=torch.bool, device=r.device)
    covered = torch.zeros(len(r), dtype=torch.bool, device=r.device)
    for start in range(0, len(r), chunk):
        stop = min(start + chunk, len(r))
        d = torch.cdist(r[start:stop], f)  # (chunk, M)
        radius = real_radii[start:stop, None]
        balls_holding += (d < radius).sum(0)
        recalled[start:stop] = (d < fake_radii[None, :]).any(1)
        covered[start:stop] = d.min(1).values < radius[:, 0]
    return {
        "precision": float((balls_holding > 0).double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(balls_holding.sum().item() / (k * len(f))),
        "coverage": float(covered.double().mean()),
    }
