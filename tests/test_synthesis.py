"""Class optimisation, local sampling, the NIH-style archive, the re-purposed discriminator, embedding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cxrsynth.labels import LABELS
from cxrsynth.models.d_classifier import discriminator_head
from cxrsynth.models.gan import GANConfig, build_networks
from cxrsynth.synthesis.class_optimisation import LatentOptimiser, one_at_a_time
from cxrsynth.synthesis.scorers import Scorer

CONFIG = GANConfig(arch="pggan", z_dim=16, channels=[16, 16, 8], fade_images=[0, 0, 0], stable_images=[1, 1, 1],
                   batch_sizes=[4, 4, 4])


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    generator, _ = build_networks(CONFIG)
    scorer_net = discriminator_head(CONFIG, len(LABELS)).eval().requires_grad_(False)
    scorer = Scorer("test", scorer_net, 16, np.full(len(LABELS), 0.5, np.float32))
    return generator.eval(), scorer


def test_discriminator_head_scores_each_image_on_its_own():
    torch.manual_seed(1)
    _, d = build_networks(CONFIG)
    head = discriminator_head(CONFIG, 15, d.state_dict()).eval()
    x = torch.randn(6, 1, 16, 16)
    out = head(x)
    assert out.shape == (6, 15)
    torch.testing.assert_close(head(x[2:3]), out[2:3])  # no minibatch statistic leaks between images
    # the body keeps the trained weights; only the last layer is new
    assert torch.equal(head.discriminator.from_image["b16"][0].weight, d.from_image["b16"][0].weight)


def test_an_optimisation_step_raises_the_target_score(parts):
    generator, scorer = parts
    for kind in ("sgd", "adam"):
        opt = LatentOptimiser(generator, 16, scorer, step_size=0.005, optimiser=kind)  # small: first order holds
        z = torch.randn(8, 16, generator=torch.Generator().manual_seed(2))
        classes = torch.arange(8) % 15
        before, g = opt.scores(z, classes, grad=True)
        state = (torch.zeros_like(z), torch.zeros_like(z), torch.zeros(8))
        after, _ = opt.scores(opt.step(z, g, torch.ones(8, dtype=torch.bool), state), classes, grad=False)
        assert (after > before).all(), kind


def test_masked_slots_keep_their_latent_and_optimiser_state(parts):
    generator, scorer = parts
    opt = LatentOptimiser(generator, 16, scorer, step_size=0.1)
    z = torch.randn(4, 16)
    _, g = opt.scores(z, torch.tensor([1, 2, 3, 4]), grad=True)
    m, v, t = torch.zeros_like(z), torch.zeros_like(z), torch.zeros(4)
    active = torch.tensor([True, False, True, False])
    new = opt.step(z, g, active, (m, v, t))
    assert torch.equal(new[~active], z[~active]) and not torch.equal(new[active], z[active])
    assert (m[~active] == 0).all() and t.tolist() == [1, 0, 1, 0]
    # a slot updated in a batch moves exactly as it would alone (per-slot Adam state)
    m1, v1, t1 = torch.zeros(1, 16), torch.zeros(1, 16), torch.zeros(1)
    alone = opt.step(z[:1], g[:1], torch.ones(1, dtype=torch.bool), (m1, v1, t1))
    torch.testing.assert_close(alone, new[:1])


def test_a_lone_slot_is_scored_as_a_two_row_batch(parts):
    """MKL's one-row (matrix-vector) path sums in a run-dependent order on 2 threads, which changed the
    demo archive in its last bits between runs; no one-row batch may reach the networks."""
    generator, scorer = parts
    seen = []
    hook = scorer.model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    try:
        opt = LatentOptimiser(generator, 16, scorer, step_size=0.1)
        z = torch.randn(3, 16, generator=torch.Generator().manual_seed(4))
        classes = torch.tensor([1, 5, 9])
        s_all, g_all = opt.scores(z, classes, grad=True)
        s_one, g_one = opt.scores(z[1:2], classes[1:2], grad=True)
    finally:
        hook.remove()
    assert seen == [3, 2]
    assert s_one.shape == (1,) and g_one.shape == (1, 16)
    torch.testing.assert_close(s_one, s_all[1:2])
    torch.testing.assert_close(g_one, g_all[1:2])  # its own gradient, not the duplicate's added in


def test_batched_run_stops_each_latent_on_its_own(parts):
    generator, scorer = parts
    opt = LatentOptimiser(generator, 16, scorer, step_size=0.05)
    classes = np.array([0, 1, 2, 3, 4, 5])
    thresholds = np.array([-np.inf, np.inf, -np.inf, np.inf, -np.inf, -np.inf])
    result = opt.run(classes, thresholds, batch_size=4, max_steps=3, max_attempts=2, truncation=0.7, seed=0,
                     progress=False)
    reachable = thresholds < 0
    assert result.success.tolist() == reachable.tolist()
    assert (result.steps[reachable] == 0).all() and (result.attempts[reachable] == 1).all()
    assert (result.attempts[~reachable] == 2).all() and (result.total_steps[~reachable] == 6).all()
    # every scored latent is counted: per job, one score per step taken plus one per attempt
    assert result.latents_scored == (result.total_steps + result.attempts).sum()
    # converged latents are the untouched truncated-normal starts
    assert (result.z[reachable].abs() <= 0.7).all()
    # scores really clear the thresholds of the jobs that succeeded
    scores, _ = opt.scores(result.z[reachable], torch.as_tensor(classes[reachable]), grad=False)
    assert (scores.numpy() >= thresholds[reachable]).all()


def test_parallel_restarts_use_idle_slots_without_exceeding_the_attempts(parts):
    generator, scorer = parts
    opt = LatentOptimiser(generator, 16, scorer, step_size=0.05)
    classes = np.array([0, 1, 2, 3, 4, 5])
    thresholds = np.array([-np.inf, np.inf, -np.inf, np.inf, -np.inf, -np.inf])
    runs = {flag: opt.run(classes, thresholds, batch_size=4, max_steps=3, max_attempts=2, truncation=0.7, seed=0,
                          progress=False, parallel_restarts=flag) for flag in (False, True)}
    for result in runs.values():
        assert result.success.tolist() == (thresholds < 0).tolist()
        assert (result.attempts[thresholds > 0] == 2).all() and (result.total_steps[thresholds > 0] == 6).all()
        assert result.latents_scored == (result.total_steps + result.attempts).sum()
    # jobs 1 and 3 run their second attempts beside their first once jobs 4 and 5 are done
    assert runs[True].batched_steps < runs[False].batched_steps == 8


def test_a_job_ends_with_its_first_converged_attempt(parts):
    generator, scorer = parts
    opt = LatentOptimiser(generator, 16, scorer, step_size=0.0)  # z never moves: only the start decides
    starts = torch.randn(256, 16, generator=torch.Generator().manual_seed(5)).clamp(-0.7, 0.7)
    threshold = float(opt.scores(starts, torch.full((256,), 3), grad=False)[0].quantile(0.8))
    classes, thresholds = np.full(40, 3), np.full(40, threshold)
    result = opt.run(classes, thresholds, batch_size=16, max_steps=1, max_attempts=4, truncation=0.7, seed=2,
                     progress=False, parallel_restarts=True)
    assert 0 < result.success.mean() < 1 and (result.attempts <= 4).all()
    assert (result.attempts[~result.success] == 4).all()
    scores, _ = opt.scores(result.z[result.success], torch.as_tensor(classes[result.success]), grad=False)
    assert (scores.numpy() >= threshold).all() and (result.steps[result.success] == 0).all()
    assert result.latents_scored == (result.total_steps + result.attempts).sum()


def test_batched_and_one_at_a_time_agree_on_success(parts):
    generator, scorer = parts
    opt = LatentOptimiser(generator, 16, scorer, step_size=0.2)
    with torch.no_grad():
        base = float(opt.scores(torch.zeros(1, 16), torch.tensor([3]), grad=False)[0][0])
    threshold = base + 0.05  # reachable in a few steps from most starts
    batched = opt.run(np.array([3] * 4), np.full(4, threshold), 4, 40, 3, 0.7, seed=1, progress=False)
    single = [one_at_a_time(opt, 3, threshold, 40, 3, 0.7, seed=s)[0] for s in range(4)]
    assert batched.success.all() and all(single)


def test_patient_plan():
    from cxrsynth.synthesis.archive_writer import plan_patients

    rng = np.random.default_rng(0)
    classes, sizes = plan_patients(np.array([0, 2, 7, 25] + [0] * 11), (3, 6), rng)
    for c, total in ((1, 2), (2, 7), (3, 25)):
        assert sizes[classes == c].sum() == total
    assert (sizes[classes != 1] >= 3).all() and (sizes <= 6).all()


def test_local_samples_keep_their_patient_grouping():
    from cxrsynth.synthesis.archive_writer import (
        SYNTHETIC_ID_OFFSET,
        archive_table,
        local_latents,
    )

    centres = torch.randn(5, 32) * 3
    counts = np.array([3, 6, 4, 5, 3])
    z = local_latents(centres, counts, 0.2, torch.Generator().manual_seed(0))
    owner = np.repeat(np.arange(5), counts)
    nearest = torch.cdist(z, centres).argmin(1).numpy()
    assert np.array_equal(nearest, owner) and float((z - centres[owner]).std()) == pytest.approx(0.2, abs=0.03)
    table = archive_table(np.array([0, 1, 2, 3, 4]), counts, np.zeros((counts.sum(), 15), np.uint8),
                          np.zeros(counts.sum()), 16, np.array([1, 2, 30805]))
    assert table.groupby("Patient ID")["Follow-up #"].apply(list).tolist() == [list(range(k)) for k in counts]
    assert (table["Patient ID"] >= SYNTHETIC_ID_OFFSET).all() and (table["Finding Labels"] == "No Finding").all()


def test_synthetic_ids_never_equal_real_ones():
    from cxrsynth.synthesis.archive_writer import SYNTHETIC_ID_OFFSET, archive_table

    args = (np.array([0, 0]), np.array([3, 3]), np.zeros((6, 15), np.uint8), np.zeros(6), 16)
    table = archive_table(*args, real_ids=np.arange(1, 30806))
    assert not set(table["Patient ID"]) & set(range(1, 30806))
    with pytest.raises(ValueError, match="collide"):
        archive_table(*args, real_ids=np.array([SYNTHETIC_ID_OFFSET + 1]))


def test_archive_round_trips_through_the_projects_loaders(tmp_path):
    from cxrsynth.config.data import LocalParams
    from cxrsynth.config.prepare import PrepareParams
    from cxrsynth.data.metadata import read_data_entry
    from cxrsynth.data.store_writer import prepare_dataset
    from cxrsynth.data.sources.local import import_local
    from cxrsynth.synthesis.archive_writer import (
        CSV_NAME,
        PRIVACY_RECORD,
        archive_table,
        read_archive,
        read_privacy_record,
        write_archive,
    )

    rng = np.random.default_rng(0)
    counts = np.array([4, 3, 5])
    labels = (rng.random((12, 15)) < 0.3).astype(np.uint8)
    table = archive_table(np.array([2, 5, 0]), counts, labels, rng.random(12), 16, np.array([1, 2]))
    images = rng.integers(0, 256, (12, 16, 16), dtype=np.uint8)
    shards = write_archive(tmp_path / "archive", images, table, shard_images=5)
    assert shards == ["images_001.tar", "images_002.tar", "images_003.tar"]
    assert read_privacy_record(tmp_path / "archive") is None  # no filter, no record
    record = {"applied": True, "replaced_patients": 1, "thresholds": {"pixel": 0.5}}
    write_archive(tmp_path / "filtered", images, table, shard_images=5, privacy_record=record)
    assert read_privacy_record(tmp_path / "filtered") == record
    assert (tmp_path / "filtered" / PRIVACY_RECORD).read_text() == (
        '{\n  "applied": true,\n  "replaced_patients": 1,\n  "thresholds": {\n    "pixel": 0.5\n  }\n}\n')

    clean, report = read_data_entry(tmp_path / "archive" / CSV_NAME)
    assert report.rejects == [] and len(clean) == 12
    assert clean["image"].tolist() == table["Image Index"].tolist()
    findings = labels[:, 1:].astype(bool)
    np.testing.assert_array_equal(clean[list(LABELS[1:])].to_numpy().astype(bool), findings)
    np.testing.assert_array_equal(clean["No Finding"].to_numpy().astype(bool), ~findings.any(1))

    read_table, read_images = read_archive(tmp_path / "archive")
    np.testing.assert_array_equal(read_images, images)

    raw = tmp_path / "raw"
    summary = import_local(LocalParams(images_dir=str(tmp_path / "archive"),
                                       metadata_csv=str(tmp_path / "archive" / CSV_NAME)), raw)
    assert summary["sources"] == {"images_001.tar": 5, "images_002.tar": 5, "images_003.tar": 2}
    again, _ = read_data_entry(next(raw.glob("Data_Entry*.csv")))
    pd.testing.assert_frame_equal(again, clean)
    store = tmp_path / "store"
    store.mkdir()
    assert prepare_dataset(raw, store, PrepareParams(size=16, workers=1))["images"] == 12  # streamed from the shards
    np.testing.assert_array_equal(np.load(store / "images_16.npy"), images)


def test_encoder_learns_to_invert_a_generator():
    from cxrsynth.synthesis.embedding import embed_images, latent_error, train_encoder

    torch.manual_seed(0)
    generator, _ = build_networks(CONFIG)
    encoder = discriminator_head(CONFIG, CONFIG.z_dim)
    before = latent_error(encoder, generator.eval(), 16, 128, seed=5)["latent_cosine"]
    losses = train_encoder(encoder, generator, 16, 4096, 32, 2e-3, seed=0)
    after = latent_error(encoder, generator, 16, 128, seed=5)["latent_cosine"]
    assert losses[-1] < losses[0] and after > before + 0.1
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16), dtype=np.uint8)
    out = embed_images(encoder, generator, 16, images)
    assert out.shape == (5, 16, 16) and out.dtype == np.uint8


def test_prevalence_thresholds_label_as_often_as_the_source():
    from cxrsynth.synthesis.scorers import prevalence_thresholds

    probs = np.random.default_rng(0).random((1000, 3))
    cut = prevalence_thresholds(probs, np.array([0.1, 0.5, 0.0]))
    rates = (probs >= cut).mean(0)
    assert abs(rates[0] - 0.1) < 0.005 and abs(rates[1] - 0.5) < 0.005 and cut[2] == 0.5


def test_table2_is_written_as_metrics_markdown_and_bars_in_its_fixed_order(tmp_path):
    from cxrsynth.config.classifier import ClassifierParams
    from cxrsynth.synthesis.synthetic_auroc import (
        TABLE2_HEADING,
        synthetic_recipe,
        table2,
        table2_bars,
        table2_document,
        table2_figure,
        table2_markdown,
        table2_metrics,
    )

    base = ClassifierParams(max_epochs=6, seed=3)
    assert (synthetic_recipe(base, 0, None).seed, synthetic_recipe(base, 0, None).max_epochs) == (0, 6)
    assert synthetic_recipe(base, 1, 9).max_epochs == 9 and base.max_epochs == 6  # the real recipe is left alone
    columns = {col: {"auroc": {n: 0.5 + 0.01 * i + 0.1 * k for i, n in enumerate(LABELS)}, "auroc_macro": 0.6 + k / 10,
                     "auroc_macro_classes": 15 - k} for k, col in enumerate(("embedded", "class_generated", "real"))}
    table = table2(columns)
    metrics = table2_metrics(table, {"embedded": "imagenet"}, {"embedded": 10, "class_generated": 12}, 7,
                             synthetic_recipe(base, 0, 2))
    assert list(metrics) == ["per_class", "macro", "macro_classes", "ratio_to_real", "train_images", "test_images",
                             "input_size", "max_epochs", "weights"]
    assert metrics["ratio_to_real"] == {"embedded": 0.75, "class_generated": 0.875}
    assert list(metrics["per_class"]) == list(LABELS) and metrics["macro"] == {"embedded": 0.6, "class_generated": 0.7,
                                                                             "real": 0.8}
    assert metrics["macro_classes"]["real"] == 13 and metrics["max_epochs"] == 2 and metrics["test_images"] == 7
    assert table2_document(table) == f"{TABLE2_HEADING}\n\n{table2_markdown(table)}"
    intervals = {"resamples": 1000, "level": 0.95, "unit": "patient", "patients": 512, "films": 997,
                 "macro": {c: {"lo": 0.5, "hi": 0.9} for c in ("embedded", "class_generated", "real")},
                 "ratio_to_real": {"embedded": {"lo": 0.7, "hi": 0.8}, "class_generated": {"lo": 0.85, "hi": 0.9}}}
    with_intervals = table2_metrics(table, {}, {}, 7, synthetic_recipe(base, 0, 2), intervals)
    assert with_intervals["bootstrap"] == intervals and list(with_intervals)[4] == "bootstrap"
    document = table2_document(table, intervals)
    assert document.startswith(table2_document(table))
    assert "95% intervals, 1,000 paired bootstrap resamples of the 512 test patients (997 films)" in document
    assert document.endswith("- ratio to real: embedded [0.700, 0.800]; class generated [0.850, 0.900]\n")
    bars = table2_bars(table, columns)
    assert list(bars.columns) == ["bar", "class", "training", "auroc"] and len(bars) == 3 * (len(LABELS) + 1)
    assert bars.iloc[-1].tolist() == ["macro | real", "macro", "real", 0.8]
    assert bars.iloc[1].tolist() == [f"{LABELS[0]} | class_generated", LABELS[0], "class_generated", 0.6]
    table2_figure(table, columns, tmp_path / "t2.png")
    assert (tmp_path / "t2.png").stat().st_size > 0


def test_the_synthetic_columns_scores_are_the_ones_their_table2_auroc_comes_from(tmp_path):
    """``train_columns`` hands back each column's test scores for the bootstrap: scored again, they give
    the column's Table 2 AUROC exactly. The test films' patients come back in the test films' order."""
    from cxrsynth.config.classifier import ClassifierParams
    from cxrsynth.data.store_splits import split_datasets
    from cxrsynth.metrics.auroc import evaluate
    from cxrsynth.synthesis.synthetic_auroc import test_patients, train_columns

    rng = np.random.default_rng(0)
    n = 48
    table = pd.DataFrame({"patient_id": np.repeat(np.arange(n // 2), 2)})
    labels = rng.random((n, len(LABELS))) < 0.4
    table[list(LABELS)] = labels.astype(int)
    images = rng.integers(0, 256, (n, 32, 32), dtype=np.uint8)  # DenseNet-121's smallest side
    test = (images[:24], labels[:24].astype(np.float32))
    params = ClassifierParams(input_size=32, max_epochs=1, batch_size=8, pretrained="none", accelerator="cpu")
    results, _, scores = train_columns({"class_generated": (table, images)}, test, params, 0.25, 0)
    assert scores["class_generated"].shape == (24, len(LABELS))
    assert evaluate(scores["class_generated"], test[1], LABELS)["auroc"] == results["class_generated"]["auroc"]

    store = pd.DataFrame({"image": [f"{i}.png" for i in range(6)], "patient_id": [5, 5, 9, 2, 2, 7], "row": range(6)})
    split = pd.DataFrame({"image": [f"{i}.png" for i in range(6)], "patient_id": [5, 5, 9, 2, 2, 7],
                          "split": ["test", "test", "train", "test", "test", "val"]})
    store[list(LABELS)] = 0

    class Store:  # the two things split_datasets reads of an ImageStore
        sizes, table = [4], store

        @staticmethod
        def images(size):
            return np.arange(6 * 16, dtype=np.uint8).reshape(6, 4, 4)

    films = split_datasets(Store, split, 4)["test"]
    assert test_patients(store, split).tolist() == [5, 5, 2, 2] == store.loc[films.rows, "patient_id"].tolist()
