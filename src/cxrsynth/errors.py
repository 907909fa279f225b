"""Errors that are the user's to fix: stage scripts report them in one line, without a traceback.

Anything else that escapes a stage (a shape bug, an unexpected ``KeyError``) is a bug in
cxrsynth and keeps its full traceback (``cxrsynth.cli.stage_main``).
"""

from __future__ import annotations


class CxrsynthError(Exception):
    """A problem with the params, the inputs or the run that the message explains in one line."""


class ParamsError(CxrsynthError, ValueError):
    """A missing, unknown or ill-typed parameter; the message names the key."""


class InputError(CxrsynthError, ValueError):
    """An input that cannot be used as it is: a malformed CSV, an image store without a level, ..."""


class MissingInputError(CxrsynthError, FileNotFoundError):
    """A file or folder a stage needs is not there; the message names it and what makes it."""
