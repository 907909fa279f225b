"""Download NIH ChestX-ray14: twelve image archives and the metadata files.

Downloads stream to ``<name>.part`` with HTTP Range resume, retry with exponential backoff
on connection errors and 5xx answers, are checked against NIH's published MD5 before an
atomic rename, and leave a ``<name>.md5`` stamp so verified archives are skipped next time.
NIH publishes no checksum for its metadata files: each is checked by its length and by
parsing it against the header and row count of NIH's release (``check_metadata``), and
``data/raw/metadata_checks.json`` records how.
Archives are never extracted: each is listed once (refusing absolute paths, ``..``, links and
device files) and recorded in ``data/raw/images.json``, and ``prepare`` streams the films out
of it (see ``manifest``).
"""

from __future__ import annotations

import csv
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
from cxrsynth.data.metadata import NIH_HEADER, read_bbox_list, read_data_entry, read_image_list
from cxrsynth.data.sources import BBOX_NAME, LIST_NAMES, METADATA_NAMES
from cxrsynth.data.sources.manifest import (
    archive_members,
    archive_source,
    film_name,
    md5_of,
    write_manifest,
)
from cxrsynth.errors import CxrsynthError
from cxrsynth.io import write_json
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


#: Rows (boxes, file names) in NIH's metadata files (../shared/reference/nih-chestxray14.md). NIH
#: publishes MD5s for the image archives only, so these counts, the header and a clean parse are
#: what a metadata file is checked by: a truncated or foreign copy fails them.
METADATA_ROWS = {
    "Data_Entry_2017_v2020.csv": 112_120,
    "Data_Entry_2017.csv": 112_120,
    BBOX_NAME: 984,
    "train_val_list.txt": 86_524,
    "test_list.txt": 25_596,
}
METADATA_CHECKS_NAME = "metadata_checks.json"


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
    A body is checked against its length (Content-Length, or Content-Range's total on a resume);
    one sent without a length must be checked by ``md5`` or ``verify`` (DownloadError if neither
    is given: a cut connection would look complete). A 416 answer to a resume counts as complete
    only when the server's size equals the part's (then ``md5`` / ``verify`` judge its content);
    otherwise the part is stale and the download restarts from the first byte.
    ``verify(part)``, when given, checks the whole ``.part`` before the rename: a DownloadError it
    raises deletes the part and is raised at once (a wrong file, which retrying will not mend),
    unless the body came without a length (it may have been cut) or the part was taken on a 416
    (it may be stale): then the file is fetched again.
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
            fetched = _fetch_into(session, url, part, timeout_s, chunk_bytes, dest.name)
            if fetched == "unsized" and not (md5 or verify):
                part.unlink(missing_ok=True)
                raise DownloadError(f"{dest.name}: {url} sent no Content-Length and no checksum is known, "
                                    "so a cut transfer cannot be told from a whole one")
            if md5:
                got = md5_of(part)
                if got != md5:
                    part.unlink()
                    raise _Retry(f"MD5 mismatch (expected {md5}, got {got})")
            if verify is not None:
                try:
                    verify(part)
                except DownloadError as err:
                    part.unlink(missing_ok=True)
                    if fetched == "sized":
                        raise
                    why = "sent without a length" if fetched == "unsized" else "the partial file was left from before"
                    raise _Retry(f"{err} ({why}: fetching it again)") from err
            os.replace(part, dest)
            if md5:
                _stamp(dest, md5)
            return dest
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError, _Retry) as err:
            last_error = str(err).splitlines()[0][:200]
            tqdm.write(f"{dest.name}: attempt {attempt + 1}/{retries + 1} failed: {last_error}")
    raise DownloadError(f"{dest.name}: download from {url} failed after {retries + 1} attempts: {last_error}")


