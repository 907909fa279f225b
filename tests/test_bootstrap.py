"""Prevalence bootstrap: the closed form against the resample-indices loop."""

from __future__ import annotations

import numpy as np
import pytest

from cxrsynth.metrics.bootstrap import (
    bootstrap_prevalence,
    compare_prevalence,
    naive_bootstrap,
)


def test_closed_form_intervals_match_the_resampling_loop():
    rng = np.random.default_rng(0)
    labels = (rng.random((400, 5)) < np.array([0.02, 0.1, 0.3, 0.5, 0.9])).astype(np.uint8)
    fast = bootstrap_prevalence(labels, 20_000, seed=1)
    slow = naive_bootstrap(labels, 20_000, seed=2)
    np.testing.assert_array_equal(fast["mean"], labels.mean(0))
    # two independent Monte Carlo runs of the same distribution: quantiles within a fraction of a point
    np.testing.assert_allclose(fast["lo"], slow["lo"], atol=0.006)
    np.testing.assert_allclose(fast["hi"], slow["hi"], atol=0.006)
    # and both near the normal approximation of a proportion
    p = labels.mean(0)
    half = 1.96 * np.sqrt(p * (1 - p) / len(labels))
    np.testing.assert_allclose(fast["hi"] - fast["lo"], 2 * half, atol=0.01)


def test_bootstrap_is_seeded_and_handles_constant_labels():
    labels = np.zeros((50, 2), np.uint8)
    labels[:, 1] = 1
    out = bootstrap_prevalence(labels, 1000, seed=3)
    assert out["lo"].tolist() == [0.0, 1.0] and out["hi"].tolist() == [0.0, 1.0]
    a = bootstrap_prevalence(np.eye(10, dtype=np.uint8), 500, seed=4)
    b = bootstrap_prevalence(np.eye(10, dtype=np.uint8), 500, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="no images"):
        bootstrap_prevalence(np.zeros((0, 3)), 10)


def test_compare_marks_disjoint_intervals():
    real = {"mean": np.array([0.2, 0.5]), "lo": np.array([0.18, 0.45]), "hi": np.array([0.22, 0.55])}
    generated = {"mean": np.array([0.3, 0.52]), "lo": np.array([0.28, 0.5]), "hi": np.array([0.32, 0.54])}
    out = compare_prevalence(real, generated, ["a", "b"])
    assert out["a"]["excluded"] and not out["b"]["excluded"]
    assert out["a"]["ratio"] == pytest.approx(1.5)
