"""A tiny real training run on demo phantoms: it beats chance, and the saved model reloads."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import demo_store, validate_params
import torch

from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.data.store import ImageStore
from cxrsynth.models.classifier import normalise
from cxrsynth.models.saved_classifier import load_classifier
from cxrsynth.training.classifier_fit import fit_classifier, save_classifier


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    demo_store(root, 600, 32, workers=2, split=True)
    # val without a Hernia positive, as small sets can be: its patients move to train
    split, table = pd.read_csv(root / "split.csv"), ImageStore(root / "store").table
    hernia = set(table.loc[table["Hernia"] == 1, "patient_id"])
    split.loc[(split["split"] == "val") & split["patient_id"].isin(hernia), "split"] = "train"
    split.to_csv(root / "split.csv", index=False)
    params = ClassifierParams(input_size=32, max_epochs=4, batch_size=32, pretrained="none", seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_classifier(root / "store", root / "split.csv", params, root / "work", live_dir=root / "live")
    return root, params, result


def test_training_beats_chance(trained):
    _, _, result = trained
    assert result.test["auroc_macro"] > 0.6  # chance is 0.5
    assert result.val["auroc_macro"] > 0.6
    assert all(0.0 <= t <= 1.0 for t in result.thresholds.values())


def test_training_is_deterministic(trained):
    root, params, result = trained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = fit_classifier(root / "store", root / "split.csv", params, root / "work2")
    for key, value in result.module.state_dict().items():
        assert torch.equal(value, again.module.state_dict()[key]), key
    assert again.test == result.test


def test_dvclive_curves_written(trained):
    root, _, _ = trained
    assert (root / "live" / "plots" / "metrics" / "val" / "auroc_macro.tsv").exists()
    assert json.loads((root / "live" / "metrics.json").read_text())["epoch"] >= 1


def test_saved_model_reloads_with_weights_only(trained, tmp_path):
    root, params, result = trained
    save_classifier(tmp_path, result, params)
    torch.load(tmp_path / "model.pt", weights_only=True)
    model, thresholds, config = load_classifier(tmp_path)
    assert thresholds == result.thresholds and config["input_size"] == 32
    images = torch.from_numpy(np.array(ImageStore(root / "store").images(32)[:8])).unsqueeze(1)
    with torch.no_grad():
        reloaded = torch.sigmoid(model(normalise(images)))
    assert torch.allclose(reloaded, result.module.predict_probs(images), atol=1e-5)


def test_bf16_mixed_precision_trains(trained, tmp_path):
    """The full-scale settings' `precision: bf16-mixed`: one epoch runs under autocast, scores are
    finite and the weights stay float32."""
    root, params, _ = trained
    bf16 = params.model_copy(update={"precision": "bf16-mixed", "max_epochs": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_classifier(root / "store", root / "split.csv", bf16, tmp_path)
    assert np.isfinite(result.test["auroc_macro"])
    assert all(v.dtype == torch.float32 for v in result.module.state_dict().values() if v.is_floating_point())


def test_stage_refuses_missing_imagenet_weights_in_one_line(trained, tmp_path):
    """`pretrained: imagenet` with no file in the weights folder: one line, exit 1, no model folder."""
    root, _, _ = trained
    (tmp_path / "params.yaml").write_text("classifier:\n  input_size: 32\n  pretrained: imagenet\n  max_epochs: 1\n")
    validate_params(tmp_path)
    (tmp_path / "weights").mkdir()
    cmd = [sys.executable, str(Path(__file__).parents[1] / "stages" / "train_classifier.py"), "--store",
           str(root / "store"), "--split", str(root / "split.csv"), "--out", "model", "--metrics", "m.json",
           "--roc", "roc.csv", "--roc-figure", "roc.png", "--weights", "weights"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: classifier.pretrained: imagenet, but no densenet121-a639ec97.pth in "
                                     "weights/densenet121 (put it there or set classifier.weights_path)")
    assert not (tmp_path / "model").exists() and not (tmp_path / "m.json").exists()


def test_the_logged_val_auroc_is_the_stages(trained):
    """DVCLive's ``val/auroc_macro`` at the best epoch is the stage's ``val_auroc_macro`` (the best
    checkpoint reloaded and scored on val by ``evaluate``), over the same 14 classes: val has no Hernia
    positive (torchmetrics counted Hernia as 0 in the logged mean)."""
    root, _, result = trained
    assert result.val["positives"]["Hernia"] == 0
    curves = root / "live" / "plots" / "metrics" / "val"
    logged = pd.read_csv(curves / "auroc_macro.tsv", sep="\t")["auroc_macro"]
    assert logged.iloc[result.best_epoch] == pytest.approx(result.val["auroc_macro"], abs=1e-6)
    assert result.val["auroc_macro_classes"] == 14
    classes = pd.read_csv(curves / "auroc_macro_classes.tsv", sep="\t")["auroc_macro_classes"]
    assert (classes == result.val["auroc_macro_classes"]).all()
    n_val = int((pd.read_csv(root / "split.csv")["split"] == "val").sum())
    assert result.val["auroc_macro_classes"] == sum(0 < n < n_val for n in result.val["positives"].values())