def _range_total(content_range: str | None) -> int | None:
    """The full size in a ``Content-Range`` header (``bytes 0-9/10``, ``bytes */10``), or None."""
    total = (content_range or "").rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _fetch_into(session: requests.Session, url: str, part: Path, timeout_s: float, chunk: int, label: str) -> str:
    """Fetch ``url`` into ``part``, resuming from its size. Returns 'sized' when the body's length
    was known and matched (_Retry when it fell short), 'unsized' when the server sent none, and
    'on-disk' when a 416 said the part already has the server's size (its content unchecked)."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with session.get(url, headers=headers, stream=True, timeout=timeout_s) as resp:
        if resp.status_code == 416 and have:
            size = _range_total(resp.headers.get("Content-Range"))
            if size == have:
                return "on-disk"  # whole by the server's count; the checksum or verify judges the content
            # a part from another version of the file, or one the server will not size: start over
            tqdm.write(f"{label}: partial file of {have} bytes does not match the server's "
                       f"({size if size is not None else 'unknown'} bytes); restarting")
            part.unlink()
            resp.close()
            return _fetch_into(session, url, part, timeout_s, chunk, label)
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
        if resp.status_code == 206:
            total = _range_total(resp.headers.get("Content-Range")) or total
        with open(part, "ab" if have else "wb") as fh, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=label, leave=False
        ) as bar:
            for block in resp.iter_content(chunk_size=chunk):
                fh.write(block)
                bar.update(len(block))
    if total is None:
        return "unsized"
    size = part.stat().st_size
    if size > total:
        part.unlink()
        raise _Retry(f"received {size} bytes, {total} expected: starting over")
    if size < total:
        raise _Retry(f"connection closed at {size} of {total} bytes")
    return "sized"


def selected_archives(params: NIHParams) -> list[Archive]:
    """The archives named by ``data.nih.archives`` ('all' or a list of numbers 1..12)."""
    if params.archives == "all":
        return list(ARCHIVES)
    return [ARCHIVES[n - 1] for n in sorted(set(params.archives))]


def check_metadata(path: Path, name: str, label: str | None = None) -> str:
    """Check NIH metadata file ``name`` (read from ``path``) against NIH's release; returns what was
    checked, in words, or raises DownloadError naming ``label`` (default ``name``).

    NIH publishes no checksum for these files (only for the image archives), so a copy must
    parse cleanly, with NIH's header (the Data_Entry tables: exactly its 11 columns) and the
    release's row count (``METADATA_ROWS``): a truncated file, a cut last line or another
    table fails.
    """
    label = label or name
    expected = METADATA_ROWS[name]
    try:
        if name in METADATA_NAMES:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                header = next(csv.reader([fh.readline().rstrip("\r\n")]), [])
            while header and header[-1] == "":
                header.pop()  # the 2017 original's trailing comma
            if tuple(h.strip() for h in header) != NIH_HEADER:
                raise DownloadError(f"{label}: {len(header)} columns {header[:3]}..., not NIH's 11")
            table, report = read_data_entry(path)
            if report.rejects:
                line, image, why = report.rejects[0]
                raise DownloadError(f"{label}: {len(report.rejects)} unusable rows, first at line {line} "
                                    f"({image or 'no image'}: {why}); a truncated or damaged copy")
            rows, what = len(table), "rows"
        elif name == BBOX_NAME:
            rows, what = len(read_bbox_list(path)), "boxes"
        else:
            names = read_image_list(path)
            odd = [n for n in names if film_name(n) != n]
            if odd:
                raise DownloadError(f"{label}: {odd[0]!r} is not an NNNNNNNN_NNN.png name; a truncated or damaged copy")
            rows, what = len(names), "file names"
    except ValueError as err:  # MetadataError is one; so are a failed decode and a bad number
        raise DownloadError(f"{label}: {str(err).replace(str(path), label)}") from err
    if rows != expected:
        raise DownloadError(f"{label}: {rows:,} {what}, NIH's release has {expected:,}; a truncated copy "
                            "or another version of the file")
    return f"parse: {rows:,} {what}, as NIH's release (NIH publishes no checksum for it)"


def _record(path: Path, checked: str) -> dict:
    return {"bytes": path.stat().st_size, "md5": md5_of(path), "checked": checked}


def fetch_metadata(params: NIHParams, raw_dir: Path, session: requests.Session | None = None) -> dict[str, dict]:
    """Put the metadata files into ``raw_dir``, each checked by ``check_metadata``; returns, per
    file written, its size, MD5 (for the record) and what it was checked by.

    Sources, first found wins: ``metadata_dir``; ``metadata_url``; the copy of the v2020
    table and box list shipped by the torchxrayvision package. A download is checked by its
    length too (``download``); NIH publishes no checksum to check it by.
    """
    written: dict[str, dict] = {}
    wanted = (*METADATA_NAMES, BBOX_NAME, *LIST_NAMES)
    if params.metadata_dir:
        folder = Path(params.metadata_dir)
        if not folder.is_dir():
            raise DownloadError(f"data.nih.metadata_dir: folder {folder} not found")
        for name in wanted:
            if (folder / name).exists():
                shutil.copyfile(folder / name, raw_dir / name)
                checked = check_metadata(raw_dir / name, name, label=str(folder / name))
                written[name] = _record(raw_dir / name, checked)
    elif params.metadata_url:
        checks: dict[str, str] = {}
        for name in wanted:
            if any(n in written for n in METADATA_NAMES) and name in METADATA_NAMES:
                continue

            def verify(part: Path, name: str = name) -> None:
                checks[name] = "Content-Length (when sent) and " + check_metadata(part, name)

            try:
                download(f"{params.metadata_url.rstrip('/')}/{name}", raw_dir / name, None, retries=params.retries,
                         backoff_s=params.backoff_s, timeout_s=params.timeout_s, session=session, verify=verify)
                written[name] = _record(raw_dir / name, checks[name])
            except DownloadError as err:
                if "HTTP 404" not in str(err):
                    raise
    else:
        folder = torchxrayvision_data_dir()
        for name in (METADATA_NAMES[0], BBOX_NAME):
            packed = folder / f"{name}.gz" if folder else None
            if packed and packed.exists():
                (raw_dir / name).write_bytes(gzip.decompress(packed.read_bytes()))
                written[name] = _record(raw_dir / name, check_metadata(raw_dir / name, name, label=str(packed)))
        if written:
            tqdm.write(f"metadata: using the copy shipped by torchxrayvision ({', '.join(written)})")
    if not any(n in written for n in METADATA_NAMES):
        fallback = ("" if params.metadata_dir or params.metadata_url or torchxrayvision_data_dir() else
                    ', or pip install "cxrsynth[nih]" (torchxrayvision ships a copy)')
        raise DownloadError(
            f"{METADATA_NAMES[0]}: not found; download it from {LANDING_PAGE} and set data.nih.metadata_dir{fallback}"
        )
    return written


def download_nih(params: NIHParams, raw_dir: Path, cache_dir: Path) -> dict:
    """Download (resuming, verifying) the selected archives into ``cache_dir``, list their films in
    ``raw_dir``'s manifest (absolute paths: the archives stay where they are), fetch and check the
    metadata (``metadata_checks.json`` records how each file was checked); returns a summary."""
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
    write_json(raw_dir / METADATA_CHECKS_NAME, metadata)
    films = sum(len(s.images) for s in sources)
    return {"archives": [a.name for a in archives], "films": films,
            "metadata": {name: record["checked"] for name, record in metadata.items()}}
