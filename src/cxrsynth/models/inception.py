"""The FID Inception-v3 (pool3, 2048 features) with the weights pytorch-fid uses.

The network is torchvision's Inception-v3 with the blocks that differ in the original
TensorFlow FID graph swapped for pytorch-fid's own (``FIDInceptionA/C/E_1/E_2``), so its
numbers compare with the literature. Input follows pytorch-fid's convention: values in
[0, 1], bilinear resize to 299x299 (``align_corners=False``), then scaled to [-1, 1]; grey
films are replicated to three channels. Nothing is downloaded: the weights come from a
given file or a folder the stage names (the pipeline's ``weights/inception/``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

#: pytorch-fid's weight file name (its ``FID_WEIGHTS_URL``), as stored in the torch hub cache.
FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FEATURES = 2048


def find_fid_weights(path: str | Path | None = None, folder: str | Path | None = None) -> Path | None:
    """``path`` if given (error if missing), else ``folder``'s copy, else None."""
    from cxrsynth.models.weights import find_weights

    return find_weights(path, folder, FID_WEIGHTS_FILE, "fid.inception_weights")


def fid_inception_v3(weights: str | Path | None = None) -> nn.Module:
    """torchvision's Inception-v3 with pytorch-fid's FID blocks (1008 classes, no aux head): the module
    layout of pytorch-fid's weight file, loaded from ``weights`` when given (else random)."""
    from pytorch_fid.inception import (
        FIDInceptionA,
        FIDInceptionC,
        FIDInceptionE_1,
        FIDInceptionE_2,
    )
    from torchvision.models.inception import Inception3

    net = Inception3(num_classes=1008, aux_logits=False, init_weights=weights is None)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    if weights is not None:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net


#: The layers up to pool3, in order.
POOL3_LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool")


class FIDInception(nn.Module):
    """uint8 or [0, 1] grey (N, 1, H, W) → pool3 features (N, 2048)."""

    def __init__(self, weights: str | Path | None = None, network: nn.Module | None = None):
        super().__init__()
        net = network if network is not None else fid_inception_v3(weights)
        self.body = nn.Sequential(*(getattr(net, name) for name in POOL3_LAYERS))
        self.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return torch.flatten(self.body(2.0 * x - 1.0), 1)
