"""The fid stage's results from group moments: Table 1, Figure 5's tables, fid.json and its summary line."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cxrsynth.errors import MissingInputError
from cxrsynth.labels import FINDINGS, LABELS
from cxrsynth.metrics.fid_results import (
    check_resolution,
    fid_metrics,
    fid_results,
    read_real_info,
    with_real_moments,
)
from cxrsynth.metrics.fid_sets import GENERATED, REAL_GROUPS, real_membership, table1
from cxrsynth.metrics.frechet import GroupMoments


def _moments(seed: int, hernia: int = 1) -> tuple[GroupMoments, GroupMoments]:
    """Real moments of 80 images in every group (Hernia on ``hernia`` of them) and 40 generated, 3 features."""
    rng = np.random.default_rng(seed)
    n = 80
    table = pd.DataFrame({"fid_half": np.where(np.arange(n) % 2, "half_a", "half_b"),
                          "sex": np.where(np.arange(n) % 3, "M", "F")})
    for i, name in enumerate(LABELS):
        table[name] = (np.arange(n) % 5 == i % 5).astype(np.uint8) if name != "Hernia" else 0
    table.loc[: hernia - 1, "Hernia"] = 1
    real = GroupMoments(list(REAL_GROUPS), 3)
    real.update(rng.normal(size=(n, 3)) + table[list(LABELS)].to_numpy() @ rng.normal(size=(15, 3)),
                real_membership(table))
    generated = GroupMoments([GENERATED], 3)
    generated.update(rng.normal(loc=0.5, size=(40, 3)), np.ones((40, 1), bool))
    return real, generated


def test_results_per_extractor_leave_out_labels_with_too_few_images():
    (ra, ga), (rb, gb) = _moments(0), _moments(1)
    results = fid_results({"b": rb, "a": ra}, {"a": ga, "b": gb}, seed=0)
    assert list(results.tables) == ["a", "b"]  # the generated moments' (extractors') order
    assert results.left_out == {"Hernia": 1}
    expected = table1(ra, ga)
    assert results.tables["a"] == {k: round(v, 4) for k, v in expected.items()}
    assert "Hernia" not in results.tables["a"] and "Hernia" not in results.matrices["a"].index

    frame = results.table1_frame()
    assert list(frame.columns) == ["extractor", "split", "fid"] and len(frame) == 2 * len(expected)
    assert frame.iloc[0].to_dict() == {"extractor": "a", "split": "stratified", "fid": results.tables["a"]["stratified"]}
    long = results.matrix_frame()
    assert list(long.columns) == ["extractor", "a", "b", "fid"] and len(long) == 2 * 14 * 14
    assert set(long["a"]) == set(LABELS) - {"Hernia"}
    assert (long["fid"] == long["fid"].round(4)).all()
    mds = results.mds_frame()
    assert list(mds.columns) == ["label", "x", "y", "extractor"] and list(mds["extractor"].unique()) == ["a", "b"]

    line = results.summary()
    assert line.startswith(f"a: stratified {results.tables['a']['stratified']:.3g}, synthetic ")
    assert line.endswith("left out of Table 1 and Figure 5 (fewer than 2 images): Hernia (1)")
    assert "left out" not in fid_results({"a": _moments(0, hernia=3)[0]}, {"a": ga}, 0).summary()


def test_fid_metrics_name_skipped_extractors_and_the_pixel_change_correlation():
    real, generated = _moments(0)
    results = fid_results({"classifier": real}, {"classifier": generated}, seed=0)
    extractors = [SimpleNamespace(name="classifier", weights=None)]
    means = np.random.default_rng(2).random((len(REAL_GROUPS), 4, 4))
    info = {"resolution": 4, "images": 80}
    metrics = fid_metrics(results, extractors, "auto", info, 40, means)
    assert list(metrics) == ["extractors", "skipped", "inception_weights", "resolution", "n_real", "n_generated",
                             "min_images_per_label", "labels_left_out", "table1", "stratified_is_smallest",
                             "pixel_change", "finding_fid_vs_pixel_change_spearman"]
    assert metrics["skipped"] == ["inception"] and metrics["inception_weights"] == "none"
    assert fid_metrics(results, extractors, "classifier", info, 40, means)["skipped"] == []
    assert set(metrics["pixel_change"]) == set(FINDINGS) - {"Hernia"}
    rho = metrics["finding_fid_vs_pixel_change_spearman"]["classifier"]
    assert -1 <= rho <= 1 and rho == round(rho, 4)
    assert metrics["stratified_is_smallest"]["classifier"] == (
        results.tables["classifier"]["stratified"] == min(results.tables["classifier"].values()))


def test_real_info_resolution_and_extractors_are_checked(tmp_path):
    with pytest.raises(MissingInputError, match="info.json: not found .run the real_features stage"):
        read_real_info(tmp_path)
    (tmp_path / "info.json").write_text('{"resolution": 32, "images": 5}')
    info = read_real_info(tmp_path)
    check_resolution(tmp_path, info, 32)
    with pytest.raises(ValueError, match="real features are at 32 px but the generator makes 64 px"):
        check_resolution(tmp_path, info, 64)
    inception, classifier = SimpleNamespace(name="inception"), SimpleNamespace(name="classifier")
    assert with_real_moments([inception, classifier], {"classifier": None}, tmp_path, "auto") == [classifier]
    with pytest.raises(ValueError, match="no real moments for fid.extractor='inception'"):
        with_real_moments([inception], {"classifier": None}, tmp_path, "inception")
