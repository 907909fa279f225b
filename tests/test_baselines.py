"""Baseline systems of papers 002-004: every system in params.yaml trains a step, samples, and resumes
from a checkpoint bit for bit (CPU, tiny sizes); AdaS; memory accounting; the table and its params."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import params_text

from cxrsynth.baselines.adas import Adas
from cxrsynth.baselines.compare import d_loss_claim, markdown, table
from cxrsynth.baselines.evaluate import label_mix, total_variation
from cxrsynth.baselines.memory import dcgan_memory, pass_bytes
from cxrsynth.baselines.systems import config_from_params
from cxrsynth.baselines.train import (
    WHOLE,
    export_system,
    load_generators,
    sample_system,
    train_system,
)
from cxrsynth.config.base import load_section
from cxrsynth.config.baselines import BaselinesParams
from cxrsynth.config.data import DemoParams
from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.store_writer import prepare_dataset
from cxrsynth.data.sources.demo import write_demo
from cxrsynth.data.store import ImageStore
from cxrsynth.errors import ParamsError
from cxrsynth.labels import LABELS
from cxrsynth.training import gan_fit

ROOT = Path(__file__).parents[1]
PARAMS = load_section(BaselinesParams, ROOT / "params.yaml")
TRAINER = {"accelerator": "cpu", "devices": 1, "deterministic": True, "enable_progress_bar": False}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("baselinestore")
    write_demo(root / "raw", DemoParams(n_images=60, size=16, workers=1))
    (root / "store").mkdir()
    prepare_dataset(root / "raw", root / "store", PrepareParams(size=16, min_size=4, workers=1))
    return root / "store"


def tiny(name: str):
    """The system as params.yaml defines it, shrunk: 16 px, narrow, two steps of 8 images (per generator)."""
    system = PARAMS.systems[name]
    common = PARAMS.common.model_copy(update={"resolution": 16, "log_every": 1})
    config = config_from_params(name, system, common)
    return replace(config, width=8, images=16, batch_size=8, n_samples=8), system.per_class


class CrashAfterFirstCheckpoint(Exception):
    pass


@pytest.mark.parametrize("name", list(PARAMS.systems))
def test_every_system_trains_samples_and_resumes_bit_for_bit(name, store, tmp_path, monkeypatch):
    config, per_class = tiny(name)
    straight = train_system(store, config, per_class, tmp_path / "straight", 8, TRAINER)
    groups = list(straight.modules)
    assert groups == ([WHOLE] if not per_class else [g for g in LABELS if g in groups]) and groups
    assert all(m.images_seen == 16 for m in straight.modules.values())
    stats = straight.d_loss_stats()
    assert (stats is None) == (config.loss == "elbo")
    assert stats is None or (stats["steps"] == 2 * len(groups) and np.isfinite(stats["mean"]))

    save = gan_fit.IntervalCheckpoint.on_train_epoch_end

    def crash(self, trainer, module):  # the run dies right after its first complete checkpoint
        save(self, trainer, module)
        raise CrashAfterFirstCheckpoint

    monkeypatch.setattr(gan_fit.IntervalCheckpoint, "on_train_epoch_end", crash)
    with pytest.raises(CrashAfterFirstCheckpoint):
        train_system(store, config, per_class, tmp_path / "killed", 8, TRAINER)
    monkeypatch.setattr(gan_fit.IntervalCheckpoint, "on_train_epoch_end", save)
    resumed = train_system(store, config, per_class, tmp_path / "killed", 8, TRAINER)
    first = groups[0]
    assert resumed.actions[first] == "resume"
    for group in groups:
        a, b = straight.modules[group].generator.state_dict(), resumed.modules[group].generator.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{name}/{group}: resumed weights differ"

    export_system(straight, tmp_path / "model", tmp_path / "straight")
    assert not [p for p in (tmp_path / "model").iterdir() if " " in p.name]  # "No Finding" → No_Finding/
    generators, saved, counts = load_generators(tmp_path / "model")
    labels = ImageStore(store).table[list(LABELS)].to_numpy(dtype=np.uint8)
    images, conditions = sample_system(generators, saved, counts, 10, labels, seed=0)
    assert images.shape == (10, 16, 16) and images.dtype == np.uint8 and images.std() > 0
    if per_class:
        assert conditions.shape == (10, 15) and (conditions.sum(1) == 1).all()
    elif config.conditions:
        assert conditions.shape == (10, 15) and {tuple(c) for c in conditions} <= {tuple(r) for r in labels}
    else:
        assert conditions is None
    again, _ = sample_system(generators, saved, counts, 10, labels, seed=0)
    assert np.array_equal(images, again)


def test_adas_minimises_and_resumes_exactly():
    torch.manual_seed(0)
    x, w = torch.randn(256, 10), torch.randn(10, 2)
    y = x @ w

    def model_and_opt():
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
        return model, Adas(model.parameters())

    def steps(model, opt, n):
        for _ in range(n):
            loss = ((model(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()

    model, opt = model_and_opt()
    start = ((model(x) - y) ** 2).mean().item()
    assert steps(model, opt, 300) < 0.05 * start
    a, opt_a = model_and_opt()
    steps(a, opt_a, 20)
    b, opt_b = model_and_opt()
    b.load_state_dict(a.state_dict())
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as from a checkpoint file: no shared tensors
    steps(a, opt_a, 5), steps(b, opt_b, 5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="beta_1"):
        Adas(a.parameters(), beta_1=1.0)


def test_memory_counts_activations_once_and_batch_norm_adds_some():
    linear = torch.nn.Linear(100, 50)
    measured = pass_bytes(linear, torch.randn(4, 100))
    assert measured["params"] == measured["grads"] == (100 * 50 + 50) * 4
    assert measured["activations"] == 4 * 100 * 4  # only the input is saved for the weight gradient
    rows = pd.DataFrame(dcgan_memory([8, 16], [16], batch=2))
    total = rows.set_index(["network", "width", "batch_norm"])["total"]
    assert (total.xs(True, level="batch_norm") > total.xs(False, level="batch_norm")).all()
    assert total[("G", 16, True)] > total[("G", 8, True)]


def test_label_mix_distance():
    labels = np.array([[1, 0, 0], [0, 1, 1], [0, 1, 0]])
    assert np.allclose(label_mix(labels), [0.25, 0.5, 0.25])
    assert total_variation([0.5, 0.5, 0], [0, 0.5, 0.5]) == 0.5 and total_variation([1, 0], [1, 0]) == 0


def _row(name, paper, fid, d_mean):
    return {"system": name, "paper": paper, "model": "dcgan", "loss": "bce", "optimiser": "adam",
            "fid": {"classifier": fid},
            "prdc": {"classifier": {"precision": 0.75, "recall": 0.5, "density": 1.25, "coverage": 0.625}},
            "memorisation": {"classifier": {"share": 0.0125}}, "label_mix_tv": 0.1, "gan_train_auroc": {"macro": 0.6},
            "gan_train_labels": "labeller", "d_loss": {"mean": d_mean, "variance": 0.1, "std": 0.3},
            "training_memory_mib": {"total": 12.0}, "images_shown": 100}


def test_d_loss_claim_and_markdown():
    rows = [_row("pggan", "001", 5.0, None)] + [_row(f"c{i}", "004", fid, d) for i, (fid, d) in
                                                 enumerate([(100, 1.2), (110, 1.0), (200, 0.4), (105, 0.9)])]
    frame = table(rows)
    claim = d_loss_claim(frame)
    assert claim["configurations"] == 4 and claim["held"] and claim["pearson_r_fid"]["mean"] < -0.9
    assert claim["best_fid"] == "c0" and claim["highest_mean_d_loss"] == "c0"
    text = markdown(frame, claim, {"c0": {"img_per_s": 12.5, "peak_memory": {"mib": 900.0}}})
    assert "| c0 | 004 |" in text and "**held**" in text and "12.5" in text and "| pggan |" in text
    assert "| P (classifier) | R (classifier) | D (classifier) | C (classifier) | memorised (classifier) |" in text
    assert "| 0.750 | 0.500 | 1.250 | 0.625 | 0.013 |" in text
    flipped = table([_row(f"c{i}", "004", fid, d) for i, (fid, d) in enumerate([(100, 0.4), (200, 1.2), (150, 0.8)])])
    assert d_loss_claim(flipped)["held"] is False


def test_bad_baselines_params_fail_in_one_line_and_keep_outputs(tmp_path):
    out = tmp_path / "params"
    good = subprocess.run([sys.executable, str(ROOT / "stages" / "baseline_params.py"), "--params",
                           str(ROOT / "params.yaml"), "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          check=False)
    assert good.returncode == 0, good.stderr
    assert json.loads((out / "systems.json").read_text()) == list(PARAMS.systems)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    text = params_text("baselines.systems.wgan_gp.loss=wgan_gpx")
    (tmp_path / "params.yaml").write_text(text)
    bad = subprocess.run([sys.executable, str(ROOT / "stages" / "baseline_params.py"), "--params",
                          str(tmp_path / "params.yaml"), "--out", str(out)], cwd=tmp_path, capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "baselines.systems.wgan_gp.loss" in bad.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(ParamsError, match="elbo goes with model vae"):
        from cxrsynth.config.base import parse_section

        parse_section({"baselines": {"systems": {"x": {"paper": "002", "model": "fc_gan", "loss": "elbo"}}}},
                      BaselinesParams)
