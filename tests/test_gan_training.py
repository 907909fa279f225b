"""GAN training runs: kill -9 and resume equals an uninterrupted run, bit for bit; sampling API; DCGAN; NaN guard."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import demo_store, validate_params

from cxrsynth.sampling import latents, load_generator, sample_images

ROOT = Path(__file__).parents[1]
TINY = """gan:
  arch: {arch}
  seed: 3
  resolution: {res}
  z_dim: 16
  channels: {channels}
  fade_images: {fade}
  stable_images: {stable}
  batch_sizes: {batch}
  checkpoint_every: {every}
  log_every: 5
  n_samples: 8
  accelerator: cpu
  deterministic: true
  threads: 1
  dcgan_images: 64
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return demo_store(tmp_path_factory.mktemp("ganstore"), 64, 64)


STAGE = [sys.executable, str(ROOT / "stages" / "train_gan.py"), "--out", "model", "--checkpoints", "ckpt",
         "--metrics", "gan.json", "--samples", "grid.png"]
TIMINGS = "metrics/timings/train_gan.json"  # stage_main's record, under the working directory


def stage(workdir: Path, store: Path, env: dict | None = None, **kw) -> subprocess.Popen:
    """Start the stage in the background on TINY params filled with ``kw`` (in environment ``env``)."""
    (workdir / "params.yaml").write_text(TINY.format(**kw))
    validate_params(workdir)
    return subprocess.Popen(STAGE + ["--store", str(store)], cwd=workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


#: how a cluster starts every process itself (docs/multi_gpu.md); Lightning then launches none
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def run_stage(workdir: Path, store: Path, params: str,
              launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run the stage to the end on the given params text (under ``launcher``, e.g. ``TORCHRUN``)."""
    (workdir / "params.yaml").write_text(params)
    validate_params(workdir)
    command = STAGE + ["--store", str(store)] if launcher is None else launcher + STAGE[1:] + ["--store", str(store)]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600, check=False)


def kill_after_first_checkpoint(workdir: Path, store: Path, env: dict | None = None, **kw) -> None:
    """Start the stage (in environment ``env``) and SIGKILL it as soon as its first checkpoint is on disk."""
    run = stage(workdir, store, env, **kw)
    deadline = time.time() + 300
    while not (workdir / "ckpt" / "last.ckpt").exists():
        assert run.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.02)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()


PG = {"arch": "pggan", "res": 16, "channels": [8, 8, 8], "fade": [0, 96, 96], "stable": [96, 96, 400],
      "batch": [8, 8, 8], "every": 96}


def test_kill_and_resume_is_bitwise_equal(tmp_path, store):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    run = stage(straight, store, **PG)
    assert run.wait(timeout=600) == 0, run.stdout.read()

    kill_after_first_checkpoint(killed, store, **PG)
    assert not (killed / "model").exists()  # nothing half-written
    saved = torch.load(killed / "ckpt" / "last.ckpt", weights_only=True)["gan_state"]["images_seen"]
    assert 0 < saved < 784
    resumed = stage(killed, store, **PG)
    assert resumed.wait(timeout=600) == 0, resumed.stdout.read()

    a = torch.load(straight / "model" / "generator.pt", weights_only=True)
    b = torch.load(killed / "model" / "generator.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    full_a = torch.load(straight / "ckpt" / "last.ckpt", weights_only=True)
    full_b = torch.load(killed / "ckpt" / "last.ckpt", weights_only=True)
    assert all(torch.equal(full_a["state_dict"][k], full_b["state_dict"][k]) for k in full_a["state_dict"])
    assert full_a["gan_state"]["images_seen"] == full_b["gan_state"]["images_seen"] == 784
    for opt_a, opt_b in zip(full_a["optimizer_states"], full_b["optimizer_states"]):
        for sa, sb in zip(opt_a["state"].values(), opt_b["state"].values()):
            assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


def test_outputs_and_sampling_api(tmp_path, store):
    run = stage(tmp_path, store, **PG)
    assert run.wait(timeout=600) == 0, run.stdout.read()
    grids = sorted(p.name for p in (tmp_path / "model" / "samples").iterdir())
    assert grids == ["01_4-stable.png", "02_8-fade.png", "03_8-stable.png", "04_16-fade.png", "05_16-stable.png"]
    metrics = json.loads((tmp_path / "gan.json").read_text())
    phases = {"4-stable", "8-fade", "8-stable", "16-fade", "16-stable"}
    assert metrics["images_shown"] == 784 and metrics["resolution"] == 16 and set(metrics["phases"]) == phases
    timings = json.loads((tmp_path / TIMINGS).read_text())  # outside the hashed metrics
    assert set(timings["img_per_s"]) == phases and timings["checkpoint"] == "fresh" and timings["seconds"] > 0
    generator, config = load_generator(tmp_path / "model")
    z = latents(10, config.z_dim, seed=0, truncation=0.7)
    assert z.abs().max() <= 0.7
    images = sample_images(generator, z, 16, batch_size=4)
    assert images.shape == (10, 1, 16, 16) and images.dtype == torch.uint8
    assert torch.equal(images, sample_images(generator, z, 16, batch_size=10))  # batching does not change results
    checkpoint = (tmp_path / "ckpt" / "last.ckpt").read_bytes()
    exported = {name: (tmp_path / "model" / name).read_bytes() for name in ("generator.pt", "discriminator.pt")}
    again = run_stage(tmp_path, store, TINY.format(**PG))  # the same run, finished: exported again, no training
    assert again.returncode == 0, again.stderr[-2000:]
    assert "exporting it without training" in again.stdout
    assert json.loads((tmp_path / TIMINGS).read_text())["checkpoint"] == "finished"
    assert json.loads((tmp_path / "gan.json").read_text()) == metrics
    assert (tmp_path / "ckpt" / "last.ckpt").read_bytes() == checkpoint
    assert all((tmp_path / "model" / name).read_bytes() == data for name, data in exported.items())
    out = subprocess.run([sys.executable, "-m", "cxrsynth.sampling", "--gan", str(tmp_path / "model"), "--n", "5",
                          "--out", str(tmp_path / "pngs"), "--device", "cpu"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and len(list((tmp_path / "pngs").glob("*.png"))) == 5


def test_dcgan_baseline_trains_through_the_same_stage(tmp_path, store):
    dc = {"arch": "dcgan", "res": 16, "channels": [8, 8, 8], "fade": [0, 8, 8], "stable": [8, 8, 8], "batch": [8, 8, 8],
          "every": 32}
    run = stage(tmp_path, store, **dc)
    assert run.wait(timeout=600) == 0, run.stdout.read()
    generator, config = load_generator(tmp_path / "model")
    assert config.arch == "dcgan" and sample_images(generator, latents(3, 100, 0), 64).shape == (3, 1, 64, 64)


#: The stage with a fault injected (a test-only patch of the step; the library has no such switch):
#: after the training step that brings the images shown to ``argv[1]``, the weights of D are
#: multiplied by NaN, as a diverging optimiser step would leave them: every later loss is NaN.
FAULTY_STAGE = """
import runpy, sys
import torch
from cxrsynth.training.gan_module import GANModule

poison_at, step = int(sys.argv.pop(1)), GANModule.training_step


def faulty_step(self, batch, batch_idx):
    step(self, batch, batch_idx)
    if self.images_seen == poison_at:
        with torch.no_grad():
            for weight in self.discriminator.parameters():
                weight.mul_(float("nan"))


GANModule.training_step = faulty_step
sys.argv.pop(0)
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_faulty_stage(workdir: Path, store: Path, poison_at: int, **kw) -> subprocess.CompletedProcess:
    """Run the stage on TINY params filled with ``kw``, poisoning D after the step that reaches ``poison_at`` images."""
    (workdir / "params.yaml").write_text(TINY.format(**kw))
    validate_params(workdir)
    command = [sys.executable, "-c", FAULTY_STAGE, str(poison_at), *STAGE[1:], "--store", str(store)]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600, check=False)


# PG checkpoints every 96 images (12 steps of 8) and reads the losses every 5 steps and at every
# checkpoint: in the second interval after the steps at 136 and 176 images, then at 192.
@pytest.mark.parametrize(("poison_at", "error"), [
    (104, "non-finite loss (D nan, G nan) at 136 images"),  # read at the next log flush, mid-interval
    (176, "non-finite loss (D nan, G nan) at 192 images"),  # after the interval's last flush: read at the checkpoint
    (192, "non-finite weights (discriminator."),  # the interval's last step: finite losses, NaN weights
], ids=["mid-interval", "before-checkpoint", "last-step"])
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, store, poison_at, error):
    """A run that diverges after its first checkpoint (96 images) exits 1 in one line, writes no
    outputs and keeps that checkpoint: the one at 192 images, which would hold the NaN, is never written."""
    result = run_faulty_stage(tmp_path, store, poison_at, **PG)
    assert result.returncode == 1, result.stderr[-2000:]
    assert not any((tmp_path / name).exists() for name in ("model", "gan.json", "grid.png"))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["last.ckpt", "samples"]  # no temporary file
    checkpoint = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert checkpoint["gan_state"]["images_seen"] == 96  # the first checkpoint, taken before the fault
    weights = [v for v in checkpoint["state_dict"].values() if v.is_floating_point()]
    moments = [v for opt in checkpoint["optimizer_states"] for state in opt["state"].values()
               for v in state.values() if v.is_floating_point()]
    assert weights and moments and all(torch.isfinite(v).all() for v in weights + moments)
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: gan: ") and error in last_line, last_line
    assert "the last good checkpoint is kept" in last_line


