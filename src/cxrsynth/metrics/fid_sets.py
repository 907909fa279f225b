"""The image sets of the FID split validation (paper 001, Table 1 and Figure 5).

Real images are grouped once (stratified halves, each sex, each label, all) and every
group's feature moments are accumulated in one streamed pass over the store. Generated
images are one more group. Table 1 and the class-by-class matrix are then distances
between group Gaussians.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from cxrsynth.data.patient_split import PatientSplit
from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.labels import FINDINGS, LABELS, NO_FINDING
from cxrsynth.metrics.extractors import Extractor
from cxrsynth.metrics.frechet import (
    MIN_IMAGES,
    GroupMoments,
    frechet_distance,
    pairwise_frechet,
    psd_factor,
)

HALVES = ("half_a", "half_b")
SEXES = ("sex_M", "sex_F")
ALL = "all"
REAL_GROUPS: tuple[str, ...] = (*HALVES, *SEXES, *LABELS, ALL)
GENERATED = "generated"


def real_membership(table: pd.DataFrame) -> np.ndarray:
    """(N, len(REAL_GROUPS)) bool: which groups each image of ``table`` belongs to.

    ``table`` needs the label columns, ``sex`` and ``fid_half`` (from the split stage).
    """
    columns = [
        table["fid_half"].to_numpy() == HALVES[0],
        table["fid_half"].to_numpy() == HALVES[1],
        table["sex"].to_numpy() == "M",
        table["sex"].to_numpy() == "F",
        *(table[name].to_numpy().astype(bool) for name in LABELS),
        np.ones(len(table), dtype=bool),
    ]
    return np.stack(columns, axis=1)


def stream_real(images: np.ndarray, rows: np.ndarray, members: np.ndarray, extractors: list[Extractor],
                batch_size: int = 256, vectors: dict[str, np.ndarray] | None = None
                ) -> tuple[dict[str, GroupMoments], np.ndarray | None, np.ndarray]:
    """One pass over ``images[rows]`` (uint8 (N, r, r), e.g. a store memmap): moments per extractor,
    the classifier's probabilities (N, 15) when the classifier is among the extractors, and each
    group's mean image (G, r, r) in [0, 1]. Given a ``vectors`` dict, it is filled with each
    extractor's per-image features, float32 (N, dim) in ``rows`` order (precision/recall and
    memorisation need the vectors, not only their moments)."""
    moments = {e.name: GroupMoments(list(REAL_GROUPS), e.dim) for e in extractors}
    if vectors is not None:
        vectors.update({e.name: np.empty((len(rows), e.dim), dtype=np.float32) for e in extractors})
    pixel_sums = np.zeros((members.shape[1], images.shape[1] * images.shape[2]))
    probs = []
    order = np.argsort(rows, kind="stable")  # sorted reads of the memmap; results put back in table order
    for start in tqdm(range(0, len(rows), batch_size), desc="real features", unit="batch"):
        chosen = order[start : start + batch_size]
        batch = torch.from_numpy(np.ascontiguousarray(images[rows[chosen]])).unsqueeze(1)
        pixel_sums += members[chosen].T.astype(np.float64) @ batch.reshape(len(batch), -1).numpy() / 255.0
        for e in extractors:
            if e.name == "classifier":
                features, p = e.features_and_probs(batch)
                probs.append((chosen, p.cpu().numpy()))
            else:
                features = e.features(batch)
            moments[e.name].update(features, members[chosen])
            if vectors is not None:
                vectors[e.name][chosen] = features.float().cpu().numpy()
    out_probs = None
    if probs:
        out_probs = np.empty((len(rows), len(LABELS)), dtype=np.float32)
        for chosen, p in probs:
            out_probs[chosen] = p
    counts = np.maximum(members.sum(axis=0), 1)[:, None]
    return moments, out_probs, (pixel_sums / counts).reshape(-1, *images.shape[1:]).astype(np.float32)


#: A trained Inception's pool3 features vary by tenths across films; a default-initialised network's
#: by about 1e-6, which makes every FID print as 0.0. Below this median per-feature std the
#: weights are refused rather than reported.
MIN_INCEPTION_SPREAD = 1e-4


def check_feature_spread(moments: dict[str, GroupMoments], weights: str | dict) -> None:
    """Raise InputError (one line, naming the weights) when Inception's features barely vary over the
    real images: FIDs from such a network are all about zero and would look like a perfect generator."""
    if "inception" not in moments:
        return
    spread = float(np.median(np.sqrt(np.clip(np.diag(moments["inception"].gaussian(ALL).sigma), 0, None))))
    if spread < MIN_INCEPTION_SPREAD:
        name = weights.get("file", weights) if isinstance(weights, dict) else weights
        raise InputError(f"fid: Inception features barely vary over the real images (median std {spread:.1e} < "
                         f"{MIN_INCEPTION_SPREAD:g}); are the weights ({name}) a trained network?")


def pixel_change(group_means: np.ndarray) -> dict[str, float]:
    """Per finding, the mean absolute difference between its mean image and No Finding's (a measure of
    how many pixels, and how strongly, the finding changes on average)."""
    index = {g: i for i, g in enumerate(REAL_GROUPS)}
    baseline = group_means[index[NO_FINDING]]
    return {name: float(np.abs(group_means[index[name]] - baseline).mean()) for name in FINDINGS}


def stream_generated(generator: torch.nn.Module, resolution: int, z: torch.Tensor, extractors: list[Extractor],
                     batch_size: int = 256, vectors: dict[str, np.ndarray] | None = None) -> dict[str, GroupMoments]:
    """Moments of generated images (one group, ``generated``) per extractor, sampled batch by batch; with
    ``vectors`` (a dict), also each image's float32 features per extractor there (precision, recall)."""
    from cxrsynth.sampling import sample_images

    moments = {e.name: GroupMoments([GENERATED], e.dim) for e in extractors}
    if vectors is not None:
        vectors.update({e.name: np.empty((len(z), e.dim), dtype=np.float32) for e in extractors})
    for start in tqdm(range(0, len(z), batch_size), desc="generated features", unit="batch"):
        batch = sample_images(generator, z[start : start + batch_size], resolution, batch_size)
        ones = np.ones((len(batch), 1), dtype=bool)
        for e in extractors:
            features = e.features(batch)
            moments[e.name].update(features, ones)
            if vectors is not None:
                vectors[e.name][start : start + len(batch)] = features.float().cpu().numpy()
    return moments


