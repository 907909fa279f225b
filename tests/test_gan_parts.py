"""PGGAN and DCGAN parts: equalised lr, pixel norm, minibatch stddev, gradient penalty, fade-in, schedule, config."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, fields
from pathlib import Path

import pytest
import torch

from cxrsynth.config.gan import GANParams
from cxrsynth.models.dcgan import DCGANDiscriminator, DCGANGenerator
from cxrsynth.models.gan import GANConfig, build_networks
from cxrsynth.models.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    downsample2,
    fade_real,
    pixel_norm,
    upsample2,
)
from cxrsynth.models.pggan import PGGANDiscriminator, PGGANGenerator
from cxrsynth.training.ema import update_ema, warmup_decay
from cxrsynth.training.gan_losses import gradient_penalty, wgan_gp_d_loss
from cxrsynth.training.gan_schedule import ProgressiveSchedule

CHANNELS = [16, 16, 8, 8]  # 4, 8, 16, 32


def test_equalized_conv_scales_weight_not_bias():
    conv = EqualizedConv2d(8, 4, 3, padding=1)
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(8 * 9))
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.15) and torch.all(conv.bias == 0)
    with torch.no_grad():
        conv.bias.fill_(0.5)
    x = torch.randn(2, 8, 5, 5)
    expected = torch.nn.functional.conv2d(x, conv.weight * conv.scale, padding=1) + 0.5
    assert torch.allclose(conv(x), expected, atol=1e-6)
    linear = EqualizedLinear(50, 3, gain=1.0)
    assert linear.scale == pytest.approx(1 / math.sqrt(50))


def test_equalized_lr_keeps_activations_unit_scale():
    torch.manual_seed(0)
    conv = EqualizedConv2d(256, 256, 3, padding=1, gain=1.0)
    y = conv(torch.randn(4, 256, 8, 8))[:, :, 1:-1, 1:-1]
    assert y.std().item() == pytest.approx(1.0, abs=0.1)


def test_pixel_norm_by_hand():
    x = torch.tensor([[[[3.0]], [[4.0]]]])  # one pixel, features (3, 4): mean square 12.5
    assert torch.allclose(pixel_norm(x).flatten(), torch.tensor([3, 4]) / math.sqrt(12.5 + 1e-8))
    y = pixel_norm(torch.randn(2, 16, 4, 4) * 7)
    assert torch.allclose(y.pow(2).mean(dim=1), torch.ones(2, 4, 4), atol=1e-5)


def test_minibatch_std_shape_and_values():
    x = torch.randn(8, 3, 4, 4)
    out = MinibatchStdDev(4)(x)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], x)
    groups = x.reshape(4, 2, 3, 4, 4)  # sample n in group n mod 2
    expected = groups.std(dim=0, unbiased=False).mean(dim=(1, 2, 3))
    for n in range(8):
        assert torch.allclose(out[n, 3], expected[n % 2].expand(4, 4), atol=1e-5)
    same = MinibatchStdDev(4)(torch.ones(4, 2, 2, 2))
    assert torch.allclose(same[:, 2], torch.full((4, 2, 2), 1e-4), atol=1e-6)  # sqrt(1e-8)
    # a batch that 4 does not divide takes the largest group size that does: 14 per GPU -> groups of 2
    x = torch.randn(14, 1, 2, 2)
    out = MinibatchStdDev(4)(x)
    expected = x.reshape(2, 7, 1, 2, 2).std(dim=0, unbiased=False).mean(dim=(1, 2, 3))
    assert torch.allclose(out[:, 1, 0, 0], expected.repeat(2), atol=1e-5)
    three = torch.randn(3, 1, 2, 2)  # 3 per GPU at 1024 px: one group of 3
    assert torch.allclose(MinibatchStdDev(4)(three)[:, 1, 0, 0], three.std(dim=0, unbiased=False).mean().expand(3), atol=1e-5)


def test_gradient_penalty_by_hand():
    w = torch.tensor([0.6, 0.8, 1.0, 2.0]).view(1, 1, 2, 2)  # linear critic: gradient w everywhere
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    penalty, _ = gradient_penalty(critic, real, fake, torch.rand(3, 1, 1, 1))
    assert torch.allclose(penalty, torch.full((3,), (w.norm().item() - 1) ** 2))
    quadratic = lambda x: x.pow(2).flatten(1).sum(1)  # noqa: E731  gradient 2 x_hat
    eps = torch.tensor([0.25, 0.5, 1.0]).view(3, 1, 1, 1)
    penalty, _ = gradient_penalty(quadratic, real, fake, eps)
    x_hat = eps * real + (1 - eps) * fake
    assert torch.allclose(penalty, (2 * x_hat.flatten(1).norm(dim=1) - 1) ** 2, atol=1e-5)


def test_wgan_d_loss_by_hand():
    critic = lambda x: x.flatten(1).mean(1)  # noqa: E731
    real, fake = torch.full((2, 1, 2, 2), 2.0), torch.full((2, 1, 2, 2), -1.0)
    parts = wgan_gp_d_loss(critic, real, fake, torch.full((2, 1, 1, 1), 0.5))
    gp = (math.sqrt(4 * 0.25**2) - 1) ** 2  # gradient 1/4 per pixel
    assert parts["loss"].item() == pytest.approx(-1 - 2 + 10 * gp + 0.001 * 4)


@pytest.mark.parametrize("res", [8, 16, 32])
def test_generator_fade_in_continuity(res):
    torch.manual_seed(0)
    g = PGGANGenerator(z_dim=32, channels=CHANNELS).eval()
    z = torch.randn(4, 32)
    with torch.no_grad():
        old = g(z, res // 2)
        assert torch.allclose(g(z, res, alpha=0.0), upsample2(old), atol=1e-6)
        assert torch.allclose(g(z, res, alpha=1.0), g(z, res), atol=1e-6)
        mid = g(z, res, alpha=0.3)
        assert torch.allclose(mid, 0.7 * upsample2(old) + 0.3 * g(z, res), atol=1e-5)
    assert g(z, res).shape == (4, 1, res, res)


@pytest.mark.parametrize("res", [8, 16, 32])
def test_discriminator_fade_in_continuity(res):
    torch.manual_seed(0)
    d = PGGANDiscriminator(channels=CHANNELS).eval()
    x = torch.randn(4, 1, res, res)
    with torch.no_grad():
        assert torch.allclose(d(x, res, alpha=0.0), d(downsample2(x), res // 2), atol=1e-5)
        assert torch.allclose(d(x, res, alpha=1.0), d(x, res), atol=1e-6)
    assert d(x, res).shape == (4,)


def test_real_images_fade():
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(fade_real(x, 1.0), x)
    assert torch.allclose(fade_real(x, 0.0), upsample2(downsample2(x)))


def test_every_block_exists_from_the_start():
    g, d = PGGANGenerator(32, CHANNELS), PGGANDiscriminator(CHANNELS)
    assert list(g.blocks) == ["b4", "b8", "b16", "b32"] and set(d.blocks) == {"b4", "b8", "b16", "b32"}
    assert set(g.state_dict()) == set(PGGANGenerator(32, CHANNELS).state_dict())


def test_dcgan_matches_paper_003_tables():
    g, d = DCGANGenerator(), DCGANDiscriminator()
    assert sum(p.numel() for p in g.parameters()) == 3_574_656  # Table 1
    assert sum(p.numel() for p in d.parameters()) == 2_763_520  # Table 2
    assert g(torch.randn(2, 100)).shape == (2, 1, 64, 64) and d(torch.randn(2, 1, 64, 64)).shape == (2,)
    assert g(torch.randn(3, 100)).abs().max() <= 1.0


def test_ema_update():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    ema = copy.deepcopy(a)
    update_ema(ema, b, decay=0.75)
    assert torch.allclose(ema.weight, 0.75 * a.weight + 0.25 * b.weight)


def test_ema_warmup_reaches_the_configured_decay():
    assert warmup_decay(0.999, 0) == pytest.approx(0.1)
    assert warmup_decay(0.999, 90) == pytest.approx(0.91)
    assert warmup_decay(0.999, 10**6) == 0.999


def test_schedule():
    s = ProgressiveSchedule([4, 8, 16], fade_images=[0, 100, 200], stable_images=[50, 100, 200], batch_sizes=[16, 8, 4])
    assert [p.name for p in s.phases] == ["4-stable", "8-fade", "8-stable", "16-fade", "16-stable"]
    assert s.total_images == 650
    assert s.at(0)[0].resolution == 4 and s.at(0)[1] == 1.0
    phase, alpha = s.at(100)
    assert phase.name == "8-fade" and alpha == pytest.approx(0.5) and phase.batch_size == 8
    assert s.at(150)[1] == 1.0 and s.at(10_000)[0].name == "16-stable"


def test_gan_config_defaults_are_the_params_sections():
    params, config = GANParams(), GANConfig()
    assert [f.name for f in fields(GANConfig)] == [
        "arch", "z_dim", "channels", "fade_images", "stable_images", "batch_sizes", "lr", "betas", "gp_lambda",
        "drift", "ema_decay", "group_size", "seed", "log_every", "n_samples", "dcgan_images"]  # checkpoints' order
    for f in fields(GANConfig):
        assert getattr(config, f.name) == getattr(params, f.name), f.name
    assert config.channels == [512, 512, 512, 512] and config.log_every == 20
    assert GANConfig().channels is not config.channels  # a fresh list each time


def test_gan_config_from_params_serialises_as_before():
    """What ``train_gan`` writes beside the generator (and saves in checkpoints) for the demo's params."""
    from cxrsynth.models.gan import gan_config

    config = gan_config(GANParams(resolution=8, channels=[32, 16], fade_images=[0, 64], stable_images=[64, 64],
                                  batch_sizes=[8, 4], log_every=5))
    assert json.dumps(asdict(config)) == (
        '{"arch": "pggan", "z_dim": 512, "channels": [32, 16], "fade_images": [0, 64], "stable_images": [64, 64], '
        '"batch_sizes": [8, 4], "lr": 0.001, "betas": [0.0, 0.99], "gp_lambda": 10.0, "drift": 0.001, '
        '"ema_decay": 0.999, "group_size": 4, "seed": 0, "log_every": 5, "n_samples": 64, "dcgan_images": 6000}')
    assert gan_config(GANParams(arch="dcgan")).z_dim == 100


