"""Writing the image store: clean metadata, decode each film to grey, keep an area pyramid of sizes."""

from __future__ import annotations

import io
import multiprocessing as mp
import multiprocessing.pool
import os
import shutil
import time
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from cxrsynth.config.prepare import PrepareParams
from cxrsynth.data.chexnext import RELABELLED_NAME, apply_chexnext, read_relabelled
from cxrsynth.data.greyscale import area_pyramid, to_grey
from cxrsynth.data.metadata import MetadataError, MetadataReport, read_bbox_list, read_data_entry
from cxrsynth.data.sources import BBOX_NAME, LIST_NAMES, METADATA_NAMES
from cxrsynth.data.sources.manifest import (
    ImageSource,
    Unread,
    check_unchanged,
    film_name,
    read_manifest,
    stream_films,
)
from cxrsynth.data.store import array_name, content_fingerprint, level_sizes
from cxrsynth.errors import CxrsynthError, MissingInputError
from cxrsynth.io import write_json
from cxrsynth.labels import LABELS


class TooManyRejectsError(CxrsynthError, RuntimeError):
    """More films were rejected (unreadable, or without a usable metadata row) than
    ``prepare.max_reject_fraction`` allows."""


class ImageTooLargeError(ValueError):
    """A film's header claims more pixels than ``prepare.max_pixels`` (a decompression bomb, or absurd)."""


def film_byte_limit(max_pixels: int) -> int:
    """The most bytes a PNG within ``max_pixels`` can reasonably take: 16-bit RGBA stored
    uncompressed (8 bytes a pixel) plus 1 MiB of other chunks. Larger films are not read."""
    return 8 * max_pixels + (1 << 20)


def open_film(film: bytes | str, max_pixels: int) -> Image.Image:
    """Open a film (PNG bytes or a path), reading its header only; raises ImageTooLargeError before
    any pixel is decoded when it claims more than ``max_pixels`` pixels."""
    try:
        image = Image.open(io.BytesIO(film) if isinstance(film, bytes) else film)
    except Image.DecompressionBombError as err:  # Pillow's own check, at twice MAX_IMAGE_PIXELS
        raise ImageTooLargeError(f"over prepare.max_pixels ({max_pixels:,}): {err}") from err
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageTooLargeError(f"{width} x {height} pixels, over prepare.max_pixels ({max_pixels:,})")
    return image


_arrays: dict[int, np.ndarray] = {}  # per worker process: the store's arrays, opened once
_max_pixels = 0  # per worker process: prepare.max_pixels


def _init_worker(folder: str, sizes: list[int], max_pixels: int) -> None:
    global _max_pixels
    for res in sizes:
        _arrays[res] = np.load(Path(folder) / array_name(res), mmap_mode="r+")
    _max_pixels = max_pixels
    # Pillow's own bomb check uses our limit, not its global default; open_film reports what
    # passes Pillow's warning threshold, so the warning would only repeat it
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


def _decode_chunk(tasks: list[tuple[int, bytes | str | Unread]]) -> list[tuple[int, str, str]]:
    """Decode, convert and write a chunk of images (PNG bytes, a file path, or a film left unread);
    returns (row, how or '', reject reason or '')."""
    top, bottom = max(_arrays), min(_arrays)
    results = []
    for row, film in tasks:
        try:
            if isinstance(film, str) and (size := os.path.getsize(film)) > film_byte_limit(_max_pixels):
                film = Unread(f"{size:,} bytes, over the {film_byte_limit(_max_pixels):,} bytes a film within "
                              "prepare.max_pixels can take")
            if isinstance(film, Unread):
                raise ImageTooLargeError(film.reason)
            with open_film(film, _max_pixels) as image:
                image.load()
                grey, how = to_grey(image)
            if min(grey.shape) < 1:
                raise ValueError("empty image")
            for res, level in area_pyramid(grey, top, bottom).items():
                _arrays[res][row] = level
            results.append((row, how, ""))
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
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


@dataclass(frozen=True)
class MetadataRejects:
    """The metadata's part of the rejects: ``listed`` (image, reason) for rejects.csv; ``counted``
    the films they cost, ``no_row`` of them with no row at all and ``bad_row`` with a malformed one."""

    listed: list[tuple[str, str]]
    counted: list[tuple[str, str]]
    no_row: int
    bad_row: int


