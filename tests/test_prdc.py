"""Precision, recall, density and coverage against NAVER's ``prdc`` package, hand-checkable sets, and
memorisation's share for copies and for novel samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrsynth.metrics.memorisation import memorisation, nearest_distances
from cxrsynth.metrics.prdc import nearest_neighbour_radii, prdc

reference = pytest.importorskip("prdc")

KEYS = ("precision", "recall", "density", "coverage")


@pytest.mark.parametrize("n_real, n_fake, dim, k, chunk", [
    (60, 60, 8, 1, 1024),
    (60, 60, 8, 5, 7),  # chunk smaller than N, not dividing it
    (80, 50, 16, 3, 16),
    (45, 90, 4, 10, 32),
    (200, 150, 32, 5, 64),
])
def test_prdc_agrees_with_the_reference_package_on_fixed_vectors(n_real, n_fake, dim, k, chunk):
    rng = np.random.default_rng(1000 * k + n_real)
    real = rng.normal(size=(n_real, dim))
    fake = rng.normal(loc=0.3, scale=1.2, size=(n_fake, dim))  # overlapping, not identical: every figure in (0, 1)
    expected = reference.compute_prdc(real, fake, k)
    got = prdc(real, fake, k, chunk=chunk)
    assert set(got) == set(KEYS)
    for key in KEYS:
        assert got[key] == pytest.approx(float(expected[key]), abs=1e-6), key
    assert sum(0 < got[key] < 1 for key in KEYS) >= 2  # not a trivial 0 or 1: a comparison that flips shows


def test_prdc_agrees_on_float32_features_as_the_extractors_give_them():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(300, 64)).astype(np.float32)
    fake = rng.normal(loc=0.2, scale=1.1, size=(250, 64)).astype(np.float32)
    expected, got = reference.compute_prdc(real, fake, 5), prdc(real, fake, 5, chunk=100)
    assert got == pytest.approx({key: float(expected[key]) for key in KEYS}, abs=1e-6)


def test_radii_are_the_kth_neighbour_not_counting_the_vector_itself():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert nearest_neighbour_radii(torch.as_tensor(x), 1, chunk=3).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert nearest_neighbour_radii(torch.as_tensor(x), 2, chunk=2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="k < N"):
        prdc(x, x, k=4)


def test_identical_sets_score_one_and_far_sets_zero():
    real = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    same = prdc(real, real.copy(), k=3, chunk=16)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.1)
    far = prdc(real, real + 1000.0, k=3, chunk=16)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_mode_collapse_keeps_precision_and_loses_recall():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(300, 4))
    collapsed = real[:5][rng.integers(0, 5, size=300)] + rng.normal(scale=0.01, size=(300, 4))
    got = prdc(real, collapsed, k=5)
    assert got["precision"] == 1.0 and got["recall"] < 0.1 and got["coverage"] < 0.2


def test_nearest_distances_skip_the_querys_own_group():
    reference_vectors = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    query = np.array([[0.0, 0.0], [4.0, 0.0]])
    assert nearest_distances(query, reference_vectors, chunk=1).tolist() == [0.0, 1.0]
    grouped = nearest_distances(query, reference_vectors, chunk=1, query_groups=np.array([7, 9]),
                                reference_groups=np.array([7, 8, 9]))
    assert grouped.tolist() == [1.0, 3.0]  # query 0 skips its own film, query 1 its patient's film at 5


def _real_sets(seed: int = 3, n_train: int = 2000, n_test: int = 800, dim: int = 8):
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=(n_train, dim)), rng.normal(size=(n_test, dim))


def test_copies_of_training_vectors_are_memorised():
    rng, train, test = _real_sets()
    copies = train[rng.integers(0, len(train), size=500)] + rng.normal(scale=1e-4, size=(500, train.shape[1]))
    out = memorisation(copies, train, test, percentile=1.0, chunk=128)
    assert out["share"] == 1.0 and out["median_distance_ratio"] < 0.01
    assert out["expected_if_novel"] == 0.01 and (out["n_generated"], out["n_test"]) == (500, 800)
    assert memorisation(train[:300], train, test)["share"] == 1.0  # exact copies: distance 0


def test_samples_as_novel_as_new_patients_score_about_the_percentile():
    rng, train, test = _real_sets()
    novel = rng.normal(size=(4000, train.shape[1]))
    for percentile in (1.0, 5.0):
        out = memorisation(novel, train, test, percentile=percentile, chunk=500)
        assert out["share"] == pytest.approx(percentile / 100, abs=0.6 * percentile / 100 + 0.005), percentile
        assert out["median_distance_ratio"] == pytest.approx(1.0, abs=0.1)
    # the threshold is the test films' lower order statistic, and at most that share of them is below it
    nearest = nearest_distances(test, train)
    out = memorisation(novel, train, test, percentile=5.0)
    assert out["threshold"] in nearest and np.mean(nearest < out["threshold"]) <= 0.05


def test_test_films_in_the_training_set_are_compared_with_other_patients_only():
    """The generators train on every film, test split included: without the patient exclusion each test
    film's nearest training film is itself, the threshold 0 and no sample could ever be flagged."""
    rng, train, _ = _real_sets()
    patients = np.arange(len(train)) // 2  # two films per patient
    test = np.arange(0, 400)
    copies = train[rng.integers(0, len(train), size=200)] + rng.normal(scale=1e-4, size=(200, train.shape[1]))
    naive = memorisation(copies, train, train[test])
    assert naive["threshold"] < 1e-6 and naive["share"] == 0.0
    fair = memorisation(copies, train, train[test], train_patients=patients, test_patients=patients[test])
    assert fair["threshold"] > 0 and fair["share"] == 1.0
    with pytest.raises(ValueError, match="both"):
        memorisation(copies, train, train[test], train_patients=patients)