@pytest.mark.parametrize("launcher", [None, TORCHRUN], ids=["lightning", "torchrun"])
def test_ddp_two_cpu_processes_share_the_schedule(tmp_path, store, launcher):
    """DDP (gloo, two CPU processes, launched by Lightning or by torchrun): the gradient penalty runs
    under DDP, each global batch of 8 is split 4 + 4, images shown count over both processes, and only
    process 0 writes the outputs and the timings."""
    text = TINY.format(**PG).replace("deterministic: true", "deterministic: false\n  devices: 2\n"
                                     "  strategy: ddp_find_unused_parameters_true")
    result = run_stage(tmp_path, store, text, launcher)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "gan.json").read_text())
    assert metrics["images_shown"] == 784 and metrics["processes"] == 2
    assert metrics["batch_per_process"] == {"4": 4, "8": 4, "16": 4}
    assert (result.stdout + result.stderr).count("train_gan: pggan") == 1
    assert (result.stdout + result.stderr).count("train_gan: seconds") == 1
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    # 784 images in global batches of 8: 98 steps of one D and one G optimiser step each
    assert state["gan_state"]["images_seen"] == 784 and state["global_step"] == 2 * 784 // 8


def test_bf16_mixed_precision_trains_and_exports_float32_weights(tmp_path, store):
    """The full-scale settings' `precision: bf16-mixed` (autocast; CPUs with bf16 run it too): the
    losses stay finite, the weights and the exported EMA generator stay float32."""
    text = TINY.format(**PG).replace("deterministic: true", "deterministic: true\n  precision: bf16-mixed")
    result = run_stage(tmp_path, store, text)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "gan.json").read_text())
    assert metrics["images_shown"] == 784
    assert math.isfinite(metrics["final_loss_d"]) and math.isfinite(metrics["final_loss_g"])
    weights = torch.load(tmp_path / "model" / "generator.pt", weights_only=True)
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())
    generator, _ = load_generator(tmp_path / "model")
    assert sample_images(generator, latents(4, 16, seed=0), 16).float().std() > 0
    fp32 = tmp_path / "fp32"
    fp32.mkdir()
    assert stage(fp32, store, **PG).wait(timeout=600) == 0
    reference = torch.load(fp32 / "model" / "generator.pt", weights_only=True)
    assert not all(torch.equal(weights[k], reference[k]) for k in weights)  # autocast really ran


