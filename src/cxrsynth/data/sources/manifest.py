"""Where the films lie: a small manifest in ``data/raw`` instead of one DVC-tracked file per film.

At full scale ``data/raw/images/`` would be a DVC output of 112,120 PNGs, and every no-op
``dvc status`` pays for listing them (5.3-5.5 s measured, see ``benchmarks/raw_status.py``).
Instead the ``download`` stage writes ``images.json``: the image archives or folders, each with
the films it holds and what it was verified by. ``prepare`` streams PNGs straight out of the
archives (no extraction) and reads a folder where it lies.

An entry's ``path`` is relative to the raw folder (archives the demo writes there, which DVC
tracks) or absolute (NIH archives in ``data/downloads``, a local copy). An entry with ``md5``
is checked while it is streamed; one without is checked by its files' sizes and times first.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from cxrsynth.errors import CxrsynthError, MissingInputError
from cxrsynth.io import write_json

MANIFEST_NAME = "images.json"
_FILM = re.compile(r"^\d{8}_\d{3}\.png$")


class UnsafeArchiveError(CxrsynthError, RuntimeError):
    """An archive member would escape the destination or is not a plain file."""


class SourceChangedError(CxrsynthError, RuntimeError):
    """An archive or folder no longer matches what the ``download`` stage recorded."""


@dataclass(frozen=True)
class ImageSource:
    """One archive or folder of films, as the manifest records it."""

    kind: str  # "archive" | "folder"
    path: str
    images: tuple[str, ...]
    md5: str | None = None
    bytes: int | None = None
    fingerprint: str | None = None

    def resolve(self, raw_dir: Path) -> Path:
        """The entry's path on this machine (relative entries live in the raw folder)."""
        path = Path(self.path)
        return path if path.is_absolute() else raw_dir / path

    def to_json(self) -> dict:
        entry = {"kind": self.kind, "path": self.path, "md5": self.md5, "bytes": self.bytes,
                 "fingerprint": self.fingerprint, "images": list(self.images)}
        return {k: v for k, v in entry.items() if v is not None}


def film_name(member: str) -> str | None:
    """The film's file name for an archive member or file name, or None for anything else."""
    name = PurePosixPath(member).name
    return name if _FILM.match(name) else None


def md5_of(path: Path, chunk: int = 1 << 22) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def stat_fingerprint(files: list[Path]) -> str:
    """SHA-256 over each file's name, size and modification time: cheap, and changes with any edit."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def folder_source(folder: Path) -> ImageSource:
    """A folder of PNG films, read where it lies."""
    files = sorted(p for p in folder.iterdir() if film_name(p.name))
    if not files:
        raise MissingInputError(f"{folder}: no NNNNNNNN_NNN.png films")
    return ImageSource("folder", str(folder.resolve()), tuple(p.name for p in files),
                       fingerprint=stat_fingerprint(files))


def check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Raise UnsafeArchiveError unless ``member`` is a plain file or folder with a safe relative path."""
    path = PurePosixPath(member.name)
    if not path.parts:
        raise UnsafeArchiveError(f"{archive.name}: refusing empty member name")
    if path.is_absolute() or member.name.startswith(("/", "\\")) or ":" in path.parts[0]:
        raise UnsafeArchiveError(f"{archive.name}: refusing absolute path {member.name!r}")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"{archive.name}: refusing path with '..': {member.name!r}")
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(f"{archive.name}: refusing link {member.name!r} -> {member.linkname!r}")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"{archive.name}: refusing special file {member.name!r} (device or fifo)")


def archive_members(path: Path) -> list[str]:
    """Film names in a (gzipped) tar, read in one streaming pass that vets every member (check_member)."""
    names = []
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tqdm(tar, desc=f"list {path.name}", unit="file", leave=False):
                check_member(member, path)
                if member.isfile() and film_name(member.name):
                    names.append(film_name(member.name))
    except (tarfile.TarError, EOFError, OSError) as err:
        raise MissingInputError(f"{path}: cannot be read as a tar archive: {err}") from err
    if not names:
        raise MissingInputError(f"{path}: holds no NNNNNNNN_NNN.png films")
    return names


def archive_source(path: Path, images: list[str], *, md5: str | None = None, relative_to: Path | None = None) -> ImageSource:
    """An archive streamed by ``prepare``; with ``md5`` it is verified while read, else by size and time."""
    stat = path.stat()
    where = str(path.relative_to(relative_to)) if relative_to is not None else str(path.resolve())
    fingerprint = None if md5 else stat_fingerprint([path])
    return ImageSource("archive", where, tuple(images), md5=md5, bytes=stat.st_size, fingerprint=fingerprint)


