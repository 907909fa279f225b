"""Table 2's paired, patient-level bootstrap: the weighted AUROC against scikit-learn's, the patient
resampling, and intervals that pair the columns."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxrsynth.errors import InputError
from cxrsynth.metrics.auroc import macro_auroc
from cxrsynth.metrics.auroc_interval import macro_intervals, patient_weights, weighted_auroc


def test_weighted_auroc_agrees_with_scikit_learn_on_resamples_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 12, 300) / 12  # many ties
    targets = rng.random(300) < 0.2
    weights = rng.integers(0, 3, size=(20, 300)).astype(float)
    ours = weighted_auroc(scores, targets, weights)
    theirs = [roc_auc_score(targets, scores, sample_weight=w) for w in weights]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_a_resample_without_positives_has_no_auroc():
    scores, targets = np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1])
    weights = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    out = weighted_auroc(scores, targets, weights)
    assert np.isnan(out[0]) and out[1] == 1.0


def test_patient_weights_draw_patients_not_films():
    patients = np.array([7, 7, 7, 3, 5, 5])
    weights = patient_weights(patients, 500, np.random.default_rng(1))
    assert weights.shape == (500, 6)
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 1] == weights[:, 2]).all()  # one patient, one weight
    assert (weights[:, 4] == weights[:, 5]).all()
    np.testing.assert_array_equal(weights[:, [0, 3, 4]].sum(axis=1), 3)  # as many draws as patients
    assert 0.9 < weights[:, 3].mean() < 1.1  # each patient drawn once on average


def test_identical_columns_have_a_ratio_of_exactly_one_and_the_interval_holds_the_estimate():
    rng = np.random.default_rng(2)
    targets = (rng.random((400, 3)) < [0.5, 0.2, 0.1]).astype(int)
    real = targets + rng.normal(0, 0.8, targets.shape)
    weak = targets + rng.normal(0, 2.0, targets.shape)
    patients = np.repeat(np.arange(200), 2)
    out = macro_intervals({"real": real, "copy": real.copy(), "weak": weak}, targets, patients,
                          n_resamples=400, seed=0)
    assert out["ratio_to_real"]["copy"] == {"lo": 1.0, "hi": 1.0}  # paired: the same resamples for both
    assert out["patients"] == 200 and out["films"] == 400 and out["resamples"] == 400
    for column, p in (("real", real), ("weak", weak)):
        value = macro_auroc(p, targets)[0]
        assert out["macro"][column]["lo"] < value < out["macro"][column]["hi"], column
    assert out["ratio_to_real"]["weak"]["hi"] < 1.0  # a weaker classifier's ratio is below one, resample by resample
    again = macro_intervals({"real": real, "weak": weak}, targets, patients, n_resamples=400, seed=0)
    assert again["macro"]["weak"] == out["macro"]["weak"]  # seeded


def test_the_interval_narrows_with_more_patients():
    rng = np.random.default_rng(3)

    def width(n):
        targets = (rng.random((n, 1)) < 0.3).astype(int)
        scores = targets + rng.normal(0, 1.0, targets.shape)
        out = macro_intervals({"real": scores}, targets, np.arange(n), n_resamples=300, seed=1)["macro"]["real"]
        return out["hi"] - out["lo"]

    assert width(4000) < 0.6 * width(400)


def test_mismatched_inputs_are_refused_with_a_clear_error():
    targets = np.zeros((4, 2), dtype=int)
    targets[:2] = 1
    with pytest.raises(InputError, match="same test films"):
        macro_intervals({"real": np.zeros((3, 2))}, targets, np.arange(4))
    with pytest.raises(InputError, match="'real' column"):
        macro_intervals({"archive": np.zeros((4, 2))}, targets, np.arange(4))
