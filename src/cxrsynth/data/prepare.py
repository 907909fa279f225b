"""The ``prepare`` stage's work: clean metadata, decode to grey, store an area pyramid."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.greyscale import area_pyramid, to_grey
from cxrsynth.data.metadata import MetadataError, read_bbox_list, read_data_entry
from cxrsynth.data.sources import BBOX_NAME, LIST_NAMES, METADATA_NAMES
from cxrsynth.data.store import array_name, content_fingerprint, level_sizes
from cxrsynth.errors import CxrsynthError, MissingInputError
from cxrsynth.io import write_json
from cxrsynth.labels import LABELS


class TooManyRejectsError(CxrsynthError, RuntimeError):
    """More images were unreadable than ``prepare.max_reject_fraction`` allows."""


_arrays: dict[int, np.ndarray] = {}  # per worker process: the store's arrays, opened once


def _init_worker(folder: str, sizes: list[int]) -> None:
    for res in sizes:
        _arrays[res] = np.load(Path(folder) / array_name(res), mmap_mode="r+")


def _decode_chunk(tasks: list[tuple[int, str]]) -> list[tuple[int, str, str]]:
    """Decode, convert and write a chunk of images; returns (row, how or '', reject reason or '')."""
    top, bottom = max(_arrays), min(_arrays)
    results = []
    for row, path in tasks:
        try:
            with Image.open(path) as image:
                image.load()
                grey, how = to_grey(image)
            if min(grey.shape) < 1:
                raise ValueError("empty image")
            for res, level in area_pyramid(grey, top, bottom).items():
                _arrays[res][row] = level
            results.append((row, how, ""))
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
            results.append((row, "", f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"))
    for array in _arrays.values():
        array.flush()
    return results


def label_examples(out_dir: Path, table: pd.DataFrame, res: int, per_label: int = 8) -> list[tuple[str, np.ndarray]]:
    """Up to ``per_label`` stored images per label (first rows holding it) for a contact sheet."""
    images = np.load(out_dir / array_name(res), mmap_mode="r")
    rows = []
    for name in LABELS:
        picked = table.loc[table[name] == 1, "row"].to_numpy()[:per_label]
        if len(picked):
            rows.append((name, np.asarray(images[np.sort(picked)])))
    return rows


def find_metadata(raw_dir: Path) -> Path:
    """The metadata CSV in a raw folder (v2020 name first)."""
    for name in METADATA_NAMES:
        if (raw_dir / name).exists():
            return raw_dir / name
    raise MetadataError(f"{raw_dir}: none of {', '.join(METADATA_NAMES)} found")


def prepare_dataset(raw_dir: Path, out_dir: Path, params: PrepareParams) -> dict:
    """Build the image store in ``out_dir`` (which must be empty) and return the metrics dict."""
    start = time.perf_counter()
    table, report = read_data_entry(find_metadata(raw_dir))
    images_dir = raw_dir / "images"
    on_disk = {p.name for p in images_dir.iterdir()} if images_dir.is_dir() else set()
    present = table["image"].isin(on_disk).to_numpy()
    not_downloaded = int((~present).sum())
    if not present.any():
        raise MissingInputError(f"{images_dir}: none of the {len(table)} listed images is there")
    if not_downloaded:
        tqdm.write(f"prepare: {not_downloaded} listed images are not in {images_dir} (archives not downloaded); skipped")
    table = table.loc[present].reset_index(drop=True)
    unlisted = len(on_disk) - len(table)

    sizes = level_sizes(params.size, params.min_size)
    for res in sizes:
        np.lib.format.open_memmap(out_dir / array_name(res), mode="w+", dtype=np.uint8, shape=(len(table), res, res)).flush()
    tasks = [(row, str(images_dir / name)) for row, name in enumerate(table["image"])]
    chunks = [tasks[i : i + params.chunk] for i in range(0, len(tasks), params.chunk)]
    workers = min(params.workers or os.cpu_count() or 1, max(1, len(chunks)))
    how = np.empty(len(table), dtype=object)
    reasons = np.full(len(table), "", dtype=object)
    with mp.get_context("spawn").Pool(workers, _init_worker, (str(out_dir), sizes)) as pool:
        bar = tqdm(total=len(tasks), desc="decode to grey", unit="img")
        for results in pool.imap_unordered(_decode_chunk, chunks):
            for row, mode, reason in results:
                how[row], reasons[row] = mode, reason
            bar.update(len(results))
        bar.close()

    bad = reasons != ""
    rejects = [(img, "metadata line %d: %s" % (line, why)) for line, img, why in report.rejects]
    rejects += list(zip(table.loc[bad, "image"], reasons[bad], strict=False))
    fraction = bad.sum() / len(table)
    if fraction > params.max_reject_fraction:
        examples = "; ".join(f"{img}: {why}" for img, why in list(zip(table.loc[bad, "image"], reasons[bad], strict=False))[:3])
        raise TooManyRejectsError(
            f"prepare: {bad.sum()} of {len(table)} images unreadable ({fraction:.1%} > prepare.max_reject_fraction "
            f"{params.max_reject_fraction:.1%}), e.g. {examples}"
        )
    table["row"] = np.arange(len(table))
    table["source_mode"] = how
    table = table.loc[~bad].reset_index(drop=True)
    table.to_csv(out_dir / "table.csv", index=False)
    pd.DataFrame(rejects, columns=["image", "reason"]).to_csv(out_dir / "rejects.csv", index=False)
    if (raw_dir / BBOX_NAME).exists():
        read_bbox_list(raw_dir / BBOX_NAME).to_csv(out_dir / "bbox.csv", index=False)
    for name in LIST_NAMES:
        if (raw_dir / name).exists():
            shutil.copyfile(raw_dir / name, out_dir / name)

    seconds = time.perf_counter() - start
    tqdm.write(f"prepare: {len(tasks)} images in {seconds:.1f} s ({len(tasks) / seconds:.0f} img/s, {workers} workers)")
    modes = table["source_mode"].value_counts().to_dict()
    metrics = {
        "images": len(table),
        "patients": int(table["patient_id"].nunique()),
        "rejected": int(bad.sum()),
        "metadata_rows_rejected": len(report.rejects),
        "not_downloaded": not_downloaded,
        "unlisted_files": int(max(unlisted, 0)),
        "converted_to_grey": int(len(table) - modes.get("L", 0)),
        "source_modes": {k: int(v) for k, v in sorted(modes.items())},
        "ages_in_months": report.ages_in_months,
        "ages_in_days": report.ages_in_days,
        "ages_missing": report.ages_missing,
        "label_counts": {name: int(table[name].sum()) for name in LABELS},
        "size": params.size,
        "levels": sizes,
    }
    write_json(out_dir / "store.json", {"sizes": sizes, "images": len(table), "allocated_rows": len(tasks),
                                        "fingerprint": content_fingerprint(out_dir, sizes)})
    return metrics
