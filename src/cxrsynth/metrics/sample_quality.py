"""Precision, recall, density, coverage and memorisation of a set of samples, against the stored real
feature vectors (``fid_sets.RealVectors``: the real_features stage's every stored film, by split).

The same functions judge the baselines table's rows (``baselines.evaluate``) and the main generator's
samples in the fid stage, so every number of the kind is computed one way.
"""

from __future__ import annotations

import numpy as np

from cxrsynth.metrics.fid_sets import RealVectors
from cxrsynth.metrics.memorisation import memorisation
from cxrsynth.metrics.prdc import prdc

#: k of the k-nearest-neighbour balls (Naeem et al. 2020's default)
PRDC_K = 5
#: seed of the real subset precision and recall compare a row's samples with (the same for every row)
PRDC_REFERENCE_SEED = 0
#: memorisation's threshold: this percentile of new patients' nearest-training distances (the audit's 1%)
MEMORISATION_PERCENTILE = 1.0


def sample_prdc(features: dict[str, np.ndarray], real: RealVectors, k: int = PRDC_K, seed: int = PRDC_REFERENCE_SEED,
                device=None) -> dict[str, dict]:
    """Per extractor, precision, recall, density and coverage of the samples' ``features`` against a seeded
    subset of the real vectors of the sample's size (Naeem et al. 2020 compare equal sets; the
    k-nearest-neighbour balls shrink as the real set grows), with ``k``, ``n_real`` and ``n_generated``."""
    out = {}
    for name, fake in features.items():
        vectors = real.features[name]
        n = min(len(fake), len(vectors))
        chosen = np.sort(np.random.default_rng(seed).permutation(len(vectors))[:n])
        values = prdc(vectors[chosen], fake, k, device=device)
        out[name] = {key: round(v, 4) for key, v in values.items()} | {"k": k, "n_real": n, "n_generated": len(fake)}
    return out


def sample_memorisation(features: dict[str, np.ndarray], real: RealVectors,
                        percentile: float = MEMORISATION_PERCENTILE, device=None) -> dict[str, dict]:
    """Per extractor, ``metrics.memorisation.memorisation`` of the samples' ``features``: training set every
    real vector (every stored film: what the generators train on), new patients the test split's
    films, each against the other patients' films."""
    test, patients = real.positions("test"), real.patients()
    out = {}
    for name, fake in features.items():
        vectors = real.features[name]
        m = memorisation(fake, vectors, vectors[test], percentile, train_patients=patients,
                         test_patients=patients[test], device=device)
        rounded = {k: round(m[k], 6) if m[k] is not None else None for k in ("threshold", "median_distance_ratio")}
        out[name] = m | {"share": round(m["share"], 6)} | rounded
    return out
