"""DenseNet-121 (paper 001, section 3.3) or ResNet-18 (paper 002) multi-label classifier for
single-channel chest films.

Both expose ``features`` (the convolutional trunk) and ``classifier`` (the last linear layer), so
feature extraction (FID) and scoring do not depend on the architecture. Grey input is handled
by adapting the first convolution to one input channel. With ImageNet weights the three RGB
filters are summed, which gives exactly the response to a grey image replicated into three
channels, at a third of that layer's cost. ImageNet weights are used when found locally (a
path, or torchvision's file in a folder the stage names: the pipeline's ``weights/<arch>/``);
nothing is downloaded, and without them the network starts from random initialisation with a
warning, or, with ``pretrained: imagenet``, not at all.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import densenet121, resnet18

from cxrsynth.errors import MissingInputError
from cxrsynth.models.weights import find_weights
from cxrsynth.resize import resize_to  # the classifier's input resize (also imported from here)

#: The files torchvision's ``IMAGENET1K_V1`` weights download into the hub cache, by architecture.
IMAGENET_FILES = {"densenet121": "densenet121-a639ec97.pth", "resnet18": "resnet18-f37072fd.pth"}
IMAGENET_FILE = IMAGENET_FILES["densenet121"]
ARCHITECTURES = tuple(IMAGENET_FILES)
#: Single-channel normalisation: the mean of ImageNet's per-channel means and stds.
GREY_MEAN, GREY_STD = 0.449, 0.226

# Old DenseNet checkpoints name layers 'norm.1' where the module now says 'norm1'.
_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


def _file(arch: str) -> str:
    if arch not in IMAGENET_FILES:
        raise ValueError(f"classifier.arch: unknown architecture {arch!r} ({' | '.join(ARCHITECTURES)})")
    return IMAGENET_FILES[arch]


def find_imagenet_weights(path: str | Path | None = None, folder: str | Path | None = None,
                          arch: str = "densenet121") -> Path | None:
    """The ImageNet file of ``arch``: ``path`` if given, else ``folder``'s copy, else None."""
    return find_weights(path, folder, _file(arch), "classifier.weights_path")


def imagenet_weights(pretrained: str, weights_path: str | Path | None = None,
                     weights_dir: str | Path | None = None, arch: str = "densenet121") -> Path | None:
    """The file ``pretrained`` asks for: None for 'none'; for 'imagenet' a one-line error when there is
    none; for 'auto' None with a warning (random initialisation)."""
    if pretrained == "none":
        return None
    if pretrained not in ("auto", "imagenet"):
        raise ValueError(f"classifier.pretrained: unknown value {pretrained!r} (auto | imagenet | none)")
    found = find_imagenet_weights(weights_path, weights_dir, arch)
    if found is None:
        where = f"in {weights_dir}" if weights_dir else "given"
        if pretrained == "imagenet":
            raise MissingInputError(f"classifier.pretrained: imagenet, but no {_file(arch)} {where} "
                                    "(put it there or set classifier.weights_path)")
        warnings.warn(f"ImageNet {arch} weights ({_file(arch)}) not {where}; training from random "
                      "initialisation", stacklevel=2)
    return found


def load_imagenet_state(path: Path) -> dict[str, torch.Tensor]:
    """Read an ImageNet state dict, renaming old-style DenseNet keys."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    renamed = {}
    for key, value in state.items():
        match = _OLD_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


class GreyResNet18(nn.Module):
    """torchvision's ResNet-18 rearranged as ``features`` (stem and the four stages) and ``classifier``
    (the DenseNet's interface); the forward pass is ResNet-18's."""

    def __init__(self, resnet: nn.Module, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                                      resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        self.classifier = nn.Linear(resnet.fc.in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def build_classifier(num_classes: int, pretrained: str = "auto", weights_path: str | None = None,
                     weights_dir: str | Path | None = None, arch: str = "densenet121") -> nn.Module:
    """DenseNet-121 or ResNet-18 (``arch``) with one input channel and ``num_classes`` logits.

    ``pretrained``: 'auto' (ImageNet weights if found at ``weights_path`` or in ``weights_dir``, else
    random with a warning), 'imagenet' (required: a one-line error if not found), or 'none'.
    """
    found = imagenet_weights(pretrained, weights_path, weights_dir, arch)
    state = load_imagenet_state(found) if found is not None else None
    if arch == "resnet18":
        return _grey_resnet18(num_classes, state)
    model = densenet121(weights=None)
    if state is not None:
        model.load_state_dict(state)
    rgb = model.features.conv0.weight.data
    model.features.conv0 = nn.Conv2d(1, rgb.shape[0], kernel_size=7, stride=2, padding=3, bias=False)
    if state is not None:
        model.features.conv0.weight.data.copy_(rgb.sum(dim=1, keepdim=True))
    model.classifier = nn.Linear(model.classifier.in_features, num_classes)
    nn.init.zeros_(model.classifier.bias)
    return model


def _grey_resnet18(num_classes: int, state: dict[str, torch.Tensor] | None) -> nn.Module:
    resnet = resnet18(weights=None)
    if state is not None:
        resnet.load_state_dict(state)
    rgb = resnet.conv1.weight.data
    resnet.conv1 = nn.Conv2d(1, rgb.shape[0], kernel_size=7, stride=2, padding=3, bias=False)
    if state is not None:
        resnet.conv1.weight.data.copy_(rgb.sum(dim=1, keepdim=True))
    model = GreyResNet18(resnet, num_classes)
    nn.init.zeros_(model.classifier.bias)
    return model


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (or [0, 1] float) grey batch → the network's input scale."""
    if images.dtype == torch.uint8:
        images = images.float().div_(255.0)
    return (images - GREY_MEAN) / GREY_STD


def penultimate_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pooled features before the classifier layer (DenseNet-121: 1024, ResNet-18: 512; the FID
    stage's classifier features)."""
    features = torch.relu(model.features(x))
    return torch.flatten(nn.functional.adaptive_avg_pool2d(features, 1), 1)


@torch.no_grad()
def probabilities(model: nn.Module, images: torch.Tensor, input_size: int, batch_size: int = 256) -> torch.Tensor:
    """Sigmoid scores (N, labels) on the CPU for uint8 grey images of any size, resized to ``input_size``."""
    device = next(model.parameters()).device
    out = [torch.sigmoid(model(normalise(resize_to(images[i : i + batch_size].to(device), input_size)))).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out)