def gan_line(output: str) -> str:
    """The stage's one line about the checkpoint it found."""
    return next(line for line in output.splitlines() if line.startswith("gan: "))


def saved_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["gan_state"]


def test_a_checkpoint_is_reused_only_by_the_run_that_made_it(tmp_path, store, tmp_path_factory):
    """An unfinished checkpoint is not resumed by a run on other data: the run starts over, says why
    in one line, and keeps the old checkpoint (and its grids) under kept/<key digest>/."""
    from cxrsynth.training.gan_checkpoints import key_digest

    other = tmp_path_factory.mktemp("otherstore")
    demo_store(other, 64, 64, seed=1)

    kill_after_first_checkpoint(tmp_path, store, **PG)
    first = (tmp_path / "ckpt" / "last.ckpt").read_bytes()
    key = saved_state(tmp_path / "ckpt" / "last.ckpt")["run_key"]
    result = run_stage(tmp_path, other / "store", TINY.format(**PG))
    assert result.returncode == 0, result.stderr[-2000:]
    line = gan_line(result.stdout)
    kept = Path("ckpt") / "kept" / key_digest(key)
    assert "another run" in line and "data (store" in line and "starting over" in line, line
    assert f"kept it in {kept}/" in line, line
    assert json.loads((tmp_path / TIMINGS).read_text())["checkpoint"] == "restart"
    assert (tmp_path / kept / "last.ckpt").read_bytes() == first  # moved, not rewritten
    assert [p.name for p in (tmp_path / kept / "samples").iterdir()] == ["01_4-stable.png"]
    assert saved_state(tmp_path / "ckpt" / "last.ckpt")["images_seen"] == 784  # the new run's own


