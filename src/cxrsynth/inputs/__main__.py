"""``python -m cxrsynth.inputs``: fetch, track and list the inputs that come from outside.

    python -m cxrsynth.inputs fetch [NAME ...] [--base-url URL]   # download, verify, dvc add
    python -m cxrsynth.inputs track PATH [...] [--unverified]     # verify if known, dvc add
    python -m cxrsynth.inputs status                              # present? verified? tracked?

Then ``git add`` the ``.dvc`` pointers printed and commit them: ``dvc exp run --temp`` and
``--queue`` runs get the files from the DVC cache through them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cxrsynth.errors import CxrsynthError
from cxrsynth.inputs.manifest import MANIFEST, Input, select


def main(argv: list[str] | None = None, entries: tuple[Input, ...] = MANIFEST,
         prog: str = "python -m cxrsynth.inputs") -> None:
    """Run the command line; ``entries`` replaces the manifest (tests serve their own files); ``prog`` is
    the name its help shows (``cxrsynth inputs`` from the console script)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = commands.add_parser("fetch", help="download, verify and dvc add inputs (all when none named)")
    fetch_cmd.add_argument("names", nargs="*", metavar="NAME", help=", ".join(e.name for e in entries if e.url))
    fetch_cmd.add_argument("--base-url", default=None,
                           help="a mirror laid out like the publishers: replaces each URL's scheme and host")
    fetch_cmd.add_argument("--retries", type=int, default=3, help="retries of a broken transfer (default 3)")
    track_cmd = commands.add_parser("track", help="check (if in the manifest) and dvc add files placed by hand")
    track_cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    track_cmd.add_argument("--unverified", action="store_true",
                           help="track a known file that fails its checksum (a stand-in); its pointer says so")
    status_cmd = commands.add_parser("status", help="each known input: present, verified, DVC-tracked")
    for sub in (fetch_cmd, track_cmd, status_cmd):
        sub.add_argument("--root", type=Path, default=Path("."), help="repository root (default: the current folder)")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            _fetch(args, entries)
        elif args.command == "track":
            _track(args, entries)
        else:
            from cxrsynth.inputs.status import status_table

            print(status_table(args.root, entries))
    except (CxrsynthError, FileNotFoundError, PermissionError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


def _fetch(args: argparse.Namespace, entries: tuple[Input, ...]) -> None:
    from cxrsynth.inputs.fetch import fetch

    chosen = select(args.names, entries) if args.names else [e for e in entries if e.url]
    to_commit = []
    for entry in chosen:
        placed = fetch(entry, args.root, args.base_url, retries=args.retries)
        how = "downloaded" if placed.downloaded else "already present"
        print(f"{entry.name}: {how}, verified, tracked: {entry.path}")
        to_commit += placed.to_commit
    _print_git_add(args.root, to_commit)


def _track(args: argparse.Namespace, entries: tuple[Input, ...]) -> None:
    from cxrsynth.inputs.track import track

    to_commit = []
    for path in args.paths:
        tracked = track(path, args.root, args.unverified, entries)
        print(f"tracked {path}: {tracked.verdict}")
        to_commit += tracked.to_commit
    _print_git_add(args.root, to_commit)


def _print_git_add(root: Path, paths: list[Path]) -> None:
    if paths:
        shown = " ".join(os.path.relpath(root / path) for path in paths)
        print(f"commit the pointers so experiments get the files:\n    git add {shown}")


if __name__ == "__main__":
    main()
