"""Labelled generation on demand: the generator bundle, ``Generator.load(...).generate(...)``, and the
``cxrsynth`` console script (generate, and the subcommands it hands to other modules)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from cxrsynth.commands import main
from cxrsynth.config.archive import ArchiveParams
from cxrsynth.errors import InputError
from cxrsynth.generate import Generator, NothingConvergedError
from cxrsynth.generate.bundle import read_bundle, write_bundle
from cxrsynth.generate.generator import plan_films
from cxrsynth.labels import LABELS, UnknownLabelError
from cxrsynth.models.d_classifier import discriminator_head
from cxrsynth.models.gan import GANConfig, build_networks
from cxrsynth.synthesis.archive_writer import CSV_NAME, label_strings, read_archive
from cxrsynth.synthesis.labeller import archive_labeller
from cxrsynth.synthesis.scorers import Scorer

CONFIG = GANConfig(arch="pggan", z_dim=16, channels=[16, 16, 8], fade_images=[0, 0, 0], stable_images=[1, 1, 1],
                   batch_sizes=[4, 4, 4])
SCRIPT = Path(sys.executable).parent / "cxrsynth"  # the console script `pip install -e .` puts beside python
#: Cheap settings: one attempt of a few steps, no severity, so most jobs converge within a second.
SETTINGS = dict(max_steps=4, max_attempts=1, retries=1, step_size=0.5, severity_mean=0.0, severity_std=0.0,
                batch_size=16, scorer="densenet")


def save_model_folders(root: Path, youden: float | np.ndarray) -> tuple[Path, Path]:
    """A tiny exported generator and a tiny saved classifier (a discriminator head) with thresholds
    ``youden``, in the layouts the train_gan and train_classifier stages write."""
    torch.manual_seed(0)
    generator, _ = build_networks(CONFIG)
    gan = root / "gan"
    gan.mkdir(parents=True)
    torch.save(generator.state_dict(), gan / "generator.pt")
    torch.save({}, gan / "discriminator.pt")  # exported beside the generator; the bundle leaves it out
    (gan / "config.json").write_text(json.dumps(asdict(CONFIG) | {"resolution": 16}))
    classifier = root / "classifier"
    classifier.mkdir()
    torch.save(discriminator_head(CONFIG, len(LABELS)).state_dict(), classifier / "model.pt")
    (classifier / "config.json").write_text(json.dumps({"architecture": "discriminator", "labels": list(LABELS),
                                                        "input_size": 16, "gan": asdict(CONFIG)}))
    values = np.broadcast_to(np.asarray(youden, dtype=np.float64), (len(LABELS),))
    (classifier / "thresholds.json").write_text(json.dumps({n: float(t) for n, t in zip(LABELS, values)}))
    return gan, classifier


def sample_scores(gan: Path, classifier: Path) -> np.ndarray:
    """The tiny classifier's probabilities on 256 random films of the tiny generator."""
    from cxrsynth.sampling import load_generator
    from cxrsynth.synthesis.scorers import load_scorer

    generator, _ = load_generator(gan)
    scorer = load_scorer(classifier)
    with torch.no_grad():
        z = torch.randn(256, 16, generator=torch.Generator().manual_seed(5)).clamp(-0.7, 0.7)
        return torch.sigmoid(scorer.logits(generator(z, 16, 1.0))).numpy()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A bundle whose scorer (Youden) thresholds sit at the median score of random films, and whose
    labeller cut-offs (the archive's) sit lower, at the 30th percentile."""
    root = tmp_path_factory.mktemp("bundle")
    gan, classifier = save_model_folders(root, 0.5)
    scores = sample_scores(gan, classifier)
    (classifier / "thresholds.json").write_text(json.dumps(dict(zip(LABELS, np.median(scores, 0).tolist()))))
    write_bundle(root / "generator", gan, classifier, None, ArchiveParams(**SETTINGS),
                 np.quantile(scores, 0.3, axis=0), "demo", {name: 0.5 + k / 100 for k, name in enumerate(LABELS)})
    return root / "generator"


@pytest.fixture(scope="module")
def loaded(bundle) -> Generator:
    return Generator.load(bundle, "cpu")


def test_the_bundle_holds_the_generator_labeller_and_settings_but_no_discriminator(bundle):
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    assert files == ["README.md", "bundle.json", "generator/config.json", "generator/generator.pt",
                     "labeller/config.json", "labeller/model.pt", "labeller/thresholds.json"]
    assert (bundle / "labeller/model.pt").read_bytes() == (bundle.parent / "classifier/model.pt").read_bytes()
    manifest = read_bundle(bundle).manifest
    assert manifest["class_optimisation"]["max_steps"] == 4 and manifest["scorer"]["name"] == "densenet"
    assert manifest["source"]["data_source"] == "demo"
    card = (bundle / "README.md").read_text()
    assert "Not for clinical use" in card and "phantoms" in card and "| Hernia | " in card


def test_the_bundle_takes_the_discriminator_scorer_when_the_archive_uses_it(tmp_path):
    gan, classifier = save_model_folders(tmp_path, 0.5)
    out = tmp_path / "bundle"
    write_bundle(out, gan, classifier, classifier, ArchiveParams(**SETTINGS | {"scorer": "discriminator"}),
                 np.full(len(LABELS), 0.5), "nih")
    assert (out / "scorer/model.pt").is_file() and read_bundle(out).manifest["scorer"]["folder"] == "scorer"
    with pytest.raises(InputError, match="archive.scorer"):
        write_bundle(tmp_path / "other", gan, classifier, None, ArchiveParams(**SETTINGS | {"scorer": "discriminator"}),
                     np.full(len(LABELS), 0.5), "nih")
    assert not (tmp_path / "other").exists()


def test_the_archive_and_the_bundle_label_with_the_same_cut_offs():
    rng = np.random.default_rng(0)
    probs, labels = rng.random((200, len(LABELS))), (rng.random((200, len(LABELS))) < 0.2).astype(np.float32)
    youden = Scorer("densenet", torch.nn.Identity(), 16, np.full(len(LABELS), 0.5, np.float32))
    calibrated = archive_labeller(youden, "calibrated", (probs, labels)).thresholds
    assert np.allclose((probs >= calibrated).mean(0), labels.mean(0), atol=0.01)  # as often as the truth
    assert archive_labeller(youden, "youden", (probs, labels)) is youden


def test_n_films_are_split_evenly_over_the_labels_in_patients_of_follow_ups():
    classes, counts = plan_films(["Effusion", "No Finding"], 7, follow_ups=2)
    effusion, none = LABELS.index("Effusion"), LABELS.index("No Finding")
    assert counts[classes == effusion].tolist() == [2, 2] and counts[classes == none].tolist() == [2, 1]
    with pytest.raises(InputError, match="at least one film per label"):
        plan_films(["Effusion", "Mass"], 1, 1)


def test_generate_returns_the_converged_films_labelled_by_the_labeller(loaded):
    films = loaded.generate(["Effusion", "No Finding", "Cardiomegaly"], n=10, seed=3)
    assert films.images.shape == (films.converged, 16, 16) and films.images.dtype == np.uint8
    assert 0 < films.converged <= films.requested == 10
    assert [v["requested"] for v in films.per_label.values()] == [4, 3, 3]
    assert sum(v["converged"] for v in films.per_label.values()) == films.converged == len(films.table)
    assert (films.table["Patient ID"] >= 90_000_000).all()
    # the labels are the labeller's at the bundle's (archive's) cut-offs, not its Youden thresholds
    with torch.no_grad():
        probs = torch.sigmoid(loaded.labeller.logits(torch.from_numpy(films.images[:, None]).float() / 127.5 - 1))
    at_bundle = (probs.numpy() >= read_bundle(loaded.bundle.folder).thresholds).astype(np.uint8)
    assert films.table["Finding Labels"].tolist() == label_strings(at_bundle)
    at_youden = (probs.numpy() >= loaded.scorer.thresholds).astype(np.uint8)
    assert films.table["Finding Labels"].tolist() != label_strings(at_youden)
    for name, row in films.per_label.items():
        mine = films.table["Target Label"] == name
        carried = films.table.loc[mine, "Finding Labels"].str.split("|").map(lambda p, name=name: name in p)
        assert row["agreement"] == pytest.approx(carried.mean(), abs=1e-4)
    again = loaded.generate(["Effusion", "No Finding", "Cardiomegaly"], n=10, seed=3)
    assert np.array_equal(again.images, films.images)


def test_an_unknown_label_is_one_line_listing_the_valid_names(loaded):
    with pytest.raises(UnknownLabelError) as err:
        loaded.generate(["Effusion", "Lung Opacity"], n=4)
    assert "\n" not in str(err.value) and "'Lung Opacity'" in str(err.value) and "Pleural_Thickening" in str(err.value)


def test_save_writes_nih_layout_and_a_card(loaded, tmp_path):
    films = loaded.generate("Mass,Nodule", n=6, seed=1, follow_ups=3)
    out = films.save(tmp_path / "films")
    assert sorted(p.name for p in out.iterdir()) == [CSV_NAME, "README.md", "images_001.tar"]
    table, images = read_archive(out)
    assert np.array_equal(images, films.images) and len(table) == films.converged
    card = (out / "README.md").read_text()
    assert "not for clinical use" in card and f"{films.converged} of 6 requested films converged" in card
    assert "Not privacy-filtered" in card and f"{len(table):,} synthetic frontal chest films" in card
    assert "| Mass |" in card and "## Privacy" in card


def test_nothing_is_written_when_no_film_converges(tmp_path, capsys):
    gan, classifier = save_model_folders(tmp_path, 1 - 1e-6)  # a Youden threshold no film reaches
    write_bundle(tmp_path / "bundle", gan, classifier, None, ArchiveParams(**SETTINGS), np.full(len(LABELS), 0.5),
                 "local")
    with pytest.raises(NothingConvergedError, match="0 of 4 films converged"):
        Generator.load(tmp_path / "bundle", "cpu").generate(["Effusion"], n=4)
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--model", str(tmp_path / "bundle"), "--labels", "Effusion", "--n", "4",
              "--out", str(tmp_path / "out"), "--device", "cpu"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]  # beside tqdm's
    assert exit_.value.code == 1 and len(errors) == 1 and errors[0].startswith("error: generate: 0 of 4 films")
    assert errors[0].endswith("nothing written") and not (tmp_path / "out").exists()


