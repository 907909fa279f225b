"""The diffusion generator (gan.arch ddpm | ldm): training through the GAN's machinery (kill -9 and resume
equals an uninterrupted run, bit for bit), the sampling API, conditional sampling that honours labels,
privacy-enhancing sampling that replaces a planted near-copy, and the GAN-only stages that skip it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import demo_store, validate_params
from monai.networks.schedulers import DDIMScheduler
from torch import nn

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.config.diffusion import DiffusionParams
from cxrsynth.config.gan import GANParams
from cxrsynth.labels import LABELS
from cxrsynth.models.diffusion import ConditionalDiffusion, DiffusionConfig, LabelTokens, ddim_timesteps
from cxrsynth.sampling import gan_only, latents, load_generator, sample_images
from cxrsynth.skipped import skip_reason
from cxrsynth.synthesis.conditional_sampling import ConditionBank, carries, patient_maker, sample_patients
from cxrsynth.synthesis.scorers import Scorer

ROOT = Path(__file__).parents[1]
STAGE = [sys.executable, str(ROOT / "stages" / "train_gan.py"), "--out", "model", "--checkpoints", "ckpt",
         "--metrics", "gan.json", "--samples", "grid.png"]
TINY = """gan:
  arch: {arch}
  seed: 3
  resolution: 16
  checkpoint_every: {every}
  log_every: 2
  n_samples: 4
  accelerator: cpu
  deterministic: true
  threads: 1
  diffusion:
    images: {images}
    batch_size: 8
    channels: [16, 16]
    attention_levels: [false, true]
    norm_groups: 8
    head_channels: 8
    label_dim: 16
    train_timesteps: 50
    sample_steps: 5
    ae_images: {ae_images}
    ae_channels: [16, 16]
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return demo_store(tmp_path_factory.mktemp("diffstore"), 48, 32)


def start(workdir: Path, store: Path, **kw) -> subprocess.Popen:
    (workdir / "params.yaml").write_text(TINY.format(**kw))
    validate_params(workdir)
    return subprocess.Popen(STAGE + ["--store", str(store)], cwd=workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def kill_after_first_checkpoint(workdir: Path, store: Path, **kw) -> None:
    import os
    import signal
    import time

    run = start(workdir, store, **kw)
    deadline = time.time() + 300
    while not (workdir / "ckpt" / "last.ckpt").exists():
        assert run.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.02)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()


LDM = {"arch": "ldm", "images": 48, "ae_images": 32, "every": 16}


