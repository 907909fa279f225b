"""The classifier stage under DDP on two CPU processes (gloo): launched by Lightning, and by torchrun
as a cluster would (docs/multi_gpu.md). Both processes train; process 0 alone evaluates and writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import demo_store, validate_params

from cxrsynth.data.store import ImageStore
from cxrsynth.data.store_splits import split_datasets
from cxrsynth.labels import LABELS
from cxrsynth.metrics.auroc import evaluate
from cxrsynth.models.classifier import probabilities
from cxrsynth.models.saved_classifier import load_classifier

pytestmark = pytest.mark.slow  # about 20 s a launch on two cores

STAGE = Path(__file__).parents[1] / "stages" / "train_classifier.py"
PARAMS = """classifier:
  arch: resnet18
  input_size: 32
  pretrained: none
  batch_size: 16
  max_epochs: 2
  accelerator: cpu
  devices: 2
  strategy: ddp
  threads: 1
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """165 demo films at 32 px and their patient split (about 111 train, 26 val, 28 test)."""
    root = tmp_path_factory.mktemp("ddpstore")
    demo_store(root, 160, 32, split=True)
    return root


@pytest.mark.parametrize("launcher", ["lightning", "torchrun"])
def test_two_processes_train_and_process_0_alone_writes(tmp_path, store, launcher):
    (tmp_path / "params.yaml").write_text(PARAMS)
    validate_params(tmp_path)
    args = [str(STAGE), "--store", str(store / "store"), "--split", str(store / "split.csv"), "--out", "model",
            "--metrics", "classifier.json", "--roc", "roc.csv", "--roc-figure", "roc.png", "--live", "live"]
    prefix = [sys.executable] if launcher == "lightning" else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(prefix + args, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count("train_classifier: test macro AUROC") == 1  # the stage's own report, process 0 only
    assert output.count("train_classifier: seconds") == 1  # stage_main's timings: process 0 only
    metrics = json.loads((tmp_path / "classifier.json").read_text())
    assert metrics["processes"] == 2 and metrics["epochs"] == 2
    assert json.loads((tmp_path / "metrics/timings/train_classifier.json").read_text())["stage"] == "train_classifier"
    assert (tmp_path / "metrics/provenance/train_classifier.json").exists() and (tmp_path / "roc.png").exists()

    # the saved model, on the full val and test splits, gives the metrics written
    model, thresholds, config = load_classifier(tmp_path / "model")
    assert set(thresholds) == set(LABELS) and config["params"]["strategy"] == "ddp"
    splits = split_datasets(ImageStore(store / "store"), pd.read_csv(store / "split.csv"), 32)
    for name in ("val", "test"):
        data = splits[name]
        scores = evaluate(probabilities(model, data.all_images(), 32).numpy(), data.labels.numpy(), LABELS)
        assert round(scores["auroc_macro"], 4) == metrics[f"{name}_auroc_macro"], name
    assert metrics["test_positives"] == scores["positives"]
    assert sum(scores["positives"].values()) > 0
    roc = pd.read_csv(tmp_path / "roc.csv")
    assert set(roc["class"]) <= set(LABELS) and len(roc) > 0


def test_the_repurposed_discriminator_trains_under_ddp(tmp_path, store):
    """d_classifier's head runs only the final resolution's layers of D: under `strategy: ddp` the stage
    lets DDP expect parameters without gradients (plain DDP stops with a RuntimeError)."""
    root = Path(__file__).parents[1]
    gan = """gan:
  resolution: 16
  z_dim: 16
  channels: [8, 8, 8]
  fade_images: [0, 32, 32]
  stable_images: [32, 32, 64]
  batch_sizes: [8, 8, 8]
  n_samples: 8
  accelerator: cpu
  threads: 1
"""
    (tmp_path / "params.yaml").write_text(gan + PARAMS.replace("max_epochs: 2", "max_epochs: 1"))
    validate_params(tmp_path)
    subprocess.run([sys.executable, str(root / "stages" / "train_gan.py"), "--store", str(store / "store"), "--out",
                    "gan", "--checkpoints", "ckpt", "--metrics", "gan.json", "--samples", "grid.png"],
                   cwd=tmp_path, capture_output=True, check=True, timeout=300)
    result = subprocess.run([sys.executable, str(root / "stages" / "d_classifier.py"), "--store", str(store / "store"),
                             "--split", str(store / "split.csv"), "--gan", "gan", "--out", "d_classifier",
                             "--metrics", "d_classifier.json"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = json.loads((tmp_path / "d_classifier.json").read_text())
    assert metrics["processes"] == 2 and metrics["input_size"] == 16
    assert (result.stdout + result.stderr).count("d_classifier: test macro AUROC") == 1
