"""Track a file placed by hand (``dvc add``), after checking it against the manifest when it is
known there, and folding a SQLite database's write-ahead log back in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cxrsynth.errors import InputError, MissingInputError
from cxrsynth.inputs.checksums import ChecksumError, digests, mismatch
from cxrsynth.inputs.fetch import verified_desc
from cxrsynth.inputs.manifest import MANIFEST, Input, entry_for
from cxrsynth.inputs.pointers import dvc_add, require_dvc_repo
from cxrsynth.inputs.sqlite import fold_wal, is_sqlite


@dataclass(frozen=True)
class Tracked:
    """A file ``dvc add``-ed: ``verdict`` says what was checked, ``to_commit`` what to ``git add``."""

    path: Path
    verdict: str
    to_commit: list[Path]


def track(path: str | Path, root: str | Path = ".", unverified: bool = False,
          entries: tuple[Input, ...] = MANIFEST) -> Tracked:
    """``dvc add`` ``path`` (a file under the repository ``root``).

    A file the manifest knows must match its checksums, or ``unverified`` must be given: the
    pointer then records it as unverified (a stand-in, a locally converted copy). A SQLite
    database has its write-ahead log folded in first, is refused while another connection holds
    it open, and is left a writable copy rather than a link into the DVC cache.
    """
    root, path = Path(root).resolve(), Path(path).absolute()
    require_dvc_repo(root)
    if path.is_symlink():
        raise InputError(f"{path}: a link; DVC tracks files, so put a copy there")
    if not path.is_file():
        raise MissingInputError(f"{path}: no such file")
    path = path.resolve()
    if not path.is_relative_to(root):
        raise InputError(f"{path}: not inside the repository {root}")
    database = is_sqlite(path)
    if database:
        fold_wal(path)
    label = str(path.relative_to(root))
    entry = entry_for(path, root, entries)
    desc = None
    if entry is None:
        verdict = "not in the manifest: no checksum to check"
    elif not entry.checksums:
        verdict = f"{entry.name}: the manifest has no checksum for it"
    else:
        problem = mismatch(label, entry.checksums, digests(path))
        if problem is None:
            verdict = desc = verified_desc(entry)
        elif unverified:
            verdict = desc = f"UNVERIFIED (tracked with --unverified): {problem.split(': ', 1)[1]}"
        else:
            raise ChecksumError(f"{problem}; pass --unverified to track it anyway (e.g. a stand-in)")
    # A database stays a copy: with the project's hardlink cache, a server writing the link (as root,
    # whom read-only bits do not stop) would change the cached version in place.
    return Tracked(path, verdict, dvc_add(root, path, desc, writable=database))
