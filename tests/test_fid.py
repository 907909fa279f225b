"""Fréchet distance, streamed moments, FID sets and the Inception extractor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import torch

from cxrsynth.labels import FINDINGS, LABELS
from cxrsynth.metrics.frechet import (
    Gaussian,
    GroupMoments,
    frechet_distance,
    pairwise_frechet,
)


def scipy_frechet(mu1, s1, mu2, s2) -> float:
    """The pytorch-fid formula with scipy's general matrix square root."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def random_cov(rng, d, rank=None):
    a = rng.normal(size=(d, rank or 2 * d))
    return a @ a.T / a.shape[1]


def test_frechet_matches_scipy_on_random_gaussians():
    rng = np.random.default_rng(0)
    for d in (3, 16, 64):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = random_cov(rng, d), random_cov(rng, d)
        ours = frechet_distance(Gaussian(10, mu1, s1), Gaussian(10, mu2, s2))
        assert ours == pytest.approx(scipy_frechet(mu1, s1, mu2, s2), rel=1e-8, abs=1e-8)


def test_frechet_closed_form_for_diagonal_covariances_and_rank_deficiency():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(Gaussian(2, mu1, np.diag(v1)), Gaussian(2, mu2, np.diag(v2))) == pytest.approx(expected)
    rng = np.random.default_rng(1)
    low = random_cov(rng, 32, rank=5)  # fewer images than features: singular, must stay finite and >= 0
    same = frechet_distance(Gaussian(6, np.zeros(32), low), Gaussian(6, np.zeros(32), low))
    assert 0.0 <= same < 1e-6



def test_frechet_of_different_singular_sets_is_not_hidden_by_the_clamp():
    """Two different rank-deficient covariances (fewer images than features, as per-class sets are):
    the distance matches an independent computation, tr sqrt(AB) = sum sqrt(eig(AB)), and is well above
    zero, so a wrong negative value clamped to zero would fail here."""
    rng = np.random.default_rng(3)
    a, b = random_cov(rng, 32, rank=5), random_cov(rng, 32, rank=9)
    mu1, mu2 = 0.1 * rng.normal(size=32), 0.1 * rng.normal(size=32)
    eig = np.linalg.eigvals(a @ b)
    cross = np.sqrt(np.clip(eig.real, 0.0, None)).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(a) + np.trace(b) - 2.0 * cross
    ours = frechet_distance(Gaussian(6, mu1, a), Gaussian(10, mu2, b))
    assert expected > 0.1 * (np.trace(a) + np.trace(b))
    assert ours == pytest.approx(expected, rel=1e-6)

def test_pairwise_is_symmetric_with_zero_diagonal():
    rng = np.random.default_rng(2)
    sets = [Gaussian(5, rng.normal(size=4), random_cov(rng, 4)) for _ in range(4)]
    m = pairwise_frechet(sets)
    assert np.allclose(m, m.T) and np.all(np.diag(m) == 0)
    assert m[0, 2] == pytest.approx(frechet_distance(sets[0], sets[2]))


def test_streaming_moments_equal_batch_statistics(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(loc=50.0, scale=0.5, size=(301, 8))  # a large mean: cancellation would show
    members = np.stack([np.ones(301, bool), rng.random(301) < 0.3, np.zeros(301, bool)], axis=1)
    moments = GroupMoments(["all", "some", "none"], 8)
    for start in range(0, 301, 37):
        moments.update(torch.from_numpy(x[start : start + 37]), members[start : start + 37])
    for g, name in enumerate(["all", "some"]):
        sub = x[members[:, g]]
        gauss = moments.gaussian(name)
        assert gauss.n == len(sub)
        np.testing.assert_allclose(gauss.mu, sub.mean(0), rtol=1e-12)
        np.testing.assert_allclose(gauss.sigma, np.cov(sub, rowvar=False), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="none"):
        moments.gaussian("none")
    moments.save(tmp_path / "m.npz")
    again = GroupMoments.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(again.gaussian("some").sigma, moments.gaussian("some").sigma)


def test_moments_reject_mismatched_shapes():
    moments = GroupMoments(["a"], 4)
    with pytest.raises(ValueError, match="do not match"):
        moments.update(np.zeros((3, 5)), np.ones((3, 1), bool))


def _table(n=80, seed=0):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"fid_half": np.where(np.arange(n) % 2, "half_a", "half_b"),
                          "sex": np.where(rng.random(n) < 0.5, "M", "F")})
    labels = (rng.random((n, len(LABELS))) < 0.3).astype(np.uint8)
    for i, name in enumerate(LABELS):
        table[name] = labels[:, i]
    return table


