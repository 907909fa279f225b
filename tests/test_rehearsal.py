"""End to end: the rehearsal profile, every path the nih profile takes, at toy size, run as a user queues
an experiment: `dvc exp run --temp -S profile=rehearsal` in a temporary copy DVC makes, then checked out.

1024x1024 inputs streamed from archives, a store to 1024 px, memory-mapped levels, the GAN through
256 px at the paper's channel ratios with the paper's 14-image batch at 256, bf16-mixed, data-loader
workers, ImageNet and Inception weights files (random stand-ins with the real names and layouts,
``tools/stand_in_weights.py``), the discriminator scorer, parallel restarts and every later stage.
The weights files are DVC-tracked (``.dvc`` pointers committed), so the experiment's copy has them:
the metrics record the same SHA-256 as the workspace's files. The numbers mean nothing; the test
checks that each path ran and recorded what it did.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pytest
from conftest import copy_repo, sh

from cxrsynth.config.base import read_params
from cxrsynth.data.sources.manifest import read_manifest
from cxrsynth.data.store import ImageStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    dest = copy_repo(tmp_path_factory.mktemp("rehearsal"))
    sh([sys.executable, "tools/stand_in_weights.py", "--track", "."], dest)  # dvc add: .dvc pointers
    git = ["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci"]
    sh([*git, "add", "-A"], dest)
    sh([*git, "commit", "-qm", "stand-in weights, tracked by DVC"], dest)
    assert not (dest / "metrics").exists()
    sh(["dvc", "exp", "run", "--temp", "-S", "profile=rehearsal", "--name", "rehearsal"], dest, timeout=1500)
    assert not (dest / "metrics" / "report.html").exists()  # it ran in DVC's temporary copy
    # the experiment as a branch: its params.yaml, dvc.lock and metrics/, then the main pipeline's data from the
    # cache (`dvc exp apply` would also check out the baselines pipeline's outputs, which never ran)
    sh(["dvc", "exp", "branch", "rehearsal", "rehearsal"], dest)
    sh(["git", "checkout", "-q", "rehearsal"], dest)
    sh(["dvc", "checkout", "dvc.yaml"], dest)
    return dest


def metrics(repo: Path, name: str) -> dict:
    return json.loads((repo / "metrics" / f"{name}.json").read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_full_size_films_stream_from_archives_into_a_store_to_1024(repo):
    raw = repo / "data" / "raw"
    assert not (raw / "images").exists() and len(list(raw.iterdir())) < 20  # no per-film outputs
    sources = read_manifest(raw)
    assert len(sources) >= 3 and all(s.kind == "archive" and s.md5 for s in sources)
    prepare = metrics(repo, "prepare")
    assert prepare["levels"][-1] == 1024 and prepare["rejected"] == 0
    assert prepare["images"] == sum(len(s.images) for s in sources) >= 160
    store = ImageStore(repo / "data" / "prepared")
    assert store.images(1024).shape[1:] == (1024, 1024) and store.read(1024, [0, 1]).std() > 20


def test_gan_reached_256_px_with_global_batches_and_memory_mapped_levels(repo):
    gan = metrics(repo, "gan")
    assert gan["resolution"] == 256 and gan["processes"] == 1
    assert gan["batch_per_process"]["256"] == 14  # the paper's per-GPU batch: minibatch-stddev groups of 2
    assert gan["memory_mapped_levels"] == [128, 256]  # gan.memory_limit_gib 0.002: the rest in memory
    assert gan["images_shown"] == (32 * 5 + 28) + (32 * 6 + 28)  # fade-ins + stable phases, 4 to 256 px
    assert math.isfinite(gan["final_loss_d"]) and math.isfinite(gan["final_loss_g"])


def test_the_experiment_ran_the_rehearsal_profile(repo):
    assert read_params(repo / "params.yaml")["profile"] == "rehearsal"
    assert json.loads((repo / "data" / "params" / "gan.json").read_text())["resolution"] == 256


def test_weights_files_are_loaded_and_recorded(repo):
    """The temporary copy had the workspace's weights files (DVC-tracked): the same SHA-256 is recorded."""
    densenet = repo / "weights" / "densenet121" / "densenet121-a639ec97.pth"
    inception = repo / "weights" / "inception" / "pt_inception-2015-12-05-6726825d.pth"
    recorded = {"file": densenet.name, "sha256": sha256(densenet)}
    classifier = metrics(repo, "classifier")
    assert classifier["pretrained"] == "imagenet" and classifier["weights"] == recorded
    assert all(w == recorded for w in metrics(repo, "synthetic_auroc")["weights"].values())
    fid = metrics(repo, "fid")
    assert fid["extractors"] == ["inception", "classifier"] and fid["skipped"] == []
    assert fid["inception_weights"] == {"file": inception.name, "sha256": sha256(inception)}
    assert all(math.isfinite(v) and v > 0 for v in fid["table1"]["inception"].values())  # not a degenerate net


