"""The patient verifier's network and what uses a trained one: embed films, score pairs, load it.

Training lives in ``privacy.verifier``; this module does not import Lightning, so the archive
and privacy stages load the encoder without it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from cxrsynth.errors import MissingInputError

MODEL_NAME = "verifier.pt"
CONFIG_NAME = "verifier.json"


class PatientEncoder(nn.Module):
    """uint8 films (N, 1, r, r) → unit-length embeddings (N, dim). Four conv blocks (widths w, 2w, 4w, 4w),
    a max-pool after each of the first three."""

    def __init__(self, embedding_dim: int = 128, width: int = 16):
        super().__init__()
        layers, channels = [], 1
        for k in range(4):
            out = width * 2 ** min(k, 2)
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                       nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            if k < 3:
                layers.append(nn.MaxPool2d(2))
            channels = out
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(channels, embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 127.5 - 1.0
        x = self.trunk(x)
        # mean and max pooling: where a feature sits matters less than that it is there
        return F.normalize(self.head(x.mean(dim=(2, 3)) + x.amax(dim=(2, 3))), dim=1)


@torch.no_grad()
def embed(encoder: PatientEncoder, images: torch.Tensor | np.ndarray, batch_size: int = 512,
          desc: str | None = None) -> torch.Tensor:
    """Unit embeddings (N, dim) of uint8 films (N, r, r) or (N, 1, r, r), on the encoder's device; CPU result."""
    images = torch.as_tensor(images)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    device = next(encoder.parameters()).device
    encoder.eval()
    out = [encoder(images[i : i + batch_size].to(device)).cpu()
           for i in tqdm(range(0, len(images), batch_size), desc=desc or "embed films", unit="batch", disable=desc is None)]
    return torch.cat(out) if out else torch.zeros(0, encoder.head.out_features)


def pair_scores(embeddings: torch.Tensor, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair of rows."""
    return (embeddings[rows_a] * embeddings[rows_b]).sum(dim=1).numpy()


def patient_digest(patient_ids: np.ndarray) -> str:
    """SHA-256 of the sorted unique patient IDs: which patients a set of films covers."""
    unique = np.unique(np.asarray(patient_ids, dtype=np.int64))
    return hashlib.sha256(unique.tobytes()).hexdigest()




def load_verifier(folder: str | Path, device: str | torch.device = "cpu") -> tuple[PatientEncoder | None, dict]:
    """The encoder saved by ``save_verifier`` (eval mode, on ``device``) and its config; ``None`` and the
    record where the verifier stage could not train one (``verifier.save_untrained``: no same-patient pairs)."""
    folder = Path(folder)
    if (folder / CONFIG_NAME).is_file():
        config = json.loads((folder / CONFIG_NAME).read_text())
        if not config.get("trained", True):
            return None, config
    for name in (MODEL_NAME, CONFIG_NAME):
        if not (folder / name).is_file():
            raise MissingInputError(f"{folder / name}: no verifier here (run the verifier stage)")
    config = json.loads((folder / CONFIG_NAME).read_text())
    encoder = PatientEncoder(config["embedding_dim"], config["width"])
    encoder.load_state_dict(torch.load(folder / MODEL_NAME, map_location="cpu", weights_only=True))
    return encoder.to(device).eval(), config