def test_table1_and_class_matrix_from_streamed_sets():
    from cxrsynth.metrics.fid_sets import (
        REAL_GROUPS,
        class_matrix,
        embed_2d,
        real_membership,
        table1,
    )

    table = _table()
    members = real_membership(table)
    assert members.shape == (80, len(REAL_GROUPS)) and members[:, -1].all()
    rng = np.random.default_rng(4)
    features = rng.normal(size=(80, 6)) + members[:, 4:19] @ rng.normal(size=(15, 6))
    real = GroupMoments(list(REAL_GROUPS), 6)
    real.update(features, members)
    generated = GroupMoments(["generated"], 6)
    generated.update(features[:40] + 3.0, np.ones((40, 1), bool))
    t = table1(real, generated)
    assert set(t) == {"stratified", "sex", *FINDINGS, "synthetic"}
    assert t["synthetic"] > t["stratified"] >= 0
    matrix = class_matrix(real, progress=False)
    assert list(matrix.index) == list(LABELS) and np.allclose(matrix, matrix.T)
    xy = embed_2d(matrix)
    assert list(xy.columns) == ["label", "x", "y"] and len(xy) == 15


def test_pixel_change_orders_findings_by_changed_pixels():
    from cxrsynth.metrics.fid_sets import REAL_GROUPS, pixel_change

    means = np.zeros((len(REAL_GROUPS), 8, 8), np.float32)
    means[REAL_GROUPS.index("Edema"), :4] = 0.5  # half the image
    means[REAL_GROUPS.index("Nodule"), 0, 0] = 0.5  # one pixel
    change = pixel_change(means)
    assert change["Edema"] > change["Nodule"] > change["Mass"] == 0.0


def test_inception_extractor_shapes_with_random_weights(tmp_path):
    from cxrsynth.models.inception import FIDInception, fid_inception_v3

    torch.manual_seed(0)
    full = fid_inception_v3(None)  # pytorch-fid's module layout, random weights
    net = FIDInception(network=full)
    grey = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    features = net(grey)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    # a weight file in pytorch-fid's format loads strictly and gives the same features
    torch.save(full.state_dict(), tmp_path / "pt_inception.pth")
    assert torch.equal(FIDInception(tmp_path / "pt_inception.pth")(grey), features)


def test_extractor_choice_warns_or_fails_without_inception_weights(tmp_path):
    from cxrsynth.metrics.extractors import build_extractors
    from cxrsynth.models.classifier import build_classifier

    model = build_classifier(15, "none")
    with pytest.warns(UserWarning, match="skipping the Inception extractor"):
        extractors = build_extractors("auto", model, 32, None, folder=tmp_path)
    assert [e.name for e in extractors] == ["classifier"]
    features, probs = extractors[0].features_and_probs(torch.randint(0, 256, (3, 1, 16, 16), dtype=torch.uint8))
    assert features.shape == (3, 1024) and probs.shape == (3, 15)
    for strict in ("inception", "both"):
        with pytest.raises(FileNotFoundError, match="FID Inception weights"):
            build_extractors(strict, model, 32, None, folder=tmp_path)
    with pytest.raises(FileNotFoundError, match="fid.inception_weights"):
        build_extractors("both", model, 32, str(tmp_path / "missing.pth"))


def test_inception_features_that_barely_vary_are_refused():
    """A default-initialised Inception gives pool3 features varying by ~1e-6: every FID would print 0.0."""
    from cxrsynth.errors import InputError
    from cxrsynth.metrics.fid_sets import ALL, REAL_GROUPS, check_feature_spread

    rng = np.random.default_rng(0)
    members = np.zeros((64, len(REAL_GROUPS)), dtype=bool)
    members[:, REAL_GROUPS.index(ALL)] = True
    for scale, refused in ((1e-6, True), (0.2, False)):
        moments = GroupMoments(list(REAL_GROUPS), 16)
        moments.update(0.3 + scale * rng.standard_normal((64, 16)), members)
        if refused:
            with pytest.raises(InputError, match=r"barely vary .*median std [0-9.]+e-0[67] < 0\.0001.*\(x\.pth\)"):
                check_feature_spread({"inception": moments}, {"file": "x.pth", "sha256": "0"})
        else:
            check_feature_spread({"inception": moments, "classifier": moments}, "none")


def _random_classifier(folder, input_size: int):
    """A saved ResNet-18 classifier folder with random weights (what the FID stages load)."""
    import json

    from cxrsynth.labels import LABELS
    from cxrsynth.models.classifier import build_classifier

    torch.manual_seed(0)
    folder.mkdir()
    torch.save(build_classifier(len(LABELS), "none", arch="resnet18").state_dict(), folder / "model.pt")
    (folder / "thresholds.json").write_text(json.dumps({name: 0.5 for name in LABELS}))
    (folder / "config.json").write_text(json.dumps({"architecture": "resnet18", "labels": list(LABELS),
                                                    "input_size": input_size}))


