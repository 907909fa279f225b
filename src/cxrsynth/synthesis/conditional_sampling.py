"""The diffusion generator's archive patients: conditional sampling where the GAN optimises latents.

A GAN patient of target class c is a latent optimised until the scorer sees c (Algorithm 1); a
diffusion patient is drawn *conditioned* on a label vector carrying c, a real film's labels taken
from the source (so findings co-occur as they do in NIH), and kept when the labeller sees c in it and
at most ``gan.diffusion.archive_extra_findings`` findings the condition does not carry: a draw that only
confirms c brings, on the demo, 3.6 findings to the source's 1.7 per film with a finding, and the label
plan can then match the findings only with too many films of No Finding. A draw the labeller rejects
is drawn again from fresh noise, up to ``archive.max_attempts`` draws, in ``archive.retries`` more
rounds; a patient still rejected is not delivered, and counts against the archive's shortfall as a
failed optimisation does. The accepted draw is the patient's first
film; its follow-ups are drawn conditioned on the same labels from noise near the first film's,
sqrt(1 - s^2) z* + s e with s = ``archive.local_std``, which keeps the noise at unit variance as
the sampler expects. The archive draws ``gan.diffusion.archive_oversample`` candidate patients per
planned one (``diffusion_archive_params``).

Everything after (the plan, the pilot and forecast, the selection of patients, the privacy filter, the
View Position, the card) is the GAN archive's: ``make_patients`` has ``generate_patients``'s signature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.labels import LABELS
from cxrsynth.models.diffusion import ConditionalDiffusion, sample_batches
from cxrsynth.synthesis.archive_builder import Delivered
from cxrsynth.synthesis.class_optimisation import OptimisationResult
from cxrsynth.synthesis.scorers import Scorer


class ConditionBank:
    """The source's label vectors, by class: where each diffusion patient's condition comes from.

    A film with k findings is drawn for each of its classes with weight 1/k: split evenly among its
    findings, each film counts once in all, so patients drawn per class in the source's proportions
    carry the source's label mix. Drawn uniformly, a class's films are biased towards those with many
    findings (a film with three is found under three classes): on the demo a condition then carried
    2.2 findings against the source's 1.7 per film with a finding, and the plan made up for the
    surplus with films of No Finding."""

    def __init__(self, source: pd.DataFrame):
        self.labels = source[list(LABELS)].to_numpy(dtype=np.float32)
        self.by_class = [np.flatnonzero(self.labels[:, c] > 0) for c in range(len(LABELS))]
        share = 1.0 / np.maximum(self.labels[:, 1:].sum(axis=1), 1)  # No Finding films: one class, weight 1
        self.cumulative = [np.cumsum(share[rows]) for rows in self.by_class]

    def draw(self, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One source label vector carrying each class of ``classes``, a film with k findings drawn with
        weight 1/k (a one-hot vector for a class no source film carries)."""
        out = np.zeros((len(classes), len(LABELS)), dtype=np.float32)
        for i, c in enumerate(classes):
            rows, cumulative = self.by_class[c], self.cumulative[c]
            if len(rows):
                pick = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(rows) - 1)
                out[i] = self.labels[rows[pick]]
            else:
                out[i, c] = 1.0
        return out


