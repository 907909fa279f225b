"""DVC pointers (``<file>.dvc``) for input files: written with ``dvc add``, read without DVC.

A pointer is committed to git; the file itself goes to the DVC cache, from which DVC checks it
out into the copies ``dvc exp run --temp`` and ``--queue`` run in.
"""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from cxrsynth.errors import CxrsynthError, MissingInputError


class TrackingError(CxrsynthError, RuntimeError):
    """``dvc add`` failed; the message says why in one line."""


def pointer_of(path: Path) -> Path:
    """The ``.dvc`` pointer file DVC writes beside ``path``."""
    return path.with_name(path.name + ".dvc")


def require_dvc_repo(root: Path) -> None:
    """A one-line error unless ``root`` is a DVC repository."""
    if not (Path(root) / ".dvc").is_dir():
        raise MissingInputError(f"{root}: not a DVC repository (no .dvc/); run `dvc init` there or pass --root")


def dvc_add(root: Path, path: Path, desc: str | None = None, writable: bool = False) -> list[Path]:
    """``dvc add`` ``path`` in the repository ``root`` (the file goes to the cache, a pointer is
    written beside it), recording ``desc`` in the pointer when given. ``writable`` leaves the
    workspace file a copy (``dvc unprotect``) rather than a link into the cache, for a file that
    is written in place later (a SQLite database). Returns the files to ``git add``, relative to
    ``root``: the pointer and any ``.gitignore`` DVC wrote."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    root, path = Path(root).resolve(), Path(path).resolve()
    require_dvc_repo(root)
    try:
        with Repo(str(root)) as repo:
            repo.scm_context.quiet = True  # the caller says what to git add
            repo.add([str(path)])
            if writable:
                repo.unprotect(str(path))
    except DvcException as err:
        raise TrackingError(f"dvc add {path.relative_to(root)}: {str(err).splitlines()[0]}") from err
    pointer = pointer_of(path)
    if desc is not None:
        _set_desc(pointer, desc)
    to_commit = [pointer.relative_to(root)]
    ignore = path.parent / ".gitignore"
    if ignore.is_file() and f"/{path.name}" in ignore.read_text().splitlines():
        to_commit.append(ignore.relative_to(root))
    return to_commit


def _set_desc(pointer: Path, desc: str) -> None:
    """Set the output's ``desc`` in a pointer (DVC keeps it when the file is added again)."""
    from dvc.utils.serialize import modify_yaml

    with modify_yaml(pointer) as data:
        data["outs"][0]["desc"] = desc


def read_pointer(path: Path) -> dict | None:
    """The output recorded in ``path``'s pointer (``md5``, ``size``, ``desc``...), or None without one."""
    pointer = pointer_of(Path(path))
    if not pointer.is_file():
        return None
    outs = (YAML(typ="safe").load(pointer.read_text()) or {}).get("outs") or [{}]
    return outs[0]
