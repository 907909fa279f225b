"""The ``prepare`` stage's work: clean metadata, decode to grey, store an area pyramid."""

from __future__ import annotations

import io
import multiprocessing as mp
import multiprocessing.pool
import os
import shutil
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.chexnext import RELABELLED_NAME, apply_chexnext, read_relabelled
from cxrsynth.data.greyscale import area_pyramid, to_grey
from cxrsynth.data.metadata import MetadataError, read_bbox_list, read_data_entry
from cxrsynth.data.sources import BBOX_NAME, LIST_NAMES, METADATA_NAMES
from cxrsynth.data.sources.manifest import (
    ImageSource,
    check_unchanged,
    read_manifest,
    stream_films,
)
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


def _decode_chunk(tasks: list[tuple[int, bytes | str]]) -> list[tuple[int, str, str]]:
    """Decode, convert and write a chunk of images (PNG bytes or a file path); returns
    (row, how or '', reject reason or '')."""
    top, bottom = max(_arrays), min(_arrays)
    results = []
    for row, film in tasks:
        try:
            with Image.open(io.BytesIO(film) if isinstance(film, bytes) else film) as image:
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


def _chunks(sources: list[ImageSource], raw_dir: Path, rows: dict[str, int], size: int) -> Iterator[list]:
    """(row, film) tasks in chunks of ``size``, streamed source by source; a film found twice is read once."""
    chunk, seen = [], set()
    for source in sources:
        for name, film in stream_films(source, raw_dir, rows.keys() - seen):
            if name in seen:
                continue
            seen.add(name)
            chunk.append((rows[name], film))
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _decode_all(pool: mp.pool.Pool, chunks: Iterator[list], in_flight: int, total: int) -> Iterator[tuple[int, str, str]]:
    """Run ``_decode_chunk`` over the chunks with at most ``in_flight`` chunks queued.

    ``Pool.imap`` would drain the chunk iterator as fast as it can, holding a whole archive's
    bytes in memory; here the next chunk is read only when one comes back.
    """
    pending: deque = deque()
    with tqdm(total=total, desc="decode to grey", unit="img") as bar:
        for chunk in chunks:
            pending.append(pool.apply_async(_decode_chunk, (chunk,)))
            while len(pending) >= in_flight or (pending and pending[0].ready()):
                results = pending.popleft().get()
                bar.update(len(results))
                yield from results
        while pending:
            results = pending.popleft().get()
            bar.update(len(results))
            yield from results


def prepare_dataset(raw_dir: Path, out_dir: Path, params: PrepareParams) -> dict:
    """Build the image store in ``out_dir`` (which must be empty) and return the metrics dict."""
    start = time.perf_counter()
    table, report = read_data_entry(find_metadata(raw_dir))
    relabelled = read_relabelled(raw_dir)
    relabelling = {"labels": "nih"}
    if relabelled is not None:  # the paper's subset: only the images CheXNeXt relabelled, with its labels
        table, relabelling = apply_chexnext(table, relabelled, source=raw_dir / RELABELLED_NAME)
    sources = read_manifest(raw_dir)
    for source in sources:
        check_unchanged(source, raw_dir)
    recorded = [name for source in sources for name in source.images]
    on_disk = set(recorded)
    present = table["image"].isin(on_disk).to_numpy()
    not_downloaded = int((~present).sum())
    where = ", ".join(Path(s.path).name for s in sources)
    if not present.any():
        raise MissingInputError(f"{raw_dir}: none of the {len(table)} listed images is in {where}")
    if not_downloaded:
        tqdm.write(f"prepare: {not_downloaded} listed images are not in {where} (archives not downloaded); skipped")
    table = table.loc[present].reset_index(drop=True)
    unlisted = len(on_disk) - len(table)

    sizes = level_sizes(params.size, params.min_size)
    for res in sizes:
        np.lib.format.open_memmap(out_dir / array_name(res), mode="w+", dtype=np.uint8, shape=(len(table), res, res)).flush()
    rows = {name: row for row, name in enumerate(table["image"])}
    workers = min(params.workers or os.cpu_count() or 1, max(1, -(-len(rows) // params.chunk)))
    how = np.empty(len(table), dtype=object)
    reasons = np.full(len(table), "", dtype=object)
    with mp.get_context("spawn").Pool(workers, _init_worker, (str(out_dir), sizes)) as pool:
        chunks = _chunks(sources, raw_dir, rows, params.chunk)
        for row, mode, reason in _decode_all(pool, chunks, 2 * workers, len(rows)):
            how[row], reasons[row] = mode, reason
    reasons[pd.isna(how) & (reasons == "")] = "recorded in images.json but not found when streamed"

    bad = reasons != ""
    rejects = [(img, f"metadata line {line}: {why}") for line, img, why in report.rejects]
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
    tqdm.write(f"prepare: {len(rows)} images in {seconds:.1f} s ({len(rows) / seconds:.0f} img/s, {workers} workers)")
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
        "labels": relabelling,
        "size": params.size,
        "levels": sizes,
    }
    write_json(out_dir / "store.json", {"sizes": sizes, "images": len(table), "allocated_rows": len(rows),
                                        "fingerprint": content_fingerprint(out_dir, sizes)})
    return metrics
