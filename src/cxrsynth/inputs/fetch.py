"""Download an input, verify it against the manifest, put it in place atomically, ``dvc add`` it.

Downloads go through the NIH downloader (``cxrsynth.data.sources.nih.download``: a ``.part``
file, HTTP Range resume, retries with backoff on broken transfers, a body shorter than its
Content-Length refused), with the manifest's checksums checked on the whole ``.part`` before
the rename: a mismatch deletes the part, leaves any file already in place as it was, and is
not retried.
"""

from __future__ import annotations

import bz2
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from cxrsynth.data.sources.nih import DownloadError, download
from cxrsynth.inputs.checksums import ChecksumError, check, digests, mismatch
from cxrsynth.inputs.manifest import Input
from cxrsynth.inputs.pointers import dvc_add, require_dvc_repo


@dataclass(frozen=True)
class Placed:
    """An input put in place (or found there) and DVC-tracked: ``to_commit`` are the files to
    ``git add``; ``downloaded`` is False when a verified copy was already there."""

    entry: Input
    to_commit: list[Path]
    downloaded: bool


def mirrored(url: str, base_url: str | None) -> str:
    """``url`` with its scheme and host (and a path prefix) taken from ``base_url``, for a mirror
    laid out like the publisher (``http://127.0.0.1:8000/`` serves ``/models/...``)."""
    if not base_url:
        return url
    base, original = urlsplit(base_url), urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + original.path, original.query, ""))


def verified_desc(entry: Input) -> str:
    """What a pointer records about a file that matched the manifest."""
    return "verified: " + "; ".join(f"{c} ({c.source})" for c in entry.checksums)


def fetch(entry: Input, root: Path, base_url: str | None = None, *, retries: int = 3, backoff_s: float = 2.0,
          timeout_s: float = 60.0, session: requests.Session | None = None) -> Placed:
    """Put ``entry`` at its path under ``root`` and ``dvc add`` it; a verified copy already there
    is kept (and tracked) without downloading. Raises DownloadError (ChecksumError for a file that
    is not the published one) in one line."""
    if entry.url is None:
        raise DownloadError(f"{entry.name}: nothing to fetch ({entry.note}); "
                            f"python -m cxrsynth.inputs track {entry.path}")
    root = Path(root)
    require_dvc_repo(root)
    dest = entry.dest(root)
    downloaded = not (dest.is_file() and mismatch(entry.path, entry.checksums, digests(dest)) is None)
    if downloaded:
        url = mirrored(entry.url, base_url)
        options = dict(retries=retries, backoff_s=backoff_s, timeout_s=timeout_s, session=session)
        if entry.packed is None:
            download(url, dest, None, verify=lambda part: check(part, entry.checksums, entry.path), **options)
        else:
            archive = root / ".dvc" / "tmp" / "inputs" / Path(urlsplit(entry.url).path).name
            download(url, archive, None, verify=lambda part: check(part, entry.packed.checksums, archive.name),
                     **options)
            _unpack(entry, archive, dest)
            archive.unlink()
    return Placed(entry, dvc_add(root, dest, verified_desc(entry)), downloaded)


def _unpack(entry: Input, archive: Path, dest: Path) -> None:
    """Extract ``entry.packed.member`` from the zip ``archive`` into ``dest`` through a verified ``.part``."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(entry.packed.member) as member, open(part, "wb") as out:
            source = bz2.BZ2File(member) if entry.packed.decompress == "bz2" else member
            shutil.copyfileobj(source, out, 1 << 20)
        check(part, entry.checksums, entry.path)
    except (KeyError, zipfile.BadZipFile, OSError, EOFError, ChecksumError) as err:
        part.unlink(missing_ok=True)
        if isinstance(err, ChecksumError):
            raise
        raise DownloadError(f"{entry.path}: cannot extract {entry.packed.member} from {archive.name}: {err}") from err
    os.replace(part, dest)