def test_gan_config_schedule_lists():
    config = GANConfig(channels=[8, 8, 4], fade_images=[0, 10, 20], stable_images=[5, 10, 20], batch_sizes=[4, 2, 2])
    s = ProgressiveSchedule(**config.schedule_lists())
    assert [p.name for p in s.phases] == ["4-stable", "8-fade", "8-stable", "16-fade", "16-stable"]
    assert s.total_images == 65 and s.at(15)[0].batch_size == 2
    dcgan = ProgressiveSchedule(**GANConfig(arch="dcgan", dcgan_images=96).schedule_lists())
    assert [(p.name, p.length, p.batch_size) for p in dcgan.phases] == [("64-stable", 96, 32)]


def test_build_networks_by_arch():
    g, d = build_networks(GANConfig(z_dim=8, channels=[8, 4], group_size=2))
    assert isinstance(g, PGGANGenerator) and isinstance(d, PGGANDiscriminator) and g.resolutions == [4, 8]
    g, d = build_networks(GANConfig(arch="dcgan", z_dim=100))
    assert isinstance(g, DCGANGenerator) and isinstance(d, DCGANDiscriminator)
    with pytest.raises(ValueError, match="unknown architecture 'stylegan'"):
        build_networks(GANConfig(arch="stylegan"))


def test_training_code_covers_the_networks_not_the_params_models():
    from cxrsynth.baselines.module import BaselineModule
    from cxrsynth.training.gan_checkpoints import training_code

    package = Path(__file__).resolve().parents[1] / "src" / "cxrsynth"
    gan = {str(p.relative_to(package)) for p in training_code()}
    assert {"models/gan.py", "models/pggan.py", "models/dcgan.py", "models/layers.py", "training/gan_module.py",
            "training/gan_schedule.py", "training/gan_losses.py", "training/ema.py"} <= gan
    assert not any(name.startswith("config/") for name in gan)
    baselines = {str(p.relative_to(package)) for p in training_code(BaselineModule)}
    assert {"models/fc_gan.py", "models/cgan.py", "models/conv_gan.py", "models/vae.py",
            "baselines/systems.py", "baselines/module.py"} <= baselines
