"""An NIH copy already on disk: checked, then linked or copied into ``data/raw``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tqdm import tqdm

from cxrsynth.config.data import LocalParams
from cxrsynth.data.metadata import NIH_HEADER, MetadataError, read_image_list
from cxrsynth.data.sources import BBOX_NAME, LIST_NAMES, METADATA_NAMES
from cxrsynth.data.sources.nih import safe_extract
from cxrsynth.errors import MissingInputError


def _place(src: Path, dst: Path, how: str) -> str:
    """Link or copy one file; a hard link across file systems falls back to a copy."""
    if how == "symlink":
        os.symlink(src.resolve(), dst)
        return how
    if how == "hardlink":
        try:
            os.link(src, dst)
            return how
        except OSError:
            pass
    shutil.copy2(src, dst)
    return "copy"


def import_local(params: LocalParams, raw_dir: Path) -> dict:
    """Check an existing NIH copy and link or copy it into ``raw_dir`` in the NIH layout."""
    images_dir, metadata = Path(params.images_dir), Path(params.metadata_csv)
    if not images_dir.is_dir():
        raise MissingInputError(f"data.local.images_dir: folder {images_dir} not found")
    if not metadata.is_file():
        raise MissingInputError(f"data.local.metadata_csv: file {metadata} not found")
    with open(metadata, encoding="utf-8-sig") as fh:
        first = fh.readline().strip().rstrip(",")
    if not (first + ",").startswith(",".join(NIH_HEADER) + ","):
        raise MetadataError(f"data.local.metadata_csv: {metadata} does not have the NIH header")
    pngs = sorted(p for p in images_dir.iterdir() if p.suffix.lower() == ".png")
    shards = sorted(p for p in images_dir.iterdir() if p.name.startswith("images_") and ".tar" in p.suffixes)
    if not pngs and not shards:
        raise MissingInputError(f"data.local.images_dir: no PNG files or images_*.tar(.gz) archives in {images_dir}")
    out_images = raw_dir / "images"
    out_images.mkdir(parents=True, exist_ok=True)
    modes: dict[str, int] = {}
    for png in tqdm(pngs, desc=f"{params.link} images", unit="img"):
        mode = _place(png, out_images / png.name, params.link)
        modes[mode] = modes.get(mode, 0) + 1
    for shard in shards:  # NIH's own packaging (or a synthetic archive): extracted with the download's checks
        modes["extracted"] = modes.get("extracted", 0) + safe_extract(shard, raw_dir)
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
    return {"images": sum(modes.values()), "placed": modes, "metadata": name, "extras": extras}
