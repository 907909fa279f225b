"""The class-optimised synthetic archive (paper 001, sections 3.4 and 4.3), written like NIH.

Plan (``synthesis.archive_builder`` and ``synthesis.planning``): images per target class chosen so the
labels come out as frequent as the source's, split into synthetic patients of 3 to 6
follow-ups. Each patient is one class-optimised latent z*;
its follow-ups are generated at z* + N(0, local_std^2) (local sampling) and labelled by
the classifier's thresholded predictions, so co-occurring findings are recorded.

Layout of an archive folder (the NIH distribution's)::

    images_001.tar ...           per film images/<Image Index> (the PNG), then images/<stem>.json (its
                                 row and multi-hot labels, ``data.shards``); ``shard_images`` films
                                 per tar (a few files for DVC). ``tar -xf`` gives NIH's images/
                                 folder; WebDataset reads each tar as (png, json) samples as it is
    Data_Entry_synthetic.csv     NIH's 11 columns + Target Label + Target Score (the labels' source
                                 of truth; ``data.archive_dataset.ArchiveDataset`` reads the archive
                                 through it without extracting the shards)
    privacy_filter.json          with archive.privacy_filter: the filter's record

Patient IDs live in a synthetic namespace (from ``SYNTHETIC_ID_OFFSET``) that cannot meet
a real one; the check is made against the source table when the archive is built.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from cxrsynth.data.metadata import read_data_entry
from cxrsynth.data.shards import (
    ARCHIVE_CSV,
    IMAGE_DIR,
    add_member,
    json_member,
    record_bytes,
    sample_record,
    shard_name,
)
from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.io import write_json
from cxrsynth.labels import FINDINGS, LABELS, NO_FINDING
from cxrsynth.resize import pillow_resize
from cxrsynth.sampling import sample_images
from cxrsynth.synthesis.scorers import Scorer

#: Real NIH patient IDs run 1..30,805; synthetic ones start here and keep NIH's 8-digit image names.
SYNTHETIC_ID_OFFSET = 90_000_000
MAX_PATIENTS = 10**8 - SYNTHETIC_ID_OFFSET
CSV_NAME = ARCHIVE_CSV
PRIVACY_RECORD = "privacy_filter.json"  # what the privacy filter found and replaced (``privacy.filter``)


def plan_patients(targets: np.ndarray, follow_ups: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split each class's image target into patients of ``follow_ups[0]..follow_ups[1]`` images (uniform).

    A class whose remainder cannot form a whole patient gets one slightly larger or smaller
    last patient; a class target below the minimum becomes one small patient. Returns
    (class index, images) per patient, shuffled so classes are interleaved.
    """
    lo, hi = follow_ups
    classes, sizes = [], []
    for c, remaining in enumerate(np.asarray(targets, dtype=np.int64)):
        while remaining > 0:
            k = int(rng.integers(lo, hi + 1))
            if 0 < remaining - k < lo:  # the rest could not form a patient
                k = remaining if remaining <= hi else remaining - lo
            k = min(k, remaining)
            classes.append(c)
            sizes.append(k)
            remaining -= k
    order = rng.permutation(len(classes))
    return np.asarray(classes, dtype=np.int64)[order], np.asarray(sizes, dtype=np.int64)[order]


def local_latents(z_star: torch.Tensor, counts: np.ndarray, std: float, generator: torch.Generator) -> torch.Tensor:
    """``counts[p]`` latents around each ``z_star[p]``: z* + N(0, std^2), patient by patient."""
    centres = z_star.repeat_interleave(torch.as_tensor(counts), dim=0)
    noise = torch.randn(centres.shape, generator=generator, device=centres.device)
    return centres + std * noise


def label_strings(positive: np.ndarray) -> list[str]:
    """NIH label strings from (N, 15) 0/1 predictions: findings joined with '|', else 'No Finding'."""
    names = np.asarray(FINDINGS)
    findings = positive[:, 1:].astype(bool)
    return ["|".join(names[row]) if row.any() else NO_FINDING for row in findings]


