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

    @property
    def verifier_used(self) -> bool:
        """Whether the verifier criterion flags (see ``verifier_not_used``)."""
        return self.thresholds.verifier is not None


def verifier_not_used(config: dict, min_auc: float) -> str | None:
    """Why the audit cannot trust the verifier ``config`` describes, in words; None when it can.

    Not trained (no same-patient pairs), untested, or a test AUC below ``min_auc``: its flags would
    fire at about the false-match rate whoever the image shows, so it must not count for or against
    an archive."""
    if not config.get("trained", True):
        return f"verifier not trained ({config.get('not_trained_because', 'no reason recorded')})"
    auc = config.get("test_auc")
    if auc is None:
        return "verifier untested (its test AUC could not be measured)"
    if auc < min_auc:
        return f"verifier below floor (AUC {auc:.3f} < privacy.min_verifier_auc {min_auc:g})"
    return None


def audit_setup(store_dir: Path, split_csv: Path, classifier_dir: Path, verifier_dir: Path, params: PrivacyParams,
                device: torch.device) -> AuditSetup:
    """Load everything the audit needs and calibrate its thresholds on the validation split. A verifier
    ``verifier_not_used`` rejects is left out: its criterion neither flags nor gets a threshold."""
    encoder, config = load_verifier(verifier_dir, device)
    not_used = verifier_not_used(config, params.min_verifier_auc)
    if not_used is not None:
        encoder = None
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
    thresholds = calibrate(calibration, params.false_match_rate, params.distance_percentile, not_used)
    return AuditSetup(auditor, table, thresholds, calibration, config)
