"""The trained discriminator re-purposed: its last layer swapped for a new head.

Paper 001 (section 4.3) scores class optimisation with the discriminator turned into a
15-label classifier, and embeds images with the discriminator turned into an encoder
predicting z. Both keep the whole discriminator body and weights and replace only the
final layer. For the PGGAN the minibatch-stddev statistic is computed over groups of one
(a constant), so an image's output never depends on the other images in its batch.

The heads take the same input as the DenseNet (``classifier.normalise``d grey images) and
map it back to the GAN's [-1, 1] scale, so every classifier here is used the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from cxrsynth.errors import InputError
from cxrsynth.models.classifier import GREY_MEAN, GREY_STD
from cxrsynth.models.gan import GANConfig, build_networks
from cxrsynth.models.layers import EqualizedLinear, MinibatchStdDev
from cxrsynth.models.pggan import PGGANDiscriminator
from cxrsynth.models.saved_classifier import read_saved_classifier


class DiscriminatorHead(nn.Module):
    """A GAN discriminator with ``out_features`` outputs at a fixed ``resolution``."""

    def __init__(self, discriminator: nn.Module, resolution: int, out_features: int):
        super().__init__()
        self.resolution, self.out_features = resolution, out_features
        if isinstance(discriminator, PGGANDiscriminator):
            head = discriminator.blocks["b4"]
            head[0] = MinibatchStdDev(group_size=1)
            head[-1] = EqualizedLinear(head[-1].weight.shape[1], out_features, gain=1.0)
        else:  # the DCGAN: its last layer is a 4x4 convolution to one score
            last = discriminator.net[-1]
            discriminator.net[-1] = nn.Conv2d(last.in_channels, out_features, 4, 1, 0)
        self.discriminator = discriminator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``normalise``d grey images (N, 1, r, r) → (N, out_features)."""
        gan_scale = (x * GREY_STD + GREY_MEAN) * 2.0 - 1.0
        if isinstance(self.discriminator, PGGANDiscriminator):
            out = self.discriminator.blocks["b4"](self.discriminator.trunk(gan_scale, self.resolution, 1.0))
        else:
            out = self.discriminator.net(gan_scale)
        return out.flatten(1)


def discriminator_head(gan_config, out_features: int, d_state: dict | None = None) -> DiscriminatorHead:
    """Build the discriminator of ``gan_config`` (a GANConfig), load ``d_state`` (its trained weights,
    before the head swap) and give it a fresh ``out_features`` head."""
    _, discriminator = build_networks(gan_config)
    if d_state is not None:
        discriminator.load_state_dict(d_state)
    return DiscriminatorHead(discriminator, gan_config.resolutions[-1], out_features)


def load_d_classifier(folder, device: str | torch.device = "cpu") -> tuple[DiscriminatorHead, dict[str, float], dict]:
    """Load the re-purposed discriminator saved by the ``d_classifier`` stage: (network in eval mode
    taking normalised input, thresholds, config)."""
    state, thresholds, config = read_saved_classifier(folder, device)
    if config["architecture"] != "discriminator":
        raise InputError(f"{folder}: holds a {config['architecture']} classifier, not a re-purposed discriminator")
    gan = {k: v for k, v in config["gan"].items() if k != "resolution"}
    model = discriminator_head(GANConfig(**gan), len(config["labels"]))
    model.load_state_dict(state)
    return model.to(device).eval(), thresholds, config
