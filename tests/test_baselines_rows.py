"""The baselines table's rows and what the compare stage reads back: each row's JSON (systems and the
PGGAN's), samples, timings and the batch-norm memory saving; the GAN-train recipe and the judge's work folder."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from cxrsynth.baselines.compare import (
    batch_norm_saving,
    read_samples,
    read_timings,
    samples_path,
    summary,
    table,
)
from cxrsynth.baselines.evaluate import Judge, gan_train_params
from cxrsynth.baselines.rows import pggan_row, save_samples, system_row
from cxrsynth.baselines.train import single_device_trainer
from cxrsynth.config.base import load_section
from cxrsynth.config.baselines import BaselinesParams
from cxrsynth.config.classifier import ClassifierParams

ROOT = Path(__file__).parents[1]
PARAMS = load_section(BaselinesParams, ROOT / "params.yaml")

MEASURED = {"n_samples": 8, "fid": {"classifier": 12.5},
            "prdc": {"classifier": {"precision": 0.7, "recall": 0.4, "density": 0.9, "coverage": 0.6, "k": 5}},
            "memorisation": {"classifier": {"share": 0.02, "threshold": 1.5}},
            "label_mix_tv": 0.2, "label_mix": {}, "labeller_prevalence": {},
            "gan_train_labels": "labeller", "gan_train_auroc": {"macro": 0.55}}


def test_a_systems_row_says_what_it_is_how_it_trained_and_what_it_measured():
    name = next(iter(PARAMS.systems))
    system = PARAMS.systems[name].model_copy(update={"lr_g": 1e-4, "lr_d": 4e-4})
    run = SimpleNamespace(modules={"all": SimpleNamespace(images_seen=48)}, train_images={"all": 60}, skipped=[],
                          d_loss_stats=lambda: {"steps": 6, "mean": 0.123456789, "variance": 0.5, "std": 0.7071067})
    row = system_row(name, system, PARAMS.common, run, MEASURED, {"params": 2**20, "total": 3 * 2**19})
    assert list(row)[:12] == ["system", "paper", "model", "loss", "optimiser", "ttur", "activation", "resolution",
                              "images_shown", "generators", "train_images", "skipped_labels"]
    assert list(row)[12:] == [*MEASURED, "d_loss", "training_memory_mib"]
    assert row["system"] == name and row["ttur"] is True and row["images_shown"] == 48 and row["generators"] == 1
    assert row["d_loss"] == {"steps": 6, "mean": 0.123457, "variance": 0.5, "std": 0.707107}
    assert row["training_memory_mib"] == {"params": 1.0, "total": 1.5}
    vae = SimpleNamespace(**{**vars(run), "d_loss_stats": lambda: None})
    assert system_row(name, system, PARAMS.common, vae, MEASURED, {})["d_loss"] is None


def test_pggan_rows_take_the_main_pipelines_numbers_and_the_archives_labels():
    gan = {"images_shown": 1000, "d_loss": {"mean": -1.0}}
    plain = pggan_row("pggan", gan, 32, MEASURED, archive_labels=False)
    assert list(plain) == ["system", "paper", "model", "loss", "optimiser", "ttur", "activation", "resolution",
                           "images_shown", "generators", "d_loss", "training_memory_mib", "film_cost", *MEASURED]
    assert plain["paper"] == "001" and plain["images_shown"] == 1000 and plain["gan_train_labels"] == "labeller"
    assert plain["model"] == "pggan" and plain["loss"] == "wgan_gp"
    optimised = pggan_row("pggan_archive", gan, 32, MEASURED, archive_labels=True)
    assert list(optimised) == list(plain) and optimised["gan_train_labels"] == "archive"
    assert MEASURED["gan_train_labels"] == "labeller"  # the judge's values are not changed
    frame = table([plain, optimised])
    assert list(frame["gan_train_labels"]) == ["labeller", "archive"]


def test_samples_are_saved_and_read_back_by_row(tmp_path):
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    (tmp_path / "main").mkdir()
    (tmp_path / "dcgan").mkdir()
    save_samples(tmp_path / "main" / "pggan_archive.npz", images, np.eye(2, 15, dtype=np.uint8))
    save_samples(tmp_path / "dcgan" / "samples.npz", images[::-1], None)
    assert samples_path(tmp_path, "pggan_archive") == tmp_path / "main" / "pggan_archive.npz"
    assert set(np.load(tmp_path / "dcgan" / "samples.npz").files) == {"images"}
    assert set(np.load(samples_path(tmp_path, "pggan_archive")).files) == {"images", "conditions"}
    samples = read_samples(tmp_path, pd.Series(["dcgan", "pggan_archive"]))
    assert list(samples) == ["dcgan", "pggan_archive"]
    assert np.array_equal(samples["dcgan"], images[::-1]) and np.array_equal(samples["pggan_archive"], images)
    # another generator's rows, committed from its own run: their samples are in that run's data, not here
    assert list(read_samples(tmp_path, pd.Series(["ddpm", "ddpm_archive", "dcgan"]))) == ["dcgan"]


def test_diffusion_rows_say_what_the_generator_is_and_the_main_rows_are_found_by_name(tmp_path):
    from cxrsynth.baselines.compare import main_rows, read_rows
    from cxrsynth.baselines.rows import main_row_names

    gan = {"arch": "ddpm", "images_shown": 40000, "film_cost": {"gflop_per_film": 3.0, "evaluations_per_film": 40}}
    names = main_row_names("ddpm")
    assert names == ("ddpm", "ddpm_archive")
    row = pggan_row(names[0], gan, 32, MEASURED, archive_labels=False)
    assert row["paper"] == "diffusion" and row["model"] == "monai_unet" and row["d_loss"] is None
    assert row["film_cost"]["evaluations_per_film"] == 40
    with pytest.raises(FileNotFoundError, match="no row of the main pipeline's generator"):
        read_rows(tmp_path, [])
    for name in ("ddpm_archive", "pggan", "ddpm", "pggan_archive", "cgan"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"system": name}))
    assert main_rows(tmp_path) == ["pggan", "pggan_archive", "ddpm", "ddpm_archive"]
    assert [r["system"] for r in read_rows(tmp_path, ["cgan"])] == ["pggan", "pggan_archive", "ddpm", "ddpm_archive",
                                                                   "cgan"]


def test_timings_of_the_systems_and_the_pggans_last_phase(tmp_path):
    (tmp_path / "dcgan.json").write_text(json.dumps({"img_per_s": 10.0}))
    gan = tmp_path / "train_gan.json"
    assert read_timings(tmp_path, ["pggan", "dcgan", "vae"], gan) == {"dcgan": {"img_per_s": 10.0}}
    gan.write_text(json.dumps({"img_per_s": {"8": 500.0, "16": 300.0}}))
    assert read_timings(tmp_path, ["dcgan"], gan) == {"dcgan": {"img_per_s": 10.0}, "pggan": {"img_per_s": 300.0}}
    gan.write_text(json.dumps({"img_per_s": None}))
    assert "pggan" not in read_timings(tmp_path, [], gan)


def test_batch_norm_saving_and_the_tables_json():
    memory = pd.DataFrame({"network": ["G", "G", "D", "D"], "resolution": [64] * 4, "width": [32] * 4,
                           "batch_norm": [True, False, True, False], "total": [100.0, 95.0, 200.0, 198.0]})
    assert batch_norm_saving(memory) == {"min": 1.0, "max": 5.0, "paper_004": [1.2, 7.0]}
    frame = table([pggan_row("pggan", {"images_shown": 1, "d_loss": None}, 32, MEASURED, False)])
    out = summary(frame, {"held": None}, memory)
    assert list(out) == ["rows", "d_loss_claim", "batch_norm_memory_saving_pct", "note"]
    assert out["rows"][0]["system"] == "pggan" and out["rows"][0]["fid_classifier"] == 12.5
    assert {k: out["rows"][0][k] for k in ("precision_classifier", "recall_classifier", "density_classifier",
                                           "coverage_classifier", "memorisation_classifier")} == {
        "precision_classifier": 0.7, "recall_classifier": 0.4, "density_classifier": 0.9, "coverage_classifier": 0.6,
        "memorisation_classifier": 0.02}
    older = {k: v for k, v in MEASURED.items() if k not in ("prdc", "memorisation")}  # a row from before them
    frame = table([pggan_row("pggan", {"images_shown": 1, "d_loss": None}, 32, MEASURED, False),
                   pggan_row("old", {"images_shown": 1, "d_loss": None}, 32, older, False)])
    assert frame["precision_classifier"].tolist()[0] == 0.7 and pd.isna(frame["memorisation_classifier"].iloc[1])


def test_gan_train_recipe_and_the_judges_work_folder(tmp_path):
    classifier = load_section(ClassifierParams, ROOT / "params.yaml")
    recipe = gan_train_params(classifier, PARAMS.common)
    assert (recipe.arch, recipe.max_epochs, recipe.seed) == (PARAMS.common.gan_train.arch,
                                                             PARAMS.common.gan_train.max_epochs,
                                                             PARAMS.common.gan_train.seed)
    assert recipe.model_copy(update={"arch": classifier.arch, "max_epochs": classifier.max_epochs,
                                     "seed": classifier.seed}) == classifier

    class Recording(Judge):
        def __call__(self, images, conditions, work_dir):
            assert work_dir.is_dir() and work_dir.name.startswith("baseline-dcgan-")
            self.seen = work_dir
            return {"n": len(images), "conditions": conditions}

    judge = Recording(*[None] * 9)
    assert judge.measure(np.zeros((3, 4, 4)), None, "dcgan") == {"n": 3, "conditions": None}
    assert not judge.seen.exists()


@pytest.mark.parametrize("kind, accelerator", [("cpu", "cpu"), ("cuda", "gpu")])
def test_single_device_trainer(kind, accelerator):
    assert single_device_trainer(torch.device(kind)) == {"accelerator": accelerator, "devices": 1,
                                                         "deterministic": True}


def test_store_labels_are_the_label_sets_in_row_order(monkeypatch):
    from cxrsynth.baselines import train

    labels = np.eye(3, 15, dtype=np.int64)
    stored = pd.DataFrame(labels, columns=list(train.LABELS)).assign(row=[2, 0, 1])
    monkeypatch.setattr(train, "ImageStore", lambda folder: SimpleNamespace(table=stored))
    out = train.store_labels(Path("store"))
    assert out.dtype == np.uint8 and np.array_equal(out, labels[[1, 2, 0]])
