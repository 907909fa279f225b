"""An NIH copy already on disk: checked and recorded in ``data/raw``'s manifest, read where it lies.

The films are neither copied nor linked: ``prepare`` reads the PNG folder, or streams the
``images_*.tar(.gz)`` archives, in place. The metadata files are copied into ``data/raw``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cxrsynth.config.data import LocalParams
from cxrsynth.data.metadata import NIH_HEADER, MetadataError, read_image_list
from cxrsynth.data.sources import BBOX_NAME, LIST_NAMES, METADATA_NAMES
from cxrsynth.data.sources.manifest import (
    archive_members,
    archive_source,
    film_name,
    folder_source,
    write_manifest,
)
from cxrsynth.errors import MissingInputError


def import_local(params: LocalParams, raw_dir: Path) -> dict:
    """Check an existing NIH copy, record its films in ``raw_dir``'s manifest, copy its metadata."""
    images_dir, metadata = Path(params.images_dir), Path(params.metadata_csv)
    if not images_dir.is_dir():
        raise MissingInputError(f"data.local.images_dir: folder {images_dir} not found")
    if not metadata.is_file():
        raise MissingInputError(f"data.local.metadata_csv: file {metadata} not found")
    with open(metadata, encoding="utf-8-sig") as fh:
        first = fh.readline().strip().rstrip(",")
    if not (first + ",").startswith(",".join(NIH_HEADER) + ","):
        raise MetadataError(f"data.local.metadata_csv: {metadata} does not have the NIH header")
    has_pngs = any(film_name(p.name) for p in images_dir.iterdir())
    shards = sorted(p for p in images_dir.iterdir() if p.name.startswith("images_") and ".tar" in p.suffixes)
    if not has_pngs and not shards:
        raise MissingInputError(f"data.local.images_dir: no NNNNNNNN_NNN.png films or images_*.tar(.gz) archives in {images_dir}")
    raw_dir.mkdir(parents=True, exist_ok=True)
    sources = [folder_source(images_dir)] if has_pngs else []
    # NIH's own packaging (or a synthetic archive), listed with the download's checks
    sources += [archive_source(shard, archive_members(shard)) for shard in shards]
    write_manifest(raw_dir, sources)
    name = metadata.name if metadata.name in METADATA_NAMES else METADATA_NAMES[0]
    shutil.copyfile(metadata, raw_dir / name)
    extras = []
    if params.bbox_csv:
        shutil.copyfile(params.bbox_csv, raw_dir / BBOX_NAME)
        extras.append(BBOX_NAME)
    if params.lists_dir:
        for list_name in LIST_NAMES:
            src = Path(params.lists_dir) / list_name
            if not src.exists():
                raise MissingInputError(f"data.local.lists_dir: {src} not found")
            read_image_list(src)  # readable
            shutil.copyfile(src, raw_dir / list_name)
            extras.append(list_name)
    counts = {Path(s.path).name: len(s.images) for s in sources}
    return {"images": sum(counts.values()), "sources": counts, "metadata": name, "extras": extras}
