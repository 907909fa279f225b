"""Privacy audit parts: verifier pairs, the verifier on demo phantoms, the search, the filter."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.data.phantom import render_phantom
from cxrsynth.labels import LABELS
from cxrsynth.metrics.extractors import Extractor
from cxrsynth.privacy.audit import Auditor, calibrate, flagged_patients
from cxrsynth.privacy.encoder import PatientEncoder
from cxrsynth.privacy import filter as filter_module
from cxrsynth.privacy.figure import audit_figure, audit_title
from cxrsynth.privacy.filter import PrivacyFilterError, audit_check, audited_filter, filter_archive, regenerator
from cxrsynth.privacy.summaries import POPULATIONS, audit_populations, privacy_metrics, privacy_summary
from cxrsynth.privacy.pairs import PatientPairBatches, evaluation_pairs, patient_rows
from cxrsynth.privacy.verifier import fit_verifier, random_shift
from cxrsynth.synthesis.archive_builder import ArchiveBuild, Delivered


def phantom_films(patients: range, films: int, size: int = 32) -> tuple[torch.Tensor, np.ndarray]:
    """``films`` demo films of each patient (one anatomy per patient, as the demo renders them)."""
    images, ids = [], []
    for p in patients:
        for f in range(films):
            findings = {LABELS[1 + (p + f) % 14]} if f % 2 else set()
            images.append(render_phantom(size, findings, "MF"[p % 2], 40 + f, "PA", seed=1000 * p + f,
                                         patient_seed=p).pixels)
            ids.append(p)
    return torch.from_numpy(np.stack(images)).unsqueeze(1), np.asarray(ids)


def test_patient_rows_and_training_batches_pair_films_of_one_patient():
    ids = np.asarray([7, 7, 3, 9, 3, 3, 7, 9, 5])
    assert [g.tolist() for g in patient_rows(ids)] == [[0, 1, 6], [2, 4, 5], [3, 7], [8]]
    for batch in PatientPairBatches(ids, batch_patients=3, steps=20, seed=0):
        patients = [p for _, _, p in batch]
        assert len(set(patients)) == len(patients) == 3  # distinct patients: the others are negatives
        for a, b, _ in batch:
            assert a != b and ids[a] == ids[b]  # two different films of one patient (5 has one: never drawn)
            assert ids[a] != 5


def test_evaluation_pairs_label_same_and_different_patients():
    ids = np.repeat(np.arange(10), 3)
    a, b, same = evaluation_pairs(ids, negatives_per_positive=4, seed=0)
    assert same.sum() == 10 * 3 and (~same).sum() == 4 * 30
    assert np.array_equal(ids[a] == ids[b], same) and (a != b).all()


def test_the_verifier_refuses_a_patient_on_both_sides_of_the_train_test_line():
    images = torch.zeros(8, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="both"):
        fit_verifier(images[:4], np.asarray([1, 1, 2, 2]), images[4:], np.asarray([2, 2, 3, 3]), PrivacyParams(steps=1))


def test_random_shift_moves_each_film_by_whole_pixels_repeating_the_edge():
    films = torch.arange(3 * 36, dtype=torch.uint8).reshape(3, 1, 6, 6)
    shifted = random_shift(films, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == films.shape and torch.equal(random_shift(films, 0, torch.Generator()), films)
    padded = torch.nn.functional.pad(films.float(), (2, 2, 2, 2), mode="replicate")
    for i in range(3):  # each output is one 6x6 window of the edge-padded film
        windows = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(padded[i, 0, dy : dy + 6, dx : dx + 6], shifted[i, 0])]
        assert len(windows) == 1
    assert not torch.equal(shifted, films.float())  # this seed moves at least one film


class TinyFeatures(nn.Module):
    """A stand-in for the DenseNet in ``penultimate_features`` (``features`` then pooled)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Conv2d(1, 8, 3, padding=1)


