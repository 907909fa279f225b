"""The prevalence stage's results: the real labels it compares, its metrics and Figure 6's plot table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrsynth.errors import MissingInputError
from cxrsynth.labels import LABELS
from cxrsynth.metrics.prevalence import (
    figure6_table,
    prevalence_metrics,
    prevalence_report,
    real_labels,
    round_floats,
)


def test_round_floats_rounds_nested_floats_only():
    value = {"a": 0.1234567, "b": {"c": 2.0000049, "d": 3, "e": True, "f": None}, "g": [0.1234567]}
    assert round_floats(value) == {"a": 0.12346, "b": {"c": 2.0, "d": 3, "e": True, "f": None}, "g": [0.1234567]}
    assert round_floats(1 / 3, 2) == 0.33


def test_real_labels_threshold_the_classifiers_probabilities_of_the_subset(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"image": [f"{i}.png" for i in range(6)], "split": ["train", "test"] * 3})
    for name in LABELS:
        frame[name] = rng.integers(0, 2, 6)
        frame[f"p_{name}"] = rng.random(6).round(6)
    with pytest.raises(MissingInputError, match="fid.extractor must include the classifier"):
        real_labels(tmp_path, "test", np.full(15, 0.5))
    frame.to_csv(tmp_path / "classifier_probs.csv", index=False)
    cut = np.linspace(0.2, 0.8, 15)
    predicted, truth = real_labels(tmp_path, "test", cut)
    test = frame[frame["split"] == "test"]
    assert predicted.dtype == np.uint8 and predicted.shape == (3, 15)
    assert np.array_equal(predicted, (test[[f"p_{n}" for n in LABELS]].to_numpy() >= cut).astype(np.uint8))
    assert np.array_equal(truth, test[list(LABELS)].to_numpy())
    every, _ = real_labels(tmp_path, "all", cut)
    assert len(every) == 6


def test_metrics_and_figure6_table():
    rng = np.random.default_rng(1)
    real = (rng.random((200, 15)) < 0.3).astype(np.uint8)
    generated = (rng.random((150, 15)) < np.linspace(0.05, 0.6, 15)).astype(np.uint8)
    per_label, wide = prevalence_report(real, generated, real, 200, seed=0)
    metrics = prevalence_metrics(per_label, "test", 200, 150, 200, 0.95)
    assert list(metrics) == ["real_subset", "n_real", "n_generated", "n_bootstrap", "level", "labels_excluded",
                             "per_label"]
    assert metrics["labels_excluded"] == [n for n in LABELS if per_label[n]["excluded"]]
    assert metrics["per_label"] == round_floats(per_label)
    table = figure6_table(wide)
    assert list(table.columns) == ["bar", "set", "prevalence_pct", "lo_pct", "hi_pct"] and len(table) == 30
    assert list(table["bar"]) == sorted(table["bar"])
    row = table[table["bar"] == f"{LABELS[3]} | generated"].iloc[0]
    assert row["set"] == "generated" and row["prevalence_pct"] == round(100 * wide.loc[LABELS[3], "generated_mean"], 3)