def _label(images: torch.Tensor, labeller: Scorer, scorer: Scorer, target: np.ndarray, device,
           batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(labeller 0/1 labels (N, 15), the scorer's probability of each image's target class) of uint8 films."""
    labels, scores = [], []
    target_t = torch.as_tensor(target, dtype=torch.long)
    same = scorer.model is labeller.model and scorer.input_size == labeller.input_size  # the usual case: run it once
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device).float() / 127.5 - 1.0
            logits = labeller.logits(batch)
            probs = torch.sigmoid(logits).cpu().numpy()
            labels.append((probs >= labeller.thresholds).astype(np.uint8))
            score = torch.sigmoid(logits if same else scorer.logits(batch)).cpu()
            scores.append(score.gather(1, target_t[start : start + batch_size, None]).squeeze(1).numpy())
    if not labels:
        return np.zeros((0, len(LABELS)), np.uint8), np.zeros(0)
    return np.concatenate(labels), np.concatenate(scores)


def carries(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Whether each labelled film carries its target class (No Finding: no finding at all)."""
    found = labels[np.arange(len(classes)), classes].astype(bool)
    return np.where(classes == 0, ~labels[:, 1:].any(axis=1), found)


def extra_findings(labels: np.ndarray, conditions: np.ndarray) -> np.ndarray:
    """Per film, the findings the labeller reads that its condition does not carry."""
    return (labels[:, 1:].astype(bool) & ~(conditions[:, 1:] > 0)).sum(axis=1)


def sample_patients(model: ConditionalDiffusion, labeller: Scorer, scorer: Scorer, bank: ConditionBank,
                    patient_class: np.ndarray, counts: np.ndarray, params: ArchiveParams, seed: int,
                    noise: torch.Generator, batch_size: int = 256) -> tuple[OptimisationResult, Delivered]:
    """Draw ``counts[p]`` films of a patient of class ``patient_class[p]`` for each p (module docstring): the
    accepted first draw is the patient's first film, the other ``counts[p] - 1`` are its follow-ups. Returns
    one record per patient (draws as attempts, no optimisation steps) and the delivered patients."""
    device = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    draws = torch.Generator(device="cpu").manual_seed(seed)
    n, dim, side = len(patient_class), model.config.z_dim, model.config.resolution
    allowed = model.config.archive_extra_findings
    conditions = bank.draw(patient_class, rng)
    success = np.zeros(n, dtype=bool)
    attempts = np.zeros(n, dtype=np.int64)
    score = np.zeros(n)
    z_star = torch.zeros(n, dim)
    first = np.zeros((n, side, side), dtype=np.uint8)
    first_labels = np.zeros((n, len(LABELS)), dtype=np.uint8)
    for _ in range(params.max_attempts * (params.retries + 1)):
        pending = np.flatnonzero(~success)
        if not len(pending):
            break
        z = torch.randn(len(pending), dim, generator=draws)
        films = sample_batches(model, z, torch.from_numpy(conditions[pending]), batch_size,
                               progress=len(pending) > batch_size, desc="diffusion patients")
        labels, scores = _label(films, labeller, scorer, patient_class[pending], device)
        ok = carries(labels, patient_class[pending]) & (extra_findings(labels, conditions[pending]) <= allowed)
        attempts[pending] += 1
        score[pending] = scores
        accepted = pending[ok]
        success[accepted] = True
        z_star[torch.as_tensor(accepted)] = z[torch.as_tensor(ok)]
        first[accepted], first_labels[accepted] = films[torch.as_tensor(ok), 0].numpy(), labels[ok]
    record = OptimisationResult(patient_class.astype(np.int64), np.zeros(n), success, z_star, score,
                                np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), attempts,
                                batched_steps=int(attempts.sum()), latents_scored=int(attempts.sum()))
    ok = np.flatnonzero(success)
    more = counts[ok] - 1
    s = params.local_std
    centres = z_star[torch.as_tensor(ok)].repeat_interleave(torch.as_tensor(more), dim=0)
    follow_z = (1 - s * s) ** 0.5 * centres + s * torch.randn(centres.shape, generator=noise, device=noise.device).cpu()
    films = sample_batches(model, follow_z, torch.from_numpy(np.repeat(conditions[ok], more, axis=0)), batch_size,
                           progress=len(follow_z) > batch_size, desc="diffusion follow-ups")[:, 0].numpy()
    follow_labels, follow_scores = _label(torch.from_numpy(films[:, None]), labeller, scorer,
                                          np.repeat(patient_class[ok], more), device)
    # each patient's films in order: its first (accepted) film, then its follow-ups
    total = int(counts[ok].sum())
    is_first = np.zeros(total, dtype=bool)
    is_first[np.r_[0, np.cumsum(counts[ok])[:-1]].astype(np.int64) if len(ok) else []] = True
    images = np.empty((total, side, side), dtype=np.uint8)
    labels = np.empty((total, len(LABELS)), dtype=np.uint8)
    scores = np.empty(total)
    images[is_first], labels[is_first], scores[is_first] = first[ok], first_labels[ok], score[ok]
    images[~is_first], labels[~is_first], scores[~is_first] = films, follow_labels, follow_scores
    target = np.repeat(patient_class[ok], counts[ok])
    labels[:, 0] = ~labels[:, 1:].any(axis=1)  # NIH's convention: No Finding exactly when no finding
    return record, Delivered(images, target, labels, scores, patient_class[ok], counts[ok], z_star[torch.as_tensor(ok)])


def patient_maker(model: ConditionalDiffusion, labeller: Scorer, scorer: Scorer, source: pd.DataFrame):
    """``sample_patients`` bound to the model, the labeller and the source's labels: the archive build's
    ``make_patients``."""
    bank = ConditionBank(source)

    def make_patients(patient_class, counts, params, seed, noise):
        return sample_patients(model, labeller, scorer, bank, patient_class, counts, params, seed, noise)

    return make_patients


def diffusion_archive_params(params: ArchiveParams, config) -> ArchiveParams:
    """``params`` as a diffusion generator's archive uses them: the labeller (``densenet``) scores, since there
    is no discriminator; no scorer comparison runs, since there is no latent to optimise; and the
    candidates per planned patient are ``gan.diffusion.archive_oversample`` (``config``: the exported model's
    ``DiffusionConfig``). Says so in one line for each setting it replaces."""
    if params.scorer != "densenet":
        print(f"archive: archive.scorer {params.scorer} does not apply to a diffusion generator (it has no "
              "discriminator); the labeller (densenet) scores its films")
    print(f"archive: a diffusion generator draws gan.diffusion.archive_oversample {config.archive_oversample:g} "
          f"candidate patients per planned one (archive.oversample {params.oversample:g} is the GAN's)")
    return params.model_copy(update={"scorer": "densenet", "compare_per_class": 0,
                                     "oversample": config.archive_oversample})
