"""The patient verifier: a siamese CNN that tells whether two chest films show one patient.

After Packhäuser et al. (Sci. Rep. 2022), who verified NIH ChestX-ray14 patients with a siamese
ResNet-50 at AUC 0.994. Their head scores a pair from ``|f(a) - f(b)|``; here a pair's score is
the cosine similarity of L2-normalised embeddings, so one image is scored against a whole
training set by one matrix product (the audit compares every archive image with every training
image: 112,120 x 112,120 pairs at full scale). Training sees batches of distinct patients with
two films each and learns a logistic model on the scaled cosine over every pair in the batch
(one positive and 2(B - 1) negatives per film), the positives weighted to balance them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.privacy.encoder import (
    CONFIG_NAME,
    MODEL_NAME,
    PatientEncoder,
    embed,
    pair_scores,
    patient_digest,
)
from cxrsynth.privacy.pairs import PairImages, PatientPairBatches, evaluation_pairs, patients_with_pairs
from cxrsynth.runtime import use_all_cores


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each film shifted by up to ``max_shift`` pixels in x and y (edge pixels repeat), on the device."""
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images.float(), (max_shift,) * 4, mode="replicate")
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator, device=images.device)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator, device=images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device)[None, :])[:, :, None].expand(n, h, w)
    cols = (dx[:, None] + torch.arange(w, device=images.device)[None, :])[:, None, :].expand(n, h, w)
    index = rows * padded.shape[-1] + cols
    return padded.flatten(2).gather(2, index.reshape(n, 1, h * w)).reshape(n, 1, h, w)


class VerifierModule(L.LightningModule):
    """Trains ``PatientEncoder`` on batches of (film a, film b, patient)."""

    def __init__(self, params: PrivacyParams):
        super().__init__()
        self.params = params
        self.encoder = PatientEncoder(params.embedding_dim, params.width)
        self.scale = nn.Parameter(torch.tensor(10.0))  # logistic model on the cosine: logit = scale * (cos - bias)
        self.bias = nn.Parameter(torch.tensor(0.5))
        self.shifts = torch.Generator().manual_seed(params.seed)

    def training_step(self, batch, batch_idx):
        a, b, patient = batch
        films = torch.cat([a, b])
        if self.shifts.device != films.device:  # draw the shifts where the films are: no host round trip
            self.shifts = torch.Generator(films.device).manual_seed(self.params.seed)
        films = random_shift(films, self.params.max_shift_px, self.shifts)
        embeddings = self.encoder(films)
        who = torch.cat([patient, patient])
        logits = self.scale * (embeddings @ embeddings.T - self.bias)
        same = (who[:, None] == who[None, :]).float()
        off_diagonal = ~torch.eye(len(who), dtype=torch.bool, device=who.device)
        n_pos = same[off_diagonal].sum()
        weight = torch.where(same.bool(), (off_diagonal.sum() - n_pos) / n_pos, torch.ones_like(same))
        loss = F.binary_cross_entropy_with_logits(logits[off_diagonal], same[off_diagonal], weight[off_diagonal])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimiser = torch.optim.AdamW(self.parameters(), lr=self.params.lr, weight_decay=self.params.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, self.params.lr, total_steps=self.params.steps)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@dataclass
class VerifierFit:
    """A trained verifier and its test on patients it never saw."""

    encoder: PatientEncoder
    test_auc: float
    test_pairs: dict[str, int]
    train_patients: int
    final_loss: float
    train_digest: str  # which patients the verifier trained on (``patient_digest``)
    test_digest: str


