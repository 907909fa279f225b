"""The ``privacy`` section: the patient verifier and the audit of the archive against the GAN's training images."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from cxrsynth.config.base import Section


class PrivacyParams(Section):
    """Re-identification and memorisation audit (a siamese patient verifier and nearest neighbours)."""

    section: ClassVar[str] = "privacy"

    resolution: int | None = Field(None, ge=4, description="side the verifier and the pixel search work at "
                                   "(a stored level); null: the GAN's resolution")
    embedding_dim: int = Field(128, ge=8, description="verifier embedding size; two films match by the "
                               "cosine similarity of their embeddings")
    width: int = Field(16, ge=4, description="channels of the verifier CNN's first block (doubling per block)")
    steps: int = Field(300, ge=1, description="verifier training steps")
    batch_patients: int = Field(48, ge=2, description="patients per step, two films each; every other "
                                "patient in the batch is a negative")
    lr: float = Field(2.0e-3, gt=0)
    weight_decay: float = Field(1.0e-4, ge=0)
    max_shift_px: int = Field(2, ge=0, description="training augmentation: random shift in pixels")
    eval_negatives: int = Field(10, ge=1, description="different-patient test pairs per same-patient pair")
    false_match_rate: float = Field(0.01, gt=0, lt=1, description="share of genuinely new patients' images "
                                    "(validation split) whose best verifier score against the training images "
                                    "may pass the threshold")
    distance_percentile: float = Field(1.0, gt=0, lt=100, description="an image nearer to a training image "
                                       "than this percentile of new patients' nearest distances is flagged "
                                       "(pixel and classifier-feature space)")
    min_verifier_auc: float = Field(0.9, gt=0.5, le=1, description="the audit and the filter use the "
                                    "verifier only if its test AUC reaches this; a verifier below it (or none: no "
                                    "same-patient pairs) is not used, and images are flagged by the pixel and "
                                    "feature nearest-neighbour tests alone. Above chance (0.5) by definition: a "
                                    "verifier at chance would flag new and training patients alike")
    filter_rounds: int = Field(5, ge=1, description="rounds of replacing flagged archive patients with newly "
                               "generated ones; those still flagged after the last are dropped (and "
                               "archive.max_shortfall applies). The filter runs on archive.device")
    replacement_candidates: int = Field(4, ge=1, description="new patients generated per flagged one in each "
                                        "filter round; the first that converged and passes the audit replaces it "
                                        "(a diffusion model's draws of a rare class are rarely confirmed)")
    max_replaced_fraction: float = Field(0.25, ge=0, le=1, description="largest share of archive patients the "
                                         "filter may replace; beyond it the archive stage fails (the GAN copies "
                                         "its training patients: fix the GAN, not the archive)")
    pairs_figure: int = Field(8, ge=1, description="closest synthetic/training pairs shown in privacy.png")
    batch_size: int = Field(512, ge=1, description="images per forward pass when embedding and searching")
    seed: int = 0
    device: str = "auto"