class _Pixels(torch.nn.Module):
    """A feature 'network': the image's first four pixels, as floats."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x.flatten(1)[:, :4].float()


def test_real_vectors_are_streamed_in_table_order_saved_and_read_back(tmp_path):
    import pandas as pd

    from cxrsynth.metrics.extractors import Extractor
    from cxrsynth.metrics.fid_sets import (
        REAL_GROUPS,
        load_real_vectors,
        save_real_features,
        stream_real,
    )

    images = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4)
    rows = np.array([4, 1, 5, 0])  # table order is not store order
    table = pd.DataFrame({"row": rows, "image": [f"{r}.png" for r in rows], "patient_id": [10, 11, 10, 12],
                          "split": ["train", "test", "test", "val"]})
    vectors = {}
    moments, _, means = stream_real(images, rows, np.ones((4, len(REAL_GROUPS)), dtype=bool), [Extractor("px", 4, _Pixels(), None)],
                                    batch_size=3, vectors=vectors)
    assert vectors["px"].dtype == np.float32 and np.array_equal(vectors["px"], images[rows].reshape(4, -1)[:, :4])
    save_real_features(tmp_path, table, moments, None, means, {}, vectors)
    real = load_real_vectors(tmp_path)
    assert np.array_equal(real.features["px"], vectors["px"]) and list(real.table["row"]) == list(rows)
    assert real.positions("test").tolist() == [1, 2] and real.patients().tolist() == [0, 1, 0, 2]
    (tmp_path / "vectors.csv").unlink()
    with pytest.raises(FileNotFoundError, match="rerun the real_features stage"):
        load_real_vectors(tmp_path)


def test_the_judge_measures_prdc_and_memorisation_per_extractor():
    import pandas as pd

    from cxrsynth.metrics.sample_quality import sample_memorisation, sample_prdc
    from cxrsynth.metrics.fid_sets import RealVectors

    rng = np.random.default_rng(5)
    n = 600
    table = pd.DataFrame({"row": np.arange(n), "image": [f"{i}.png" for i in range(n)], "patient_id": np.arange(n) // 2,
                          "split": np.where(np.arange(n) < 200, "test", "train")})
    real = RealVectors(table, {"classifier": rng.normal(size=(n, 6)).astype(np.float32)})
    copies = {"classifier": real.features["classifier"][:100] + 1e-5}
    measured = sample_prdc(copies, real)["classifier"]
    assert (measured["k"], measured["n_real"], measured["n_generated"]) == (5, 100, 100)
    assert sample_prdc(copies, real) == sample_prdc(copies, real)  # a seeded reference: the same every run
    memorised = sample_memorisation(copies, real)["classifier"]
    assert memorised["share"] == 1.0 and memorised["n_test"] == 200 and memorised["percentile"] == 1.0