def test_the_console_script_generates_and_reports_per_label(bundle, tmp_path):
    result = subprocess.run([str(SCRIPT), "generate", "--model", str(bundle), "--labels", "Effusion,Cardiomegaly",
                             "--n", "6", "--out", str(tmp_path / "out"), "--device", "cpu", "--seed", "2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Effusion: ") and " of 3 films converged, labeller agrees on " in lines[0]
    assert lines[1].startswith("Cardiomegaly: ") and lines[2].startswith("total: ")
    assert (tmp_path / "out" / CSV_NAME).is_file() and (tmp_path / "out" / "images_001.tar").is_file()


@pytest.mark.parametrize("argv, expected", [
    (["generate", "--help"], "split as evenly as possible"),
    (["sample", "--help"], "usage: cxrsynth sample"),
    (["reader-study", "--help"], "usage: cxrsynth reader-study"),
    (["reader-study", "serve", "--help"], "--port"),
    (["inputs", "status", "--help"], "--root"),
])
def test_every_subcommand_has_its_help(argv, expected):
    result = subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and expected in " ".join(result.stdout.split()), result.stdout + result.stderr


def test_python_dash_m_cxrsynth_is_the_same_command():
    result = subprocess.run([sys.executable, "-m", "cxrsynth", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: cxrsynth ")
    assert all(name in result.stdout for name in ("generate", "sample", "reader-study", "inputs"))