def _random_generator(folder, channels: list[int], z_dim: int):
    """An exported PGGAN folder with random weights."""
    import json
    from dataclasses import asdict

    from cxrsynth.models.gan import GANConfig, build_networks

    torch.manual_seed(0)
    config = GANConfig(z_dim=z_dim, channels=channels)
    generator, discriminator = build_networks(config)
    folder.mkdir()
    torch.save(generator.state_dict(), folder / "generator.pt")
    torch.save(discriminator.state_dict(), folder / "discriminator.pt")
    (folder / "config.json").write_text(json.dumps(asdict(config) | {"resolution": config.resolutions[-1]}))


def stage(name: str):
    """The module of ``stages/<name>.py`` (its ``run(args)``), imported without running its main."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(f"stage_{name}", Path(__file__).parents[1] / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_label_with_one_image_is_left_out_of_table1_and_figure5_and_said_so(tmp_path, capsys):
    """A store where Hernia has a single image (no covariance): real_features and fid run, Hernia has no
    row in Table 1, the class matrix or the MDS, and fid.json and the report say it was left out
    (before: the fid stage stopped with "a covariance needs at least 2")."""
    import argparse
    import json

    from conftest import validate_params, write_raw

    from cxrsynth.config.prepare import PrepareParams
    from cxrsynth.config.split import SplitParams
    from cxrsynth.data.store_writer import prepare_dataset
    from cxrsynth.data.split_assignment import make_split
    from cxrsynth.data.store import ImageStore
    from cxrsynth.report.sections import Context, fid_section
    from cxrsynth.report.sources import Metrics

    others = [name for name in LABELS if name != "Hernia"]
    rows = [(f"{p + 1:08d}_{i:03d}.png", others[(2 * p + i) % len(others)]) for p in range(28) for i in range(2)]
    rows.append(("00000029_000.png", "Hernia|Mass"))  # Hernia's only image
    write_raw(tmp_path / "raw", rows, size=8)
    (tmp_path / "store").mkdir()
    prepare_dataset(tmp_path / "raw", tmp_path / "store", PrepareParams(size=8, workers=1))
    split, _, _ = make_split(ImageStore(tmp_path / "store").table, SplitParams(fractions=(0.5, 0.25, 0.25)),
                             tmp_path / "store")
    split.to_csv(tmp_path / "split.csv", index=False)
    _random_classifier(tmp_path / "classifier", 8)
    _random_generator(tmp_path / "gan", [16, 16], 8)
    (tmp_path / "params.yaml").write_text(
        "gan:\n  resolution: 8\n  z_dim: 8\n  channels: [16, 16]\n  fade_images: [0, 8]\n  stable_images: [8, 8]\n"
        "  batch_sizes: [4, 4]\nfid:\n  extractor: classifier\n  n_generated: 24\n  batch_size: 16\n  device: cpu\n")
    params = validate_params(tmp_path)
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    torch_threads = torch.get_num_threads()
    try:  # the stages' own run(), in this process: two more interpreters would double the test's time
        stage("real_features").run(argparse.Namespace(
            params=params, store=tmp_path / "store", split=tmp_path / "split.csv",
            classifier=tmp_path / "classifier", weights=None, out=tmp_path / "real"))
        stage("fid").run(argparse.Namespace(
            params=params, real=tmp_path / "real", gan=tmp_path / "gan",
            classifier=tmp_path / "classifier", weights=None, metrics=metrics / "fid.json",
            table=metrics / "fid_table1.csv", matrix=metrics / "fid_classes.csv", mds=metrics / "fid_mds.csv",
            figure=metrics / "fid_classes.png"))
    finally:
        torch.set_num_threads(torch_threads)
    assert "left out of Table 1 and Figure 5 (fewer than 2 images): Hernia (1)" in capsys.readouterr().out

    fid = json.loads((metrics / "fid.json").read_text())
    assert fid["labels_left_out"] == {"Hernia": 1} and fid["min_images_per_label"] == 2
    assert set(fid["table1"]["classifier"]) == {"stratified", "sex", "synthetic", *(set(FINDINGS) - {"Hernia"})}
    assert "Hernia" not in set(pd.read_csv(metrics / "fid_table1.csv")["split"])
    matrix = pd.read_csv(metrics / "fid_classes.csv")
    assert set(matrix["a"]) == set(matrix["b"]) == set(others)
    assert set(pd.read_csv(metrics / "fid_mds.csv")["label"]) == set(others)
    assert "Hernia" not in fid["pixel_change"] and fid["finding_fid_vs_pixel_change_spearman"]["classifier"] is not None
    section = fid_section(Metrics(metrics), Context(demo=False, gan_resolution=8, classifier_size=8,
                                                    extractors=("classifier",)))
    notes = [block.text for block in section.blocks if type(block).__name__ == "Note"]
    assert any("Left out of Table 1, Figure 5 and the MDS: Hernia (1 image)" in n and "at least 2 images" in n
               for n in notes), notes