@pytest.fixture(scope="module")
def trained():
    """A verifier trained briefly on 40 phantom patients, tested on 12 others; and an auditor of those 40."""
    train, train_ids = phantom_films(range(40), 4)
    test, test_ids = phantom_films(range(100, 112), 4)
    params = PrivacyParams(steps=120, width=8, batch_patients=16, lr=3e-3, eval_negatives=5)
    fit = fit_verifier(train, train_ids, test, test_ids, params, "cpu")
    auditor = Auditor(fit.encoder, Extractor("tiny", 8, TinyFeatures().eval(), 16), train[:, 0], train_ids, 64)
    return fit, auditor, (train, train_ids), (test, test_ids)


def test_the_verifier_tells_demo_patients_apart(trained):
    fit = trained[0]
    assert fit.test_auc >= 0.85, fit.test_auc  # a short training on 40 patients; the stage reaches >= 0.95


def test_a_planted_training_film_is_flagged_and_a_new_patient_is_compared_with_others_only(trained):
    _, auditor, (train, train_ids), (test, test_ids) = trained
    new = auditor.nearest(test[:, 0], patients=test_ids)  # calibration population: unseen patients
    thresholds = calibrate(new, 0.05, 5.0)
    planted = auditor.nearest(train[[0, 17, 90], 0])  # training films copied into an "archive"
    flags = thresholds.flags(planted)
    assert flags["pixel"].all() and flags["feature"].all() and flags["verifier"].all()
    assert np.array_equal(planted.pixel_index, [0, 17, 90]) and np.allclose(planted.pixel, 0)
    # against the rest of training, a film's best verifier match is another film of its own patient far more
    # often than chance (3 of 159 other films)
    control = auditor.nearest(train[:, 0], reference_rows=np.arange(len(train)))
    assert (train_ids[control.verifier_index] == train_ids).mean() > 10 * 3 / 159
    assert (control.pixel_index != np.arange(len(train))).all()  # never itself
    # with its own patient excluded, a training film never matches that patient
    excluded = auditor.nearest(train[:8, 0], patients=train_ids[:8])
    assert (train_ids[excluded.verifier_index] != train_ids[:8]).all()


def test_calibration_flags_the_chosen_share_of_the_calibration_set(trained):
    _, auditor, _, (test, test_ids) = trained
    new = auditor.nearest(test[:, 0], patients=test_ids)
    flags = calibrate(new, 0.1, 10.0).flags(new)
    for criterion in ("verifier", "pixel", "feature"):
        assert flags[criterion].mean() <= 0.1 + 1e-9
    assert flagged_patients(np.asarray([True, False, True]), np.asarray([4, 4, 2])).tolist() == [2, 4]


# --------------------------------------------------------------------------- the filter
COUNTS = np.asarray([2, 3, 1, 4, 2])  # images per synthetic patient


def toy_build() -> ArchiveBuild:
    """Five patients of unequal size; every image of patient p has pixel value 10 * p (first pixel aside)."""
    ids = np.repeat(90_000_000 + np.arange(len(COUNTS)), COUNTS)
    classes = np.asarray(["Mass", "Nodule", "Mass", "Effusion", "Nodule"])
    table = pd.DataFrame({"Patient ID": ids, "Finding Labels": "No Finding", "Target Label": np.repeat(classes, COUNTS),
                          "Target Score": 0.9})
    images = np.repeat(10 * np.arange(len(COUNTS)), COUNTS)[:, None, None] * np.ones((1, 4, 4), np.int64)
    planned = pd.DataFrame({"class": LABELS, "planned_images": 0, "delivered_images": 0, "delivered_patients": 0})
    for name in set(classes):
        mine = classes == name
        planned.loc[LABELS.index(name), ["planned_images", "delivered_images", "delivered_patients"]] = [
            COUNTS[mine].sum(), COUNTS[mine].sum(), mine.sum()]
    return ArchiveBuild(table, images.astype(np.uint8), None, planned,
                        torch.arange(len(COUNTS), dtype=torch.float32)[:, None], [], 0.0)


def check_bright(images):
    """Flag images whose first pixel is 255 (a stand-in for "too close to a training film")."""
    flags = images[:, 0, 0] == 255
    return flags, {"pixel": flags}