def left_out_labels(real: GroupMoments) -> dict[str, int]:
    """Labels with fewer than ``MIN_IMAGES`` real images, and how many each has: without a covariance
    they have no Fréchet distance, so Table 1 and Figure 5 leave them out."""
    return {name: real.images(name) for name in LABELS if real.images(name) < MIN_IMAGES}


def table1(real: GroupMoments, generated: GroupMoments | None) -> dict[str, float]:
    """The paper's Table 1 for one extractor: stratified halves, sex, No Finding vs each finding, synthetic.

    A finding in ``left_out_labels`` has no row; when No Finding is, no finding has one."""
    out = {"stratified": frechet_distance(real.gaussian(HALVES[0]), real.gaussian(HALVES[1])),
           "sex": frechet_distance(real.gaussian(SEXES[0]), real.gaussian(SEXES[1]))}
    left_out = left_out_labels(real)
    if NO_FINDING not in left_out:
        baseline = real.gaussian(NO_FINDING)
        factor = psd_factor(baseline.sigma)  # once, not once per finding
        for name in FINDINGS:
            if name not in left_out:
                out[name] = frechet_distance(baseline, real.gaussian(name), factor)
    if generated is not None:
        out["synthetic"] = frechet_distance(real.gaussian(ALL), generated.gaussian(GENERATED))
    return out


def class_matrix(real: GroupMoments, progress: bool = True) -> pd.DataFrame:
    """Figure 5's pairwise Fréchet distances between the images of every pair of labels, less the
    ``left_out_labels``; InputError when fewer than two labels are left to place."""
    left_out = left_out_labels(real)
    kept = [name for name in LABELS if name not in left_out]
    if len(kept) < 2:
        raise InputError(f"fid: {len(kept)} label(s) have at least {MIN_IMAGES} real images; Figure 5 needs two "
                         f"(too few: {', '.join(f'{k} {n}' for k, n in left_out.items())})")
    values = pairwise_frechet([real.gaussian(name) for name in kept], progress=progress)
    return pd.DataFrame(values, index=kept, columns=kept)


