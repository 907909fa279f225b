"""Shared plumbing for the stage scripts: argument parsing and one-line fatal errors."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def stage_main(run: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser) -> None:
    """Parse arguments and call ``run``; any expected failure exits 1 with one line on stderr."""
    args = parser.parse_args()
    warnings.formatwarning = _one_line_warning
    try:
        run(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except (ValueError, RuntimeError, OSError, KeyError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
