"""Shared plumbing for the stage scripts: argument parsing, one-line errors, timings.

A stage reports the user's mistakes (``cxrsynth.errors.CxrsynthError``: bad params,
malformed or missing inputs) and files the operating system cannot find or open in one
line and exits 1. Anything else is a bug and keeps its full traceback. Every stage records
what ran it (device, versions) and every warning it raised, for the report, and its timings.
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

#: where every stage leaves its two records, relative to the repository root
TIMINGS, PROVENANCE = "metrics/timings", "metrics/provenance"


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


def stage_main(run: Callable[[argparse.Namespace], dict | None], parser: argparse.ArgumentParser,
               name: str | Callable[[argparse.Namespace], str] | None = None) -> None:
    """Parse arguments and call ``run``; the user's errors exit 1 with one line on stderr.

    A run leaves two records, named after the stage (``name``: the script's name by default, or a
    function of the arguments for a ``foreach`` stage, e.g. ``baselines/fc_gan``), under the
    working directory, which DVC makes the repository root:

    - ``metrics/timings/<name>.json``: the run's wall-clock seconds and whatever ``run`` returns
      (a dict, e.g. images/s), also printed. Neither DVC nor git tracks it: timings differ on
      every run and would make two identical runs give different ``dvc.lock`` files.
    - ``metrics/provenance/<name>.json`` (a DVC output in git): ``run_record``."""
    args = parser.parse_args()
    stage = name(args) if callable(name) else (name or Path(sys.argv[0]).stem)
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
    print(f"{stage}: " + ", ".join(f"{k} {v}" for k, v in timings.items() if not isinstance(v, dict)))
    write_json(Path(TIMINGS) / f"{stage}.json", {"stage": stage, **timings})
    write_json(Path(PROVENANCE) / f"{stage}.json", run_record(stage, log.seen))