def regenerate_with(first_pixel: int, fail_class: str | None = None, calls: list | None = None):
    """Replacement patients: image value 200 + k for the k-th patient asked for, first pixel
    ``first_pixel``; patients of ``fail_class`` do not converge."""
    def regenerate(classes, counts, seed):
        if calls is not None:
            calls.append((classes.tolist(), counts.tolist()))
        ok = np.asarray([LABELS[c] != fail_class for c in classes])
        values = np.repeat(200 + np.flatnonzero(ok), counts[ok])
        images = values[:, None, None] * np.ones((1, 4, 4), np.int64)
        images[:, 0, 0] = first_pixel
        n = len(values)
        made = Delivered(images.astype(np.uint8), np.repeat(classes[ok], counts[ok]), np.zeros((n, len(LABELS)), np.uint8),
                         np.full(n, 0.8), classes[ok], counts[ok], -torch.arange(1, ok.sum() + 1, dtype=torch.float32)[:, None])
        return ok, made
    return regenerate


def test_the_filter_replaces_flagged_patients_until_none_is_flagged():
    build = toy_build()
    build.images[2, 0, 0] = 255  # patient 1 (3 images) copies a training film
    build.images[9, 0, 0] = 255  # and one follow-up of patient 3 (4 images)
    calls = []
    out, record = filter_archive(build, check_bright, regenerate_with(7, calls=calls), rounds=3,
                                 max_replaced_fraction=0.5, seed=0)
    nodule, effusion = LABELS.index("Nodule"), LABELS.index("Effusion")
    assert calls == [([nodule, effusion], [3, 4])]  # same class and follow-ups as the patients replaced
    assert record.images_flagged_before == 2 and record.patients_flagged_before == 2
    assert record.replaced_patients == 2 and record.replaced_images == 7 and record.dropped_patients == 0
    assert not check_bright(out.images)[0].any() and len(out.table) == len(build.table)
    assert (out.images[2:5, 1:] == 200).all() and (out.images[6:10, 1:] == 201).all()  # each in its own rows
    assert (out.images[:2] == 0).all() and (out.images[5] == 20).all() and (out.images[10:] == 40).all()
    assert out.z_star[:, 0].tolist() == [0, -1, 2, -2, 4]
    assert out.table["Target Score"].tolist() == [0.9, 0.9, 0.8, 0.8, 0.8, 0.9, 0.8, 0.8, 0.8, 0.8, 0.9, 0.9]
    assert build.images[2, 0, 0] == 255  # the input build is left as it was


def test_a_replacement_that_fails_to_converge_is_tried_again_then_dropped():
    build = toy_build()
    build.images[[0, 6], 0, 0] = 255  # patients 0 (Mass) and 3 (Effusion)
    calls = []
    out, record = filter_archive(build, check_bright, regenerate_with(7, fail_class="Effusion", calls=calls),
                                 rounds=2, max_replaced_fraction=0.5, seed=0)
    effusion = LABELS.index("Effusion")
    assert calls == [([LABELS.index("Mass"), effusion], [2, 4]), ([effusion], [4])]
    assert record.replaced_patients == 1 and record.dropped_patients == 1 and record.dropped_images == 4
    assert record.replacement_jobs == 3 and len(out.table) == 8 and len(out.images) == 8
    assert out.z_star[:, 0].tolist() == [-1, 1, 2, 4]
    assert (out.table["Patient ID"] != 90_000_003).all()
    assert out.planned.loc[effusion, "delivered_images"] == 0 and out.planned.loc[effusion, "delivered_patients"] == 0