def test_every_later_stage_ran_at_256_px_and_says_what_it_missed(repo):
    assert metrics(repo, "d_classifier")["input_size"] == 256
    archive = metrics(repo, "archive")
    assert archive["scorer"] == "discriminator" and archive["planned_images"] == 40
    assert archive["images"] == round(archive["delivered_fraction"] * 40)  # a shortfall is reported, not hidden
    assert metrics(repo, "privacy")["verifier"]["resolution"] == 256
    assert metrics(repo, "embed")["encoder_init"] == "discriminator"
    table2 = metrics(repo, "synthetic_auroc")["macro"]
    assert set(table2) == {"embedded", "class_generated", "real"}
    reader = metrics(repo, "reader_study")
    assert reader["design"]["side"] == 256 and reader["design"]["generated_from"] == "samples"
    assert reader["simulated_readers"]["readers"] == 2
    assert "Not comparable" in (repo / "metrics" / "report.html").read_text()
    status = sh(["dvc", "status", "dvc.yaml"], repo, stdout_only=True)
    assert "up to date" in status, status


@pytest.fixture(scope="module")
def ldm(repo) -> dict:
    """The latent diffusion path of the nih profile at toy size: one more experiment on the rehearsal's
    branch, ``-S gan.arch=ldm`` (the stages before train_gan are up to date there). Returns its metrics."""
    sh(["dvc", "exp", "run", "--temp", "-S", "profile=rehearsal", "-S", "gan.arch=ldm", "--name", "rehearsal-ldm"],
       repo, timeout=1500)
    sh(["dvc", "exp", "branch", "rehearsal-ldm", "rehearsal-ldm"], repo)
    names = ("gan", "archive", "d_classifier", "embed", "synthetic_auroc", "privacy", "reader_study", "fid", "headline")
    out = {n: json.loads(sh(["git", "show", f"rehearsal-ldm:metrics/{n}.json"], repo, stdout_only=True)) for n in names}
    out["report"] = sh(["git", "show", "rehearsal-ldm:metrics/report.html"], repo, stdout_only=True)
    return out


def test_latent_diffusion_runs_the_whole_graph_at_256_px(ldm):
    gan = ldm["gan"]
    assert gan["arch"] == "ldm" and gan["resolution"] == 256 and gan["latent_shape"] == [4, 32, 32]
    assert gan["phases"] == ["autoencoder", "diffusion"] and gan["images_shown"] == 128
    archive = ldm["archive"]
    assert archive["scorer"] == "densenet" and archive["planned_images"] == 40  # no discriminator to score with
    assert archive["images"] == round(archive["delivered_fraction"] * 40)
    for stage in ("d_classifier", "embed"):
        assert ldm[stage]["skipped"] is True and ldm[stage]["reason"].startswith("gan.arch ldm")
    assert set(ldm["synthetic_auroc"]["macro"]) == {"class_generated", "real"}
    assert ldm["reader_study"]["simulated_readers"]["readers"] == 0
    assert math.isfinite(ldm["fid"]["table1"]["classifier"]["synthetic"])
    assert "embedded" not in ldm["headline"]["synthetic_auroc"]
    assert "Class-conditional diffusion generator" in ldm["report"]