def metadata_rejects(report: MetadataReport, on_disk: set[str], listed: set[str], csv_name: str) -> MetadataRejects:
    """The rows ``read_data_entry`` dropped, and the films they cost: films on disk with no usable
    row (theirs malformed, or cut off a truncated table) and malformed rows that name no film.
    Rows of films not downloaded cost nothing, as those films do not."""
    rows = [(img, f"metadata line {line}: {why}") for line, img, why in report.rejects]
    first: dict[str, str] = {}
    for img, why in rows:
        first.setdefault(img, why)
    bad = [(img, why) for img, why in first.items() if img in on_disk and img not in listed]
    bad += [(img, why) for img, why in rows if film_name(img) != img]
    no_row = [(img, f"no row in {csv_name} (is the metadata file truncated?)")
              for img in sorted(on_disk - listed - first.keys())]
    return MetadataRejects(rows + no_row, bad + no_row, len(no_row), len(bad))


def check_reject_ceiling(dropped: MetadataRejects, unreadable: list[tuple[str, str]], decoded: int,
                         limit: float, csv_name: str) -> list[tuple[str, str]]:
    """All rejected films (metadata's, then unreadable ones) out of ``decoded`` films given to the
    decoder plus those the metadata dropped; TooManyRejectsError, in one line, past ``limit``."""
    counted = dropped.counted + unreadable
    films = decoded + len(dropped.counted)
    fraction = len(counted) / films
    if fraction > limit:
        kinds = ((len(unreadable), "unreadable"), (dropped.no_row, f"with no row in {csv_name}"),
                 (dropped.bad_row, f"with an unusable row in {csv_name}"))
        why = ", ".join(f"{n} {what}" for n, what in kinds if n)
        examples = "; ".join(f"{img}: {reason}" for img, reason in counted[:3])
        raise TooManyRejectsError(
            f"prepare: {len(counted)} of {films} images rejected ({why}): {fraction:.1%} > "
            f"prepare.max_reject_fraction {limit:.1%}, e.g. {examples}")
    return counted


def _chunks(sources: list[ImageSource], raw_dir: Path, rows: dict[str, int], size: int,
            max_bytes: int) -> Iterator[list]:
    """(row, film) tasks in chunks of ``size``, streamed source by source; a film found twice is read once."""
    chunk, seen = [], set()
    for source in sources:
        for name, film in stream_films(source, raw_dir, rows.keys() - seen, max_bytes):
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
    """Build the image store in ``out_dir`` (which must be empty) and return the metrics dict.

    A film is rejected (listed in ``rejects.csv`` with the reason) when it cannot be decoded,
    claims more than ``params.max_pixels`` pixels, or has no usable row in the metadata (its row
    malformed, or missing: a truncated table); a malformed row that names no film counts too.
    More rejects than ``params.max_reject_fraction`` of the films raise TooManyRejectsError.
    """
    start = time.perf_counter()
    csv_path = find_metadata(raw_dir)
    table, report = read_data_entry(csv_path)
    listed = set(table["image"])  # before relabelling, which drops listed films on purpose
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
    dropped = metadata_rejects(report, on_disk, listed, csv_path.name)
    check_reject_ceiling(dropped, [], len(table), params.max_reject_fraction, csv_path.name)  # before hours of decoding

    sizes = level_sizes(params.size, params.min_size)
    for res in sizes:
        np.lib.format.open_memmap(out_dir / array_name(res), mode="w+", dtype=np.uint8, shape=(len(table), res, res)).flush()
    rows = {name: row for row, name in enumerate(table["image"])}
    workers = min(params.workers or os.cpu_count() or 1, max(1, -(-len(rows) // params.chunk)))
    how = np.empty(len(table), dtype=object)
    reasons = np.full(len(table), "", dtype=object)
    with mp.get_context("spawn").Pool(workers, _init_worker, (str(out_dir), sizes, params.max_pixels)) as pool:
        chunks = _chunks(sources, raw_dir, rows, params.chunk, film_byte_limit(params.max_pixels))
        for row, mode, reason in _decode_all(pool, chunks, 2 * workers, len(rows)):
            how[row], reasons[row] = mode, reason
    reasons[pd.isna(how) & (reasons == "")] = "recorded in images.json but not found when streamed"

    bad = reasons != ""
    unreadable = list(zip(table.loc[bad, "image"], reasons[bad], strict=False))
    counted = check_reject_ceiling(dropped, unreadable, len(table), params.max_reject_fraction, csv_path.name)
    if dropped.counted:
        tqdm.write(f"prepare: {len(dropped.counted)} films rejected for their metadata "
                   f"({dropped.no_row} with no row in {csv_path.name}); see rejects.csv")
    rejects = dropped.listed + unreadable
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
        "rejected": len(counted),
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