def test_several_candidates_a_round_replace_a_patient_whose_draws_rarely_converge():
    """Patient 3 (Effusion) is flagged; its class's first draw of every round fails (a diffusion model's rare
    class). One candidate a round drops it after two rounds; two a round replace it in the first, with the
    second candidate, and no other candidate's images are written."""
    build = toy_build()
    build.images[6, 0, 0] = 255
    effusion = LABELS.index("Effusion")

    def every_other_fails(classes, counts, seed):
        ok, made = regenerate_with(7)(classes, counts, seed)
        fails = (np.arange(len(classes)) % 2 == 0) & (classes == effusion)
        keep = ~fails[ok]  # made's patients are the converged jobs, in order
        rows = np.repeat(keep, made.counts)
        return ok & ~fails, Delivered(made.images[rows], made.target[rows], made.labels[rows], made.scores[rows],
                                      made.patient_class[keep], made.counts[keep], made.z_star[torch.as_tensor(keep)])

    _, one = filter_archive(build, check_bright, every_other_fails, rounds=2, max_replaced_fraction=0.5, seed=0)
    assert one.dropped_patients == 1 and one.replacement_jobs == 2
    calls = []

    def recorded(classes, counts, seed):
        calls.append((classes.tolist(), counts.tolist()))
        return every_other_fails(classes, counts, seed)

    out, two = filter_archive(build, check_bright, recorded, rounds=2, max_replaced_fraction=0.5, seed=0, candidates=2)
    assert calls == [([effusion, effusion], [4, 4])] and two.rounds == 1
    assert two.replaced_patients == 1 and two.dropped_patients == 0 and two.replacement_jobs == 2
    assert (out.images[6:10, 1:] == 201).all()  # the second candidate's films (the k-th job asked for: 200 + k)
    assert not check_bright(out.images)[0].any() and len(out.table) == len(build.table)


def test_a_replacement_flagged_again_is_replaced_again_and_nothing_flagged_is_left():
    build = toy_build()
    build.images[0, 0, 0] = 255
    out, record = filter_archive(build, check_bright, regenerate_with(255), rounds=2, max_replaced_fraction=0.5, seed=0)
    assert record.rounds == 2 and record.replaced_patients == 0 and record.dropped_patients == 1
    assert len(out.table) == 10 and len(out.z_star) == 4 and not check_bright(out.images)[0].any()


def test_the_filter_fails_past_its_limit_and_leaves_an_unflagged_archive_alone():
    build = toy_build()
    out, record = filter_archive(build, check_bright, regenerate_with(7), rounds=2, max_replaced_fraction=0.5, seed=0)
    assert out is build and record.images_flagged_before == 0 and record.rounds == 0
    build.images[[0, 2, 5], 0, 0] = 255  # 3 of 5 patients flagged
    with pytest.raises(PrivacyFilterError, match="3 of 5 patients"):
        filter_archive(build, check_bright, regenerate_with(7), rounds=2, max_replaced_fraction=0.5, seed=0)


class BrightAudit:
    """An audit setup that flags images whose first pixel is 255, by pixel."""

    class auditor:  # noqa: N801
        @staticmethod
        def nearest(images, desc=None):
            return images

    class thresholds:  # noqa: N801
        @staticmethod
        def flags(images):
            flags, by = check_bright(images)
            return {**by, "any": flags}

        @staticmethod
        def as_dict():
            return {"pixel": 1.0, "verifier_not_used_because": None}


def test_the_audited_filter_records_what_it_did_and_then_applies_the_shortfall_limit():
    from cxrsynth.config.archive import ArchiveParams
    from cxrsynth.synthesis.archive_builder import ShortfallError

    build = toy_build()
    build.images[2, 0, 0] = 255  # patient 1 (3 images)
    params = ArchiveParams(size=12, max_shortfall=0.3, seed=4)
    privacy = PrivacyParams(filter_rounds=2, max_replaced_fraction=0.5)
    seeds = []

    def regenerate(classes, counts, seed):
        seeds.append(seed)
        return regenerate_with(7)(classes, counts, seed)

    out, record = audited_filter(build, BrightAudit, regenerate, params, privacy)
    assert list(record) == ["applied", "images_flagged_before", "patients_flagged_before", "flagged_by_before",
                            "replaced_patients", "replaced_images", "replacement_jobs", "rounds", "dropped_patients",
                            "dropped_images", "thresholds"]
    assert record["applied"] is True and record["thresholds"] == BrightAudit.thresholds.as_dict()
    assert record["replaced_patients"] == 1 and not check_bright(out.images)[0].any()
    assert seeds == [4 + 50_000 + 1]  # round 1 of the filter's rounds, seeded from archive.seed
    build.images[6, 0, 0] = 255  # patient 3 (4 images) too, and its replacement never converges: dropped
    with pytest.raises(ShortfallError):  # 8 of 12 images left: past archive.max_shortfall
        audited_filter(build, BrightAudit, regenerate_with(7, fail_class="Effusion"), params, privacy)


