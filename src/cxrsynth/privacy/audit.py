"""The audit: each image's closest training image, by the patient verifier and by distance.

The reference set is every image the GAN trained on (``train_gan`` reads the whole store, as the
paper trained on all of NIH). For each query image the audit finds its highest verifier score
against the reference and its nearest reference image in pixel space (uint8 / 255, Euclidean)
and in the classifier's feature space (DenseNet-121 penultimate features, Euclidean).

Which reference images a query may not be compared with:

- a real film of a held-out split is compared with every *other* patient's films, so it shows
  what a genuinely new patient looks like next to the training set (``exclude="patient"``);
- a training film, the positive control, is compared with the rest of the reference, its own
  patient's other films included (``exclude="self"``);
- an archive image is compared with everything (no exclusion).

Thresholds come from the validation split's films (new patients the verifier never trained on):
the verifier's at a ``false_match_rate`` share of them, the distances' at the
``distance_percentile``-th percentile of theirs. The test split then measures how often a new
patient is flagged, so the rate is tested, not assumed. A pair-level threshold (one film against
one other) would flag almost every image once it is compared with thousands of training films;
the image-level rate is the one a reader of the audit can act on.

The verifier criterion is used only when the verifier works: trained, tested, and at a test AUC of
``privacy.min_verifier_auc`` or more (``setup.verifier_not_used``). Otherwise the auditor holds no
encoder, its verifier scores are NaN, and only the pixel and feature criteria flag: a verifier at
chance would flag new patients as often as copies, and its silence would vouch for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from cxrsynth.metrics.extractors import Extractor
from cxrsynth.privacy.encoder import PatientEncoder
from cxrsynth.resize import resize_uint8_half_up

CRITERIA = ("verifier", "pixel", "feature")


@dataclass(frozen=True)
class Nearest:
    """Per query image: the best match in each space (value and reference index)."""

    verifier: np.ndarray  # highest cosine similarity
    verifier_index: np.ndarray
    pixel: np.ndarray  # smallest pixel distance
    pixel_index: np.ndarray
    feature: np.ndarray  # smallest feature distance
    feature_index: np.ndarray

    def __len__(self) -> int:
        return len(self.verifier)

    def subset(self, keep: np.ndarray) -> Nearest:
        return Nearest(**{k: getattr(self, k)[keep] for k in self.__dataclass_fields__})

    @staticmethod
    def concat(parts: list[Nearest]) -> Nearest:
        return Nearest(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in Nearest.__dataclass_fields__})


@dataclass(frozen=True)
class Thresholds:
    """Flag an image whose verifier score is above ``verifier`` or whose distance is below ``pixel`` / ``feature``.

    ``verifier`` is None when the verifier criterion is not used (``verifier_not_used_because`` says why)."""

    verifier: float | None
    pixel: float
    feature: float
    calibration_images: int
    false_match_rate: float
    distance_percentile: float
    verifier_not_used_because: str | None = None

    @property
    def criteria(self) -> tuple[str, ...]:
        """The criteria that flag: all three, or pixel and feature without a usable verifier."""
        return CRITERIA if self.verifier is not None else CRITERIA[1:]

    def flags(self, nearest: Nearest) -> dict[str, np.ndarray]:
        """Per criterion used and overall (``any``): which images are flagged. An unused criterion has
        no entry, so nothing downstream can count it."""
        out = {"pixel": nearest.pixel < self.pixel, "feature": nearest.feature < self.feature}
        if self.verifier is not None:
            out = {"verifier": nearest.verifier > self.verifier, **out}
        out["any"] = np.logical_or.reduce([out[c] for c in self.criteria])
        return out

    def as_dict(self) -> dict:
        return {"verifier_score": None if self.verifier is None else round(self.verifier, 6),
                "pixel_distance": round(self.pixel, 6),
                "feature_distance": round(self.feature, 6), "calibration_images": self.calibration_images,
                "false_match_rate": self.false_match_rate, "distance_percentile": self.distance_percentile,
                "criteria": list(self.criteria), "verifier_not_used_because": self.verifier_not_used_because}


def calibrate(nearest: Nearest, false_match_rate: float, distance_percentile: float,
              verifier_not_used_because: str | None = None) -> Thresholds:
    """Thresholds from new patients' films (``nearest`` of a held-out split, own patient excluded); no
    verifier threshold when ``verifier_not_used_because`` gives a reason."""
    if not len(nearest):
        raise ValueError("no calibration images (the validation split is empty)")
    # order statistics, not interpolation: with strict comparisons at most the chosen share is flagged
    verifier = (None if verifier_not_used_because is not None
                else float(np.quantile(nearest.verifier, 1 - false_match_rate, method="higher")))
    return Thresholds(verifier, float(np.percentile(nearest.pixel, distance_percentile, method="lower")),
                      float(np.percentile(nearest.feature, distance_percentile, method="lower")),
                      len(nearest), false_match_rate, distance_percentile, verifier_not_used_because)


def _best(query: torch.Tensor, reference: torch.Tensor, largest: bool, blocked: torch.Tensor | None,
          norms: torch.Tensor | None = None, exact_rows=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Best reference match of each query row: highest dot product, or (given the reference rows'
    squared ``norms``) smallest Euclidean distance.

    The search expands |q - r|^2 into one matrix product (in the reference's dtype); the distance
    to the match it picks is then computed directly in float32 from ``exact_rows(index)`` (default:
    the reference rows), so a copy of a reference image is at distance 0 exactly. Rows with every
    reference blocked get -inf / inf."""
    distance = norms is not None
    product = query.to(reference.dtype) @ reference.T
    if distance:
        product = query.float().square().sum(1, keepdim=True) + norms[None, :] - 2 * product.float()
    if blocked is not None:
        product.masked_fill_(blocked, -torch.inf if largest else torch.inf)
    value, index = product.max(dim=1) if largest else product.min(dim=1)
    if distance:
        matched = reference[index].float() if exact_rows is None else exact_rows(index)
        exact = (query.float() - matched).norm(dim=1)
        value = torch.where(torch.isinf(value), value, exact)
    return value, index


