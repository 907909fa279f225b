"""The audit's inputs, read from the pipeline's outputs: reference set, verifier, classifier, thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.data.store import ImageStore
from cxrsynth.errors import InputError
from cxrsynth.metrics.extractors import classifier_extractor
from cxrsynth.models.saved_classifier import load_classifier
from cxrsynth.privacy.audit import Auditor, Nearest, Thresholds, calibrate
from cxrsynth.privacy.encoder import load_verifier
from cxrsynth.privacy.films import reference_table


@dataclass
class AuditSetup:
    """An auditor whose reference is every stored image (what the GAN trained on), the store table
    with each image's split, the thresholds calibrated on the validation split, and that split's
    own search result (``calibration``)."""

    auditor: Auditor
    table: pd.DataFrame  # the store table (row order = reference order) with a ``split`` column
    thresholds: Thresholds
    calibration: Nearest
    verifier: dict  # the verifier's saved config (resolution, test AUC)


def audit_setup(store_dir: Path, split_csv: Path, classifier_dir: Path, verifier_dir: Path, params: PrivacyParams,
                device: torch.device) -> AuditSetup:
    """Load everything the audit needs and calibrate its thresholds on the validation split."""
    encoder, config = load_verifier(verifier_dir, device)
    resolution = config["resolution"]
    store = ImageStore(store_dir)
    if resolution not in store.sizes:
        raise InputError(f"{verifier_dir}: the verifier works at {resolution} px, not a stored level {store.sizes}")
    table = reference_table(store, split_csv)
    classifier, _, classifier_config = load_classifier(classifier_dir, device)
    extractor = classifier_extractor(classifier, classifier_config["input_size"])
    images = torch.from_numpy(store.read(resolution, table["row"].to_numpy()))
    auditor = Auditor(encoder, extractor, images, table["patient_id"].to_numpy(), params.batch_size, device)
    val = np.flatnonzero((table["split"] == "val").to_numpy())
    calibration = auditor.nearest_of_reference(val, "patient", desc="validation")
    thresholds = calibrate(calibration, params.false_match_rate, params.distance_percentile)
    return AuditSetup(auditor, table, thresholds, calibration, config)
