"""Feature extractors for the Fréchet distance: the FID Inception-v3 and the project's own x-ray classifier.

Both take uint8 grey batches (N, 1, r, r) at the generator's resolution, so real and
generated images follow the same path into the network. The classifier extractor also
returns the classifier's probabilities, which the prevalence stage reuses.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cxrsynth.errors import MissingInputError
from cxrsynth.models.classifier import normalise, penultimate_features, resize_to
from cxrsynth.models.inception import FEATURES as INCEPTION_FEATURES
from cxrsynth.models.inception import FID_WEIGHTS_FILE, FIDInception, find_fid_weights
from cxrsynth.models.weights import weights_record


@dataclass
class Extractor:
    """A named feature network: ``features(images) -> (N, dim)``."""

    name: str
    dim: int
    network: nn.Module
    input_size: int | None  # None: the network resizes itself (Inception: 299)
    weights: dict | str = "none"  # the pretrained file loaded (``weights_record``); the classifier is trained here

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.network.parameters()).device
        x = images.to(device)
        if self.input_size is not None:
            return penultimate_features(self.network, normalise(resize_to(x, self.input_size)))
        return self.network(x)

    @torch.no_grad()
    def features_and_probs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Classifier extractor only: features and sigmoid probabilities in one pass."""
        features = self.features(images)
        return features, torch.sigmoid(self.network.classifier(features))


def classifier_extractor(model: nn.Module, input_size: int) -> Extractor:
    """The project's DenseNet-121: its 1024 penultimate features (always available)."""
    return Extractor("classifier", model.classifier.in_features, model.eval(), input_size)


def inception_extractor(weights: str | Path | None, device: str | torch.device = "cpu",
                        required: bool = False, folder: str | Path | None = None) -> Extractor | None:
    """The FID Inception from ``weights`` or ``folder``; when absent a one-line error if ``required``,
    else None with a warning. ``extractor.weights`` records the file loaded."""
    found = find_fid_weights(weights, folder)
    if found is None:
        message = (f"fid.extractor: FID Inception weights ({FID_WEIGHTS_FILE}) not "
                   f"{f'in {folder}' if folder else 'given'} (put them there or set fid.inception_weights)")
        if required:
            raise MissingInputError(message)
        warnings.warn(message + "; skipping the Inception extractor", stacklevel=2)
        return None
    return Extractor("inception", INCEPTION_FEATURES, FIDInception(found).to(device), None, weights_record(found))


def build_extractors(choice: str, classifier: nn.Module, classifier_size: int, inception_weights: str | None,
                     device: str | torch.device = "cpu", folder: str | Path | None = None) -> list[Extractor]:
    """Extractors for ``fid.extractor``: 'classifier', 'inception' or 'both' (Inception required), or
    'auto' (the classifier, and Inception when its file is there)."""
    out = []
    if choice in ("inception", "both", "auto"):
        inception = inception_extractor(inception_weights, device, required=choice != "auto", folder=folder)
        if inception is not None:
            out.append(inception)
    if choice in ("classifier", "both", "auto"):
        out.append(classifier_extractor(classifier.to(device), classifier_size))
    return out
