"""Shared plumbing for the stage scripts: argument parsing, one-line errors, timings.

A stage reports the user's mistakes (``cxrsynth.errors.CxrsynthError``: bad params,
malformed or missing inputs) and files the operating system cannot find or open in one
line and exits 1. Anything else is a bug and keeps its full traceback. A stage given
``--provenance FILE`` records there what ran it (device, versions) and every warning it
raised, for the report.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from cxrsynth.distributed import is_first_process
from cxrsynth.errors import CxrsynthError
from cxrsynth.io import write_json


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def _normalised(message: str) -> str:
    """A warning's first line with this checkout's, the environment's and temporary paths masked, so
    the same warning reads the same on every machine and in every clone."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else ""
    for path, name in ((sys.prefix, "<env>"), (os.getcwd(), "."), (os.path.expanduser("~"), "~")):
        text = text.replace(path, name)
    return re.sub(r"(/tmp|/var/tmp|/private/var/folders)/[^\s'\"),]+", "<tmp>", text)


class _WarningLog:
    """Shows warnings as before (one line each) and keeps them, deduplicated, in order."""

    def __init__(self):
        self.seen: list[str] = []
        self._show = warnings.showwarning

    def __call__(self, message, category, filename, lineno, file=None, line=None):
        entry = f"{category.__name__}: {_normalised(message)}"
        if entry not in self.seen:
            self.seen.append(entry)
        self._show(message, category, filename, lineno, file, line)


def run_record(stage: str, warned: list[str]) -> dict:
    """What ran a stage: the device torch would use (when the stage loaded torch), the versions and
    the warnings it raised. Deterministic for one machine and environment."""
    record = {"stage": stage, "python": platform.python_version(), "device": "cpu", "warnings": warned}
    torch = sys.modules.get("torch")
    if torch is not None:
        record["torch"] = torch.__version__.split("+")[0]
        if torch.cuda.is_available():
            names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
            record["device"] = f"cuda: {torch.cuda.device_count()} x {', '.join(names)}"
        else:
            record["device"] = f"cpu: {os.cpu_count()} cores"
    return record


def stage_main(run: Callable[[argparse.Namespace], dict | None], parser: argparse.ArgumentParser) -> None:
    """Parse arguments and call ``run``; the user's errors exit 1 with one line on stderr.

    Every stage also takes ``--timings FILE``. The wall-clock seconds of the run, and whatever
    timings ``run`` returns (a dict, e.g. images/s), are printed and written there as JSON: a
    file DVC does not hash, since timings differ on every run and would make two identical runs
    give different ``dvc.lock`` files. ``--provenance FILE`` (a DVC output) gets ``run_record``."""
    parser.add_argument("--timings", type=Path, default=None,
                        help="JSON file for this run's timings (not a DVC output: timings differ run to run)")
    parser.add_argument("--provenance", type=Path, default=None,
                        help="JSON file recording the device, versions and warnings of this run (for the report)")
    args = parser.parse_args()
    warnings.formatwarning = _one_line_warning
    log = _WarningLog()
    warnings.showwarning = log
    start = time.perf_counter()
    try:
        timings = run(args) or {}
    except KeyboardInterrupt:
        sys.exit(130)
    except (CxrsynthError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
    if not is_first_process():  # under DDP, global rank 0 alone reports
        return
    timings = {"seconds": round(time.perf_counter() - start, 1), **timings}
    stage = Path(sys.argv[0]).stem
    print(f"{stage}: " + ", ".join(f"{k} {v}" for k, v in timings.items() if not isinstance(v, dict)))
    if args.timings is not None:
        write_json(args.timings, {"stage": stage, **timings})
    if args.provenance is not None:
        write_json(args.provenance, run_record(stage, log.seen))
