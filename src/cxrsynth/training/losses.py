"""Weighted binary cross-entropy (paper 001, equation 3; Guendel et al.)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def class_weights(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class (w_P, w_N) from a (N, C) 0/1 label matrix of the training split.

    w_P = (N_p + N_n) / N_p and w_N = (N_p + N_n) / N_n; a class with no positives (or no
    negatives) gets weight 0 on the empty side instead of a division by zero.
    """
    labels = np.asarray(labels, dtype=np.float64)
    total = labels.shape[0]
    positives = labels.sum(axis=0)
    negatives = total - positives
    w_pos = np.divide(total, positives, out=np.zeros_like(positives), where=positives > 0)
    w_neg = np.divide(total, negatives, out=np.zeros_like(negatives), where=negatives > 0)
    return w_pos, w_neg


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor, w_pos: torch.Tensor, w_neg: torch.Tensor) -> torch.Tensor:
    """Mean over samples and classes of -(w_P y log p + w_N (1 - y) log(1 - p)), p = sigmoid(logits).

    Computed from logits with log-sigmoid, which stays finite for confident predictions.
    """
    targets = targets.to(logits.dtype)
    loss = -(w_pos * targets * F.logsigmoid(logits) + w_neg * (1 - targets) * F.logsigmoid(-logits))
    return loss.mean()
