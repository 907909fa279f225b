"""Shared plumbing for the stage scripts: argument parsing, one-line errors, timings.

A stage reports the user's mistakes (``cxrsynth.errors.CxrsynthError``: bad params,
malformed or missing inputs) and files the operating system cannot find or open in one
line and exits 1. Anything else is a bug and keeps its full traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from cxrsynth.errors import CxrsynthError
from cxrsynth.io import write_json


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def stage_main(run: Callable[[argparse.Namespace], dict | None], parser: argparse.ArgumentParser) -> None:
    """Parse arguments and call ``run``; the user's errors exit 1 with one line on stderr.

    Every stage also takes ``--timings FILE``. The wall-clock seconds of the run, and whatever
    timings ``run`` returns (a dict, e.g. images/s), are printed and written there as JSON: a
    file DVC does not hash, since timings differ on every run and would make two identical runs
    give different ``dvc.lock`` files."""
    parser.add_argument("--timings", type=Path, default=None,
                        help="JSON file for this run's timings (not a DVC output: timings differ run to run)")
    args = parser.parse_args()
    warnings.formatwarning = _one_line_warning
    start = time.perf_counter()
    try:
        timings = run(args) or {}
    except KeyboardInterrupt:
        sys.exit(130)
    except (CxrsynthError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
    timings = {"seconds": round(time.perf_counter() - start, 1), **timings}
    stage = Path(sys.argv[0]).stem
    print(f"{stage}: " + ", ".join(f"{k} {v}" for k, v in timings.items() if not isinstance(v, dict)))
    if args.timings is not None and os.environ.get("RANK", "0") == "0":  # under DDP, process 0 alone
        write_json(args.timings, {"stage": stage, **timings})