def test_the_regenerator_makes_patients_with_its_own_seeded_noise(monkeypatch):
    from cxrsynth.config.archive import ArchiveParams

    seen = []

    class Result:
        success = np.array([True, False])

    def generate(generator, resolution, scorer, labeller, classes, counts, params, seed, noise):
        seen.append((generator, resolution, scorer, labeller, classes, counts, params, seed, noise))
        return Result, "made"

    monkeypatch.setattr(filter_module, "generate_patients", generate)
    params = ArchiveParams(seed=5)
    regenerate = regenerator("G", 16, "scorer", "labeller", params, "cpu")
    converged, made = regenerate(np.array([1, 2]), np.array([3, 4]), 50_001)
    regenerate(np.array([1]), np.array([3]), 50_002)
    assert converged.tolist() == [True, False] and made == "made"
    assert seen[0][:4] == ("G", 16, "scorer", "labeller") and seen[0][6] is params and seen[0][7] == 50_001
    assert seen[0][8] is seen[1][8] and seen[0][8].initial_seed() == 5 + 2  # one generator, drawn from call to call


def test_the_audit_figures_title_says_how_archive_images_were_matched():
    used = audit_title(3, 40, 8, 0.97, None)
    assert used == ("Privacy audit (on the embedded demo: phantoms, not clinical data): archive flagged 3 of 40; "
                    "verifier test AUC 0.97; bottom: the 8 archive images the verifier finds closest to a training film")
    assert audit_title(0, 40, 8, None, "verifier untested").endswith(
        "verifier not used: verifier untested;\nbottom: the 8 archive images nearest in pixels to a training film")


# --------------------------------------------------------------------------- without a usable verifier
def local_store(root, patients: int, films: int) -> tuple:
    """A prepared 32 px store of random films, ``films`` per patient, read from a local NIH-layout folder,
    and a split CSV putting every fifth patient in val and every fifth in test."""
    from conftest import write_raw

    from cxrsynth.config.data import LocalParams
    from cxrsynth.config.prepare import PrepareParams
    from cxrsynth.data.store_writer import prepare_dataset
    from cxrsynth.data.sources.local import import_local
    from cxrsynth.data.store import ImageStore

    rows = [(f"{p:08d}_{f:03d}.png", LABELS[p % 15]) for p in range(1, patients + 1) for f in range(films)]
    src = write_raw(root / "nih", rows)
    import_local(LocalParams(images_dir=str(src / "images"), metadata_csv=str(src / "Data_Entry_2017_v2020.csv")),
                 root / "raw")
    (root / "store").mkdir()
    prepare_dataset(root / "raw", root / "store", PrepareParams(size=32, workers=1))
    table = ImageStore(root / "store").table
    table["split"] = np.asarray(["train", "train", "train", "val", "test"])[table["patient_id"] % 5]
    table[["image", "patient_id", "split"]].to_csv(root / "split.csv", index=False)
    return root / "store", root / "split.csv"