def missing_pairs(train_patients: np.ndarray, test_patients: np.ndarray) -> str | None:
    """Why no verifier can be trained and tested on these films, in words; None when one can.

    Training needs same-patient pairs of at least two patients (each batch's other patients are the
    negatives); the test AUC needs a same-patient pair and a second patient. A verifier that cannot
    be tested is not trained either: the audit would not use it (``privacy.min_verifier_auc``)."""
    train, test = patients_with_pairs(train_patients), patients_with_pairs(test_patients)
    if train < 2:
        return (f"no same-patient pairs to train on: {train} patients of the training split have two or more "
                "films, at least 2 needed")
    if test < 1 or len(np.unique(test_patients)) < 2:
        return (f"no same-patient pairs to test on: {test} patients of the test split have two or more films, "
                "at least 1 needed beside a second patient")
    return None


def fit_verifier(train_images: torch.Tensor, train_patients: np.ndarray, test_images: torch.Tensor,
                 test_patients: np.ndarray, params: PrivacyParams, device: str = "auto") -> VerifierFit:
    """Train on same/different-patient pairs of the training split; AUC on pairs of the test split.

    Images are uint8 (N, 1, r, r); the two splits must not share a patient."""
    shared = np.intersect1d(np.unique(train_patients), np.unique(test_patients))
    if len(shared):
        raise ValueError(f"{len(shared)} patients are in both the verifier's training and test films")
    L.seed_everything(params.seed, workers=True, verbose=False)
    use_all_cores()
    sampler = PatientPairBatches(train_patients, params.batch_patients, params.steps, params.seed)
    loader = torch.utils.data.DataLoader(PairImages(train_images), batch_sampler=sampler)
    module = VerifierModule(params)
    trainer = L.Trainer(max_steps=params.steps, max_epochs=1, accelerator="cpu" if device == "cpu" else "auto",
                        devices=1, deterministic=True, logger=False, enable_checkpointing=False,
                        enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(module, train_dataloaders=loader)
    encoder = module.encoder.to(trainer.strategy.root_device).eval()  # Lightning hands it back on the CPU
    rows_a, rows_b, same = evaluation_pairs(test_patients, params.eval_negatives, params.seed + 1)
    embeddings = embed(encoder, test_images, params.batch_size)
    scores = pair_scores(embeddings, rows_a, rows_b)
    auc = float(roc_auc_score(same, scores)) if same.any() and (~same).any() else float("nan")
    return VerifierFit(encoder.cpu(), auc, {"same_patient": int(same.sum()), "different_patients": int((~same).sum())},
                       len(sampler.groups), float(trainer.callback_metrics.get("train/loss", torch.nan)),
                       patient_digest(train_patients), patient_digest(test_patients))


def save_verifier(out_dir: Path, fit: VerifierFit, params: PrivacyParams, resolution: int) -> None:
    """``verifier.pt`` (a plain state dict) and ``verifier.json`` (architecture, resolution, test AUC)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.contiguous() for k, v in fit.encoder.state_dict().items()}, out_dir / MODEL_NAME)
    finite = lambda v: round(v, 4) if np.isfinite(v) else None  # JSON has no NaN
    config = {"trained": True, "embedding_dim": params.embedding_dim, "width": params.width, "resolution": resolution,
              "test_auc": finite(fit.test_auc), "test_pairs": fit.test_pairs,
              "train_patients_with_pairs": fit.train_patients, "final_loss": finite(fit.final_loss),
              "train_patients_digest": fit.train_digest, "test_patients_digest": fit.test_digest}
    (out_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")


def save_untrained(out_dir: Path, reason: str, params: PrivacyParams, resolution: int, train_patients: np.ndarray,
                   test_patients: np.ndarray) -> dict:
    """``verifier.json`` alone (no ``verifier.pt``): no verifier could be trained, and why
    (``missing_pairs``). The audit reads it and flags by the nearest-neighbour tests only. Returns it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {"trained": False, "not_trained_because": reason, "embedding_dim": params.embedding_dim,
              "width": params.width, "resolution": resolution, "test_auc": None, "test_pairs": None,
              "train_patients_with_pairs": patients_with_pairs(train_patients),
              "test_patients_with_pairs": patients_with_pairs(test_patients),
              "train_patients_digest": patient_digest(train_patients), "test_patients_digest": patient_digest(test_patients)}
    (out_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    return config