def embed_2d(distances: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Metric multidimensional scaling of a distance matrix to 2-D (scikit-learn)."""
    from sklearn.manifold import MDS

    mds = MDS(n_components=2, metric="precomputed", init="random", n_init=4, random_state=seed)
    xy = mds.fit_transform(distances.to_numpy())
    return pd.DataFrame({"label": distances.index, "x": xy[:, 0].round(4), "y": xy[:, 1].round(4)})


def real_table(store, split_csv) -> pd.DataFrame:
    """The store's table joined with the split (``split``, ``fid_half``), in store order
    (``PatientSplit.store_rows``: stored images the split does not list are left out)."""
    return PatientSplit.read(split_csv).store_rows(store.table, fid_half=True)


def save_real_features(out_dir, table: pd.DataFrame, moments: dict[str, GroupMoments],
                       probs: np.ndarray | None, group_means: np.ndarray, info: dict,
                       vectors: dict[str, np.ndarray] | None = None) -> None:
    """Write one ``moments_<extractor>.npz`` per extractor, the classifier's probabilities, the groups'
    mean images and ``info.json``; with ``vectors`` (``stream_real``'s), one ``vectors_<extractor>.npy``
    (float32 (N, dim), ``table`` order) per extractor and ``vectors.csv`` (``VECTOR_COLUMNS`` of each row)."""
    import json
    from pathlib import Path

    out_dir = Path(out_dir)
    np.save(out_dir / "group_means.npy", group_means)
    for name, m in moments.items():
        m.save(out_dir / f"moments_{name}.npz")
    if vectors is not None:
        for name, v in vectors.items():
            np.save(out_dir / f"vectors_{name}.npy", np.ascontiguousarray(v, dtype=np.float32))
        table[list(VECTOR_COLUMNS)].to_csv(out_dir / "vectors.csv", index=False)
    if probs is not None:
        frame = table[["image", "patient_id", "split", *LABELS]].copy()
        frame[[f"p_{name}" for name in LABELS]] = probs.round(6)
        frame.to_csv(out_dir / "classifier_probs.csv", index=False)
    (out_dir / "info.json").write_text(json.dumps(info, indent=2) + "\n")


def load_real_moments(folder) -> dict[str, GroupMoments]:
    """The moments written by ``save_real_features``, by extractor name."""
    from pathlib import Path

    return {p.stem.removeprefix("moments_"): GroupMoments.load(p) for p in sorted(Path(folder).glob("moments_*.npz"))}


#: what ``vectors.csv`` says of each real feature vector: its store row, film, patient and split
VECTOR_COLUMNS = ("row", "image", "patient_id", "split")


@dataclass(frozen=True)
class RealVectors:
    """Per-image feature vectors of the real images (every stored film with a split: the set the
    generators train on), as ``save_real_features`` writes them."""

    table: pd.DataFrame  # VECTOR_COLUMNS, one line per vector
    features: dict[str, np.ndarray]  # extractor name -> float32 (N, dim), in ``table`` order

    def positions(self, split: str) -> np.ndarray:
        """Positions (into ``table`` and every ``features`` array) of the films of one split."""
        return np.flatnonzero(self.table["split"].to_numpy() == split)

    def patients(self) -> np.ndarray:
        """Each vector's patient as an integer code (equal codes: the same patient)."""
        return pd.factorize(self.table["patient_id"])[0]


def load_real_vectors(folder) -> RealVectors:
    """The vectors written by ``save_real_features``; MissingInputError when the folder has none (an
    older ``real_features`` output)."""
    from pathlib import Path

    folder = Path(folder)
    index = folder / "vectors.csv"
    paths = sorted(folder.glob("vectors_*.npy"))
    if not index.exists() or not paths:
        raise MissingInputError(f"{folder}: no per-image feature vectors (vectors.csv, vectors_<extractor>.npy); "
                                "rerun the real_features stage")
    table = pd.read_csv(index)
    features = {p.stem.removeprefix("vectors_"): np.load(p) for p in paths}
    for name, v in features.items():
        if len(v) != len(table):
            raise MissingInputError(f"{folder}: vectors_{name}.npy has {len(v)} vectors, vectors.csv {len(table)} "
                                    "rows; rerun the real_features stage")
    return RealVectors(table, features)
