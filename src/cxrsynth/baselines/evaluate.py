"""Judge a generator's samples the same way for every row of the baselines table.

* FID against the real images: the real moments of ``real_features`` (group ``all``) against the
  samples' moments, with the classifier's features, and Inception's when its weights are present.
* Precision, recall, density and coverage (``metrics/prdc.py``) on the same features: the samples
  against a seeded subset of the real images' vectors as large as the sample (all real images
  when the sample is larger), k = ``PRDC_K``. FID mixes fidelity and diversity in one number;
  precision and density measure fidelity, recall and coverage diversity.
* Memorisation (``metrics/memorisation.py``, via ``metrics/sample_quality.py``) on the same features: the share of samples nearer to
  a training image than the ``MEMORISATION_PERCENTILE``-th percentile of the real test split's
  films are. The generators train on every stored film, test split included, so each test film
  is compared with the other patients' films only (the privacy audit's ``exclude="patient"``).
* Label mix: each image labelled by the labeller (the real-trained classifier at its Youden
  thresholds); the share of label occurrences per label, against the same labeller's labels of the
  real images; the distance is the total variation, half the L1 distance between the two shares.
* GAN-train AUROC: one classifier recipe trained on the samples (labelled by the labeller, or by
  their condition where the system sets it) and tested on the real test split.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from cxrsynth.labels import LABELS
from cxrsynth.metrics.extractors import Extractor
from cxrsynth.metrics.fid_sets import ALL, GENERATED, RealVectors
from cxrsynth.metrics.frechet import GroupMoments, frechet_distance
from cxrsynth.metrics.sample_quality import sample_memorisation, sample_prdc
from cxrsynth.models.classifier import probabilities


@dataclass
class Labeller:
    """The real-trained classifier and its thresholds: labels any uint8 grey image."""

    model: torch.nn.Module
    thresholds: np.ndarray
    input_size: int

    def labels(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, 15) uint8 labels of (N, r, r) uint8 images."""
        probs = probabilities(self.model, torch.from_numpy(images).unsqueeze(1), self.input_size, batch_size)
        return (probs.numpy() >= self.thresholds).astype(np.uint8)


def label_mix(labels: np.ndarray) -> np.ndarray:
    """Share of all label occurrences that each label takes (sums to 1)."""
    counts = labels.sum(0).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Half the L1 distance between two distributions over the same labels."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


def sample_features(images: np.ndarray, extractors: list[Extractor], batch_size: int = 256) -> dict[str, np.ndarray]:
    """Per extractor, the float32 (N, dim) features of uint8 (N, r, r) images, a batch at a time."""
    out = {e.name: np.empty((len(images), e.dim), dtype=np.float32) for e in extractors}
    for start in tqdm(range(0, len(images), batch_size), desc="sample features", unit="batch"):
        batch = torch.from_numpy(images[start : start + batch_size]).unsqueeze(1)
        for e in extractors:
            out[e.name][start : start + len(batch)] = e.features(batch).float().cpu().numpy()
    return out


