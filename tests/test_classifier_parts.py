"""Classifier pieces: equation-3 weights and loss, Youden thresholds, augmentation, the network."""

from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import densenet121

from cxrsynth.metrics.auroc import (
    evaluate,
    per_class_auroc,
    roc_table,
    youden_thresholds,
)
from cxrsynth.models.classifier import (
    IMAGENET_FILE,
    build_classifier,
    penultimate_features,
)
from cxrsynth.training.augment import augment_batch
from cxrsynth.training.losses import class_weights, weighted_bce


def test_class_weights_by_hand():
    labels = np.array([[1, 0], [1, 1], [0, 0], [0, 0]])  # class 0: 2 of 4, class 1: 1 of 4
    w_pos, w_neg = class_weights(labels)
    assert w_pos.tolist() == [4 / 2, 4 / 1] and w_neg.tolist() == [4 / 2, 4 / 3]


def test_class_weights_empty_class():
    w_pos, w_neg = class_weights(np.zeros((3, 1)))
    assert w_pos.tolist() == [0.0] and w_neg.tolist() == [1.0]


def test_weighted_bce_by_hand():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w_pos, w_neg = torch.tensor([2.0, 4.0]), torch.tensor([2.0, 4 / 3])
    p = torch.sigmoid(logits)
    by_hand = [
        -2.0 * math.log(p[0, 0]),  # positive, class 0
        -(4 / 3) * math.log(1 - p[0, 1]),  # negative, class 1
        -2.0 * math.log(1 - p[1, 0]),  # negative, class 0
        -4.0 * math.log(p[1, 1]),  # positive, class 1
    ]
    assert weighted_bce(logits, targets, w_pos, w_neg).item() == pytest.approx(sum(by_hand) / 4, rel=1e-6)
    assert torch.isfinite(weighted_bce(torch.tensor([[80.0]]), torch.tensor([[0.0]]), w_pos[:1], w_neg[:1]))


def test_youden_on_a_known_roc():
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    truth = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    # Cut at 0.4: TPR 1, FPR 1/4 (J = 0.75); at 0.7: TPR 3/4, FPR 0 (J = 0.75); first maximum wins.
    threshold = youden_thresholds(scores[:, None], truth[:, None], ["x"])["x"]
    assert threshold == pytest.approx(0.7)
    assert youden_thresholds(scores[:, None], np.zeros((8, 1)), ["x"])["x"] == 0.5


def test_auroc_and_roc_table():
    probs = np.array([[0.9, 0.2], [0.8, 0.3], [0.2, 0.4], [0.1, 0.1]])
    targets = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    auroc = per_class_auroc(probs, targets, ["a", "b"])
    assert auroc["a"] == 1.0 and math.isnan(auroc["b"])
    assert evaluate(probs, targets, ["a", "b"])["auroc_macro"] == 1.0
    table = roc_table(probs, targets, ["a", "b"])
    assert set(table["class"]) == {"a"} and table["tpr"].iloc[-1] == 1.0


def test_augment_shapes_ranges_and_determinism():
    x = torch.rand(16, 1, 32, 32)
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    again = augment_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert not torch.equal(out, augment_batch(x, torch.Generator().manual_seed(1)))


def test_augment_identity_and_flip():
    x = torch.rand(4, 1, 16, 16)
    same = augment_batch(x, max_rotation_deg=0, flip_p=0, brightness=0, contrast=0)
    assert torch.allclose(same, x, atol=1e-5)
    flipped = augment_batch(x, max_rotation_deg=0, flip_p=1, brightness=0, contrast=0)
    assert torch.allclose(flipped, x.flip(-1), atol=1e-5)


def test_augment_rotation_bounded():
    x = torch.zeros(64, 1, 33, 33)
    x[:, :, 16, 4:29] = 1.0  # a horizontal bar through the centre
    out = augment_batch(x, torch.Generator().manual_seed(3), max_rotation_deg=10, flip_p=0, brightness=0, contrast=0)
    ys, xs = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    for image in out[:, 0]:
        w = image / image.sum()
        cov = torch.stack([((xs - (w * xs).sum()) * (ys - (w * ys).sum()) * w).sum(), ((xs - (w * xs).sum()) ** 2 * w).sum()])
        angle = math.degrees(math.atan2(2 * cov[0], 2 * cov[1]) / 2)
        assert abs(angle) <= 10.5