@dataclass
class Auditor:
    """The reference set in the three spaces, and the search of query images against it. Without an
    ``encoder`` (no usable verifier) verifier scores are NaN and their indices -1."""

    encoder: PatientEncoder | None
    extractor: Extractor
    reference_images: torch.Tensor  # (N, r, r) uint8, CPU
    reference_patients: np.ndarray
    batch_size: int = 512
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self):
        if self.encoder is not None:
            self.encoder = self.encoder.to(self.device).eval()
        embeddings, pixels, features = self.represent(self.reference_images, "audit: reference films")
        # bfloat16 on a GPU (fp16 would overflow a 65,536-pixel dot product): the full-scale reference
        # (112,120 films of 256 x 256) then takes 15 GB; the distance to the match found is exact (float32)
        self._reference = (embeddings, pixels.to(torch.bfloat16 if self.device.type == "cuda" else torch.float32), features)
        self._norms = (pixels.square().sum(1), features.square().sum(1))
        self._patients = torch.tensor(self.reference_patients, device=self.device)  # a copy: pandas hands out read-only arrays

    @torch.no_grad()
    def represent(self, images: torch.Tensor | np.ndarray, desc: str | None = None) -> tuple[torch.Tensor, ...]:
        """(verifier embeddings, flattened pixels in [0, 1], classifier features) on the device, of uint8
        images (N, r, r) resized to the reference's side when they differ; embeddings (N, 0) without an encoder."""
        images = resize_uint8_half_up(torch.as_tensor(images), self.reference_images.shape[-1])
        parts = []
        for i in tqdm(range(0, len(images), self.batch_size), desc=desc or "", unit="batch", disable=desc is None):
            chunk = images[i : i + self.batch_size].to(self.device)
            embeddings = (self.encoder(chunk[:, None]) if self.encoder is not None
                          else torch.zeros(len(chunk), 0, device=self.device))
            parts.append((embeddings, chunk.reshape(len(chunk), -1).float() / 255.0,
                          self.extractor.features(chunk[:, None]).float()))
        if not parts:
            r = self.reference_images.shape[-1]
            dim = self.encoder.head.out_features if self.encoder is not None else 0
            return (torch.zeros(0, dim, device=self.device),
                    torch.zeros(0, r * r, device=self.device), torch.zeros(0, self.extractor.dim, device=self.device))
        return tuple(torch.cat(column) for column in zip(*parts, strict=True))

    @torch.no_grad()
    def nearest(self, images: torch.Tensor | np.ndarray, patients: np.ndarray | None = None,
                reference_rows: np.ndarray | None = None, desc: str | None = None) -> Nearest:
        """Each image's best match in the reference, a batch at a time. ``patients``: skip the query's
        own patient's reference films; ``reference_rows``: skip only the query's own reference entry."""
        return self._search(lambda chunk: self.represent(images[chunk]), len(images), patients, reference_rows, desc)

    @torch.no_grad()
    def nearest_of_reference(self, rows: np.ndarray, exclude: str, desc: str | None = None) -> Nearest:
        """``nearest`` for reference films themselves (their representations are already computed):
        ``exclude="patient"`` skips each film's own patient, ``"self"`` only the film itself."""
        if exclude not in ("patient", "self"):
            raise ValueError(f"exclude must be 'patient' or 'self', not {exclude!r}")
        rows = np.asarray(rows)
        index = torch.as_tensor(rows, device=self.device)
        patients = self.reference_patients[rows] if exclude == "patient" else None
        return self._search(lambda chunk: tuple(t[index[chunk]] for t in self._reference), len(rows), patients,
                            rows if exclude == "self" else None, desc)

    def _exact_pixels(self, index: torch.Tensor) -> torch.Tensor:
        """Reference films ``index`` as float32 pixels in [0, 1], from the uint8 originals (the searched
        copy may be bfloat16)."""
        rows = self.reference_images[index.cpu()]
        return rows.reshape(len(rows), -1).to(self.device, torch.float32) / 255.0

    def _search(self, represent, n: int, patients: np.ndarray | None, reference_rows: np.ndarray | None,
                desc: str | None) -> Nearest:
        if self.encoder is not None:
            self.encoder.eval()
        ref_embeddings, ref_pixels, ref_features = self._reference
        parts = []
        for start in tqdm(range(0, n, self.batch_size), desc=f"search: {desc or 'images'}", unit="batch",
                          disable=desc is None):
            chunk = slice(start, start + self.batch_size)
            embeddings, pixels, features = represent(chunk)
            blocked = None
            if patients is not None:
                blocked = torch.as_tensor(patients[chunk], device=self.device)[:, None] == self._patients[None, :]
            elif reference_rows is not None:
                rows = torch.as_tensor(reference_rows[chunk], device=self.device)
                blocked = rows[:, None] == torch.arange(len(ref_pixels), device=self.device)[None, :]
            if self.encoder is not None:
                score, score_index = _best(embeddings, ref_embeddings, True, blocked)
            else:
                score = torch.full((len(pixels),), torch.nan, device=self.device)
                score_index = torch.full((len(pixels),), -1, device=self.device)
            pixel, pixel_index = _best(pixels, ref_pixels, False, blocked, self._norms[0], self._exact_pixels)
            feature, feature_index = _best(features, ref_features, False, blocked, self._norms[1])
            parts.append(Nearest(*(t.cpu().numpy() for t in (score, score_index, pixel, pixel_index, feature, feature_index))))
        return Nearest.concat(parts) if parts else Nearest(*(np.zeros(0) for _ in range(6)))


def flagged_patients(image_flags: np.ndarray, patient_ids: np.ndarray) -> np.ndarray:
    """The patients (sorted IDs) with at least one flagged image."""
    return np.unique(np.asarray(patient_ids)[np.asarray(image_flags, bool)])


def distribution(values: np.ndarray, quantiles=(0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)) -> dict[str, float]:
    """Selected quantiles of ``values`` ({"q01": ...}), rounded."""
    if not len(values):
        return {}
    return {f"q{round(100 * q):02d}": round(float(np.quantile(values, q)), 5) for q in quantiles}