def sample_fid(images: np.ndarray, extractors: list[Extractor], real: dict[str, GroupMoments],
               batch_size: int = 256, features: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Fréchet distance of the samples to all real images, per extractor (``features``: the samples'
    ``sample_features``, when already computed)."""
    if features is None:
        features = sample_features(images, extractors, batch_size)
    out = {}
    for e in extractors:
        moments = GroupMoments([GENERATED], e.dim)
        for start in range(0, len(images), batch_size):  # the batches' order of summation, as streamed
            batch = features[e.name][start : start + batch_size]
            moments.update(batch, np.ones((len(batch), 1), dtype=bool))
        out[e.name] = round(frechet_distance(real[e.name].gaussian(ALL), moments.gaussian(GENERATED)), 4)
    return out


def gan_train_auroc(images: np.ndarray, labels: np.ndarray, test: tuple[np.ndarray, np.ndarray], params,
                    val_fraction: float, seed: int, work_dir: Path, weights_dir: Path | None) -> dict:
    """Test AUROC on real images of the classifier recipe ``params`` trained on (images, labels)."""
    from cxrsynth.synthesis.synthetic_auroc import (
        train_on_synthetic,  # Lightning: only when training
    )

    table = pd.DataFrame(labels, columns=list(LABELS)).assign(patient_id=np.arange(len(labels)))
    fit = train_on_synthetic(table, images, test, params, val_fraction, seed, work_dir, weights_dir)
    return {"macro": round(float(fit.test["auroc_macro"]), 4),
            "macro_classes": fit.test["auroc_macro_classes"],  # classes with test positives and negatives
            "per_class": {k: round(float(v), 4) for k, v in fit.test["auroc"].items()}, "weights": fit.module.weights}


@dataclass
class Judge:
    """Everything a row of the table is measured against, loaded once per stage."""

    labeller: Labeller
    extractors: list[Extractor]
    real_moments: dict[str, GroupMoments]
    source_mix: np.ndarray  # label mix of the real images under the labeller
    test: tuple[np.ndarray, np.ndarray]  # the real test split: uint8 (N, r, r) images and (N, 15) labels
    gan_train: object  # ClassifierParams: the one recipe trained on every system's samples
    val_fraction: float
    weights_dir: Path | None  # weights/<gan_train.arch>/
    real_vectors: RealVectors  # every real image's features: precision/recall, memorisation

    def __call__(self, images: np.ndarray, conditions: np.ndarray | None, work_dir: Path) -> dict:
        """The row's measurements for ``images`` (uint8 (N, r, r)) and the labels the system set, if any."""
        labels = self.labeller.labels(images)
        mix = label_mix(labels)
        train_labels = labels if conditions is None else conditions
        features = sample_features(images, self.extractors)
        device = next(self.labeller.model.parameters()).device
        return {
            "n_samples": len(images),
            "fid": sample_fid(images, self.extractors, self.real_moments, features=features),
            "prdc": sample_prdc(features, self.real_vectors, device=device),
            "memorisation": sample_memorisation(features, self.real_vectors, device=device),
            "label_mix_tv": round(total_variation(mix, self.source_mix), 4),
            "label_mix": {name: round(float(v), 4) for name, v in zip(LABELS, mix)},
            "labeller_prevalence": {name: round(float(v), 4) for name, v in zip(LABELS, labels.mean(0))},
            "gan_train_labels": "labeller" if conditions is None else "condition",
            "gan_train_auroc": gan_train_auroc(images, train_labels, self.test, self.gan_train, self.val_fraction,
                                               self.gan_train.seed, work_dir, self.weights_dir),
        }

    def measure(self, images: np.ndarray, conditions: np.ndarray | None, name: str) -> dict:
        """As calling the judge, with a temporary work folder (``baseline-<name>-...``) removed after."""
        with tempfile.TemporaryDirectory(prefix=f"baseline-{name}-") as work:
            return self(images, conditions, Path(work))


def gan_train_params(classifier, common):
    """The GAN-train recipe: the ``classifier`` section (a ``ClassifierParams``) with the architecture, epochs
    and seed of ``common.gan_train`` (``common``: the baselines' ``CommonParams``)."""
    return classifier.model_copy(update={"arch": common.gan_train.arch, "max_epochs": common.gan_train.max_epochs,
                                         "seed": common.gan_train.seed})


def load_judge(store_dir: Path, split_csv: Path, classifier_dir: Path, real_dir: Path, gan_train, val_fraction: float,
               weights_root: Path | None, device) -> Judge:
    """The labeller (``classifier_dir``), the FID extractors that ``real_dir`` holds real moments and
    per-image vectors for (Inception when ``weights_root/inception`` has its weights), those vectors, the
    real images' label mix, the real test split, and the GAN-train recipe ``gan_train`` (a
    ``ClassifierParams``, run on one device: the baseline stages are not launched under DDP)."""
    from cxrsynth.data.store import ImageStore
    from cxrsynth.data.store_splits import split_datasets
    from cxrsynth.errors import MissingInputError
    from cxrsynth.metrics.extractors import build_extractors
    from cxrsynth.metrics.fid_sets import load_real_moments, load_real_vectors
    from cxrsynth.models.saved_classifier import load_classifier, threshold_vector

    probs_csv = Path(real_dir) / "classifier_probs.csv"
    if not probs_csv.exists():
        raise MissingInputError(f"{probs_csv}: not found (run the real_features stage)")
    model, thresholds, config = load_classifier(classifier_dir, device)
    labeller = Labeller(model, threshold_vector(thresholds), int(config["input_size"]))
    real = load_real_moments(real_dir)
    vectors = load_real_vectors(real_dir)
    inception = None if weights_root is None else Path(weights_root) / "inception"
    extractors = [e for e in build_extractors("auto", model, labeller.input_size, None, device, inception)
                  if e.name in real and e.name in vectors.features]
    probs = pd.read_csv(probs_csv)[[f"p_{name}" for name in LABELS]].to_numpy()
    source_mix = label_mix((probs >= labeller.thresholds).astype(np.uint8))
    test = split_datasets(ImageStore(store_dir), pd.read_csv(split_csv), gan_train.input_size)["test"]
    weights_dir = None if weights_root is None else Path(weights_root) / gan_train.arch
    return Judge(labeller, extractors, real, source_mix, (test.all_images()[:, 0].numpy(), test.labels.numpy()),
                 gan_train.single_process(), val_fraction, weights_dir, vectors)