def write_manifest(raw_dir: Path, sources: list[ImageSource]) -> Path:
    """Write ``images.json`` into the raw folder; returns its path."""
    write_json(raw_dir / MANIFEST_NAME, {"sources": [s.to_json() for s in sources]})
    return raw_dir / MANIFEST_NAME


def read_manifest(raw_dir: Path) -> list[ImageSource]:
    """The sources of a raw folder: its manifest, or an ``images/`` folder (the extracted NIH layout)."""
    path = raw_dir / MANIFEST_NAME
    if not path.exists():
        if (raw_dir / "images").is_dir():
            return [folder_source(raw_dir / "images")]
        raise MissingInputError(f"{raw_dir}: neither {MANIFEST_NAME} nor an images/ folder")
    try:
        entries = json.loads(path.read_text())["sources"]
        return [ImageSource(e["kind"], e["path"], tuple(e["images"]), e.get("md5"), e.get("bytes"),
                            e.get("fingerprint")) for e in entries]
    except (ValueError, KeyError, TypeError) as err:
        raise MissingInputError(f"{path}: not a manifest the download stage wrote ({err})") from err


def check_unchanged(source: ImageSource, raw_dir: Path) -> None:
    """Raise SourceChangedError (one line) if a source's files moved or changed since download."""
    path = source.resolve(raw_dir)
    hint = "; run `dvc repro --force download` to record it again"
    if not path.exists():
        raise SourceChangedError(f"{path}: listed in {MANIFEST_NAME} but not found{hint}")
    if source.bytes is not None and path.stat().st_size != source.bytes:
        raise SourceChangedError(f"{path}: {path.stat().st_size} bytes, {source.bytes} when recorded{hint}")
    if source.fingerprint is not None:
        files = [path] if source.kind == "archive" else [path / name for name in source.images]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise SourceChangedError(f"{path}: {len(missing)} recorded films are gone, e.g. {missing[0]}{hint}")
        if stat_fingerprint(files) != source.fingerprint:
            raise SourceChangedError(f"{path}: files changed (size or time) since they were recorded{hint}")


class _HashingReader:
    """A read-only file wrapper that hashes what passes through (an archive's MD5 while it streams)."""

    def __init__(self, fh):
        self._fh, self.md5 = fh, hashlib.md5()

    def read(self, size: int = -1) -> bytes:
        block = self._fh.read(size)
        self.md5.update(block)
        return block


@dataclass(frozen=True)
class Unread:
    """A film ``stream_films`` left in its archive, and why (a member over ``max_bytes``)."""

    reason: str


def stream_films(source: ImageSource, raw_dir: Path, wanted: set[str],
                 max_bytes: int | None = None) -> Iterator[tuple[str, bytes | str | Unread]]:
    """Yield (film name, PNG bytes or file path) for the wanted films of one source, in its order.

    Archives are read once, front to back, and never extracted; an archive with an MD5 is
    checked against it once fully read (SourceChangedError on a mismatch). A member larger than
    ``max_bytes`` is not read into memory: it comes as ``Unread`` with the reason.
    """
    path = source.resolve(raw_dir)
    if source.kind == "folder":
        for name in source.images:
            if name in wanted:
                yield name, str(path / name)
        return
    with open(path, "rb") as raw:
        reader = _HashingReader(raw)
        try:
            with tarfile.open(fileobj=reader, mode="r|*") as tar:
                for member in tar:
                    name = film_name(member.name) if member.isfile() else None
                    if name in wanted:
                        if max_bytes is not None and member.size > max_bytes:
                            yield name, Unread(f"{member.size:,} bytes in {path.name}, over the "
                                               f"{max_bytes:,} bytes a film within prepare.max_pixels can take")
                        else:
                            yield name, tar.extractfile(member).read()
            while reader.read(1 << 20):  # the gzip trailer and tar padding belong to the checksum
                pass
        except (tarfile.TarError, EOFError, OSError) as err:
            raise SourceChangedError(f"{path}: cannot be read as a tar archive: {err}") from err
    if source.md5 and reader.md5.hexdigest() != source.md5:
        raise SourceChangedError(f"{path}: MD5 {reader.md5.hexdigest()}, {source.md5} when recorded; "
                                 "run `dvc repro --force download` to record it again")