def test_the_code_digest_ignores_comments_and_docstrings(tmp_path):
    from cxrsynth.code_closure import source_digest

    code = '''"""A module."""
import math


class Net:
    """A class."""

    def forward(self, x):
        """A method."""
        # a comment
        return math.sqrt(x)  # another
'''
    edited = (code.replace("A module.", "A module, its typo fixed.").replace("        # a comment\n", "")
              .replace('"""A method."""', '"""A method.\n\n        More words.\n        """\n') + "# the end\n")

    def digest(text: str, name: str = "m.py", folder: str = "a") -> str:
        path = tmp_path / folder / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return source_digest([path], root=tmp_path / folder)

    assert digest(code) == digest(edited, folder="b")
    assert digest(code) != digest(code.replace("sqrt", "exp"), folder="c")  # code
    assert digest(code) != digest(code, name="n.py", folder="d")  # the file's path counts too


#: The stage with the cxrsynth package imported from a copy (``PYTHONPATH``), so a test can edit
#: the training code without touching the checkout's.
def copy_package(workdir: Path) -> dict:
    shutil.copytree(ROOT / "src" / "cxrsynth", workdir / "src" / "cxrsynth",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = os.environ | {"PYTHONPATH": str(workdir / "src")}
    where = subprocess.run([sys.executable, "-c", "import cxrsynth; print(cxrsynth.__file__)"], env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(workdir / "src")), where
    return env


def test_a_docstring_or_comment_edit_in_the_training_code_resumes(tmp_path, store):
    env = copy_package(tmp_path)
    kill_after_first_checkpoint(tmp_path, store, env, **PG)
    module = tmp_path / "src" / "cxrsynth" / "training" / "gan_module.py"
    text = module.read_text()
    edited = text.replace('"""Give the module the real images', '"""Give the module (docstring edited) the real images', 1)
    edited = edited.replace("\n    def training_step(", "\n    # a new comment\n\n    def training_step(", 1)
    assert edited.count("docstring edited") == 1 and "# a new comment" in edited
    module.write_text(edited)
    result = subprocess.run(STAGE + ["--store", str(store)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    line = gan_line(result.stdout)
    assert "is this run, at 96 of 784 images" in line and line.endswith("resuming"), line
    assert not (tmp_path / "ckpt" / "kept").exists()


def test_a_changed_param_keeps_the_checkpoint_and_resume_from_continues_it(tmp_path, store):
    """Run A (killed at 96 images) is kept when run B (another lr) starts; run C (a third lr) with
    ``gan.resume_from`` naming A continues A's weights from 96 images under C's own key, with C's lr,
    and records where it came from; a schedule that ends before 96 images is refused in one line."""
    from cxrsynth.training.gan_checkpoints import key_digest

    params = TINY.format(**PG)
    kill_after_first_checkpoint(tmp_path, store, **PG)
    a = saved_state(tmp_path / "ckpt" / "last.ckpt")
    kept_a = Path("ckpt") / "kept" / key_digest(a["run_key"])
    b = run_stage(tmp_path, store, params.replace("seed: 3", "seed: 3\n  lr: 2.0e-3"))
    line = gan_line(b.stdout)
    assert b.returncode == 0 and "gan params lr" in line and "starting over" in line, line
    assert f"kept it in {kept_a}/" in line, line
    assert saved_state(tmp_path / kept_a / "last.ckpt")["images_seen"] == a["images_seen"] == 96

    short = params.replace("fade_images: [0, 96, 96]", "fade_images: [0, 8, 8]").replace(
        "stable_images: [96, 96, 400]", "stable_images: [8, 8, 8]")
    refused = run_stage(tmp_path, store, short + f"  resume_from: {key_digest(a['run_key'])[:6]}\n")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith(f"error: gan.resume_from: {kept_a}/last.ckpt is at 96 "
                                                              "images; this schedule ends at 40")

    c = run_stage(tmp_path, store, params.replace("seed: 3", "seed: 3\n  lr: 5.0e-4")
                  + f"  resume_from: {key_digest(a['run_key'])[:6]}\n")
    assert c.returncode == 0, c.stderr[-2000:]
    line = gan_line(c.stdout)
    assert f"gan.resume_from {kept_a}/last.ckpt is at 96 of 784 images (its run differs in gan params lr)" in line
    assert line.endswith("continuing it under this run's key"), line
    record = {"path": f"{kept_a}/last.ckpt", "run_key_digest": key_digest(a["run_key"]), "images_seen": 96}
    assert json.loads((tmp_path / "gan.json").read_text())["resumed_from"] == record
    assert json.loads((tmp_path / "gan.json").read_text())["phases"][0] == "4-stable"  # A's phase, not trained again
    timings = json.loads((tmp_path / TIMINGS).read_text())
    assert timings["checkpoint"] == "resume_from" and "4-stable" not in timings["img_per_s"]
    final = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["gan_state"]["resumed_from"] == record and final["gan_state"]["images_seen"] == 784
    assert final["gan_state"]["run_key"]["params"]["lr"] == 5.0e-4
    assert {group["lr"] for opt in final["optimizer_states"] for group in opt["param_groups"]} == {5.0e-4}
    assert (tmp_path / kept_a / "last.ckpt").exists()  # the source stays kept
    assert len(list((tmp_path / "ckpt" / "kept").iterdir())) == 2  # A and B


def fake_checkpoint(folder: Path, key: dict, images: int = 8, planned: int | None = None) -> bytes:
    """A minimal checkpoint of run ``key`` with one sample grid, in ``folder``; its bytes. ``planned``:
    the images its schedule shows in all (None: a config that does not say)."""
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    (folder / "samples" / "01_4-stable.png").write_bytes(repr(key).encode())
    config = {} if planned is None else {"images": planned}
    torch.save({"gan_state": {"run_key": key, "images_seen": images, "config": config}}, folder / "last.ckpt")
    return (folder / "last.ckpt").read_bytes()


def test_kept_checkpoints_are_bounded_and_a_kept_run_of_this_key_comes_back(tmp_path):
    from cxrsynth.training.gan_checkpoints import key_digest, kept_runs, plan_checkpoints, prune_kept

    ckpt = tmp_path / "ckpt"
    keys = [{"params": {"lr": i}, "data": "d", "code": "c"} for i in range(6)]
    saved = {}
    for i in range(4):  # runs 0..3, each finished and followed by the next
        saved[i] = fake_checkpoint(ckpt, keys[i], planned=8)
        plan = plan_checkpoints(ckpt, keys[i + 1], 24, None)
        assert plan.action == "restart" and plan.kept == [ckpt / "kept" / key_digest(keys[i])]
        assert not (ckpt / "last.ckpt").exists() and not (ckpt / "samples").exists()
        prune_kept(ckpt, 2, tuple(plan.kept), keys[i + 1])
    assert kept_runs(ckpt) == [ckpt / "kept" / key_digest(keys[i]) for i in (3, 2)]  # newest first, 2 of 4
    assert (ckpt / "kept" / key_digest(keys[3]) / "last.ckpt").read_bytes() == saved[3]
    assert json.loads((ckpt / "kept" / key_digest(keys[3]) / "kept.json").read_text())["images_seen"] == 8

    # run 5 finds run 4's checkpoint; run 2 comes back, with its grids, and resumes
    fake_checkpoint(ckpt, keys[4], images=16)
    plan = plan_checkpoints(ckpt, keys[2], 24, "anything")
    assert plan.action == "resume" and plan.restored and plan.source is None
    assert (ckpt / "last.ckpt").read_bytes() == saved[2]
    assert (ckpt / "samples" / "01_4-stable.png").read_bytes() == repr(keys[2]).encode()
    assert "gan.resume_from is not used" in "; ".join(plan.notes)
    assert {p.name for p in kept_runs(ckpt)} == {key_digest(keys[3]), key_digest(keys[4])}

    # the bound never removes a protected folder, even when it is the oldest
    oldest = kept_runs(ckpt)[-1]
    assert prune_kept(ckpt, 1, (oldest,)) == [] and len(kept_runs(ckpt)) == 2
    assert prune_kept(ckpt, 1) == [oldest] and not oldest.exists()
    # nor an unfinished one (run 4, killed at 16 images): it may be a run's only copy
    assert not json.loads((kept_runs(ckpt)[0] / "kept.json").read_text())["finished"]
    assert prune_kept(ckpt, 0) == [] and len(kept_runs(ckpt)) == 1

    # an unreadable checkpoint is kept aside too, byte for byte
    (ckpt / "last.ckpt").write_bytes(b"not a checkpoint")
    plan = plan_checkpoints(ckpt, keys[5], 24, None)
    assert plan.action == "restart" and plan.kept[0].name.startswith("unreadable-")
    assert (plan.kept[0] / "last.ckpt").read_bytes() == b"not a checkpoint"


def test_resume_from_names_a_usable_checkpoint_or_fails_in_one_line(tmp_path):
    from cxrsynth.models.gan import GANConfig
    from cxrsynth.training.gan_checkpoints import ResumeError, find_resume_checkpoint, key_digest, plan_checkpoints, start_from
    from cxrsynth.training.gan_module import GANModule

    ckpt = tmp_path / "ckpt"
    key = {"params": {"lr": 1}, "data": "d", "code": "c"}
    kept = ckpt / "kept" / key_digest(key)
    fake_checkpoint(kept, key)
    source = kept / "last.ckpt"
    for value in (str(source), str(kept), key_digest(key), key_digest(key)[:4]):
        assert find_resume_checkpoint(value, ckpt) == source
    with pytest.raises(ResumeError, match=rf"^gan.resume_from: 'nothing' is neither .* \(kept: {key_digest(key)}\)$"):
        find_resume_checkpoint("nothing", ckpt)
    for i, name in enumerate((str(ckpt / "last.ckpt"), key_digest({"params": {"lr": 4}, "data": "d", "code": "c"}))):
        other = {"params": {"lr": 3 + i}, "data": "d", "code": "c"}  # last.ckpt as it was, or as kept just now
        fake_checkpoint(ckpt, other)
        plan = plan_checkpoints(ckpt, {"params": {}, "data": "d", "code": "c"}, 24, name)
        assert plan.source == ckpt / "kept" / key_digest(other) / "last.ckpt" and plan.kept == [plan.source.parent]

    config = GANConfig(z_dim=4, channels=[4, 4], fade_images=[0, 8], stable_images=[8, 8], batch_sizes=[4, 4],
                       n_samples=4)
    module = GANModule(config.__dict__)
    module.run_key = {"params": {"lr": 2}, "data": "d", "code": "c"}

    def refused(images: int, phase: str, state_dict: dict) -> str:
        torch.save({"gan_state": {"run_key": key, "images_seen": images, "phase": phase}, "state_dict": state_dict,
                    "optimizer_states": []}, source)
        with pytest.raises(ResumeError) as err:
            start_from(source, module, ckpt)
        assert str(err.value).startswith("gan.resume_from: ") and "\n" not in str(err.value)
        return str(err.value)

    assert "this schedule ends at 24" in refused(24, "8-stable", module.state_dict())
    assert "stopped in phase 8-fade at 4 images, where this schedule is in phase 4-stable" in refused(
        4, "8-fade", module.state_dict())
    other = GANModule({**config.__dict__, "channels": [8, 8]}).state_dict()
    assert "holds other networks" in refused(8, "8-fade", other)
    assert "holds 0 optimiser states" in refused(8, "8-fade", module.state_dict())
    source.write_bytes(b"junk")
    with pytest.raises(ResumeError, match="is unreadable"):
        start_from(source, module, ckpt)


def test_the_run_key_names_what_differs(tmp_path):
    from cxrsynth.models.gan import GANConfig
    from cxrsynth.training.gan_checkpoints import checkpoint_decision, run_key

    config = GANConfig(z_dim=16, channels=[8, 8], fade_images=[0, 8], stable_images=[8, 8], batch_sizes=[4, 4])
    key = run_key(config, "a" * 64)
    assert key == run_key(GANConfig(**{**config.__dict__, "log_every": 7}), "a" * 64)  # log_every changes no training
    assert key != run_key(config, "a" * 64, {"precision": "bf16-mixed"})
    path = tmp_path / "last.ckpt"
    assert checkpoint_decision(path, key, 24)[0] == "fresh"
    torch.save({"gan_state": {"run_key": {**key, "code": "0" * 64}, "images_seen": 8}}, path)
    action, reason = checkpoint_decision(path, key, 24)
    assert action == "restart" and "training code" in reason and "gan params" not in reason
    torch.save({"gan_state": {"run_key": key, "images_seen": 8}}, path)
    assert checkpoint_decision(path, key, 24)[0] == "resume"
    torch.save({"gan_state": {"run_key": key, "images_seen": 24}}, path)
    assert checkpoint_decision(path, key, 24)[0] == "finished"
    path.write_bytes(b"not a checkpoint")
    assert checkpoint_decision(path, key, 24)[0] == "restart"


def test_a_global_batch_that_does_not_split_is_refused(tmp_path, store):
    from cxrsynth.config.gan import GANParams

    with pytest.raises(ValueError, match=r"batch_sizes: \[8, 8, 8\] do not split evenly over 3 processes"):
        GANParams(resolution=16, channels=[8, 8, 8], fade_images=[0, 8, 8], stable_images=[8, 8, 8],
                  batch_sizes=[8, 8, 8], devices=3)
    GANParams(resolution=16, channels=[8, 8, 8], fade_images=[0, 8, 8], stable_images=[8, 8, 8],
              batch_sizes=[14, 14, 14], devices=2)  # 7 per process: no longer tied to multiples of group_size


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4:UserWarning")
def test_a_checkpoint_that_would_run_code_is_refused_in_one_line(tmp_path, store):
    """A ``last.ckpt`` (e.g. pulled from a DVC remote), a ``gan.resume_from`` file or a kept run whose
    pickle would run code on loading: the stage stops in one line naming the file, before moving or
    training anything, and the code never runs (before: ``torch.load(weights_only=False)`` ran it)."""
    from conftest import write_hostile_checkpoint

    from cxrsynth.errors import InputError
    from cxrsynth.training.gan_checkpoints import foresee_checkpoint, key_digest, plan_checkpoints

    marker = tmp_path / "marker"
    last = write_hostile_checkpoint(tmp_path / "ckpt" / "last.ckpt", marker)
    params = TINY.format(**PG)
    for extra, named in (("", "ckpt/last.ckpt"), ("  resume_from: hostile.ckpt\n", "hostile.ckpt")):
        result = run_stage(tmp_path, store, params + extra)
        assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith(f"error: {named}: refused: loading it would need the global io.open")
        assert not marker.exists() and not (tmp_path / "model").exists()
        assert not (tmp_path / "ckpt" / "kept").exists()  # nothing moved: the file is where it was
        last.rename(tmp_path / "hostile.ckpt")
        last = tmp_path / "hostile.ckpt"

    key = {"params": {"lr": 1}, "data": "d", "code": "c"}
    ckpt = tmp_path / "other"
    write_hostile_checkpoint(ckpt / "kept" / key_digest(key) / "last.ckpt", marker)
    with pytest.raises(InputError, match="refused"):
        foresee_checkpoint(ckpt, key, 24, None)  # the other DDP processes
    with pytest.raises(InputError, match="refused"):
        plan_checkpoints(ckpt, key, 24, None)
    # a newer pickle protocol fails on an opcode before its global, and is refused all the same
    write_hostile_checkpoint(ckpt / "last.ckpt", marker, protocol=4)
    with pytest.raises(InputError, match=r"refused: loading it would need pickle content .*\(Unsupported operand"):
        plan_checkpoints(ckpt, key, 24, None)
    assert not marker.exists()


def test_every_checkpoint_read_in_the_code_is_weights_only():
    """Static: every ``torch.load`` in src/ and stages/ passes ``weights_only=True``, and so does every
    Lightning call that reads a checkpoint (``fit``/``validate``/``test`` with ``ckpt_path``,
    ``load_from_checkpoint``)."""
    import ast

    def weights_only(call: ast.Call) -> bool:
        return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                   for k in call.keywords)

    offenders, loads = [], 0
    for path in sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "stages").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            name = node.func.attr
            reads = ((name == "load" and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch")
                     or name == "load_from_checkpoint"
                     or (name in ("fit", "validate", "test") and any(k.arg == "ckpt_path" for k in node.keywords)))
            loads += reads
            if reads and not weights_only(node):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert loads >= 8 and not offenders, offenders
