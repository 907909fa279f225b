"""Bootstrap intervals for label prevalence (paper 001, section 4.2 and Figure 6).

Resampling n images with replacement and averaging a 0/1 label gives k*/n where k*, the
number of positives drawn, is Binomial(n, k/n) with k the positives in the sample. So the
bootstrap distribution of every label's prevalence is drawn directly from that binomial:
the same distribution as the resample-indices loop (``naive_bootstrap``), in O(B x labels)
instead of O(B x n x labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cxrsynth.errors import InputError


def bootstrap_prevalence(labels: np.ndarray, n_resamples: int, seed: int = 0,
                         level: float = 0.95) -> dict[str, np.ndarray]:
    """Prevalence of each column of 0/1 ``labels`` (n, L) with its percentile bootstrap interval.

    Returns ``mean`` (observed), ``lo`` and ``hi`` arrays of length L.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if n == 0:
        raise InputError("bootstrap_prevalence: no images")
    positives = labels.sum(axis=0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    draws = rng.binomial(n, positives / n, size=(n_resamples, labels.shape[1])) / n
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(draws, [tail, 100 - tail], axis=0)
    return {"mean": positives / n, "lo": lo, "hi": hi}


def naive_bootstrap(labels: np.ndarray, n_resamples: int, seed: int = 0, level: float = 0.95) -> dict[str, np.ndarray]:
    """The textbook loop: resample row indices, average. A reference for tests and benchmarks."""
    labels = np.asarray(labels, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = len(labels)
    draws = np.empty((n_resamples, labels.shape[1]))
    for b in range(n_resamples):
        draws[b] = labels[rng.integers(0, n, n)].mean(axis=0)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(draws, [tail, 100 - tail], axis=0)
    return {"mean": labels.mean(axis=0), "lo": lo, "hi": hi}


def compare_prevalence(real: dict[str, np.ndarray], generated: dict[str, np.ndarray],
                       names: Sequence[str]) -> dict[str, dict]:
    """Per label: both sets' mean/lo/hi, the generated/real ratio and whether the intervals are disjoint."""
    out = {}
    for i, name in enumerate(names):
        r = {k: float(real[k][i]) for k in ("mean", "lo", "hi")}
        g = {k: float(generated[k][i]) for k in ("mean", "lo", "hi")}
        out[name] = {
            "real": r,
            "generated": g,
            "ratio": g["mean"] / r["mean"] if r["mean"] > 0 else float("nan"),
            "excluded": bool(g["hi"] < r["lo"] or g["lo"] > r["hi"]),
        }
    return out
