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


@dataclass
class Extractor:
    """A named feature network: ``features(images) -> (N, dim)``."""

    name: str
    dim: int
    network: nn.Module
    input_size: int | None  # None: the network resizes itself (Inception: 299)

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
                        required: bool = False) -> Extractor | None:
    """The FID Inception from a local file or the hub cache; None with a one-line warning when absent."""
    found = find_fid_weights(weights)
    if found is None:
        message = (f"FID Inception weights ({FID_WEIGHTS_FILE}) not found in the torch hub cache; "
                   "skipping the Inception extractor (set fid.inception_weights to a local copy)")
        if required:
            raise MissingInputError(message)
        warnings.warn(message, stacklevel=2)
        return None
    return Extractor("inception", INCEPTION_FEATURES, FIDInception(found).to(device), None)


def build_extractors(choice: str, classifier: nn.Module, classifier_size: int, inception_weights: str | None,
                     device: str | torch.device = "cpu") -> list[Extractor]:
    """Extractors for ``fid.extractor``: 'classifier', 'inception' (required) or 'both' (Inception if found)."""
    out = []
    if choice in ("inception", "both"):
        inception = inception_extractor(inception_weights, device, required=choice == "inception")
        if inception is not None:
            out.append(inception)
    if choice in ("classifier", "both"):
        out.append(classifier_extractor(classifier.to(device), classifier_size))
    return out