def test_the_verifier_stage_without_same_patient_pairs_records_why_and_says_so_in_one_line(tmp_path):
    """One film per patient: no verifier can be trained; the stage succeeds, writes only the record
    (no half-made model) and prints one line naming what the data lacks."""
    import subprocess
    import sys

    from conftest import ROOT, params_text, validate_params

    store, split = local_store(tmp_path, 40, 1)
    (tmp_path / "params.yaml").write_text(params_text())
    validate_params(tmp_path)
    result = subprocess.run([sys.executable, str(ROOT / "stages" / "verifier.py"), "--store", str(store),
                             "--split", str(split), "--out", "verifier"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    said = [line for line in result.stdout.splitlines() if line.startswith("verifier: not trained")]
    assert len(said) == 1 and "0 patients of the training split have two or more films" in said[0], result.stdout
    assert sorted(p.name for p in (tmp_path / "verifier").iterdir()) == ["verifier.json"]
    from cxrsynth.privacy.encoder import load_verifier
    from cxrsynth.privacy.audit_inputs import verifier_not_used

    encoder, record = load_verifier(tmp_path / "verifier")
    assert encoder is None and record["trained"] is False and record["test_auc"] is None
    assert record["resolution"] == 32 and record["train_patients_with_pairs"] == 0
    assert verifier_not_used(record, 0.9).startswith("verifier not trained (no same-patient pairs to train on")


def test_pairs_in_training_but_none_in_test_are_not_enough():
    from cxrsynth.privacy.verifier import missing_pairs

    train = np.repeat(np.arange(10), 2)
    assert missing_pairs(train, np.arange(100, 110)).startswith("no same-patient pairs to test on: 0 patients")
    assert missing_pairs(np.r_[train[:2], 50, 51], np.arange(5)).startswith("no same-patient pairs to train on: 1 ")
    assert missing_pairs(train, np.asarray([100, 100, 101])) is None


@pytest.fixture
def tiny_classifier(monkeypatch):
    """``audit_setup`` reads ``TinyFeatures`` in place of the DenseNet folder."""
    import cxrsynth.privacy.audit_inputs as setup_module

    monkeypatch.setattr(setup_module, "load_classifier",
                        lambda folder, device: (TinyFeatures().eval(), {}, {"input_size": 16}))
    monkeypatch.setattr(setup_module, "classifier_extractor", lambda model, size: Extractor("tiny", 8, model, size))


def test_without_a_verifier_the_audit_and_the_filter_flag_by_nearest_neighbours_only(tmp_path, tiny_classifier):
    from cxrsynth.privacy.summaries import own_patient_control, summary
    from cxrsynth.privacy.audit_inputs import audit_setup
    from cxrsynth.privacy.verifier import missing_pairs, save_untrained

    store, split = local_store(tmp_path, 40, 1)
    table = pd.read_csv(split)
    train, test = (table.loc[table["split"] == s, "patient_id"].to_numpy() for s in ("train", "test"))
    save_untrained(tmp_path / "verifier", missing_pairs(train, test), PrivacyParams(), 32, train, test)
    setup = audit_setup(store, split, tmp_path / "classifier", tmp_path / "verifier", PrivacyParams(batch_size=16),
                        torch.device("cpu"))
    thresholds = setup.thresholds
    assert not setup.verifier_used and thresholds.verifier is None and thresholds.criteria == ("pixel", "feature")
    assert thresholds.verifier_not_used_because.startswith("verifier not trained (no same-patient pairs")
    assert thresholds.as_dict()["verifier_score"] is None and thresholds.as_dict()["criteria"] == ["pixel", "feature"]

    reference = setup.auditor.reference_images  # random noise films
    planted = np.concatenate([np.zeros((6, 32, 32), np.uint8), reference[[0, 5, 9]].numpy()])  # 6 black, 3 copies
    nearest = setup.auditor.nearest(planted)
    assert np.isnan(nearest.verifier).all() and (nearest.verifier_index == -1).all()
    flags = thresholds.flags(nearest)
    assert set(flags) == {"pixel", "feature", "any"}  # the verifier can neither flag nor clear an image
    assert flags["any"].tolist() == [False] * 6 + [True] * 3 and flags["pixel"][-3:].all()
    report = summary(nearest, flags, np.arange(len(planted)))
    assert report["flagged_fraction_by"]["verifier"] is None and report["distributions"]["verifier"] == {}
    rows = np.flatnonzero((setup.table["split"] == "train").to_numpy())
    assert own_patient_control(setup.auditor, setup.table, rows, thresholds)["best_match_is_own_patient"] is None

    check = audit_check(setup)  # the archive stage's check
    flagged, by = check(planted)
    assert flagged.tolist() == flags["any"].tolist() and set(by) == {"pixel", "feature"}
    assert all(by[k].tolist() == flags[k].tolist() for k in by)

    def regenerate(classes, counts, seed):  # black replacements at the reference's side
        ok, made = regenerate_with(7)(classes, counts, seed)
        return ok, replace(made, images=np.zeros((len(made.images), 32, 32), np.uint8))

    build = toy_build()
    films = np.zeros((len(build.images), 32, 32), np.uint8)
    films[0:2] = reference[[3, 4]].numpy()  # patient 0's two films copy training films
    out, record = filter_archive(replace(build, images=films), check, regenerate, rounds=2,
                                 max_replaced_fraction=0.5, seed=0)
    assert record.patients_flagged_before == 1 and set(record.flagged_by_before) == {"pixel", "feature"}
    assert record.replaced_patients == 1 and not check(out.images)[0].any()

    # what the privacy stage reports of such an audit: the planted films play the archive
    audit = audit_populations(setup, planted, np.arange(len(planted)))
    assert list(audit.nearest) == list(POPULATIONS) and len(audit.nearest["archive"]) == len(planted)
    assert list(audit.reports) == ["archive", "real_test", "real_training", "real_test_own_patient_included"]
    assert audit.reports["archive"] == summary(nearest, flags, np.arange(len(planted)))
    assert "with_a_follow_up" in audit.reports["real_training"]
    params = PrivacyParams(batch_size=16)
    metrics = privacy_metrics(setup, params, audit.reports, None)
    assert list(metrics) == ["reference", "verifier", "thresholds", "calibration", "filter",
                             "archive_flagged_before_filter", "archive_flagged_after_filter", *audit.reports]
    assert metrics["filter"] == {"applied": False} and metrics["archive_flagged_before_filter"] == 3
    assert metrics["verifier"]["used"] is False and metrics["calibration"]["distributions"]["verifier"] == {}
    assert metrics["reference"]["images"] == len(setup.table)
    filtered = privacy_metrics(setup, params, audit.reports, {"applied": True, "images_flagged_before": 7})
    assert filtered["archive_flagged_before_filter"] == 7 and filtered["archive_flagged_after_filter"] == 3
    lines = privacy_summary(filtered, 0.01)
    assert len(lines) == 2 and lines[0].startswith("privacy: verifier not trained (no same-patient pairs")
    assert lines[0].endswith(": images flagged by pixel and feature nearest neighbours only")
    assert lines[1].startswith("privacy: archive 3 of 9 images flagged (7 before the filter); new patients (test) flagged ")
    audit_figure(setup, audit, planted, 2, tmp_path / "privacy.png")
    assert (tmp_path / "privacy.png").stat().st_size > 0


def test_a_verifier_below_the_auc_floor_is_not_trusted(tmp_path, tiny_classifier):
    """A verifier at chance flags new patients as often as copies: below privacy.min_verifier_auc it is left
    out as if there were none; at or above the floor it flags."""
    from cxrsynth.privacy.audit_inputs import audit_setup, verifier_not_used
    from cxrsynth.privacy.verifier import VerifierFit, save_verifier

    store, split = local_store(tmp_path, 30, 2)
    torch.manual_seed(0)
    params = PrivacyParams(width=4, batch_size=16)
    for auc, used in ((0.52, False), (0.95, True)):
        fit = VerifierFit(PatientEncoder(params.embedding_dim, params.width), auc,
                          {"same_patient": 6, "different_patients": 60}, 18, 1.0, "x", "y")
        save_verifier(tmp_path / f"verifier_{auc}", fit, params, 32)
        setup = audit_setup(store, split, tmp_path / "classifier", tmp_path / f"verifier_{auc}", params,
                            torch.device("cpu"))
        assert setup.verifier_used is used and ("verifier" in setup.thresholds.flags(setup.calibration)) is used
        assert (setup.thresholds.verifier is not None) is used
    assert setup.thresholds.verifier_not_used_because is None
    assert verifier_not_used({"test_auc": 0.52}, 0.9) == "verifier below floor (AUC 0.520 < privacy.min_verifier_auc 0.9)"
    assert verifier_not_used({"test_auc": None}, 0.9).startswith("verifier untested")
    assert verifier_not_used({"test_auc": 0.9}, 0.9) is None
    with pytest.raises(ValueError, match="min_verifier_auc"):
        PrivacyParams(min_verifier_auc=0.5)  # a floor at chance would trust a coin