def test_network_shape_and_features():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_classifier(15, "none").eval()
    x = torch.randn(2, 1, 32, 32)
    assert model(x).shape == (2, 15) and penultimate_features(model, x).shape == (2, 1024)
    assert model.features.conv0.in_channels == 1


def test_imagenet_weights_loaded_and_grey_adapted(tmp_path):
    """A file in torchvision's (old-style) key format loads; the grey conv equals RGB on a replicated grey image."""
    reference = densenet121(weights=None).eval()
    state = reference.state_dict()
    old_style = {k.replace("norm1", "norm.1").replace("conv1", "conv.1").replace("norm2", "norm.2").replace("conv2", "conv.2")
                 if "denselayer" in k else k: v for k, v in state.items()}
    path = tmp_path / IMAGENET_FILE
    torch.save(old_style, path)
    model = build_classifier(15, "imagenet", str(path)).eval()
    grey = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        ours = penultimate_features(model, grey)
        theirs = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(torch.relu(reference.features(grey.repeat(1, 3, 1, 1))), 1), 1)
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_missing_imagenet_weights(tmp_path):
    """Weights come from a path or the named folder only (DVC sees both), never the hub cache."""
    with pytest.raises(FileNotFoundError, match=f"classifier.pretrained: imagenet, but no {IMAGENET_FILE} in "):
        build_classifier(15, "imagenet", weights_dir=tmp_path)
    with pytest.warns(UserWarning, match="random initialisation"):
        build_classifier(15, "auto", weights_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="classifier.weights_path"):
        build_classifier(15, "auto", str(tmp_path / "nope.pth"))


def test_loaded_weights_are_recorded_by_name_and_sha256(tmp_path):
    from cxrsynth.training.classifier_module import ChestClassifier

    torch.save(densenet121(weights=None).state_dict(), tmp_path / IMAGENET_FILE)
    digest = hashlib.sha256((tmp_path / IMAGENET_FILE).read_bytes()).hexdigest()
    module = ChestClassifier([1.0] * 15, [1.0] * 15, pretrained="imagenet", weights_dir=str(tmp_path))
    assert module.weights == {"file": IMAGENET_FILE, "sha256": digest}
    with pytest.warns(UserWarning, match="random initialisation"):
        module = ChestClassifier([1.0] * 15, [1.0] * 15, pretrained="auto", weights_dir=str(tmp_path / "empty"))
    assert module.weights == "none"
    with pytest.raises(FileNotFoundError, match="classifier.pretrained: imagenet"):
        ChestClassifier([1.0] * 15, [1.0] * 15, pretrained="imagenet", weights_dir=str(tmp_path / "empty"))


def test_fid_inception_is_required_by_both_and_optional_under_auto(tmp_path):
    from cxrsynth.metrics.extractors import build_extractors

    model = build_classifier(15, "none")
    with pytest.raises(FileNotFoundError, match="fid.extractor: FID Inception weights"):
        build_extractors("both", model, 32, None, folder=tmp_path)
    with pytest.warns(UserWarning, match="skipping the Inception extractor"):
        extractors = build_extractors("auto", model, 32, None, folder=tmp_path)
    assert [e.name for e in extractors] == ["classifier"]

def test_the_global_batch_splits_over_the_processes():
    """classifier.batch_size is global, as the GAN's: a batch that does not split over devices x
    num_nodes is refused in one line; each loader then takes its share."""
    from cxrsynth.config.classifier import ClassifierParams
    from cxrsynth.training.datamodule import ArrayDataModule

    with pytest.raises(ValueError, match=r"batch_size: 64 does not split evenly over 6 processes"):
        ClassifierParams(batch_size=64, devices=3, num_nodes=2, strategy="ddp")
    params = ClassifierParams(batch_size=64, devices=4, num_nodes=2, strategy="ddp")
    alone = params.single_process()
    assert (alone.devices, alone.num_nodes, alone.strategy, alone.batch_size) == (1, 1, "auto", 64)
    images, labels = np.zeros((20, 16, 16), np.uint8), np.zeros((20, 15), np.float32)
    data = ArrayDataModule({"train": (images, labels)}, batch_size=8)
    assert data.train_dataloader().batch_size == 8  # no trainer: one process

    class Trainer:
        world_size = 4

    data.trainer = Trainer()
    assert data.train_dataloader().batch_size == 2


