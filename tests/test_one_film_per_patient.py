"""End to end on data with one film per patient, as many public chest x-ray sets have: `dvc repro` of the
main pipeline, at toy size, on a local-source folder of demo phantoms (the first film of each of 400
patients of the bundled rows).

Without same-patient pairs no patient verifier can be trained: the verifier stage records that and why,
the archive's privacy filter and the privacy audit flag by the pixel and feature nearest-neighbour tests
alone and record why, and the report and headline say so. Every stage runs to the report.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import compose_params, copy_repo, dvc_stages, sh
from PIL import Image

from cxrsynth.data.phantom import render_phantom
from cxrsynth.data.sources.demo import bundled_sample_text, image_seed, patient_seed
from cxrsynth.labels import parse_label_string

pytestmark = pytest.mark.slow

PATIENTS = 400
NOT_TRAINED = "verifier not trained (no same-patient pairs to train on: 0 patients of the training split"


def one_film_per_patient(folder: Path, patients: int, size: int = 32) -> Path:
    """An NIH-layout folder (``images/`` of PNGs and the Data_Entry CSV): demo phantoms of the first film of
    each of the first ``patients`` patients of the bundled rows (whose first patients enrich rare findings)."""
    header, *lines = bundled_sample_text().rstrip("\n").split("\n")
    chosen, seen = [], set()
    for line in lines:
        patient = line.split(",")[3]
        if patient not in seen and len(chosen) < patients:
            seen.add(patient)
            chosen.append(line)
    (folder / "images").mkdir(parents=True)
    for line in chosen:
        name, labels, _, patient, age, sex, view = next(csv.reader([line]))[:7]
        phantom = render_phantom(size, set(parse_label_string(labels)), sex, float(age), view, image_seed(name, 0),
                                 patient_seed=patient_seed(patient, 0))
        Image.fromarray(phantom.pixels, "L").save(folder / "images" / name)
    (folder / "Data_Entry_2017_v2020.csv").write_text(header + "\n" + "\n".join(chosen) + "\n")
    return folder


TINY = [
    "prepare.size=32",
    "classifier.arch=resnet18", "classifier.max_epochs=1", "classifier.batch_size=32",  # the lighter network
    "gan.resolution=8", "gan.channels=[16,16]", "gan.fade_images=[0,64]", "gan.stable_images=[64,64]",
    "gan.batch_sizes=[16,16]", "gan.n_samples=16", "gan.log_every=4",
    "fid.n_generated=64", "fid.batch_size=64",
    "prevalence.n_generated=64", "prevalence.n_bootstrap=100", "prevalence.batch_size=64",
    "privacy.max_replaced_fraction=1.0",  # a GAN trained for seconds may sit anywhere
    "archive.size=24", "archive.pilot_patients=1", "archive.oversample=1.0", "archive.retries=1",
    "archive.max_shortfall=1.0", "archive.compare_per_class=0", "archive.max_steps=8", "archive.max_attempts=1",
    "archive.batch_size=16", "archive.follow_ups=[1,2]",
    "embed.train_images=64", "embed.n_images=64", "embed.batch_size=16",
    "synthetic_auroc.max_epochs=1",
    "reader_study.grids=2", "reader_study.pairs=4", "reader_study.generated_from=samples",
    "reader_study.simulated_readers=[consultant,registrar]", "reader_study.n_bootstrap=100",
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, str]:
    """A copy of the repository whose params read the one-film folder, reproduced to the report; and
    what ``dvc repro`` printed."""
    films = one_film_per_patient(tmp_path_factory.mktemp("one_film") / "nih", PATIENTS)

    def local_source(dest: Path) -> None:
        compose_params(dest, "data.source=local", f"data.local.images_dir={films / 'images'}",
                       f"data.local.metadata_csv={films / 'Data_Entry_2017_v2020.csv'}", *TINY)

    dest = copy_repo(tmp_path_factory.mktemp("repo"), local_source)
    return dest, sh(["dvc", "repro", "dvc.yaml"], dest)


def metrics(repo: Path, name: str) -> dict:
    return json.loads((repo / "metrics" / name).read_text())


def test_every_stage_ran_and_wrote_its_metrics(repo):
    dest, _ = repo
    assert metrics(dest, "prepare.json")["images"] == PATIENTS
    stages = dvc_stages(dest / "dvc.yaml")
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            assert (dest / path).exists(), (name, path)
    assert "up to date" in sh(["dvc", "status", "dvc.yaml"], dest)


def test_the_verifier_records_that_it_could_not_be_trained_and_why(repo):
    dest, printed = repo
    record = json.loads((dest / "data" / "verifier" / "verifier.json").read_text())
    assert record["trained"] is False and record["test_auc"] is None and record["train_patients_with_pairs"] == 0
    assert record["not_trained_because"].startswith("no same-patient pairs to train on")
    assert not (dest / "data" / "verifier" / "verifier.pt").exists()
    assert sum(line.startswith("verifier: not trained: no same-patient pairs") for line in printed.splitlines()) == 1


def test_filter_and_audit_flag_by_nearest_neighbours_only_and_say_why(repo):
    dest, _ = repo
    privacy = metrics(dest, "privacy.json")
    verifier = privacy["verifier"]
    assert verifier["used"] is False and verifier["test_auc"] is None and verifier["not_used_because"].startswith(NOT_TRAINED)
    assert privacy["thresholds"]["verifier_score"] is None and privacy["thresholds"]["criteria"] == ["pixel", "feature"]
    for population in ("archive", "real_test", "real_training"):
        assert privacy[population]["flagged_fraction_by"]["verifier"] is None
    assert privacy["real_test"]["flagged_fraction_by"]["pixel"] is not None
    record = metrics(dest, "archive.json")["privacy_filter"]
    assert record["applied"] and set(record["flagged_by_before"]) == {"pixel", "feature"}
    assert record["thresholds"]["verifier_not_used_because"].startswith(NOT_TRAINED)


def test_the_report_and_headline_say_the_verifier_was_not_used_and_why(repo):
    dest, _ = repo
    headline = metrics(dest, "headline.json")["privacy"]
    assert headline["verifier_test_auc"] is None and headline["verifier_used"] is False
    assert headline["verifier_not_used_because"].startswith(NOT_TRAINED)
    for page in ("report.md", "report.html"):
        text = (dest / "metrics" / page).read_text()
        assert f"The patient verifier was not used: {NOT_TRAINED}" in text, page
