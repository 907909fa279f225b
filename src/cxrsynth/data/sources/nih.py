"""Download NIH ChestX-ray14: twelve image archives and the metadata files.

Downloads stream to ``<name>.part`` with HTTP Range resume, retry with exponential backoff
on connection errors and 5xx answers, are checked against NIH's published MD5 before an
atomic rename, and leave a ``<name>.md5`` stamp so verified archives are skipped next time.
Archives are never extracted: each is listed once (refusing absolute paths, ``..``, links and
device files) and recorded in ``data/raw/images.json``, and ``prepare`` streams the films out
of it (see ``manifest``).
"""

from __future__ import annotations

import gzip
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from tqdm import tqdm

from cxrsynth.config.data import NIHParams
from cxrsynth.data.sources import BBOX_NAME, LIST_NAMES, METADATA_NAMES
from cxrsynth.data.sources.manifest import (
    archive_members,
    archive_source,
    md5_of,
    write_manifest,
)
from cxrsynth.errors import CxrsynthError
from cxrsynth.metadata_source import torchxrayvision_data_dir

LANDING_PAGE = "https://nihcc.app.box.com/v/ChestXray-NIHCC"


@dataclass(frozen=True)
class Archive:
    """One of NIH's twelve image archives."""

    number: int
    remote_id: str
    md5: str
    images: int

    @property
    def name(self) -> str:
        return f"images_{self.number:03d}.tar.gz"

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.remote_id}.gz"


# Ids, MD5s (NIH FAQ Q07) and image counts of images_001 .. images_012.
ARCHIVES: tuple[Archive, ...] = tuple(
    Archive(i + 1, rid, md5, n)
    for i, (rid, md5, n) in enumerate(
        [
            ("vfk49d74nhbxq3nqjg0900w5nvkorp5c", "fe8ed0a6961412fddcbb3603c11b3698", 4999),
            ("i28rlmbvmfjbl8p2n3ril0pptcmcu9d1", "ab07a2d7cbe6f65ddd97b4ed7bde10bf", 10000),
            ("f1t00wrtdk94satdfb9olcolqx20z2jp", "2301d03bde4c246388bad3876965d574", 10000),
            ("0aowwzs5lhjrceb3qp67ahp0rd1l1etg", "9f1b7f5aae01b13f4bc8e2c44a4b8ef6", 10000),
            ("v5e3goj22zr6h8tzualxfsqlqaygfbsn", "1861f3cd0ef7734df8104f2b0309023b", 10000),
            ("asi7ikud9jwnkrnkj99jnpfkjdes7l6l", "456b53a8b351afd92a35bc41444c58c8", 10000),
            ("jn1b4mw4n6lnh74ovmcjb8y48h8xj07n", "1075121ea20a137b87f290d6a4a5965e", 10000),
            ("tvpxmn7qyrgl0w8wfh9kqfjskv6nmm1j", "b61f34cec3aa69f295fbb593cbd9d443", 10000),
            ("upyy3ml7qdumlgk2rfcvlb9k6gvqq2pj", "442a3caa61ae9b64e61c561294d1e183", 10000),
            ("l6nilvfa9cg3s28tqv1qc1olm3gnz54p", "09ec81c4c31e32858ad8cf965c494b74", 10000),
            ("hhq8fkdgvcari67vfhs7ppg2w6ni4jze", "499aefc67207a5a97692424cf5dbeed5", 10000),
            ("ioqwiy20ihqwyr8pf4c24eazhh281pbu", "dc9fda1757c2de0032b63347a7d2895c", 7121),
        ]
    )
)


class DownloadError(CxrsynthError, RuntimeError):
    """A download failed for good (after retries, or on a 4xx answer, or on a checksum)."""


class _Retry(Exception):
    pass


def is_verified(path: Path, md5: str) -> bool:
    """True when ``path`` carries a stamp saying it matched ``md5`` at its current size and time."""
    stamp = path.with_name(path.name + ".md5")
    if not (path.exists() and stamp.exists()):
        return False
    stat = path.stat()
    return stamp.read_text().split() == [md5, str(stat.st_size), str(stat.st_mtime_ns)]


def _stamp(path: Path, md5: str) -> None:
    stat = path.stat()
    path.with_name(path.name + ".md5").write_text(f"{md5} {stat.st_size} {stat.st_mtime_ns}\n")