@torch.no_grad()
def render_patients(generator: torch.nn.Module, resolution: int, z: torch.Tensor, target: np.ndarray,
                    labeller: Scorer, scorer: Scorer, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate every follow-up; return uint8 images (N, r, r), labeller 0/1 labels (N, 15) and the
    scorer's probability of each image's target class."""
    images, labels, scores = [], [], []
    device = next(generator.parameters()).device
    target_t = torch.as_tensor(target, dtype=torch.long)
    for start in tqdm(range(0, len(z), batch_size), desc="render archive", unit="batch"):
        batch = sample_images(generator, z[start : start + batch_size], resolution, batch_size)
        as_output = batch.to(device).float() / 127.5 - 1.0
        probs = torch.sigmoid(labeller.logits(as_output)).cpu().numpy()
        labels.append((probs >= labeller.thresholds).astype(np.uint8))
        score = torch.sigmoid(scorer.logits(as_output)).cpu()
        scores.append(score.gather(1, target_t[start : start + batch_size, None]).squeeze(1).numpy())
        images.append(batch[:, 0].numpy())
    if not images:  # no patient to render
        return np.zeros((0, resolution, resolution), np.uint8), np.zeros((0, len(LABELS)), np.uint8), np.zeros(0)
    return np.concatenate(images), np.concatenate(labels), np.concatenate(scores)


def archive_table(patient_class: np.ndarray, counts: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                  resolution: int, real_ids: np.ndarray) -> pd.DataFrame:
    """The NIH-style ``Data_Entry`` table of an archive (one row per image, patients in order)."""
    if len(counts) > MAX_PATIENTS:
        raise InputError(f"archive: {len(counts)} patients exceed the synthetic ID space ({MAX_PATIENTS})")
    patient = np.repeat(np.arange(len(counts)), counts)
    follow_up = np.concatenate([np.arange(k) for k in counts]) if len(counts) else np.zeros(0, np.int64)
    ids = SYNTHETIC_ID_OFFSET + patient
    if len(real_ids) and np.isin(ids, real_ids).any():
        raise InputError("archive: synthetic patient IDs collide with real ones")
    return pd.DataFrame({
        "Image Index": [f"{p:08d}_{f:03d}.png" for p, f in zip(ids, follow_up)],
        "Finding Labels": label_strings(labels),
        "Follow-up #": follow_up,
        "Patient ID": ids,
        "Patient Age": "",
        "Patient Gender": "",
        "View Position": "",  # an unconditional generator does not tell PA from AP: synthesis.view predicts it
        "OriginalImage[Width": resolution,
        "Height]": resolution,
        "OriginalImagePixelSpacing[x": "",
        "y]": "",
        "Target Label": np.asarray(LABELS)[np.repeat(patient_class, counts)],
        "Target Score": np.round(scores, 4),
    })


def write_archive(out_dir: Path, images: np.ndarray, table: pd.DataFrame, shard_images: int = 10_000,
                  privacy_record: dict | None = None) -> list[str]:
    """Write the shards (``images_NNN.tar``: per film ``images/<name>``, the PNG, then its JSON record,
    ``data.shards``), the CSV and, when given, the privacy filter's record (``PRIVACY_RECORD``);
    returns the shard names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = []
    rows = table.to_dict("records")
    for k, start in enumerate(tqdm(range(0, len(rows), shard_images), desc="write shards", unit="shard"), start=1):
        shard = shard_name(k)
        with tarfile.open(out_dir / shard, "w", format=tarfile.PAX_FORMAT) as tar:
            for row, image in zip(rows[start : start + shard_images], images[start : start + shard_images]):
                buffer = io.BytesIO()
                Image.fromarray(np.ascontiguousarray(image), "L").save(buffer, format="PNG")
                add_member(tar, f"{IMAGE_DIR}/{row['Image Index']}", buffer.getvalue())
                add_member(tar, json_member(row["Image Index"]), record_bytes(sample_record(row)))
        shards.append(shard)
    table.to_csv(out_dir / CSV_NAME, index=False, quoting=csv.QUOTE_MINIMAL)
    if privacy_record is not None:
        write_json(out_dir / PRIVACY_RECORD, privacy_record)
    return shards


def read_archive(folder: str | Path, size: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """An archive's clean table (the project's metadata reader) and its images (N, r, r) in table order,
    resized on reading to ``size`` when given (box filter down, bilinear up) so a full-scale archive
    need not fit in memory at the generator's resolution. The shards' JSON records are skipped: the
    CSV holds the labels. For batches on demand, ``data.archive_dataset.ArchiveDataset``."""
    folder = Path(folder)
    table, report = read_data_entry(folder / CSV_NAME)
    if report.rejects:
        line, image, reason = report.rejects[0]
        raise InputError(f"{folder / CSV_NAME}: line {line} ({image}): {reason}")
    wanted = {name: i for i, name in enumerate(table["image"])}
    images: np.ndarray | None = None
    found = 0
    for shard in sorted(folder.glob("images_*.tar*")):
        with tarfile.open(shard, "r|*") as tar:
            for member in tar:
                name = Path(member.name).name
                if not member.isfile() or name not in wanted:
                    continue
                image = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("L")
                if size is not None and image.size != (size, size):
                    image = pillow_resize(image, size)
                pixels = np.asarray(image)
                if images is None:
                    images = np.zeros((len(table), *pixels.shape), dtype=np.uint8)
                images[wanted[name]] = pixels
                found += 1
    if images is None or found != len(table):
        raise MissingInputError(f"{folder}: {len(table) - found} archive images listed in {CSV_NAME} are missing")
    return table, images


def read_privacy_record(folder: str | Path) -> dict | None:
    """The privacy filter's record an archive holds (``PRIVACY_RECORD``), or None when it has none
    (the filter did not run)."""
    path = Path(folder) / PRIVACY_RECORD
    return json.loads(path.read_text()) if path.is_file() else None