def test_logged_val_auroc_averages_only_the_classes_with_positives(monkeypatch):
    """One validation batch where class c has no positives: ``val/auroc_macro`` is the mean over a and b
    (sklearn's AUROCs) and ``val/auroc_macro_classes`` is 2, as the stage's ``evaluate`` says; torchmetrics'
    per-class AUROC gave c a 0 and the logged mean two thirds of the right one."""
    from sklearn.metrics import roc_auc_score

    from cxrsynth.training.classifier_module import ChestClassifier

    rng = np.random.default_rng(0)
    probs = rng.random((40, 3)).astype(np.float32)
    targets = (rng.random((40, 3)) < 0.4).astype(np.float32)
    targets[:, 2] = 0
    # the "network" passes the (normalised, so monotonically mapped) inputs through as logits
    module = ChestClassifier([1.0] * 3, [1.0] * 3, labels=("a", "b", "c"), model=torch.nn.Flatten())
    logged = {}
    monkeypatch.setattr(module, "log", lambda name, value, **kwargs: logged.__setitem__(name, float(value)))
    images = torch.from_numpy(probs).reshape(40, 1, 1, 3)
    for start in (0, 16, 32):  # three batches of one epoch
        module.validation_step((images[start : start + 16], torch.from_numpy(targets[start : start + 16])), 0)
    module.on_validation_epoch_end()
    expected = np.mean([roc_auc_score(targets[:, i], probs[:, i]) for i in (0, 1)])
    assert logged["val/auroc_macro"] == pytest.approx(expected, abs=1e-6)
    assert logged["val/auroc_macro_classes"] == 2
    scores = evaluate(probs, targets, ["a", "b", "c"])
    assert scores["auroc_macro"] == pytest.approx(expected) and scores["auroc_macro_classes"] == 2


def test_a_best_checkpoint_that_would_run_code_is_refused(tmp_path, monkeypatch):
    """The classifier reloads its best checkpoint after training: a file there whose pickle would run
    code is refused in one line naming it, and the code never runs (before: ``weights_only=False``)."""
    from conftest import write_hostile_checkpoint
    from lightning.pytorch.callbacks import ModelCheckpoint

    from cxrsynth.config.classifier import ClassifierParams
    from cxrsynth.errors import InputError
    from cxrsynth.training.classifier_fit import fit_on
    from cxrsynth.training.datamodule import ArrayDataModule

    marker = tmp_path / "marker"
    # the checkpoint written in place of the best one, as a swapped or pulled file would be
    monkeypatch.setattr(ModelCheckpoint, "_save_checkpoint",
                        lambda self, trainer, filepath: write_hostile_checkpoint(Path(filepath), marker, "epoch"))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 16, 16), dtype=np.uint8)
    labels = (rng.random((16, 15)) < 0.5).astype(np.float32)
    data = ArrayDataModule({"train": (images, labels), "val": (images[:8], labels[:8]),
                            "test": (images[8:], labels[8:])}, batch_size=8)
    params = ClassifierParams(input_size=16, max_epochs=1, batch_size=8, pretrained="none", accelerator="cpu")
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 15))
    with warnings.catch_warnings(), pytest.raises(InputError) as err:  # UnsafeCheckpointError
        warnings.simplefilter("ignore")
        fit_on(data, params, tmp_path / "work", model=model)
    assert str(err.value).startswith(f"{tmp_path / 'work' / 'best.ckpt'}: refused: loading it would need the "
                                     "global io.open") and "\n" not in str(err.value)
    assert not marker.exists()