def download(
    url: str,
    dest: Path,
    md5: str | None = None,
    *,
    retries: int = 6,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    chunk_bytes: int = 1 << 20,
    session: requests.Session | None = None,
    verify: Callable[[Path], None] | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part`` with an HTTP Range request.

    Retries connection errors, truncated bodies, 5xx answers and checksum mismatches up to
    ``retries`` times with exponential backoff; raises DownloadError naming the file otherwise.
    ``verify(part)``, when given, checks the whole ``.part`` before the rename: a DownloadError it
    raises deletes the part and is raised at once (a wrong file, which retrying will not mend).
    """
    dest = Path(dest)
    if md5 and is_verified(dest, md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    session = session or requests.Session()
    last_error = "no attempt made"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(backoff_s * 2 ** (attempt - 1), 60.0))
        try:
            _fetch_into(session, url, part, timeout_s, chunk_bytes, dest.name)
            if md5:
                got = md5_of(part)
                if got != md5:
                    part.unlink()
                    raise _Retry(f"MD5 mismatch (expected {md5}, got {got})")
            if verify is not None:
                try:
                    verify(part)
                except DownloadError:
                    part.unlink(missing_ok=True)
                    raise
            os.replace(part, dest)
            if md5:
                _stamp(dest, md5)
            return dest
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError, _Retry) as err:
            last_error = str(err).splitlines()[0][:200]
            tqdm.write(f"{dest.name}: attempt {attempt + 1}/{retries + 1} failed: {last_error}")
    raise DownloadError(f"{dest.name}: download from {url} failed after {retries + 1} attempts: {last_error}")


def _fetch_into(session: requests.Session, url: str, part: Path, timeout_s: float, chunk: int, label: str) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with session.get(url, headers=headers, stream=True, timeout=timeout_s) as resp:
        if resp.status_code == 416 and have:
            return  # the partial file is already whole; the checksum decides
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _Retry(f"HTTP {resp.status_code}")
        if resp.status_code not in (200, 206):
            raise DownloadError(f"{label}: HTTP {resp.status_code} from {url}")
        if resp.status_code == 206 and not resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            raise _Retry(f"server answered range {resp.headers.get('Content-Range')!r} for offset {have}")
        if resp.status_code == 200:
            have = 0  # no range support: start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as fh, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=label, leave=False
        ) as bar:
            for block in resp.iter_content(chunk_size=chunk):
                fh.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size < total:
        raise _Retry(f"connection closed at {part.stat().st_size} of {total} bytes")


def selected_archives(params: NIHParams) -> list[Archive]:
    """The archives named by ``data.nih.archives`` ('all' or a list of numbers 1..12)."""
    if params.archives == "all":
        return list(ARCHIVES)
    return [ARCHIVES[n - 1] for n in sorted(set(params.archives))]


def fetch_metadata(params: NIHParams, raw_dir: Path, session: requests.Session | None = None) -> list[str]:
    """Put the metadata files into ``raw_dir``; returns the names written.

    Sources, first found wins: ``metadata_dir``; ``metadata_url``; the copy of the v2020
    table and box list shipped by the torchxrayvision package.
    """
    written: list[str] = []
    wanted = (*METADATA_NAMES, BBOX_NAME, *LIST_NAMES)
    if params.metadata_dir:
        folder = Path(params.metadata_dir)
        if not folder.is_dir():
            raise DownloadError(f"data.nih.metadata_dir: folder {folder} not found")
        for name in wanted:
            if (folder / name).exists():
                shutil.copyfile(folder / name, raw_dir / name)
                written.append(name)
    elif params.metadata_url:
        for name in wanted:
            if any(n in written for n in METADATA_NAMES) and name in METADATA_NAMES:
                continue
            try:
                download(f"{params.metadata_url.rstrip('/')}/{name}", raw_dir / name, None, retries=params.retries,
                         backoff_s=params.backoff_s, timeout_s=params.timeout_s, session=session)
                written.append(name)
            except DownloadError as err:
                if "HTTP 404" not in str(err):
                    raise
    else:
        folder = torchxrayvision_data_dir()
        for name in (METADATA_NAMES[0], BBOX_NAME):
            packed = folder / f"{name}.gz" if folder else None
            if packed and packed.exists():
                (raw_dir / name).write_bytes(gzip.decompress(packed.read_bytes()))
                written.append(name)
        if written:
            tqdm.write(f"metadata: using the copy shipped by torchxrayvision ({', '.join(written)})")
    if not any(n in written for n in METADATA_NAMES):
        raise DownloadError(
            f"{METADATA_NAMES[0]}: not found; download it from {LANDING_PAGE} and set data.nih.metadata_dir"
        )
    return written


def download_nih(params: NIHParams, raw_dir: Path, cache_dir: Path) -> dict:
    """Download (resuming, verifying) the selected archives into ``cache_dir``, list their films in
    ``raw_dir``'s manifest (absolute paths: the archives stay where they are), fetch the metadata."""
    session = requests.Session()
    raw_dir.mkdir(parents=True, exist_ok=True)
    metadata = fetch_metadata(params, raw_dir, session)
    archives = selected_archives(params)
    sources = []
    for archive in tqdm(archives, desc="archives", unit="archive"):
        path = download(
            archive.url(params.base_url),
            cache_dir / archive.name,
            archive.md5,
            retries=params.retries,
            backoff_s=params.backoff_s,
            timeout_s=params.timeout_s,
            chunk_bytes=params.chunk_kib * 1024,
            session=session,
        )
        sources.append(archive_source(path, archive_members(path), md5=archive.md5))
    write_manifest(raw_dir, sources)
    films = sum(len(s.images) for s in sources)
    return {"archives": [a.name for a in archives], "films": films, "metadata": metadata}