@pytest.mark.parametrize("kw", [{"arch": "ddpm", "images": 64, "ae_images": 0, "every": 24}, LDM], ids=["ddpm", "ldm"])
def test_kill_and_resume_is_bitwise_equal(tmp_path, store, kw):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    run = start(straight, store, **kw)
    assert run.wait(timeout=600) == 0, run.stdout.read()

    kill_after_first_checkpoint(killed, store, **kw)
    assert not (killed / "model").exists()  # nothing half-written
    total = kw["images"] + (kw["ae_images"] if kw["arch"] == "ldm" else 0)
    saved = torch.load(killed / "ckpt" / "last.ckpt", weights_only=True)["gan_state"]["images_seen"]
    assert 0 < saved < total
    resumed = start(killed, store, **kw)
    assert resumed.wait(timeout=600) == 0, resumed.stdout.read()

    a = torch.load(straight / "model" / "generator.pt", weights_only=True)
    b = torch.load(killed / "model" / "generator.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    full_a = torch.load(straight / "ckpt" / "last.ckpt", weights_only=True)
    full_b = torch.load(killed / "ckpt" / "last.ckpt", weights_only=True)
    assert full_a["gan_state"]["images_seen"] == full_b["gan_state"]["images_seen"] == total
    assert all(torch.equal(full_a["state_dict"][k], full_b["state_dict"][k]) for k in full_a["state_dict"])
    for opt_a, opt_b in zip(full_a["optimizer_states"], full_b["optimizer_states"]):
        for sa, sb in zip(opt_a["state"].values(), opt_b["state"].values()):
            assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


def test_outputs_and_sampling_api(tmp_path, store):
    run = start(tmp_path, store, **LDM)
    assert run.wait(timeout=600) == 0, run.stdout.read()
    assert sorted(p.name for p in (tmp_path / "model" / "samples").iterdir()) == ["01_autoencoder.png",
                                                                                  "02_diffusion.png"]
    assert not (tmp_path / "model" / "discriminator.pt").exists()
    metrics = json.loads((tmp_path / "gan.json").read_text())
    assert metrics["arch"] == "ldm" and metrics["images_shown"] == 80 and metrics["latent_shape"] == [4, 8, 8]
    assert metrics["phases"] == ["autoencoder", "diffusion"] and set(metrics["parameters"]) == {"unet", "autoencoder"}
    model, config = load_generator(tmp_path / "model")
    assert isinstance(model, ConditionalDiffusion) and config.z_dim == 4 * 8 * 8
    assert float(model.latent_scale) != 1.0  # measured on the trained autoencoder's latents
    z = latents(6, config.z_dim, seed=0)
    images = sample_images(model, z, 16, batch_size=4)
    assert images.shape == (6, 1, 16, 16) and images.dtype == torch.uint8
    assert torch.equal(images, sample_images(model, z, 16, batch_size=6))  # DDIM: batching changes nothing
    assert gan_only("embed", tmp_path / "model").startswith("gan.arch ldm: embed needs a GAN")


def test_label_tokens_and_the_guided_sampler_use_the_labels():
    tokens = LabelTokens(4)
    labels = torch.zeros(2, len(LABELS))
    labels[1, 3] = 1
    out = tokens(labels)
    assert out.shape == (2, 15, 4) and not torch.equal(out[0, 3], out[1, 3]) and torch.equal(out[0, 4], out[1, 4])
    dropped = tokens(labels, torch.tensor([True, True]))
    assert torch.equal(dropped[0], dropped[1])  # the null token everywhere: the labels are gone
    config = DiffusionConfig(resolution=8, channels=[8, 8], attention_levels=[False, True], norm_groups=4,
                             head_channels=4, label_dim=8, train_timesteps=20, sample_steps=2)
    torch.manual_seed(0)
    model = ConditionalDiffusion(config).eval()
    with torch.no_grad():  # MONAI zero-initialises the output layers: untrained, every label would give one film
        for p in model.parameters():
            p.normal_(0, 0.2)
    z = torch.randn(2, config.z_dim)
    one = torch.zeros(2, len(LABELS))
    other = one.clone()
    other[:, 5] = 1
    assert not torch.equal(model.sample(z, one), model.sample(z, other))
    assert torch.equal(model.sample(z, one), model.sample(z, one))  # deterministic DDIM
    assert not torch.equal(model.sample(z, one, guidance=0.0), model.sample(z, one, guidance=3.0))


def test_the_unet_samples_in_the_configured_dtype_and_the_update_in_float32():
    seen = []
    for dtype in ("bfloat16", "float32"):
        config = DiffusionConfig(resolution=8, channels=[8, 8], attention_levels=[False, True], norm_groups=4,
                                 head_channels=4, label_dim=8, train_timesteps=20, sample_steps=2, sample_dtype=dtype)
        model = ConditionalDiffusion(config).eval()
        hook = model.unet.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
        films = model.sample(torch.randn(2, config.z_dim), torch.zeros(2, len(LABELS)))
        hook.remove()
        assert films.dtype == torch.float32
    assert seen == [torch.bfloat16] * 2 + [torch.float32] * 2


class NoiseOracle(nn.Module):
    """A UNet that knows the noise: it returns ``noise`` (what a perfect denoiser predicts) for every input."""

    def __init__(self, noise: torch.Tensor):
        super().__init__()
        self.noise = noise

    def forward(self, x, timesteps, context=None):
        return self.noise.repeat(len(x) // len(self.noise), 1, 1, 1)


def test_the_ddim_chain_starts_at_pure_noise_and_lands_on_the_clean_film():
    assert ddim_timesteps(1000, 10).tolist() == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    with pytest.raises(ValueError, match="do not divide"):
        ddim_timesteps(1000, 3)
    with pytest.raises(ValueError, match="must divide"):
        DiffusionParams(train_timesteps=1000, sample_steps=3)
    config = DiffusionConfig(resolution=8, channels=[8, 8], attention_levels=[False, True], norm_groups=4,
                             head_channels=4, label_dim=8, train_timesteps=1000, sample_steps=10,
                             sample_dtype="float32")
    model = ConditionalDiffusion(config).eval()
    clean = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    a = DDIMScheduler(num_train_timesteps=1000, schedule=config.beta_schedule).alphas_cumprod[999]
    start = a.sqrt() * clean + (1 - a).sqrt() * noise  # the clean film noised to t = 999
    model.unet = NoiseOracle(noise)
    films = model.sample(start.flatten(1), torch.zeros(2, len(LABELS)))
    # with MONAI's own spacing (999, 888, ..., 111, 0) the film keeps the noise of t = 11: off by up to 0.6
    torch.testing.assert_close(films, clean, atol=1e-4, rtol=0)


# ---------------------------------------------------------------- conditional sampling, with stand-ins

SIDE = 15  # one 3 x 3 patch per finding: 14 patches in a 15 x 15 film


def patch_slices(c: int) -> tuple[slice, slice]:
    """Where finding ``c`` (1..14) shows in a stand-in film."""
    y, x = divmod(c - 1, 5)
    return slice(3 * y, 3 * y + 3), slice(3 * x, 3 * x + 3)


class PatchModel(nn.Module):
    """Stands in for ``ConditionalDiffusion``: a film is dark with a bright patch per finding in its labels,
    except that the draw misses every finding when the first noise entry is negative (so some draws are
    rejected and drawn again) and the patient's noise shifts the background."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.config = DiffusionConfig(resolution=SIDE)
        self.calls = []

    def sample(self, z, labels, guidance=None, steps=None):
        self.calls.append(labels.clone())
        films = torch.full((len(z), 1, SIDE, SIDE), -1.0)
        films += 0.05 * torch.tanh(z[:, 1:2, None, None])
        for i in range(len(z)):
            if z[i, 0] < 0:
                continue
            for c in torch.nonzero(labels[i, 1:] > 0).flatten().tolist():
                ys, xs = patch_slices(c + 1)
                films[i, 0, ys, xs] = 1.0
        return films


class PatchReader(nn.Module):
    """Stands in for the labeller: one logit per finding from the mean of its patch (No Finding: none bright)."""

    def forward(self, x):
        logits = torch.full((len(x), len(LABELS)), -5.0)
        for c in range(1, len(LABELS)):
            ys, xs = patch_slices(c)
            logits[:, c] = 10 * (x[:, 0, ys, xs].mean(dim=(1, 2)) - x.mean(dim=(1, 2, 3)))
        logits[:, 0] = 5.0 - 10 * logits[:, 1:].gt(0).any(dim=1).float()
        return logits


def patch_scorer() -> Scorer:
    return Scorer("patch", PatchReader(), SIDE, np.full(len(LABELS), 0.6))


def source_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Source label vectors: findings co-occurring at random, a third of the films with none."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(LABELS))) < 0.12).astype(int)
    labels[: n // 3, 1:] = 0
    labels[:, 0] = ~labels[:, 1:].any(axis=1)
    return pd.DataFrame(labels, columns=list(LABELS)).assign(patient_id=np.arange(n))


def test_conditional_sampling_honours_the_labels_checked_by_the_labeller():
    model, labeller = PatchModel(), patch_scorer()
    source = source_table()
    classes = np.repeat(np.arange(len(LABELS)), 4)
    counts = np.full(len(classes), 3)
    params = ArchiveParams(max_attempts=4, retries=2, local_std=0.2)
    noise = torch.Generator().manual_seed(1)
    record, made = sample_patients(model, labeller, labeller, ConditionBank(source), classes, counts, params, 7, noise)
    assert record.success.all() and (record.attempts > 1).any()  # a draw the labeller rejects is drawn again
    first = model.calls[0]  # the first draw of every patient: a source film's labels that carry its class
    assert carries(first.numpy().astype(np.uint8), classes).all()
    assert first[:, 1:].sum(dim=1).max() > 1  # findings co-occur as in the source, not one-hot
    assert made.images.shape == (len(classes) * 3, SIDE, SIDE) and made.images.dtype == np.uint8
    follow_ups = model.calls[-1].numpy().astype(np.uint8)  # the two follow-ups of each patient, after its first film
    assert np.array_equal(follow_ups, np.repeat(follow_ups[::2], 2, axis=0))
    conditioned = np.repeat(follow_ups[::2], 3, axis=0)  # each delivered film's labels drawn with
    # the labeller reads the conditioned labels back in nearly every film (a follow-up's noise can miss them)
    assert (made.labels[:, 1:] == conditioned[:, 1:]).all(axis=1).mean() >= 0.8
    assert (made.labels[::3, 1:] == conditioned[::3, 1:]).all()  # every first film: the accepted draw
    assert carries(made.labels, made.target).mean() >= 0.8
    _, made_again = sample_patients(model, labeller, labeller, ConditionBank(source), classes, counts, params, 7,
                                        torch.Generator().manual_seed(1))
    assert np.array_equal(made.images, made_again.images)  # deterministic for a seed


def test_conditions_drawn_per_class_give_back_the_source_label_mix():
    """Classes drawn in the share of the source's films they account for (a film with k findings counts
    1/k under each) give back the source's label mix: the bank weighs a class's films by 1/k. Drawn
    uniformly within a class, the films with many findings come up too often."""
    source = source_table(600, seed=2)
    labels = source[list(LABELS)].to_numpy()
    k = labels[:, 1:].sum(axis=1)
    share = np.array([(1 / np.maximum(k, 1))[labels[:, c] > 0].sum() for c in range(len(LABELS))])
    rng = np.random.default_rng(0)
    classes = rng.choice(len(LABELS), 40_000, p=share / share.sum())
    drawn = ConditionBank(source).draw(classes, rng)
    np.testing.assert_allclose(drawn.mean(axis=0), labels.mean(axis=0), atol=0.01)
    uniform = np.array([labels[rng.choice(np.flatnonzero(labels[:, c] > 0))] for c in classes[:4000]])
    assert uniform[:, 1:].sum(axis=1).mean() > labels[:, 1:].sum(axis=1).mean() + 0.1


def test_a_draw_with_findings_its_condition_lacks_is_drawn_again():
    """Half the stand-in's draws light two findings their condition does not carry. With
    ``archive_extra_findings`` 1 no accepted first film shows both; with 14 (anything goes) some do."""

    class Spurious(PatchModel):
        def sample(self, z, labels, guidance=None, steps=None):
            films = super().sample(z, labels)
            for i in torch.nonzero(z[:, 2] < 0).flatten().tolist():
                for c in [c for c in range(1, len(LABELS)) if labels[i, c] == 0][:2]:
                    ys, xs = patch_slices(c)
                    films[i, 0, ys, xs] = 1.0
            return films

    labeller, source = patch_scorer(), source_table()
    classes = np.repeat(np.arange(len(LABELS)), 4)
    params = ArchiveParams(max_attempts=6, retries=2)
    extras = {}
    for allowed in (1, 14):
        model = Spurious()
        model.config = replace(model.config, archive_extra_findings=allowed)
        record, made = sample_patients(model, labeller, labeller, ConditionBank(source), classes,
                                       np.ones(len(classes), dtype=np.int64), params, 3, torch.Generator().manual_seed(0))
        assert record.success.mean() > 0.9
        conditions = model.calls[0].numpy()[record.success]  # each patient's condition, drawn once
        extras[allowed] = (made.labels[:, 1:].astype(bool) & ~(conditions[:, 1:] > 0)).sum(axis=1)
    assert extras[1].max() <= 1 and extras[14].max() == 2


def test_a_patient_the_labeller_never_confirms_is_not_delivered():
    model, labeller = PatchModel(), patch_scorer()
    bank = ConditionBank(source_table().assign(Hernia=0))  # no source film carries Hernia
    hernia = LABELS.index("Hernia")
    model.sample = lambda z, labels, **_: torch.full((len(z), 1, SIDE, SIDE), -1.0)  # draws nothing, ever
    params = ArchiveParams(max_attempts=2, retries=1)
    record, made = sample_patients(model, labeller, labeller, bank, np.asarray([hernia]), np.asarray([3]), params, 0,
                                   torch.Generator().manual_seed(0))
    assert not record.success.any() and record.attempts.tolist() == [4] and len(made.images) == 0


def test_the_plan_draws_more_of_a_class_confirmed_less_often_and_none_of_one_never_confirmed():
    """One draw per patient: about half are confirmed (the stand-in misses every finding for half the noise),
    Hernia never. The archive is still delivered in full: each class's candidates are divided by the share of
    its patients confirmed so far, and Hernia leaves the plan after the pilot."""
    from cxrsynth.synthesis.archive_builder import build_archive, patient_success

    hernia = LABELS.index("Hernia")

    class NoHernia(PatchModel):
        def sample(self, z, labels, guidance=None, steps=None):
            films = super().sample(z, labels)
            ys, xs = patch_slices(hernia)
            films[:, 0, ys, xs] = -1.0
            return films

    model, labeller = NoHernia(), patch_scorer()
    source = source_table(600)
    params = ArchiveParams(size=300, follow_ups=[2, 2], pilot_patients=3, oversample=1.0, max_shortfall=0.05,
                           max_attempts=1, retries=0, max_minutes=None, privacy_filter=False)
    build = build_archive(model, SIDE, labeller, labeller, source, params,
                          make_patients=patient_maker(model, labeller, labeller, source))
    planned = build.planned.set_index("class")
    assert planned["delivered_images"].sum() >= 0.95 * params.size  # about half without the division
    assert planned.loc["Hernia", "jobs"] == params.pilot_patients and planned.loc["Hernia", "delivered_images"] == 0
    success = patient_success([build.optimisation], len(LABELS))
    assert success[hernia] == 0 and 0.3 < success[0] < 0.7
    # No Finding (the plan's main class here): candidates for about twice its planned patients after the pilot
    planned_patients = (planned.loc["No Finding", "planned_images"] - 2 * params.pilot_patients) / 2
    assert planned.loc["No Finding", "jobs"] - params.pilot_patients >= 1.5 * planned_patients


def test_patient_success_is_the_share_delivered_per_class():
    from cxrsynth.synthesis.archive_builder import patient_success
    from cxrsynth.synthesis.class_optimisation import OptimisationResult

    def result(classes, success):
        n = len(classes)
        return OptimisationResult(np.asarray(classes), np.zeros(n), np.asarray(success, bool), torch.zeros(n, 2),
                                  np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.int64), np.ones(n, np.int64))

    rates = patient_success([result([0, 0, 2], [1, 0, 0]), result([0, 2], [1, 0])], 4)
    assert rates.tolist() == [2 / 3, 1.0, 0.0, 1.0]  # classes 1 and 3 not tried: 1


def test_privacy_enhancing_sampling_replaces_a_planted_near_copy(tmp_path):
    """The archive's filter with the diffusion generator's draws: a film within a few grey levels of a
    training film is flagged by the audit's nearest-neighbour tests, and its patient drawn again."""
    from test_privacy import TinyFeatures, local_store

    import cxrsynth.privacy.audit_inputs as setup_module
    from cxrsynth.config.privacy import PrivacyParams
    from cxrsynth.metrics.extractors import Extractor
    from cxrsynth.privacy.audit_inputs import audit_setup
    from cxrsynth.privacy.filter import audit_check, filter_archive, regenerator
    from cxrsynth.privacy.verifier import missing_pairs, save_untrained
    from cxrsynth.synthesis.archive_builder import build_archive

    patch = pytest.MonkeyPatch()
    patch.setattr(setup_module, "load_classifier", lambda folder, device: (TinyFeatures().eval(), {}, {"input_size": 16}))
    patch.setattr(setup_module, "classifier_extractor", lambda model, size: Extractor("tiny", 8, model, size))
    try:
        store, split = local_store(tmp_path, 40, 1)
        table = pd.read_csv(split)
        train, test = (table.loc[table["split"] == s, "patient_id"].to_numpy() for s in ("train", "test"))
        save_untrained(tmp_path / "verifier", missing_pairs(train, test), PrivacyParams(), 32, train, test)
        setup = audit_setup(store, split, tmp_path / "classifier", tmp_path / "verifier",
                            PrivacyParams(batch_size=16), torch.device("cpu"))
        check = audit_check(setup)

        class Side32(PatchModel):  # the stand-in at the audit's 32 px: patch films in the corner
            def sample(self, z, labels, guidance=None, steps=None):
                films = torch.full((len(z), 1, 32, 32), -1.0)
                films[:, :, :SIDE, :SIDE] = super().sample(z, labels)
                return films

        model = Side32()
        model.config = DiffusionConfig(resolution=32)
        labeller = Scorer("patch", _Crop(PatchReader()), 32, np.full(len(LABELS), 0.6))
        source = source_table()
        params = ArchiveParams(size=40, follow_ups=[2, 2], pilot_patients=1, oversample=1.0, max_shortfall=0.2,
                               max_attempts=3, retries=2, max_minutes=None)
        make = patient_maker(model, labeller, labeller, source)
        build = build_archive(model, 32, labeller, labeller, source, params, make_patients=make)
        assert not check(build.images)[0].any()
        reference = setup.auditor.reference_images.numpy()
        near = np.clip(reference[3].astype(int) + np.random.default_rng(0).integers(-3, 4, reference[3].shape), 0, 255)
        planted = build.images.copy()
        planted[0] = near.astype(np.uint8)  # patient 0's first film: a near-copy of a training film
        assert check(planted)[0][0]
        regenerate = regenerator(model, 32, labeller, labeller, params, "cpu", make)
        out, record = filter_archive(replace(build, images=planted), check, regenerate, rounds=2,
                                     max_replaced_fraction=0.5, seed=0)
        assert record.patients_flagged_before == 1 and record.replaced_patients == 1 and record.dropped_patients == 0
        assert not check(out.images)[0].any() and len(out.images) == len(build.images)
        first_patient = (out.table["Patient ID"] == out.table["Patient ID"].iloc[0]).to_numpy()
        target = LABELS.index(out.table["Target Label"].iloc[0])
        labels = out.table.loc[first_patient, "Finding Labels"].str.split("|")
        assert all((LABELS[target] in parts) or (target == 0 and parts == ["No Finding"]) for parts in labels)
    finally:
        patch.undo()


class _Crop(nn.Module):
    """The patch reader on the top-left 15 x 15 corner of a 32 px film, as the stand-in draws it."""

    def __init__(self, reader):
        super().__init__()
        self.reader = reader

    def forward(self, x):
        return self.reader(x[:, :, :SIDE, :SIDE])


# ---------------------------------------------------------------- params and skipped stages

def test_one_param_selects_the_diffusion_generator_and_its_settings_are_checked():
    params = GANParams(arch="ddpm")
    assert params.is_diffusion and not GANParams().is_diffusion
    with pytest.raises(ValueError, match="attention_levels"):
        GANParams(arch="ddpm", diffusion={"channels": [32, 64], "attention_levels": [False, False, True]})
    with pytest.raises(ValueError, match="multiple of norm_groups"):
        GANParams(arch="ldm", diffusion={"ae_channels": [30, 60]})
    with pytest.raises(ValueError, match="extra"):
        GANParams(arch="ddpm", diffusion={"steps": 10})


def test_gan_only_stages_skip_a_diffusion_generator_and_say_why(tmp_path):
    gan = tmp_path / "model"
    gan.mkdir()
    (gan / "config.json").write_text(json.dumps({"arch": "ddpm"}))
    (tmp_path / "params.yaml").write_text("embed: {}\nclassifier: {}\n")
    validate_params(tmp_path)
    for stage, extra in (("d_classifier", []), ("embed", ["--figure", "pairs.png"]), ("generator", [])):
        outs = ["--out", f"out_{stage}"] + ([] if stage == "generator" else ["--metrics", f"{stage}.json"])
        command = [sys.executable, str(ROOT / "stages" / f"{stage}.py"), "--gan", str(gan), "--store", "x",
                   "--split", "y", *outs, *extra]
        if stage == "generator":
            command += ["--classifier", "c", "--d-classifier", "d"]
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"{stage}: skipped (gan.arch ddpm:" in result.stdout
        assert skip_reason(tmp_path / f"out_{stage}").startswith("gan.arch ddpm")
        if stage != "generator":
            assert skip_reason(tmp_path / f"{stage}.json").startswith("gan.arch ddpm")
    assert (tmp_path / "pairs.png").read_bytes()[:4] == b"\x89PNG"


def test_the_archive_scorers_without_a_discriminator(tmp_path):
    from cxrsynth.errors import InputError
    from cxrsynth.skipped import write_skipped
    from cxrsynth.synthesis import comparison

    write_skipped("d_classifier", "gan.arch ddpm: no discriminator", folders=[tmp_path / "d"])
    original = comparison.load_scorer
    comparison.load_scorer = lambda folder, device, name: name
    try:
        assert comparison.load_scorers("c", tmp_path / "d") == {"densenet": "densenet"}
        with pytest.raises(InputError, match="archive.scorer: discriminator is not available"):
            comparison.load_scorers("c", tmp_path / "d", wanted="discriminator")
    finally:
        comparison.load_scorer = original


def summary(arch: str, ratio: float, precision: float) -> dict:
    return {"arch": arch, "data_source": "demo", "revision": "abc1234def", "resolution": 32, "images_shown": 1000,
            "table2": {"class_generated": 0.8 * ratio, "real": 0.8, "ratio_to_real": ratio},
            "table1": {"classifier": {"real_vs_generated": 10.0, "stratified_halves": 1.0}},
            "figure6": {"labels_rarer_in_generated": 3, "labels_compared": 12},
            "archive": {"images": 40, "delivered_fraction": 1.0, "labels_within_tolerance": 14,
                        "label_mix_max_deviation_pct": 1.5},
            "fidelity_diversity": {"classifier": {"precision": precision, "recall": 0.5, "density": 1.0,
                                                  "coverage": 0.6}},
            "memorisation": {"before_filter": 0.02, "after_filter": 0.0},
            "privacy": {"flagged_before_filter": 5, "flagged_after_filter": 0, "patients_replaced": 4,
                        "flagged_fraction_written": 0.0},
            "cost": {"gflop_per_film": 0.04 if arch == "pggan" else 5.0, "evaluations_per_film": 1}}


def test_which_generator_puts_each_run_beside_the_papers_gaps(tmp_path):
    from cxrsynth.report.generators import comparison_table, read_summaries, which_generator_section
    from cxrsynth.report.sources import Metrics

    for arch, ratio in (("ddpm", 0.9), ("pggan", 0.95)):
        written = summary(arch, ratio, 0.7)
        if arch == "pggan":  # a run from before the bootstrap intervals has none
            written["table2"]["ratio_interval"] = {"lo": 0.91, "hi": 0.975, "level": 0.95}
        (tmp_path / f"{arch}.json").write_text(json.dumps(written))
    found = read_summaries(tmp_path)
    assert list(found) == ["pggan", "ddpm"]  # the paper's generator first
    table = comparison_table(found)
    assert list(table.columns) == ["PGGAN, class-optimised (Algorithm 1)", "diffusion (pixel), conditionally sampled",
                                   "Packhäuser et al. 2023 (LDM, NIH)", "Segal et al. 2021 (PGGAN, NIH)"]
    interval = table.loc["Table 2: that ratio's bootstrap interval (test patients)"].tolist()
    assert interval == ["0.910 to 0.975 (95%)", "–", "–", "–"]
    gap = table.loc["Table 2: gap to real"].tolist()
    assert gap == ["5.0%", "10.0%", "3.5%", "7.3%"]
    assert table.loc["precision (fidelity)"].tolist()[:2] == ["0.700", "0.700"]
    assert table.loc["precision (fidelity)"].tolist()[2:] == ["–", "–"]  # the papers give no such number
    section = which_generator_section(Metrics(tmp_path), found, demo=True)
    assert section.id == "which_generator" and any("not a comparable number" in getattr(b, "text", "")
                                                   for b in section.blocks)
